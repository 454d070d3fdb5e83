# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container lifecycle on top of the store, conmon and the OCI runtime.

Reading a container (inspect, view) needs only the store: the stages of a change (cgroups, conmon,
the OCI runtime, the overlay, the network, secrets) are imported by the methods that change
something, so an idempotent task loads none of them (Ansible compiles every imported module_utils
file on every task).

This is also the Python API: ``Engine(root, run_root).inspect('web')`` and friends work without
Ansible. Callers hold ``engine.store.lock(name)`` around every change of a container.

The engine knows no options: it gets a container's config (whose keys it reads for its own stages:
root filesystem, network, cgroups, conmon's log), the finished OCI spec, and for a live update the
runtime's resources document, all made by the option layer above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import contextlib
import json
import os
import secrets
import signal

from .errors import RuncibleError, RuntimeCommandError, ValidationError
from .files import atomic_write
from .host import current_boot_id, find_program, kill, process_alive, read_proc_stat, wait_until
from .parsers import check_user_db
from .store import DEFAULT_ROOT, DEFAULT_RUN_ROOT, ContainerPaths, Record, Store, derive_status, utc_iso

DEFAULT_APPARMOR_PROFILE = 'runcible-default'  # apparmor.DEFAULT_PROFILE; that module loads only when used

if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

    from .cgroups import Placement
    from .oci_cli import OCIRuntime
    from .store import Live

    Spec = dict[str, Any]  # an OCI config.json, as the option layer builds it

KILL_WAIT = 10.0
EXIT_CODE_WAIT = 2.0  # conmon writes the exit code a moment after the container's processes are gone


# The runtime's stages of a change, imported on first use (see the module docstring).
# pylint: disable=import-outside-toplevel
def _cgroups() -> ModuleType:
    from . import cgroups
    return cgroups


def _conmon() -> ModuleType:
    from . import conmon
    return conmon


def _network() -> ModuleType:
    from . import network
    return network


def _oci_cli() -> ModuleType:
    from . import oci_cli
    return oci_cli


def _rootfs() -> ModuleType:
    from . import rootfs
    return rootfs


def _secrets() -> ModuleType:
    from . import secrets
    return secrets
# pylint: enable=import-outside-toplevel


class Engine(object):
    """The container runtime of one host, for one ``root`` / ``run_root`` pair."""

    def __init__(self, root: str = DEFAULT_ROOT, run_root: str = DEFAULT_RUN_ROOT, runtime: str | None = None) -> None:
        self.store = Store(root, run_root)
        self.requested_runtime = runtime
        self.warnings: list[str] = []
        self.notes: list[str] = []
        # Secret values a task gives ({name: value}); written to the tmpfs store when a container is launched.
        self.pending_secrets: dict[str, str] = {}
        self.listen_fds = 0  # sockets systemd passed to a unit's start command (fds 3..; units.py)

    # -- reading ------------------------------------------------------------------------------
    def paths(self, record: Record) -> ContainerPaths:
        return self.store.paths(record['name'], record['id'])

    def inspect(self, name: str) -> tuple[Record, Live] | tuple[None, None]:
        """-> (record, live) or (None, None); see Store.inspect()."""
        return self.store.inspect(name)

    def view(self, record: Record, live: Live) -> dict[str, Any]:
        """The ``container`` dict modules return; see Store.view()."""
        return self.store.view(record, live)

    def runtime_for(self, record: Record) -> OCIRuntime:
        runtime = record['runtime']
        oci = _oci_cli().OCIRuntime(runtime['name'], runtime['path'], self.store.runtime_root(runtime['name']),
                                    log_path=self.paths(record).runtime_log)
        oci.systemd_cgroup = record['config'].get('cgroup_manager') == 'systemd'  # as placement() reads it
        return oci

    @staticmethod
    def placement(record: Record) -> Placement:
        cgroups = _cgroups()
        config = record['config']
        return cgroups.Placement(config.get('cgroup_manager') or 'cgroupfs',
                                 config.get('cgroup_parent') or cgroups.DEFAULT_CGROUPFS_PARENT, record['id'])

    # -- creating -----------------------------------------------------------------------------
    def select_runtime(self) -> tuple[str, str]:
        name, path, warnings = _oci_cli().select_runtime(self.requested_runtime)
        self.warnings.extend(w for w in warnings if w not in self.warnings)
        return name, path

    def conmon_path(self) -> str:
        path = find_program('conmon')
        if not path:
            raise ValidationError(_conmon().CONMON_PACKAGE_HINT)
        return path

    @staticmethod
    def new_id() -> str:
        """A new container id (64 hex digits), to build its spec with before create()."""
        return secrets.token_hex(32)

    def create(self, name: str, config: dict[str, Any], spec: Spec, container_id: str, start: bool = True,
               launch: bool = True) -> Record:
        """Create a new container from a complete ``config`` and its ``spec`` (made for ``container_id``); -> record.

        ``launch``: start its process under conmon (``runtime create``), else it is recorded as
        stopped with its bundle ready; ``start``: also ``runtime start`` it.
        On any failure everything made so far is undone: no record, mount, process or directory.
        """
        if self.store.load(name) is not None:
            raise RuncibleError('container %s already exists' % name)
        runtime_path = config.get('runtime') or self.select_runtime()[1]
        runtime_name = os.path.basename(runtime_path)
        conmon_path = self.conmon_path()
        config = dict(config, runtime=runtime_path)
        record = Record(id=container_id, name=name, created_at=utc_iso(), config=config,
                        runtime={'name': runtime_name, 'path': runtime_path}, conmon=conmon_path, state='stopped',
                        exit_code=None)
        try:
            self.store.save(record)
            self._write_bundle(record, spec)
            if launch:
                self._launch(record, spec, start=start)
        except BaseException:
            with contextlib.suppress(Exception):
                self.remove(record, stop_timeout=0)
            raise
        return record

    def _write_bundle(self, record: Record, spec: Spec | None) -> None:
        """The bundle: the spec on the tmpfs (it may hold secret environment values), linked from bundle/."""
        paths = self.paths(record)
        config = record['config']
        if spec is None:
            raise RuncibleError('container %s has no bundle (the host rebooted?) and no spec was given to write one'
                                % record['name'])
        spec = json.loads(json.dumps(spec))
        os.makedirs(paths.bundle, mode=0o700, exist_ok=True)
        os.makedirs(paths.run_dir, mode=0o700, exist_ok=True)
        if (config.get('restart_policy') or 'no') != 'no' or config.get('systemd_unit'):
            atomic_write(paths.saved_spec, json.dumps(spec), mode=0o600)  # before any secret value goes in
        if config.get('secrets'):
            self._put_secrets(record)
            env = _secrets().env_values(paths.secrets_dir, config['secrets'])
            if env:
                names = set(env)
                spec['process']['env'] = [item for item in spec['process']['env'] if item.split('=', 1)[0] not in names]
                spec['process']['env'] += ['%s=%s' % item for item in sorted(env.items())]
            _link(paths.secrets_dir, os.path.join(paths.bundle, 'secrets'))
        atomic_write(paths.spec_file, json.dumps(spec, indent=1), mode=0o600)
        _link(paths.spec_file, paths.config_json)

    def _put_secrets(self, record: Record) -> None:
        """Write the secret values the task gave into the tmpfs store; fail when one is missing there."""
        config = record['config'].get('secrets') or {}
        if not config:
            return
        paths = self.paths(record)
        container_secrets = _secrets()
        values = dict((name, value) for name, value in self.pending_secrets.items() if name in config)
        if values:
            uid, gid = (int(part) for part in str(record['config'].get('user') or '0:0').split(':'))
            container_secrets.write(paths.secrets_dir, config, values, uid, gid)
        missing = container_secrets.missing(paths.secrets_dir, config)
        if missing:
            raise ValidationError('container %s needs the values of its secrets %s, which are kept only until the '
                                  'host reboots: give secrets in the task that starts it'
                                  % (record['name'], ', '.join(missing)))

    def _prepare_rootfs(self, record: Record) -> None:
        paths = self.paths(record)
        config = record['config']
        label = config.get('label')
        mount_label = label.get('mount') if isinstance(label, dict) else None
        if config['rootfs_mode'] == 'overlay':
            # An image's layers (shared, read-only, top first) or the user's directory, under the container's upper.
            if config.get('image'):
                from .image_store import lower_dirs  # pylint: disable=import-outside-toplevel
                lower = lower_dirs(self.store.root, config)
            else:
                lower = [config['rootfs']]
            _rootfs().mount_overlay(lower, paths.upper, paths.work, paths.rootfs_mount, mount_label=mount_label)
        # What the container will see: its user database must not make the runtime block for good (an image
        # author's FIFO, or one its own processes left in the upper dir).
        try:
            check_user_db(paths.rootfs_mount if config['rootfs_mode'] == 'overlay' else config['rootfs'],
                          'cannot start container %s' % record['name'])
            if any(mount.get('type') == 'volume' for mount in config.get('mounts') or []) or config.get('image_volumes'):
                from .volumes import prepare_for  # pylint: disable=import-outside-toplevel
                prepare_for(self.store.root, record, paths.rootfs_mount if config['rootfs_mode'] == 'overlay'
                            else config['rootfs'])
            if mount_label:
                self._relabel_mounts(config, mount_label)  # bind sources and volumes (made just above)
        except BaseException:
            if config['rootfs_mode'] == 'overlay':
                _rootfs().unmount(paths.rootfs_mount)
            raise

    def _exit_command(self, record: Record) -> tuple[str, list[str]]:
        """conmon's exit command (restart.py), run by the runtime library installed on the host."""
        from . import payload, restart  # pylint: disable=import-outside-toplevel
        lib = self._installed_lib(record)
        if record['config'].get('restart_policy') in ('always', 'unless-stopped'):
            payload.ensure_boot_unit(self.store.root, self.store.run_root)
        return restart.exit_command(lib, self.store.root, self.store.run_root, record['name'], record['id'])

    def _installed_lib(self, record: Record) -> str:
        """The runtime library installed on the host (payload.py) for what runs after the task (an exit command, a
        port proxy), once per version; a new version collects the old ones no container refers to."""
        from . import payload  # pylint: disable=import-outside-toplevel
        installed = payload.installed(self.store.root)
        lib = payload.install(self.store.root)
        if not installed:
            in_use = []
            for name in self.store.names():
                with contextlib.suppress(RuncibleError):
                    other = self.store.load(name)
                    in_use.append(other.get('lib') if other is not None else None)
            payload.collect(self.store.root, [path for path in in_use if path], keep=lib)
        record['lib'] = lib
        return lib

    def repair_ports(self, record: Record) -> None:
        """A running container's port proxy (IPv6 loopback) is gone: bind its ports again and start a new one."""
        _network().repair_proxy(record, self._installed_lib(record))
        self.store.save(record)

    def hold_stopped(self, record: Record) -> None:
        """Record that a task wants it stopped: its exit command (a restart pending in a back-off) must not start it."""
        if not record.get('stopping'):
            record['stopping'] = True
            self.store.save(record)

    def _check_relabel_volume(self, name: str) -> None:
        """z/Z relabel a volume's own directory or tmpfs, never a host directory or device a volume binds or mounts
        (a bind volume of /usr would give the host's /usr the container's label)."""
        from . import volumes  # pylint: disable=import-outside-toplevel
        volume = volumes.get(self.store.root, name) or {}
        kind = (volume.get('options') or {}).get('type')
        if kind not in (None, 'tmpfs'):
            raise ValidationError('mounts: z/Z on volume %s, which mounts %s (%s) of the host: relabel that yourself '
                                  '(chcon) and mount the volume without z/Z' % (name, volume['options'].get('device'), kind))

    def _relabel_mounts(self, config: dict[str, Any], mount_label: str) -> None:
        """Bind sources with ``Z`` get the container's own label, with ``z`` the label every container may share."""
        from . import selinux_labels  # pylint: disable=import-outside-toplevel
        store = (self.store.root, self.store.run_root)
        for mount in config.get('mounts') or []:
            if mount.get('type') == 'tmpfs':
                continue
            # A volume's data directory lies in the store, which relabel() refuses for host paths: its own walk.
            source = mount['path'] if mount.get('type') == 'volume' else mount['source']
            allowed = store if mount.get('type') != 'volume' else ()
            if mount.get('type') == 'volume' and ('z' in mount['options'] or 'Z' in mount['options']):
                self._check_relabel_volume(mount['source'])
            if 'Z' in mount['options']:
                selinux_labels.relabel(source, mount_label, allowed)
            elif 'z' in mount['options']:
                selinux_labels.relabel(source, selinux_labels.shared_context(mount_label), allowed)

    def _launch(self, record: Record, spec: Spec | None = None, start: bool = True,
                restore: tuple[str, list[str]] | None = None, runtime: OCIRuntime | None = None) -> None:
        """Start conmon (runtime create) for a container that has no process; then ``runtime start``.

        ``spec`` is needed only when the bundle is gone (a reboot emptied the tmpfs, a task was killed).

        ``restore``: (image dir, extra ``runtime restore`` args) to restore a checkpoint instead; the
        restored process runs at once, supervised by conmon like a started one.
        """
        conmon, network = _conmon(), _network()
        paths = self.paths(record)
        runtime = runtime or self.runtime_for(record)
        for directory in (paths.run_dir, paths.persist_dir, paths.exit_dir, paths.socket_dir, runtime.state_root):
            os.makedirs(directory, mode=0o700, exist_ok=True)
        if record['config'].get('apparmor_profile') == DEFAULT_APPARMOR_PROFILE:
            from . import apparmor  # pylint: disable=import-outside-toplevel
            apparmor.ensure_default(self.store.run_root)  # a reboot unloads it; a new version replaces it
        if not os.path.exists(paths.config_json):
            self._write_bundle(record, spec)  # a task killed before it wrote the bundle, or a reboot emptied the tmpfs
        else:
            self._put_secrets(record)
        # Leftovers of an earlier run of this container: runtime state, a conmon of a task killed before it
        # recorded its pid (it would write an exit file into this run), exit file, conmon's fifos.
        if runtime.knows(record['id']):
            runtime.delete(record['id'], force=True)
        self._reap_stray_conmon(record, paths)
        for stale in (paths.exit_file, paths.pidfile, paths.conmon_pidfile,
                      os.path.join(paths.bundle, 'ctl'), os.path.join(paths.bundle, 'winsz'),
                      os.path.join(paths.bundle, 'attach'), os.path.join(paths.persist_dir, 'exit')):
            with contextlib.suppress(OSError):
                os.unlink(stale)
        self._prepare_rootfs(record)
        # conmon's exit command, for a container with a restart policy (a container without one has none: its
        # conmon exits with its process, as it always did).
        exit_command = self._exit_command(record) if (record['config'].get('restart_policy') or 'no') != 'no' \
            and not record['config'].get('systemd_unit') else None  # a unit-managed one: its unit's Restart=
        if exit_command is None:
            record['lib'] = None
        # Namespace, veth, address and reserved host ports (their sockets go to conmon as fds 5+).
        attachment = network.attach(record, self.store.root, paths.bundle, restore=bool(restore),
                                    undo_launch=lambda: runtime.delete(record['id'], force=True))
        self.warnings.extend(warning for warning in attachment.warnings if warning not in self.warnings)
        if attachment.entry is not None:
            record['network'] = attachment.entry
        launch = conmon.ConmonLaunch(
            conmon_path=record.get('conmon') or self.conmon_path(), runtime=runtime,
            container_id=record['id'], name=record['name'], bundle=paths.bundle, pidfile=paths.pidfile,
            conmon_pidfile=paths.conmon_pidfile, exit_dir=paths.exit_dir, persist_dir=paths.persist_dir,
            socket_dir=paths.socket_dir, log_path=paths.log, runtime_log=paths.runtime_log,
            log_driver=record['config'].get('log_driver') or 'k8s-file',
            log_size_max=record['config'].get('log_size_max') or None,
            restore_path=restore[0] if restore else None, restore_args=restore[1] if restore else None,
            systemd_cgroup=runtime.systemd_cgroup, extra_fds=attachment.fds, terminal=bool(record['config'].get('tty')),
            exit_command=exit_command, listen_fds=self.listen_fds)
        if not os.path.exists(launch.conmon_path):
            launch.conmon_path = self.conmon_path()
        placement = self.placement(record)

        def place_conmon(conmon_pid: int) -> None:
            note = placement.place_conmon(conmon_pid)
            if note and note not in self.notes:
                self.notes.append(note)
        with attachment:
            if attachment.proxied:  # the port proxy of IPv6 loopback, its Python started while conmon creates
                attachment.spawn_proxy(self._installed_lib(record))
            pid, conmon_pid = conmon.launch(launch, before_start=place_conmon)
            attachment.conmon = (conmon_pid, _start_time(conmon_pid))
        record.update(pid=pid, pid_start=_start_time(pid), conmon_pid=conmon_pid,
                      conmon_start=_start_time(conmon_pid), boot_id=current_boot_id(), state='created',
                      exit_code=None, finished_at=None, started_at=None, stopping=None, health=None)
        self.store.save(record)
        if restore:
            record.update(state='running', started_at=utc_iso())
            self.store.save(record)
        elif start:
            runtime.start(record['id'])
            record.update(state='running', started_at=utc_iso())
            self.store.save(record)
        if (restore or start) and ((record['config'].get('healthcheck') or {}).get('test') or record.get('health_timer')):
            from .units import ensure_health_timer  # pylint: disable=import-outside-toplevel
            ensure_health_timer(self, record)  # systemd hosts: a transient timer runs its check

    @staticmethod
    def _reap_stray_conmon(record: Record, paths: ContainerPaths) -> None:
        """Wait for (or kill) a conmon of this container that no record knows; its runtime state is gone."""
        try:
            with open(paths.conmon_pidfile) as handle:
                pid = int(handle.read().strip() or 0)
        except (IOError, OSError, ValueError):
            return
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                argv = handle.read().split(b'\0')
        except (IOError, OSError):
            return
        if not argv or os.path.basename(argv[0]) != b'conmon' or record['id'].encode() not in argv:
            return
        if not wait_until(lambda: not process_alive(pid), KILL_WAIT / 2, first_delay=0.01, max_delay=0.01):
            kill(pid, signal.SIGKILL)
            wait_until(lambda: not process_alive(pid), KILL_WAIT / 2, first_delay=0.01, max_delay=0.01)

    # -- transitions --------------------------------------------------------------------------
    def start(self, record: Record, live: Live, spec: Spec | None = None) -> None:
        """Bring a created or stopped container to running (a stopped one gets a new process).

        ``spec``: the container's spec, for a stopped one whose bundle is gone.
        """
        if live['status'] == 'created':
            self.runtime_for(record).start(record['id'])
            record.update(state='running', started_at=utc_iso())
            self.store.save(record)
        elif live['status'] == 'paused':
            self.resume(record)
        elif live['status'] == 'stopped':
            self._finish(record, live)
            self._launch(record, spec, start=True)

    def pause(self, record: Record) -> None:
        self.runtime_for(record).pause(record['id'])
        record['state'] = 'paused'
        self.store.save(record)

    def resume(self, record: Record) -> None:
        self.runtime_for(record).resume(record['id'])
        record['state'] = 'running'
        self.store.save(record)

    def stop(self, record: Record, live: Live | None = None, stop_timeout: float | None = None) -> Live:
        """Stop signal, wait ``stop_timeout``, SIGKILL; then release the runtime state and the mount."""
        live = live or derive_status(record, self.paths(record))
        if live['status'] != 'stopped':
            self.hold_stopped(record)  # before any signal: the exit command then knows a task stopped it
            config = record['config']
            timeout = config.get('stop_timeout', 10) if stop_timeout is None else stop_timeout
            runtime = self.runtime_for(record)
            if live['status'] == 'paused':
                runtime.resume(record['id'])
            if timeout > 0 and live['status'] != 'created':
                self._signal(record, runtime, config.get('stop_signal', signal.SIGTERM))
                live = self._wait_stopped(record, timeout)
            if live['status'] != 'stopped':
                self._signal(record, runtime, signal.SIGKILL)
                live = self._wait_stopped(record, KILL_WAIT)
            if live['status'] != 'stopped':
                raise RuncibleError('container %s did not stop within %ss of SIGKILL (pid %s)'
                                    % (record['name'], KILL_WAIT, live['pid']))
        self._finish(record, live)
        return live

    def _signal(self, record: Record, runtime: OCIRuntime, signal_number: int) -> None:
        if runtime.kill(record['id'], signal_number, all_processes=signal_number == signal.SIGKILL):
            return
        # The runtime lost its state (run_root wiped?) but the process is still ours: signal it directly.
        if record.get('pid_start') is not None and process_alive(record.get('pid'), record['pid_start']):
            kill(record['pid'], signal_number)

    def _wait_stopped(self, record: Record, timeout: float) -> Live:
        """Wait until the container's processes are gone (``timeout``), then for conmon to write the exit code
        (a moment later) or die; -> the last live status."""
        paths = self.paths(record)
        last: list[Live] = []

        def status() -> Live:
            last[:] = [derive_status(record, paths)]
            return last[0]

        if not wait_until(lambda: status()['status'] == 'stopped', timeout):
            return last[0]
        wait_until(lambda: status()['exit_code'] is not None
                   or not process_alive(record.get('conmon_pid'), record.get('conmon_start')), EXIT_CODE_WAIT)
        return last[0]

    def _finish(self, record: Record, live: Live) -> None:
        """Record a stopped container and release what only a live one needs (runtime state, mount)."""
        runtime = self.runtime_for(record)
        paths = self.paths(record)
        try:
            runtime.delete(record['id'], force=True)
        except RuntimeCommandError:
            if runtime.knows(record['id']):
                raise
        if record['config'].get('rootfs_mode') == 'overlay':
            _rootfs().unmount(paths.rootfs_mount)
        _network().detach(record)
        if record.get('state') != 'stopped' or record.get('exit_code') != live.get('exit_code'):
            finished = live.get('finished_at')
            record.update(state='stopped', exit_code=live.get('exit_code'),
                          finished_at=utc_iso(finished) if isinstance(finished, (int, float)) else
                          (finished or utc_iso()))
            self.store.save(record)

    def remove(self, record: Record, stop_timeout: float | None = None) -> None:
        """Stop if needed, then remove every trace: runtime state, mount, directories, record."""
        paths = self.paths(record)
        if os.path.exists(paths.record):
            self.stop(record, stop_timeout=stop_timeout)
        else:
            runtime = self.runtime_for(record)
            if runtime.knows(record['id']):
                self._signal(record, runtime, signal.SIGKILL)
                self._wait_stopped(record, KILL_WAIT)
                with contextlib.suppress(RuntimeCommandError):
                    runtime.delete(record['id'], force=True)
            _rootfs().unmount(paths.rootfs_mount)
        _network().release(record)
        if record.get('health_timer'):
            from .units import stop_health_timer  # pylint: disable=import-outside-toplevel
            stop_health_timer(record['health_timer'])  # before the record: a killed removal repeats this
        self.placement(record).cleanup()
        label = record['config'].get('label')
        if isinstance(label, dict) and label.get('allocated'):
            from .selinux_labels import LevelAllocator  # pylint: disable=import-outside-toplevel
            LevelAllocator(self.store.root).release(record['id'])  # its MCS level is free for another container
        self.store.forget(record)  # the record last: a task killed before this repeats the removal
        if record['config'].get('restart_policy') in ('always', 'unless-stopped'):
            self._drop_boot_unit_when_unused()

    def _drop_boot_unit_when_unused(self) -> None:
        """The store's boot unit goes with the last container that needed it (restart_policy always/unless-stopped)."""
        from . import payload  # pylint: disable=import-outside-toplevel
        if not os.path.exists(os.path.join(payload.UNIT_DIR, payload.boot_unit_name(self.store.root))):
            return
        for name in self.store.names():
            with contextlib.suppress(RuncibleError):
                other = self.store.load(name)
                if other is not None and other['config'].get('restart_policy') in ('always', 'unless-stopped') \
                        and not other['config'].get('systemd_unit'):
                    return
        payload.remove_boot_unit(self.store.root, unused=True)

    def update_record(self, record: Record, config: dict[str, Any]) -> None:
        record['config'] = config
        self.store.save(record)

    def update_networks(self, record: Record, config: dict[str, Any]) -> None:
        """Attach and detach networks of a running container (``network.change_live``) and record ``config``."""
        record['network'] = _network().change_live(record, config, self.store.root, self.paths(record).bundle)
        record['config'] = config
        self.store.save(record)

    def update_resources(self, record: Record, config: dict[str, Any], live: Live, spec: Spec,
                         resources: dict[str, Any]) -> None:
        """Apply changed resource limits (``resources``: the runtime's update document) when it runs, and the
        bundle (``spec``, of the new ``config``) for its next start."""
        if live['status'] in ('running', 'paused', 'created'):
            self.runtime_for(record).update(record['id'], resources)
        record['config'] = config
        self._write_bundle(record, spec)
        self.store.save(record)

    def ensure_bundle(self, record: Record, spec: Spec | None) -> None:
        """Write the bundle when it is gone (after a reboot); the secrets of the task go to the tmpfs store."""
        if not os.path.exists(self.paths(record).config_json):
            self._write_bundle(record, spec)
        else:
            self._put_secrets(record)

    def restore(self, record: Record, spec: Spec | None, images: str, criu_args: list[str],
                runtime: OCIRuntime) -> None:
        """Bring a stopped container back from the CRIU ``images`` (``runtime restore`` through conmon)."""
        self._launch(record, spec, restore=(images, criu_args), runtime=runtime)


def _link(target: str, path: str) -> None:
    """Make ``path`` a symlink to ``target`` (replacing whatever is there, atomically)."""
    try:
        if os.readlink(path) == target:
            return
    except OSError:
        pass
    temp = '%s.%s' % (path, secrets.token_hex(6))
    os.symlink(target, temp)
    try:
        os.rename(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _start_time(pid: int) -> int | None:
    stat = read_proc_stat(pid)
    return stat[1] if stat else None


__all__ = ['Engine', 'ContainerPaths', 'DEFAULT_ROOT', 'DEFAULT_RUN_ROOT', 'utc_iso']
