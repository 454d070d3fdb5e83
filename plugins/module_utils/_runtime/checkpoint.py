# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CRIU on the host, and checkpoint, restore, export and import of a container.

A checkpoint lives in ``root/containers/NAME/checkpoints/ID/``: ``images/`` (CRIU's images, as
``runc checkpoint --image-path`` writes them), ``work/`` (CRIU's dump and restore logs) and
``checkpoint.json`` (metadata). Only the latest checkpoint of a container is kept.

Exported archives, their format and what an imported one may and may not do are
checkpoint_archive.py's. An import is read once: unpacked into a staging directory of the store
while every member is checked (and the integrity digest computed), and only then, with the
configuration the task layer rebuilt from its manifest, turned into a container.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from typing import TYPE_CHECKING

from . import checkpoint_archive as archives
from .engine import utc_iso
from .errors import RuncibleError, ValidationError
from .files import atomic_write, tree_size
from .host import capability_set, cgroup_mode, current_boot_id, find_program
from .secrets import env_names as secret_env_names

if TYPE_CHECKING:
    from typing import Any, Iterable, Sequence

    from .engine import Engine
    from .oci_cli import OCIRuntime
    from .record import Record
    from .store import ContainerPaths
    from .untar import Limits

COMPRESSIONS = archives.COMPRESSIONS
CRIU_CHECK_TIMEOUT = 120

_versions: dict[tuple[str, ...], str] = {}


def program_version(path: str, args: Sequence[str] = ('--version',)) -> str:
    """First line of ``path --version`` (cached per process)."""
    key = (path,) + tuple(args)
    if key not in _versions:
        try:
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            out = subprocess.run([path] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=30, check=False).stdout.decode('utf-8', 'replace')
        except (OSError, subprocess.SubprocessError):
            out = ''
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        _versions[key] = lines[0] if lines else 'unknown'
    return _versions[key]


def criu_version(path: str) -> str:
    text = program_version(path)
    return text.split(':', 1)[1].strip() if text.lower().startswith('version:') else text


DEFAULT_CRIU_PATHS = ('/usr/local/sbin/criu', '/usr/sbin/criu')


def find_criu(cache_dir: str | None = None, search: Iterable[str | None] | None = None) -> str:
    """Path of a CRIU that passes ``criu check`` on this host; raises with the check's output otherwise.

    ``search``: paths to try (default: ``criu`` on PATH, then /usr/local/sbin and /usr/sbin).
    A passing check is cached per binary (path, size, mtime) and boot in ``cache_dir`` when given.
    """
    candidates: list[str] = []
    for path in search if search is not None else (find_program('criu'),) + DEFAULT_CRIU_PATHS:
        if path and os.path.exists(path) and os.path.realpath(path) not in [os.path.realpath(c) for c in candidates]:
            candidates.append(path)
    if not candidates:
        raise RuncibleError('criu not found: checkpoint and restore need CRIU; install the Debian package "criu" '
                            '(Debian 13 ships 4.x), or on Debian 12, where criu 3.17 fails "criu check" on newer '
                            'kernels, build CRIU 4.x from the newer Debian source package (make setup does); '
                            'CRIU also needs "iptables"')
    failures: list[str] = []
    for path in candidates:
        key = _criu_key(path)
        cache_file = os.path.join(cache_dir, 'criu-check.json') if cache_dir else None
        if cache_file and _read_json(cache_file).get(path) == key:
            return path
        try:
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            proc = subprocess.run([path, 'check'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=CRIU_CHECK_TIMEOUT, check=False)
            output = proc.stdout.decode('utf-8', 'replace').strip()
            passed = proc.returncode == 0
        except (OSError, subprocess.SubprocessError) as exc:
            output, passed = str(exc), False
        if passed:
            if cache_file:
                cached = _read_json(cache_file)
                cached[path] = key
                try:
                    os.makedirs(os.path.dirname(cache_file), mode=0o700, exist_ok=True)
                    _write_json(cache_file, cached)
                except OSError:
                    pass
            return path
        failures.append('%s (%s): %s' % (path, criu_version(path), output[-1500:]))
    raise RuncibleError('no CRIU on this host passes "criu check", so checkpoint and restore cannot work: %s. '
                        'Install a CRIU that supports this kernel: Debian 13\'s "criu" package, or CRIU 4.x built '
                        'from the newer Debian source package (make setup does this on Debian 12)'
                        % '; '.join(failures), criu_check=failures)


def _criu_key(path: str) -> str:
    info = os.stat(path)
    return '%d:%d:%s' % (info.st_size, info.st_mtime_ns, current_boot_id())


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path) as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path: str, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True), mode=0o600)


def tail_file(path: str, lines: int = 15) -> str:
    try:
        with open(path, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])


CAP_SYS_RESOURCE = 24


def lsm_restore_args(config: dict[str, Any]) -> list[str]:
    """The restored processes get this container's AppArmor profile or SELinux labels, not what the CRIU
    images say (an archive's author, or another host, chose those)."""
    if config.get('privileged'):
        return []
    label = config.get('label')
    if isinstance(label, dict) and label.get('process'):
        return ['--lsm-profile', 'selinux:' + label['process'], '--lsm-mount-context', label['mount']]
    profile = config.get('apparmor_profile')
    if profile and profile != 'unconfined':
        return ['--lsm-profile', 'apparmor:' + profile]
    return []


def effective_capabilities(status_path: str = '/proc/self/status') -> int | None:
    return capability_set('CapEff', status_path)


def check_dump_capabilities(record: Record, status_path: str = '/proc/self/status') -> None:
    """CRIU reads a process's rlimits with prlimit(): for a process of another uid that takes CAP_SYS_RESOURCE.

    Fail before touching anything, and say why, when this host's root lacks it (some sandboxes drop it).
    """
    user = str(record['config'].get('user') or '0:0')
    caps = effective_capabilities(status_path)
    if caps is not None and not caps & (1 << CAP_SYS_RESOURCE) and not user.startswith('0:'):
        raise ValidationError('cannot checkpoint container %s: its process runs as uid %s, and CRIU needs '
                              'CAP_SYS_RESOURCE to read the rlimits of a process of another user, which this '
                              'host\'s root lacks (capability bounding set); run the container as root (user: 0:0) '
                              'to checkpoint it here' % (record['name'], user.split(':', maxsplit=1)[0]))


CRIU_CONFIG_ANNOTATION = 'org.criu.config'


def pin_criu_cgroup_root(paths: ContainerPaths, cgroup_path: str) -> None:
    """Make CRIU restore the container into ``cgroup_path``, its cgroup now, not the one it was dumped from.

    On cgroup v2 runc (1.1) gives CRIU no cgroup root, so CRIU recreates the cgroup path recorded at
    dump time and puts the process there: for an import under a new id (another host, or a new name)
    that is a directory named after the old id, which systemd does not know (the container's new scope
    empties and goes), or even the cgroup of the still-running original. A CRIU configuration file
    with ``cgroup-root`` maps it; runc hands CRIU the file named by the bundle's ``org.criu.config``
    annotation, and CRIU's configuration file takes precedence over runc's RPC options.
    """
    conf = os.path.join(paths.bundle, 'criu-runc.conf')
    atomic_write(conf, 'cgroup-root %s\n' % cgroup_path, mode=0o600)
    spec_file = os.path.realpath(paths.config_json)  # on the tmpfs: it may hold secret environment values
    with open(spec_file) as handle:
        spec = json.load(handle)
    if spec.setdefault('annotations', {}).get(CRIU_CONFIG_ANNOTATION) != conf:
        spec['annotations'][CRIU_CONFIG_ANNOTATION] = conf
        atomic_write(spec_file, json.dumps(spec, indent=1), mode=0o600)


class Checkpoints(object):
    """Checkpoint, restore, export and import of the containers of one engine."""

    def __init__(self, engine: Engine, use_cache: bool = True) -> None:
        self.engine = engine
        self.use_cache = use_cache
        self._criu: str | None = None

    def criu(self) -> str:
        if self._criu is None:
            self._criu = find_criu(self.engine.store.run_root if self.use_cache else None)
        return self._criu

    def runtime(self, record: Record) -> OCIRuntime:
        runtime = self.engine.runtime_for(record)
        runtime.criu_path = self.criu()
        return runtime

    def directory(self, record: Record, checkpoint_id: str) -> str:
        return os.path.join(self.engine.paths(record).dir, 'checkpoints', checkpoint_id)

    def _drop_others(self, record: Record, keep_id: str) -> None:
        parent = os.path.join(self.engine.paths(record).dir, 'checkpoints')
        for entry in os.listdir(parent) if os.path.isdir(parent) else []:
            if entry != keep_id:
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)

    # -- dump -----------------------------------------------------------------------------------
    def dump(self, record: Record, live: dict[str, Any], leave_running: bool = False, tcp_established: bool = False,
             file_locks: bool = False, keep_logs: bool = False) -> dict[str, Any]:
        """``runtime checkpoint`` of a running container; -> checkpoint metadata (also in the record)."""
        check_dump_capabilities(record)
        runtime = self.runtime(record)
        checkpoint_id = secrets.token_hex(16)
        base = self.directory(record, checkpoint_id)
        images, work = os.path.join(base, 'images'), os.path.join(base, 'work')
        os.makedirs(images, mode=0o700)
        os.makedirs(work, mode=0o700)
        args = ['checkpoint', '--image-path', images, '--work-path', work]
        args += ['--leave-running'] if leave_running else []
        args += ['--tcp-established'] if tcp_established else []
        args += ['--file-locks'] if file_locks else []
        if not leave_running:
            self.engine.hold_stopped(record)  # the dump ends the process: its exit command must not restart it
        started = time.monotonic()
        try:
            runtime.run(args + [record['id']], timeout=600)
        except RuncibleError as exc:
            shutil.rmtree(images, ignore_errors=True)
            if not leave_running and record.get('stopping'):
                record['stopping'] = None  # it still runs: its restart policy holds again
                self.engine.store.save(record)
            log = os.path.join(work, 'dump.log')
            raise RuncibleError('checkpoint of container %s failed: %s. CRIU log: %s (last lines: %s)'
                                % (record['name'], exc.msg, log, tail_file(log, 8)), criu_log=log)
        dump_seconds = round(time.monotonic() - started, 3)
        meta = {
            'id': checkpoint_id, 'path': base, 'images': images, 'created': utc_iso(),
            'size': tree_size(images), 'runtime': runtime.name, 'runtime_version': runtime.version(),
            'criu': self.criu(), 'criu_version': criu_version(self.criu()), 'dump_seconds': dump_seconds,
            'leave_running': bool(leave_running), 'pid_start': record.get('pid_start'),
            'tcp_established': bool(tcp_established), 'file_locks': bool(file_locks),
            'restore_seconds': None, 'restored_at': None, 'exports': {},
        }
        if not keep_logs:
            shutil.rmtree(work, ignore_errors=True)
        _write_json(os.path.join(base, 'checkpoint.json'), meta)
        self._drop_others(record, checkpoint_id)
        record['checkpoint'] = meta
        if leave_running:
            self.engine.store.save(record)
        else:
            # CRIU ended the process: let conmon write its exit file, then release runtime state and mount.
            self.engine.stop(record, stop_timeout=10)
        return meta

    # -- restore --------------------------------------------------------------------------------
    def restore(self, record: Record, spec: dict[str, Any] | None, tcp_established: bool | None = None,
                file_locks: bool | None = None, keep_logs: bool = False) -> dict[str, Any]:
        """Bring a stopped container back from its latest checkpoint, supervised by conmon.

        ``spec``: the container's spec (the option layer's), for a bundle a reboot took away.
        """
        meta = record.get('checkpoint')
        if not meta or not os.path.isdir(meta.get('images', '')):
            raise ValidationError('container %s has no checkpoint to restore from' % record['name'])
        runtime = self.runtime(record)
        work = os.path.join(meta['path'], 'restore-work')
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work, mode=0o700)
        args = ['--work-path', work]
        if meta.get('tcp_established') if tcp_established is None else tcp_established:
            args.append('--tcp-established')
        if meta.get('file_locks') if file_locks is None else file_locks:
            args.append('--file-locks')
        args += lsm_restore_args(record['config'])
        self.engine.ensure_bundle(record, spec)
        if runtime.name == 'runc' and cgroup_mode() == 'unified':
            pin_criu_cgroup_root(self.engine.paths(record), self.engine.placement(record).cgroup_path)
        started = time.monotonic()
        try:
            self.engine.restore(record, spec, meta['images'], args, runtime)
        except RuncibleError as exc:
            log = os.path.join(work, 'restore.log')
            with contextlib.suppress(Exception):
                self.engine.stop(record, stop_timeout=0)
            raise RuncibleError('restore of container %s failed: %s. CRIU log: %s (last lines: %s)'
                                % (record['name'], exc.msg, log, tail_file(log, 8)), criu_log=log)
        meta['restore_seconds'] = round(time.monotonic() - started, 3)
        meta['restored_at'] = utc_iso()
        if not keep_logs:
            shutil.rmtree(work, ignore_errors=True)
        record['checkpoint'] = meta
        self.engine.store.save(record)
        return meta

    # -- export / import ------------------------------------------------------------------------
    def manifest(self, record: Record) -> dict[str, Any]:
        meta = record['checkpoint']
        return {
            'format': archives.ARCHIVE_FORMAT, 'version': archives.ARCHIVE_VERSION, 'checkpoint_id': meta['id'],
            'name': record['name'], 'id': record['id'], 'config': record['config'], 'created': meta['created'],
            'runtime': meta['runtime'], 'runtime_version': meta['runtime_version'],
            'criu_version': meta['criu_version'], 'dump_seconds': meta['dump_seconds'],
            'tcp_established': meta['tcp_established'], 'file_locks': meta['file_locks'],
        }

    def export_is_current(self, record: Record, path: str, key: str | None = None) -> bool:
        meta = record.get('checkpoint') or {}
        known = (meta.get('exports') or {}).get(os.path.abspath(path))
        if not known or not os.path.isfile(path) or os.path.islink(path):
            return False
        info = os.stat(path)
        return (known.get('size') == info.st_size and known.get('mtime_ns') == info.st_mtime_ns
                and known.get('key_id') == archives.key_id(key))

    def export(self, record: Record, path: str, compress: str = 'zstd', key: str | None = None) -> int:
        path = os.path.abspath(path)
        meta = record['checkpoint']
        paths = self.engine.paths(record)
        upper = paths.upper if record['config'].get('rootfs_mode') == 'overlay' else None
        with open(paths.config_json) as handle:
            spec = json.load(handle)
        hidden = secret_env_names(record['config'].get('secrets'))
        if hidden:
            # Secret values never travel in an archive (the memory images are another matter: see the docs).
            spec['process']['env'] = [item for item in spec['process'].get('env') or []
                                      if item.split('=', 1)[0] not in hidden]
        size = archives.write_archive(path, compress, self.manifest(record), json.dumps(spec, indent=1).encode(),
                                      meta['images'], upper, paths.log, key=key)
        info = os.stat(path)
        meta.setdefault('exports', {})[path] = {'size': info.st_size, 'mtime_ns': info.st_mtime_ns,
                                                'compress': compress, 'key_id': archives.key_id(key)}
        self.engine.store.save(record)
        return size

    def staging_dir(self) -> str:
        """A new private directory of the store to unpack an archive into (the caller removes it)."""
        parent = os.path.join(self.engine.store.root, 'imports')
        os.makedirs(parent, mode=0o700, exist_ok=True)
        path = os.path.join(parent, secrets.token_hex(8))
        os.mkdir(path, 0o700)
        return path

    def inspect_archive(self, path: str, key: str | None = None) -> tuple[dict[str, Any], str]:
        """Check a whole archive without writing anything; -> (manifest, integrity)."""
        return archives.read_archive(path, None, key=key, limits=self._limits())

    def unpack_archive(self, path: str, staging: str, key: str | None = None) -> tuple[dict[str, Any], str]:
        """Unpack and check a whole archive into ``staging``; -> (manifest, integrity)."""
        return archives.read_archive(path, staging, key=key, limits=self._limits())

    def _limits(self) -> Limits:
        from .untar import Limits  # pylint: disable=import-outside-toplevel
        root = self.engine.store.root
        while not os.path.isdir(root):
            root = os.path.dirname(root)
        return Limits(max_bytes=archives.free_bytes(root))

    def import_(self, name: str, staging: str, manifest: dict[str, Any], config: dict[str, Any], spec: dict[str, Any],
                container_id: str, archive_path: str, keep_logs: bool = False) -> Record:
        """Create container ``name`` from an unpacked, checked archive in ``staging`` and restore it; -> record.

        ``config`` is the complete container config the task layer rebuilt from the manifest, ``spec`` its
        OCI spec for ``container_id``. ``staging`` is consumed (moved into the container or removed).
        """
        self.criu()
        engine = self.engine
        record = engine.create(name, config, spec, container_id, start=False, launch=False)
        try:
            paths = engine.paths(record)
            checkpoint_id = manifest['checkpoint_id']
            base = self.directory(record, checkpoint_id)
            os.makedirs(base, mode=0o700)
            os.rename(os.path.join(staging, 'images'), os.path.join(base, 'images'))
            if os.path.isdir(os.path.join(staging, 'upper')) and not os.path.islink(os.path.join(staging, 'upper')):
                shutil.rmtree(paths.upper, ignore_errors=True)
                os.rename(os.path.join(staging, 'upper'), paths.upper)
            if os.path.isfile(os.path.join(staging, 'ctr.log')):
                os.rename(os.path.join(staging, 'ctr.log'), paths.log)
            meta = {
                'id': checkpoint_id, 'path': base, 'images': os.path.join(base, 'images'),
                'created': manifest.get('created'), 'size': tree_size(os.path.join(base, 'images')),
                'runtime': manifest.get('runtime'), 'runtime_version': manifest.get('runtime_version'),
                'criu': self.criu(), 'criu_version': manifest.get('criu_version'),
                'dump_seconds': manifest.get('dump_seconds'), 'leave_running': False, 'pid_start': None,
                'tcp_established': bool(manifest.get('tcp_established')),
                'file_locks': bool(manifest.get('file_locks')), 'restore_seconds': None, 'restored_at': None,
                'exports': {}, 'imported_from': os.path.abspath(archive_path),
            }
            _write_json(os.path.join(base, 'checkpoint.json'), meta)
            record['checkpoint'] = meta
            engine.store.save(record)
            self.restore(record, spec, keep_logs=keep_logs)
        except BaseException:
            with contextlib.suppress(Exception):
                engine.remove(record, stop_timeout=0)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return record
