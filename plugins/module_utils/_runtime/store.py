# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state store: one record per container under ``root``, volatile state under ``run_root``.

Layout::

    root/containers/NAME/record.json     the record (config as given and normalised, ids, last state)
    root/containers/NAME/bundle/         OCI bundle: config.json, rootfs/ (overlay mount point)
    root/containers/NAME/upper, work/    overlay upper and work dirs (the container's own writes)
    root/containers/NAME/ctr.log         conmon's k8s-file log
    root/locks/NAME.lock                 fcntl lock serialising every change of NAME
    run_root/exits/ID                    conmon's exit file (exit code)
    run_root/containers/ID/              conmon.pid, pidfile, runtime.log, persist/
    run_root/runtime/RUNTIME/            the OCI runtime's --root (one for every call)
    run_root/socket/                     conmon's attach socket dir

Every record write is atomic (temp file, fsync, rename, fsync of the directory) and happens under
the container's lock, so parallel Ansible forks or async tasks never lose or corrupt a record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import contextlib
import datetime
import errno
import json
import os
import shutil
import time

from .errors import RuncibleError
from .files import atomic_write, lock_file
from .host import current_boot_id, frozen, process_alive, wait_until

from .record import RECORD_VERSION, Record

if TYPE_CHECKING:
    from typing import Any, Iterator

    Live = dict[str, Any]  # derive_status()'s dict: status, pid, conmon_pid, exit_code, finished_at, reason

DEFAULT_ROOT = '/var/lib/runcible'
DEFAULT_RUN_ROOT = '/run/runcible'


class ContainerPaths(object):
    """Every path of one container, derived from the store roots, its name and its id."""

    def __init__(self, root: str, run_root: str, name: str, container_id: str | None = None) -> None:
        self.name = name
        self.id = container_id
        self.dir = os.path.join(root, 'containers', name)
        self.record = os.path.join(self.dir, 'record.json')
        self.bundle = os.path.join(self.dir, 'bundle')
        self.config_json = os.path.join(self.bundle, 'config.json')
        self.rootfs_mount = os.path.join(self.bundle, 'rootfs')
        self.upper = os.path.join(self.dir, 'upper')
        self.work = os.path.join(self.dir, 'work')
        self.log = os.path.join(self.dir, 'ctr.log')
        # Its spec as the option layer made it (no secret value: those are put in on the tmpfs only), kept on
        # disk for what runs without a task, after a reboot emptied the tmpfs (restart.boot()).
        self.saved_spec = os.path.join(self.dir, 'spec.json')
        self.lock = os.path.join(root, 'locks', name + '.lock')
        self.run_root = run_root
        if container_id:
            self.run_dir = os.path.join(run_root, 'containers', container_id)
            self.exit_dir = os.path.join(run_root, 'exits')
            self.exit_file = os.path.join(self.exit_dir, container_id)
            self.conmon_pidfile = os.path.join(self.run_dir, 'conmon.pid')
            self.pidfile = os.path.join(self.run_dir, 'pidfile')
            self.runtime_log = os.path.join(self.run_dir, 'runtime.log')
            self.persist_dir = os.path.join(self.run_dir, 'persist')
            self.socket_dir = os.path.join(run_root, 'socket')
            # The spec itself lives on the tmpfs (bundle/config.json links to it): it may hold secret
            # environment values, which never reach a disk; after a reboot it is written again.
            self.spec_file = os.path.join(self.run_dir, 'config.json')
            self.secrets_dir = os.path.join(self.run_dir, 'secrets')

    def runtime_state(self, runtime_name: str) -> str:
        """The runtime's state dir of this container (``runtime --root``/ID)."""
        if self.id is None:
            raise ValueError('the paths of container %s were made without its id' % self.name)
        return os.path.join(self.run_root, 'runtime', runtime_name, self.id)


def utc_iso(epoch: float | None = None) -> str:
    moment = datetime.datetime.fromtimestamp(time.time() if epoch is None else epoch, tz=datetime.timezone.utc)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _networks_of(entry: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The networks a record's attachment says (name, interface, addresses), in interface order; [] when none."""
    if not entry:
        return []
    if entry.get('networks'):
        return [dict((key, item.get(key)) for key in ('name', 'interface', 'ip_address', 'ipv6_address'))
                for item in entry['networks']]
    return [{'name': entry.get('name'), 'interface': 'eth0', 'ip_address': entry.get('ip_address'),
             'ipv6_address': None}]


def _health_of(record: Record) -> dict[str, Any] | None:
    """What ``container.health`` says: None without a health check (health.current() without its import)."""
    if not (record['config'].get('healthcheck') or {}).get('test'):
        return None
    return record.get('health') or {'status': 'starting', 'failing_streak': 0, 'log': []}


def parse_iso(value: object) -> float | None:
    """utc_iso()'s text (or an epoch) -> epoch seconds; None when it is neither."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.strptime(value, '%Y-%m-%dT%H:%M:%S.%fZ')
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


class Store(object):
    """Records and locks of all containers under one ``root`` / ``run_root`` pair."""

    def __init__(self, root: str, run_root: str) -> None:
        if not os.path.isabs(root) or not os.path.isabs(run_root):
            raise RuncibleError('root and run_root must be absolute paths (got %r and %r)' % (root, run_root))
        self.root = os.path.normpath(root)
        self.run_root = os.path.normpath(run_root)

    def paths(self, name: str, container_id: str | None = None) -> ContainerPaths:
        return ContainerPaths(self.root, self.run_root, name, container_id)

    def runtime_root(self, runtime_name: str) -> str:
        return os.path.join(self.run_root, 'runtime', runtime_name)

    # -- locking -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, timeout: float = 300.0) -> Iterator[None]:
        """Exclusive fcntl lock of one container name (creates the lock dir: not for check mode)."""
        path = os.path.join(self.root, 'locks', name + '.lock')
        while True:
            fd = lock_file(path, 'the lock of container %s' % name, timeout=timeout)
            # The holder before us may have removed the container and its lock file: then our lock is
            # on a deleted file that a newcomer would not see. Lock the file that is there now instead.
            try:
                current = os.stat(path)
            except OSError:
                current = None
            held = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
                break
            os.close(fd)
        try:
            yield
        finally:
            # No container of that name after the change (refused, failed, removed, never there): its lock file
            # goes, still held, so nothing is left of a name (a waiter sees the file gone and locks a new one).
            if not os.path.exists(self.paths(name).record):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            os.close(fd)

    # -- reading a container: all an unchanged task needs (the engine is for changes) ---------------
    def inspect(self, name: str) -> tuple[Record, Live] | tuple[None, None]:
        """-> (record, live) or (None, None); ``live`` is derive_status()'s dict (no subprocess, no lock)."""
        record = self.load(name)
        if record is None:
            return None, None
        return record, derive_status(record, self.paths(record['name'], record['id']))

    def repair(self, record: Record, live: Live) -> bool:
        """Make the record say what is true (call under the container's lock); -> True when it was wrong.

        A task killed between a runtime call and its record write leaves the record behind the truth
        (``created`` after ``runtime start``, ``running`` after ``pause``): the live status, read from
        the runtime's state dir and the cgroup, is written back. Not a change of the container.
        """
        status = live.get('status')
        if status not in ('created', 'running', 'paused') or record.get('state') == status:
            return False
        record['state'] = status
        if status != 'created' and not record.get('started_at'):
            record['started_at'] = utc_iso()
        self.save(record)
        return True

    def view(self, record: Record, live: Live) -> dict[str, Any]:
        """The ``container`` dict modules return."""
        paths = self.paths(record['name'], record['id'])
        finished = live.get('finished_at')
        return {
            'id': record['id'],
            'name': record['name'],
            'status': live['status'],
            'pid': live['pid'],
            'conmon_pid': live['conmon_pid'],
            'exit_code': live['exit_code'] if live['status'] == 'stopped' else None,
            'restart_count': record.get('restart_count') or 0,
            'health': _health_of(record),
            'created_at': record.get('created_at'),
            'started_at': record.get('started_at'),
            'finished_at': utc_iso(finished) if isinstance(finished, (int, float)) else finished,
            'bundle': paths.bundle,
            'rootfs': paths.rootfs_mount if record['config'].get('rootfs_mode') == 'overlay' else record['config'].get('rootfs'),
            'log_path': paths.log,
            'runtime': record.get('runtime', {}).get('name'),
            'ip_address': (record.get('network') or {}).get('ip_address'),
            'networks': _networks_of(record.get('network')),
            'config': record['config'],
        }

    # -- records -----------------------------------------------------------------------------
    def load(self, name: str) -> Record | None:
        """The Record of ``name``, or None when there is no such container."""
        try:
            with open(self.paths(name).record, 'r') as handle:
                return Record.from_dict(json.load(handle), 'the record of container %s' % name)
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise RuncibleError('cannot read the record of container %s: %s' % (name, exc))
        except ValueError as exc:
            raise RuncibleError('the record of container %s is corrupt (%s): remove %s to forget it'
                                % (name, exc, self.paths(name).dir))

    def save(self, record: Record) -> None:
        """Write a Record (atomically; call under the container's lock)."""
        record.version = RECORD_VERSION
        paths = self.paths(record.name)
        os.makedirs(paths.dir, mode=0o700, exist_ok=True)
        atomic_write(paths.record, json.dumps(record.to_dict(), indent=1, sort_keys=True))

    def names(self) -> list[str]:
        try:
            entries = os.listdir(os.path.join(self.root, 'containers'))
        except (IOError, OSError):
            return []
        return sorted(name for name in entries if os.path.exists(os.path.join(self.root, 'containers', name, 'record.json')))

    def configs(self) -> dict[str, dict[str, Any]]:
        """{id: config} of every container with a record."""
        found = {}
        for name in self.names():
            with contextlib.suppress(RuncibleError):
                record = self.load(name)
                if record is not None and record['id']:
                    found[record['id']] = record['config']
        return found

    def forget(self, record: Record) -> None:
        """Remove every file of a container (its record last, so a crash leaves it findable)."""
        paths = self.paths(record['name'], record['id'])
        # conmon's attach socket link (socket/ID -> the bundle) outlives it: it goes with the container.
        for path in (paths.exit_file, os.path.join(paths.socket_dir, record['id'])):
            with contextlib.suppress(OSError):
                os.unlink(path)
        shutil.rmtree(paths.run_dir, ignore_errors=True)
        for sub in (paths.bundle, paths.upper, paths.work):
            shutil.rmtree(sub, ignore_errors=True)
        for leftover in os.listdir(paths.dir) if os.path.isdir(paths.dir) else []:
            if leftover != 'record.json':
                target = os.path.join(paths.dir, leftover)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(target)
        with contextlib.suppress(OSError):
            os.unlink(paths.record)
        with contextlib.suppress(OSError):
            os.rmdir(paths.dir)
        with contextlib.suppress(OSError):
            os.unlink(paths.lock)


def read_exit_file(path: str) -> tuple[int | None, float] | None:
    """-> (exit code or None, mtime) when conmon wrote the exit file, else None."""
    try:
        with open(path, 'r') as handle:
            text = handle.read().strip()
        mtime = os.stat(path).st_mtime
    except (IOError, OSError):
        return None
    try:
        return int(text), mtime
    except ValueError:
        return None, mtime


EXIT_FILE_GRACE = 1.0


def _wait_for_exit_file(exit_file: str, conmon_pid: int | None, conmon_start: int | None,
                        grace: float = EXIT_FILE_GRACE) -> tuple[int | None, float] | None:
    wait_until(lambda: read_exit_file(exit_file) is not None or not process_alive(conmon_pid, conmon_start), grace,
               first_delay=0.005, max_delay=0.005)
    return read_exit_file(exit_file)


def live_state(record: Record, paths: ContainerPaths) -> str:
    """What the runtime would say of a container whose process lives: created, paused or running.

    The truth, not the record's last word (a task killed between ``runtime start`` and its record
    write leaves ``created`` in the record): both runc and crun keep ``exec.fifo`` in the
    container's state dir until it is started, and ``pause`` freezes its cgroup.
    """
    runtime_name = (record.get('runtime') or {}).get('name') or 'runc'
    if os.path.exists(os.path.join(paths.runtime_state(runtime_name), 'exec.fifo')):
        return 'created'
    if frozen(record['pid']):
        return 'paused'
    return 'running'


def derive_status(record: Record, paths: ContainerPaths, boot_id: str | None = None) -> Live:
    """Live status of a container from its record, conmon's exit file and a check of the processes.

    Returns a dict: status (created|running|paused|stopped), pid, conmon_pid, exit_code,
    finished_at (epoch or None), reason (why it is stopped when the record said otherwise).
    The runtime is never asked: the exit file and /proc say it all, and cost no subprocess.
    """
    state = record.get('state', 'stopped')
    result = {'status': 'stopped', 'pid': 0, 'conmon_pid': 0, 'exit_code': record.get('exit_code'),
              'finished_at': record.get('finished_at'), 'reason': None}
    if state == 'stopped':
        return result
    if record.get('boot_id') != (boot_id if boot_id is not None else current_boot_id()):
        result['reason'] = 'the host rebooted since it was started'
        return result
    exit_info = read_exit_file(paths.exit_file)
    if exit_info is not None:
        result['exit_code'], result['finished_at'] = exit_info
        result['reason'] = 'exited'
        return result
    conmon_alive = process_alive(record.get('conmon_pid'), record.get('conmon_start'))
    pid_alive = process_alive(record.get('pid'), record.get('pid_start'))
    if conmon_alive or pid_alive:
        result.update(status=live_state(record, paths) if pid_alive else state,
                      pid=record.get('pid') if pid_alive else 0,
                      conmon_pid=record.get('conmon_pid') if conmon_alive else 0)
        if not pid_alive:
            # conmon lives but the process is gone: conmon is about to write the exit file. Give it a moment,
            # so that a stopped container comes with its exit code.
            exit_info = _wait_for_exit_file(paths.exit_file, record.get('conmon_pid'), record.get('conmon_start'))
            if exit_info is not None:
                result['exit_code'], result['finished_at'] = exit_info
            result.update(status='stopped', conmon_pid=0 if exit_info else result['conmon_pid'], reason='exited')
        elif not conmon_alive:
            result['reason'] = 'conmon is gone: the container runs unsupervised'
        return result
    result['exit_code'] = None
    result['reason'] = 'killed behind our back (conmon and the container are gone, no exit code)'
    return result
