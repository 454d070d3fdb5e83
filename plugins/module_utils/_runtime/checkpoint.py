# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CRIU on the host, checkpoint metadata and portable checkpoint archives.

A checkpoint lives in ``root/containers/NAME/checkpoints/ID/``: ``images/`` (CRIU's images, as
``runc checkpoint --image-path`` writes them), ``work/`` (CRIU's dump and restore logs) and
``checkpoint.json`` (metadata). Only the latest checkpoint of a container is kept.

An exported archive is a PAX tar (plain, gzip or zstd) holding ``manifest.json`` first, then
``config.json`` (the OCI spec), ``images/`` (CRIU), ``upper/`` (the overlay upper dir, i.e. the
container's own changes of its root filesystem, with overlay whiteouts and opaque dirs) and
``ctr.log``. Importing validates every member before anything is written: no absolute names, no
``..``, no member below a symlink of the archive, hard links only to earlier members, device
nodes only as overlay whiteouts (char 0:0).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import tarfile
import time
import zlib

from .engine import utc_iso
from .errors import RuncibleError, ValidationError
from .image_options import lower_dirs as image_lower_dirs
from .oci_cli import cgroup_mode, find_program
from .rootfs import validate_rootfs
from .store import atomic_write

ARCHIVE_FORMAT = 'runcible.oci/checkpoint'
ARCHIVE_VERSION = 1
COMPRESSIONS = ('zstd', 'gzip', 'none')
OVERLAY_XATTR_PREFIXES = ('trusted.overlay.', 'user.overlay.')
CRIU_CHECK_TIMEOUT = 120

_versions = {}


def program_version(path, args=('--version',)):
    """First line of ``path --version`` (cached per process)."""
    key = (path,) + tuple(args)
    if key not in _versions:
        try:
            out = subprocess.run([path] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=30, check=False).stdout.decode('utf-8', 'replace')
        except (OSError, subprocess.SubprocessError):
            out = ''
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        _versions[key] = lines[0] if lines else 'unknown'
    return _versions[key]


def criu_version(path):
    text = program_version(path)
    return text.split(':', 1)[1].strip() if text.lower().startswith('version:') else text


DEFAULT_CRIU_PATHS = ('/usr/local/sbin/criu', '/usr/sbin/criu')


def find_criu(cache_dir=None, search=None):
    """Path of a CRIU that passes ``criu check`` on this host; raises with the check's output otherwise.

    ``search``: paths to try (default: ``criu`` on PATH, then /usr/local/sbin and /usr/sbin).
    A passing check is cached per binary (path, size, mtime) and boot in ``cache_dir`` when given.
    """
    candidates = []
    for path in search if search is not None else (find_program('criu'),) + DEFAULT_CRIU_PATHS:
        if path and os.path.exists(path) and os.path.realpath(path) not in [os.path.realpath(c) for c in candidates]:
            candidates.append(path)
    if not candidates:
        raise RuncibleError('criu not found: checkpoint and restore need CRIU; install the Debian package "criu" '
                            '(Debian 13 ships 4.x), or on Debian 12, where criu 3.17 fails "criu check" on newer '
                            'kernels, build CRIU 4.x from the newer Debian source package (make setup does); '
                            'CRIU also needs "iptables"')
    failures = []
    for path in candidates:
        key = _criu_key(path)
        cache_file = os.path.join(cache_dir, 'criu-check.json') if cache_dir else None
        if cache_file and _read_json(cache_file).get(path) == key:
            return path
        try:
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
                    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
                    _write_json(cache_file, cached)
                except OSError:
                    pass
            return path
        failures.append('%s (%s): %s' % (path, criu_version(path), output[-1500:]))
    raise RuncibleError('no CRIU on this host passes "criu check", so checkpoint and restore cannot work: %s. '
                        'Install a CRIU that supports this kernel: Debian 13\'s "criu" package, or CRIU 4.x built '
                        'from the newer Debian source package (make setup does this on Debian 12)'
                        % '; '.join(failures), criu_check=failures)


def _criu_key(path):
    info = os.stat(path)
    try:
        with open('/proc/sys/kernel/random/boot_id') as handle:
            boot = handle.read().strip()
    except OSError:
        boot = ''
    return '%d:%d:%s' % (info.st_size, info.st_mtime_ns, boot)


def _read_json(path):
    try:
        with open(path) as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_json(path, data):
    tmp = path + '.tmp-%d' % os.getpid()
    with open(tmp, 'w') as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)


def tree_size(path):
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


def tail_file(path, lines=15):
    try:
        with open(path, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])


# -- archives ---------------------------------------------------------------------------------------

def _compressor(compress):
    if compress == 'zstd':
        path = find_program('zstd')
        if not path:
            raise ValidationError('compress=zstd needs the zstd program: install the Debian package "zstd", or use '
                                  'compress: gzip')
        return path
    return None


def _open_writer(path, compress):
    """-> (tarfile, closer). zstd goes through the zstd program; gzip and none through tarfile."""
    if compress == 'gzip':
        archive = tarfile.open(path, 'w:gz', format=tarfile.PAX_FORMAT, compresslevel=6)
        return archive, archive.close
    if compress == 'none':
        archive = tarfile.open(path, 'w', format=tarfile.PAX_FORMAT)
        return archive, archive.close
    zstd = _compressor('zstd')
    out = open(path, 'wb')
    proc = subprocess.Popen([zstd, '-q', '-T0', '-3', '-c'], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE)
    archive = tarfile.open(fileobj=proc.stdin, mode='w|', format=tarfile.PAX_FORMAT)

    def close():
        archive.close()
        proc.stdin.close()
        err = proc.stderr.read().decode('utf-8', 'replace')
        rc = proc.wait()
        out.close()
        if rc != 0:
            raise RuncibleError('zstd failed to compress %s: %s' % (path, err.strip()))
    return archive, close


def detect_compression(path):
    with open(path, 'rb') as handle:
        magic = handle.read(4)
    if magic[:2] == b'\x1f\x8b':
        return 'gzip'
    if magic == b'\x28\xb5\x2f\xfd':
        return 'zstd'
    return 'none'


def _open_reader(path):
    """-> (tarfile opened for streaming, closer)."""
    compression = detect_compression(path)
    if compression == 'gzip':
        archive = tarfile.open(path, 'r|gz')
        return archive, archive.close
    if compression == 'none':
        archive = tarfile.open(path, 'r|')
        return archive, archive.close
    zstd = _compressor('zstd')
    proc = subprocess.Popen([zstd, '-q', '-d', '-c', path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    archive = tarfile.open(fileobj=proc.stdout, mode='r|')

    def close():
        archive.close()
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()
    return archive, close


def _add_tree(archive, source, arcname):
    """Add a directory tree, keeping owners, modes, whiteouts and overlay xattrs (as PAX records)."""
    for directory, dirs, files in os.walk(source):
        dirs.sort()
        for name in [''] + sorted(files) + sorted(d for d in dirs if os.path.islink(os.path.join(directory, d))):
            full = os.path.join(directory, name) if name else directory
            relative = os.path.relpath(full, source)
            member_name = arcname if relative == '.' else arcname + '/' + relative
            info = archive.gettarinfo(full, member_name)
            if info is None:
                continue
            info.uname = info.gname = ''
            xattrs = {}
            try:
                for key in os.listxattr(full, follow_symlinks=False):
                    if key.startswith(OVERLAY_XATTR_PREFIXES):
                        value = os.getxattr(full, key, follow_symlinks=False)
                        xattrs['SCHILY.xattr.' + key] = value.decode('utf-8', 'surrogateescape')
            except OSError:
                pass
            if xattrs:
                info.pax_headers = dict(info.pax_headers, **xattrs)
            if info.isreg():
                with open(full, 'rb') as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)


def write_archive(path, compress, manifest, config_json, images_dir, upper_dir, log_path):
    """Write the checkpoint archive atomically (temp file, rename); -> its size."""
    if compress not in COMPRESSIONS:
        raise ValidationError('compress: %r is not one of %s' % (compress, ', '.join(COMPRESSIONS)))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValidationError('export: directory %s does not exist' % directory)
    tmp = os.path.join(directory, '.%s.tmp-%d' % (os.path.basename(path), os.getpid()))
    archive, close = _open_writer(tmp, compress)
    try:
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo('manifest.json')
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
        archive.addfile(info, _BytesReader(data))
        archive.add(config_json, 'config.json', recursive=False)
        _add_tree(archive, images_dir, 'images')
        if upper_dir and os.path.isdir(upper_dir):
            _add_tree(archive, upper_dir, 'upper')
        if log_path and os.path.isfile(log_path):
            archive.add(log_path, 'ctr.log', recursive=False)
        close()
        os.rename(tmp, path)
    except BaseException:
        try:
            close()
        except Exception:
            pass
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return os.path.getsize(path)


class _BytesReader(object):
    def __init__(self, data):
        self.data = data
        self.offset = 0

    def read(self, size=-1):
        end = len(self.data) if size is None or size < 0 else self.offset + size
        chunk = self.data[self.offset:end]
        self.offset += len(chunk)
        return chunk


def _check_member(member, seen, symlinks):
    name = member.name
    parts = name.split('/')
    if name.startswith('/') or '..' in parts or not name or '\0' in name:
        raise ValidationError('archive member %r has an absolute or ".." path: refusing the archive' % name)
    top = parts[0]
    if top not in ('manifest.json', 'config.json', 'images', 'upper', 'ctr.log'):
        raise ValidationError('archive member %r is not part of a runcible.oci checkpoint archive' % name)
    for index in range(1, len(parts)):
        if '/'.join(parts[:index]) in symlinks:
            raise ValidationError('archive member %r lies below the symlink %s: refusing the archive'
                                  % (name, '/'.join(parts[:index])))
    if member.issym():
        if top != 'upper':
            raise ValidationError('archive member %r is a symlink outside upper/: refusing the archive' % name)
        symlinks.add(name)
    elif member.islnk():
        if member.linkname not in seen or member.linkname.split('/')[0] != top:
            raise ValidationError('archive member %r is a hard link to %r, which is not an earlier member of its '
                                  'part: refusing the archive' % (name, member.linkname))
    elif member.ischr() or member.isblk():
        if top != 'upper' or not member.ischr() or member.devmajor != 0 or member.devminor != 0:
            raise ValidationError('archive member %r is a device node: only overlay whiteouts (char 0:0) are '
                                  'allowed' % name)
    elif not (member.isreg() or member.isdir() or member.isfifo()):
        raise ValidationError('archive member %r has an unsupported type' % name)
    seen.add(name)


def read_manifest(path):
    """Validate the whole archive (every member) and return its manifest; writes nothing."""
    if not os.path.isfile(path):
        raise ValidationError('import: %s does not exist or is not a file' % path)
    manifest = None
    seen, symlinks = set(), set()
    parts = set()
    close = None
    try:
        archive, close = _open_reader(path)
        for index, member in enumerate(archive):
            _check_member(member, seen, symlinks)
            parts.add(member.name.split('/')[0])
            if index == 0:
                if member.name != 'manifest.json' or not member.isreg() or member.size > 1 << 20:
                    raise ValidationError('%s is not a runcible.oci checkpoint archive (no manifest.json first)' % path)
                manifest = json.loads(archive.extractfile(member).read().decode('utf-8'))
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise ValidationError('%s is not a readable checkpoint archive (corrupt or truncated?): %s' % (path, exc))
    finally:
        if close is not None:
            with contextlib.suppress(Exception):
                close()
    if not isinstance(manifest, dict) or manifest.get('format') != ARCHIVE_FORMAT:
        raise ValidationError('%s is not a runcible.oci checkpoint archive (foreign manifest)' % path)
    if manifest.get('version') != ARCHIVE_VERSION:
        raise ValidationError('%s has archive version %r; this collection reads version %d'
                              % (path, manifest.get('version'), ARCHIVE_VERSION))
    missing = set(['config.json', 'images']) - parts
    if missing:
        raise ValidationError('%s lacks %s: it is truncated or not a checkpoint archive' % (path, ', '.join(sorted(missing))))
    for key in ('checkpoint_id', 'config', 'name'):
        if key not in manifest:
            raise ValidationError('%s has a manifest without %s' % (path, key))
    return manifest


def extract_archive(path, destination):
    """Extract a validated archive into ``destination`` (which must be new and empty)."""
    archive, close = _open_reader(path)
    seen, symlinks = set(), set()
    try:
        for member in archive:
            _check_member(member, seen, symlinks)
            target = os.path.join(destination, member.name)
            parent = os.path.dirname(target)
            if not os.path.isdir(parent):
                os.makedirs(parent)
            if member.islnk():
                os.link(os.path.join(destination, member.linkname), target)
                continue
            if member.isdir():
                os.makedirs(target, exist_ok=True)
            elif member.isreg():
                with archive.extractfile(member) as source, open(target, 'wb') as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
            elif member.issym():
                os.symlink(member.linkname, target)
            elif member.ischr():
                os.mknod(target, stat.S_IFCHR | (member.mode & 0o7777), os.makedev(0, 0))
            elif member.isfifo():
                os.mkfifo(target, member.mode & 0o7777)
            os.lchown(target, member.uid, member.gid)
            if not member.issym():
                os.chmod(target, member.mode & 0o7777)
                os.utime(target, (member.mtime, member.mtime))
            for key, value in member.pax_headers.items():
                if key.startswith('SCHILY.xattr.') and key[len('SCHILY.xattr.'):].startswith(OVERLAY_XATTR_PREFIXES):
                    os.setxattr(target, key[len('SCHILY.xattr.'):], value.encode('utf-8', 'surrogateescape'),
                                follow_symlinks=False)
    finally:
        close()
    return destination


CAP_SYS_RESOURCE = 24


def effective_capabilities(status_path='/proc/self/status'):
    try:
        with open(status_path) as handle:
            for line in handle:
                if line.startswith('CapEff:'):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


def check_dump_capabilities(record, status_path='/proc/self/status'):
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


def pin_criu_cgroup_root(paths, cgroup_path):
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
    with open(paths.config_json) as handle:
        spec = json.load(handle)
    if spec.setdefault('annotations', {}).get(CRIU_CONFIG_ANNOTATION) != conf:
        spec['annotations'][CRIU_CONFIG_ANNOTATION] = conf
        atomic_write(paths.config_json, json.dumps(spec, indent=1), mode=0o600)


class Checkpoints(object):
    """Checkpoint, restore, export and import of the containers of one engine."""

    def __init__(self, engine, use_cache=True):
        self.engine = engine
        self.use_cache = use_cache
        self._criu = None

    def criu(self):
        if self._criu is None:
            self._criu = find_criu(self.engine.store.run_root if self.use_cache else None)
        return self._criu

    def runtime(self, record):
        runtime = self.engine.runtime_for(record)
        runtime.criu_path = self.criu()
        return runtime

    def directory(self, record, checkpoint_id):
        return os.path.join(self.engine.paths(record).dir, 'checkpoints', checkpoint_id)

    def _drop_others(self, record, keep_id):
        parent = os.path.join(self.engine.paths(record).dir, 'checkpoints')
        for entry in os.listdir(parent) if os.path.isdir(parent) else []:
            if entry != keep_id:
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)

    # -- dump -----------------------------------------------------------------------------------
    def dump(self, record, live, leave_running=False, tcp_established=False, file_locks=False, keep_logs=False):
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
        started = time.monotonic()
        try:
            runtime.run(args + [record['id']], timeout=600)
        except RuncibleError as exc:
            shutil.rmtree(images, ignore_errors=True)
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
    def restore(self, record, tcp_established=None, file_locks=None, keep_logs=False):
        """Bring a stopped container back from its latest checkpoint, supervised by conmon."""
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
        if runtime.name == 'runc' and cgroup_mode() == 'unified':
            pin_criu_cgroup_root(self.engine.paths(record), self.engine.placement(record).cgroup_path)
        started = time.monotonic()
        try:
            self.engine._launch(record, restore=(meta['images'], args), runtime=runtime)
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
    def manifest(self, record):
        meta = record['checkpoint']
        return {
            'format': ARCHIVE_FORMAT, 'version': ARCHIVE_VERSION, 'checkpoint_id': meta['id'],
            'name': record['name'], 'id': record['id'], 'config': record['config'], 'created': meta['created'],
            'runtime': meta['runtime'], 'runtime_version': meta['runtime_version'],
            'criu_version': meta['criu_version'], 'dump_seconds': meta['dump_seconds'],
            'tcp_established': meta['tcp_established'], 'file_locks': meta['file_locks'],
        }

    def export_is_current(self, record, path):
        meta = record.get('checkpoint') or {}
        known = (meta.get('exports') or {}).get(os.path.abspath(path))
        if not known or not os.path.isfile(path):
            return False
        info = os.stat(path)
        return known.get('size') == info.st_size and known.get('mtime_ns') == info.st_mtime_ns

    def export(self, record, path, compress='zstd'):
        path = os.path.abspath(path)
        meta = record['checkpoint']
        paths = self.engine.paths(record)
        upper = paths.upper if record['config'].get('rootfs_mode') == 'overlay' else None
        size = write_archive(path, compress, self.manifest(record), paths.config_json, meta['images'], upper,
                             paths.log)
        info = os.stat(path)
        meta.setdefault('exports', {})[path] = {'size': info.st_size, 'mtime_ns': info.st_mtime_ns,
                                                'compress': compress}
        self.engine.store.save(record)
        return size

    def import_(self, name, path, manifest, keep_logs=False):
        """Create container ``name`` from a validated archive and restore it; -> record."""
        config = dict(manifest['config'])
        if config.get('image'):
            # The image's layers must be in this host's image store (pull the image here first).
            image_lower_dirs(self.engine.store.root, config)
        else:
            validate_rootfs(config.get('rootfs'))
        runtime_path = config.get('runtime')
        if not runtime_path or not os.path.exists(runtime_path):
            found = find_program(os.path.basename(runtime_path or 'runc'))
            if not found:
                raise ValidationError('the archive was made with runtime %s, which is not installed here'
                                      % os.path.basename(runtime_path or 'runc'))
            config['runtime'] = found
        self.criu()
        engine = self.engine
        record = engine.create(name, config, start=False, launch=False)
        try:
            staging = os.path.join(engine.paths(record).dir, 'import-' + secrets.token_hex(4))
            os.makedirs(staging, mode=0o700)
            extract_archive(path, staging)
            paths = engine.paths(record)
            checkpoint_id = manifest['checkpoint_id']
            base = self.directory(record, checkpoint_id)
            os.makedirs(base, mode=0o700)
            os.rename(os.path.join(staging, 'images'), os.path.join(base, 'images'))
            if os.path.isdir(os.path.join(staging, 'upper')):
                shutil.rmtree(paths.upper, ignore_errors=True)
                os.rename(os.path.join(staging, 'upper'), paths.upper)
            if os.path.isfile(os.path.join(staging, 'ctr.log')):
                os.rename(os.path.join(staging, 'ctr.log'), paths.log)
            shutil.rmtree(staging, ignore_errors=True)
            meta = {
                'id': checkpoint_id, 'path': base, 'images': os.path.join(base, 'images'),
                'created': manifest.get('created'), 'size': tree_size(os.path.join(base, 'images')),
                'runtime': manifest.get('runtime'), 'runtime_version': manifest.get('runtime_version'),
                'criu': self.criu(), 'criu_version': manifest.get('criu_version'),
                'dump_seconds': manifest.get('dump_seconds'), 'leave_running': False, 'pid_start': None,
                'tcp_established': bool(manifest.get('tcp_established')),
                'file_locks': bool(manifest.get('file_locks')), 'restore_seconds': None, 'restored_at': None,
                'exports': {}, 'imported_from': os.path.abspath(path),
            }
            _write_json(os.path.join(base, 'checkpoint.json'), meta)
            record['checkpoint'] = meta
            engine.store.save(record)
            self.restore(record, keep_logs=keep_logs)
        except BaseException:
            with contextlib.suppress(Exception):
                engine.remove(record, stop_timeout=0)
            raise
        return record
