# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Portable checkpoint archives: written by ``export``, read back by ``import``.

An archive is a PAX tar (plain, gzip or zstd) of, in this order::

    manifest.json     what the archive is: format, version, ids, the container's config, versions
    config.json       the container's OCI spec
    images/           CRIU's images (regular files only)
    upper/            the overlay upper dir: the container's own changes of its root filesystem,
                      with overlay whiteouts (char 0:0) and opaque dirs (trusted.overlay.opaque=y)
    ctr.log           the container's log
    integrity.json    (optional, last) an HMAC-SHA256 of every member before it, with a key that the
                      exporting and the importing task share

**Trust.** An archive is the frozen memory of a process that is restored as root in a container:
importing one from an untrusted source runs its code, as running an untrusted image would. What an
archive cannot do is reach outside the store: it is unpacked by untar.py (no member outside its
directory, none through a symlink, expanded size bounded, names unique), its manifest is checked
field by field here, and the importing task rebuilds the container's configuration from it through
the same option normalisers a task's own options go through (no host path, runtime path or bind
mount is taken from an archive). ``integrity.json`` lets a playbook refuse an archive that was
changed after its export.

**Writing.** The archive is created exclusively (``O_EXCL|O_NOFOLLOW``, mode 0600: it holds the
environment and the memory of the process) under a random name next to its destination, then
renamed over it. The upper dir, which a process in the container controls, is read without ever
following a symlink: directories and files are opened relative to their parent's descriptor with
``O_NOFOLLOW``, and a file is read through its own descriptor at the size that descriptor reports.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import os
import re
import secrets
import stat
import subprocess
import tarfile
import time
import zlib
from typing import TYPE_CHECKING

from . import untar
from .errors import RuncibleError, ValidationError
from .host import child_pipe, find_program
from .oci_cli import KNOWN_RUNTIMES

if TYPE_CHECKING:
    from typing import IO, Any, Iterator

    from .untar import Readable

ARCHIVE_FORMAT = 'runcible.oci/checkpoint'
ARCHIVE_VERSION = 1
COMPRESSIONS = ('zstd', 'gzip', 'none')
MANIFEST = 'manifest.json'
INTEGRITY = 'integrity.json'
PARTS = ('manifest.json', 'config.json', 'images', 'upper', 'ctr.log', INTEGRITY)
FILE_PARTS = ('manifest.json', 'config.json', 'ctr.log', INTEGRITY)
MAX_MANIFEST = 1 << 20
MAX_SMALL_FILE = {'manifest.json': MAX_MANIFEST, 'config.json': 4 << 20, INTEGRITY: 4096}
OPAQUE_XATTRS = ('trusted.overlay.opaque', 'user.overlay.opaque')
FREE_SPACE_RESERVE = 64 << 20
MIN_KEY_LENGTH = 16
MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    'format': str, 'version': int, 'checkpoint_id': str, 'name': str, 'id': str, 'config': dict, 'created': str,
    'runtime': str, 'runtime_version': str, 'criu_version': str, 'dump_seconds': (int, float),
    'tcp_established': bool, 'file_locks': bool,
}
OPTIONAL_MANIFEST_FIELDS = ('created', 'runtime_version', 'criu_version', 'dump_seconds', 'tcp_established',
                            'file_locks', 'id')


CHECKPOINT_ID = r'[0-9a-f]{32}'
CONTAINER_ID = r'[0-9a-f]{64}'


# -- integrity -----------------------------------------------------------------------------------------

def integrity_digest(key: str | None) -> hmac.HMAC | None:
    """The keyed digest both ends compute over an archive's members (None without a key)."""
    if key is None:
        return None
    if not isinstance(key, str) or len(key) < MIN_KEY_LENGTH:
        raise ValidationError('integrity_key: use a secret of at least %d characters (e.g. from a vault or '
                              "lookup('ansible.builtin.password', '/dev/null length=32'))" % MIN_KEY_LENGTH)
    return hmac.new(key.encode('utf-8'), b'runcible.oci checkpoint archive v1\n', 'sha256')


def key_id(key: str | None) -> str | None:
    """A fingerprint of ``key`` that can be kept in the record (a keyed hash, not the key)."""
    if key is None:
        return None
    return hmac.new(key.encode('utf-8'), b'runcible.oci key id', 'sha256').hexdigest()[:16]


# -- compression ---------------------------------------------------------------------------------------

def _zstd() -> str:
    path = find_program('zstd')
    if not path:
        raise ValidationError('compress=zstd needs the zstd program: install the Debian package "zstd", or use '
                              'compress: gzip')
    return path


def file_compression(path: str) -> str:
    with open(path, 'rb') as handle:
        return untar.detect_compression(handle.read(4))


class _Writer(object):
    """A tar stream in PAX format into an open file, through gzip or the zstd program."""

    def __init__(self, fd: int, compress: str) -> None:
        self.out = os.fdopen(fd, 'wb')
        self.proc: subprocess.Popen[bytes] | None = None
        if compress == 'zstd':
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            self.proc = subprocess.Popen([_zstd(), '-q', '-T0', '-3', '-c'], stdin=subprocess.PIPE, stdout=self.out,
                                         stderr=subprocess.PIPE)
            self.tar = tarfile.open(fileobj=self.proc.stdin, mode='w|', format=tarfile.PAX_FORMAT)
        elif compress == 'gzip':
            self.tar = tarfile.open(fileobj=self.out, mode='w|gz', format=tarfile.PAX_FORMAT)
        else:
            self.tar = tarfile.open(fileobj=self.out, mode='w|', format=tarfile.PAX_FORMAT)

    def close(self, abort: bool = False) -> None:
        try:
            if not abort:
                self.tar.close()
            if self.proc is not None:
                stdin, stderr = child_pipe(self.proc.stdin), child_pipe(self.proc.stderr)
                with contextlib.suppress(OSError):
                    stdin.close()
                if abort:
                    self.proc.kill()
                err = stderr.read().decode('utf-8', 'replace')
                stderr.close()
                if self.proc.wait() != 0 and not abort:
                    raise RuncibleError('zstd failed to compress the archive: %s' % err.strip())
            if not abort:
                self.out.flush()
                os.fsync(self.out.fileno())
        finally:
            self.out.close()


# -- writing -------------------------------------------------------------------------------------------

class ArchiveWriter(object):
    """Add members to a tar, feeding each one's canonical record and content to the keyed digest."""

    def __init__(self, tar: tarfile.TarFile, digest: hmac.HMAC | None = None) -> None:
        self.tar = tar
        self.digest = digest
        self.inodes: dict[tuple[int, int], str] = {}

    def add(self, info: tarfile.TarInfo, content: IO[bytes] | None = None) -> None:
        parts = untar.member_parts(info.name, 'archive')
        if self.digest is not None:
            self.digest.update(untar.member_record(parts, info, untar.xattrs_of(info)))
        if content is None:
            self.tar.addfile(info)
            return
        self.tar.addfile(info, _Feeding(content, self.digest, info.size))

    def add_bytes(self, name: str, data: bytes, mode: int = 0o600) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), int(time.time()), mode
        self.add(info, io.BytesIO(data))

    def add_file(self, name: str, path: str) -> None:
        """A regular file by path, read through its own descriptor (never through a symlink)."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise RuncibleError('%s is not a regular file: not exported' % path)
            self._add_fd(name, fd, info)
        finally:
            os.close(fd)

    def _info(self, name: str, info: os.stat_result) -> tarfile.TarInfo:
        member = tarfile.TarInfo(name)
        member.mode = stat.S_IMODE(info.st_mode)
        member.uid, member.gid = info.st_uid, info.st_gid
        member.mtime = int(info.st_mtime)
        return member

    def _add_fd(self, name: str, fd: int, info: os.stat_result) -> None:
        member = self._info(name, info)
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in self.inodes:
            member.type = tarfile.LNKTYPE
            member.linkname = self.inodes[key]
            self.add(member)
            return
        if info.st_nlink > 1:
            self.inodes[key] = name
        member.type = tarfile.REGTYPE
        member.size = info.st_size
        with os.fdopen(os.dup(fd), 'rb') as handle:
            self.add(member, handle)

    def add_tree(self, source: str, arcname: str) -> None:
        """A directory tree: owners, modes, mtimes, symlinks, hard links, whiteouts, fifos, opaque dirs."""
        fd = os.open(source, untar._DIR_FLAGS)
        try:
            self._add_dir(fd, arcname)
        finally:
            os.close(fd)

    def _add_dir(self, dir_fd: int, name: str) -> None:
        info = os.fstat(dir_fd)
        member = self._info(name, info)
        member.type = tarfile.DIRTYPE
        xattrs: dict[str, str] = {}
        for key in OPAQUE_XATTRS:
            with contextlib.suppress(OSError):
                xattrs['SCHILY.xattr.' + key] = os.getxattr(dir_fd, key).decode('utf-8', 'surrogateescape')
        if xattrs:
            member.pax_headers = xattrs
        self.add(member)
        for entry in sorted(os.listdir(dir_fd)):
            child = name + '/' + entry
            try:
                entry_info = os.lstat(entry, dir_fd=dir_fd)
            except FileNotFoundError:
                continue  # gone meanwhile (a running container)
            mode = entry_info.st_mode
            if stat.S_ISDIR(mode):
                fd = os.open(entry, untar._DIR_FLAGS, dir_fd=dir_fd)
                try:
                    self._add_dir(fd, child)
                finally:
                    os.close(fd)
            elif stat.S_ISREG(mode):
                fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    opened = os.fstat(fd)
                    if stat.S_ISREG(opened.st_mode):
                        self._add_fd(child, fd, opened)
                finally:
                    os.close(fd)
            elif stat.S_ISLNK(mode):
                member = self._info(child, entry_info)
                member.type = tarfile.SYMTYPE
                member.linkname = os.readlink(entry, dir_fd=dir_fd)
                self.add(member)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                member = self._info(child, entry_info)
                member.type = (tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE if stat.S_ISBLK(mode)
                               else tarfile.FIFOTYPE)
                if not stat.S_ISFIFO(mode):
                    member.devmajor, member.devminor = os.major(entry_info.st_rdev), os.minor(entry_info.st_rdev)
                self.add(member)
            # sockets: a tar cannot hold them (and a restored process makes its own again)


class _Feeding(object):
    """Read exactly ``size`` bytes of ``handle`` (tarfile's contract), feeding them to ``digest``."""

    def __init__(self, handle: IO[bytes], digest: hmac.HMAC | None, size: int) -> None:
        self.handle = handle
        self.digest = digest
        self.left = size

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self.handle.read(size)
        if len(data) < size:
            raise RuncibleError('a file changed size while it was exported (a running container?); export again')
        self.left -= len(data)
        if self.digest is not None and data:
            self.digest.update(data)
        return data


def write_archive(path: str, compress: str, manifest: dict[str, Any], config_json: bytes | str, images_dir: str,
                  upper_dir: str | None, log_path: str | None, key: str | None = None) -> int:
    """Write the checkpoint archive: exclusively, mode 0600, next to ``path``, then renamed over it; -> size."""
    if compress not in COMPRESSIONS:
        raise ValidationError('compress: %r is not one of %s' % (compress, ', '.join(COMPRESSIONS)))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValidationError('export: directory %s does not exist' % directory)
    digest = integrity_digest(key)
    temp = os.path.join(directory, '.%s.%s.tmp' % (os.path.basename(path), secrets.token_hex(8)))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    writer: _Writer | None = None
    try:
        writer = _Writer(fd, compress)
        archive = ArchiveWriter(writer.tar, digest)
        archive.add_bytes(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        if isinstance(config_json, bytes):
            archive.add_bytes('config.json', config_json)
        else:
            archive.add_file('config.json', config_json)
        archive.add_tree(images_dir, 'images')
        if upper_dir and os.path.isdir(upper_dir):
            archive.add_tree(upper_dir, 'upper')
        if log_path and os.path.isfile(log_path):
            archive.add_file('ctr.log', log_path)
        if digest is not None:
            archive.digest = None
            archive.add_bytes(INTEGRITY, json.dumps({'algorithm': 'hmac-sha256', 'digest': digest.hexdigest(),
                                                     'key_id': key_id(key)}).encode())
        writer.close()
        writer = None
        os.rename(temp, path)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close(abort=True)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return os.path.getsize(path)


# -- reading -------------------------------------------------------------------------------------------

class CheckpointPolicy(untar.Policy):
    """What a checkpoint archive may hold, and where (see the module doc)."""

    what = 'archive'
    unique_names = True

    def __init__(self) -> None:
        self.count = 0
        self.integrity_seen = False

    def check(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        self.count += 1
        if not parts:
            self.refuse(member, 'names the archive root')
        top = parts[0]
        if top not in PARTS:
            self.refuse(member, 'is not part of a runcible.oci checkpoint archive')
        if self.integrity_seen:
            self.refuse(member, 'comes after %s, which must be the last member' % INTEGRITY)
        if self.count == 1 and (top != MANIFEST or not member.isreg()):
            self.refuse(member, 'comes first, where manifest.json must be: this is not a runcible.oci checkpoint '
                                'archive')
        if top in FILE_PARTS:
            if len(parts) != 1 or not member.isreg():
                self.refuse(member, 'must be a regular file')
            if member.size > MAX_SMALL_FILE.get(top, member.size):
                self.refuse(member, 'is larger than %d bytes' % MAX_SMALL_FILE[top])
            self.integrity_seen = top == INTEGRITY
        elif top == 'images':
            if not (member.isdir() or member.isreg()):
                self.refuse(member, 'is not a regular file or directory (CRIU images are only these)')
        elif member.islnk():
            if untar.member_parts(member.linkname, self.what, 'hard link target')[:1] != ['upper']:
                self.refuse(member, 'is a hard link out of upper/')
        elif member.ischr() or member.isblk():
            if not member.ischr() or member.devmajor != 0 or member.devminor != 0:
                self.refuse(member, 'is a device node: only overlay whiteouts (char 0:0) are allowed')
        elif not (member.isreg() or member.isdir() or member.issym() or member.isfifo()):
            self.refuse(member, 'has an unsupported type %r' % member.type)

    def keep_xattr(self, parts: list[str], name: str, value: bytes) -> bool:
        # Only what marks an opaque directory of the upper dir: nothing else steers overlayfs or the host.
        return parts[:1] == ['upper'] and name in OPAQUE_XATTRS and value == b'y'

    def in_digest(self, parts: list[str]) -> bool:
        return parts[:1] != [INTEGRITY]


class _Limited(object):
    """The decompressed tar stream, bounded (a stream of headers alone must not run forever)."""

    def __init__(self, raw: Readable, limit: int) -> None:
        self.raw = raw
        self.limit = limit
        self.count = 0

    def read(self, size: int | None = -1) -> bytes:
        data = self.raw.read(size if size is not None and size >= 0 else untar.CHUNK)
        self.count += len(data)
        if self.count > self.limit:
            raise untar.UnpackError('the archive is larger than the limit of %d bytes once decompressed: refusing it'
                                    % self.limit)
        return data


@contextlib.contextmanager
def _tar_reader(path: str) -> Iterator[Readable]:
    """A tarfile in stream mode over the decompressed archive; zstd through the zstd program."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    handle = os.fdopen(fd, 'rb')
    proc = None
    try:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ValidationError('import: %s is not a regular file' % path)
        os.set_blocking(handle.fileno(), True)
        compression = untar.detect_compression(os.pread(handle.fileno(), 4, 0))
        if compression == 'zstd':
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            proc = subprocess.Popen([_zstd(), '-q', '-d', '-c'], stdin=handle, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
            yield child_pipe(proc.stdout)
        elif compression == 'gzip':
            import gzip  # pylint: disable=import-outside-toplevel
            with gzip.GzipFile(fileobj=handle, mode='rb') as stream:
                yield stream
        else:
            yield handle
    finally:
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            if proc.stdout is not None:
                proc.stdout.close()
            proc.wait()
        handle.close()


def free_bytes(path: str) -> int:
    """Bytes that may be written on the filesystem of ``path`` (keeping a reserve)."""
    info = os.statvfs(path)
    return max(0, info.f_bavail * info.f_frsize - FREE_SPACE_RESERVE)


def read_archive(path: str, destination: str | None = None, key: str | None = None,
                 limits: untar.Limits | None = None) -> tuple[dict[str, Any], str]:
    """Read a whole archive once: validate every member, and unpack it into ``destination`` (None: check only).

    -> (manifest, integrity) where ``integrity`` is ``verified``, ``unsigned`` or ``not checked`` (an
    archive with a digest and no key given). Raises ValidationError for anything refused; the caller
    removes ``destination`` then. Nothing of the archive is trusted before this returns.
    """
    if not os.path.isfile(path):
        raise ValidationError('import: %s does not exist or is not a file' % path)
    digest = integrity_digest(key)
    policy = CheckpointPolicy()
    if limits is None:
        limits = untar.Limits(max_bytes=free_bytes(destination or os.path.dirname(os.path.abspath(path))))
    unpacker = untar.Unpacker(destination, policy, limits=limits, dry_run=destination is None, digest=digest,
                              capture=(MANIFEST, INTEGRITY))
    try:
        with _tar_reader(path) as stream:
            # Ignored: typeshed's tarfile wants a fileobj that also seeks, tells and writes; a stream ('r|') is only read.
            archive = tarfile.open(fileobj=_Limited(stream, limits.max_bytes + (64 << 20)),  # type: ignore[call-overload]
                                   mode='r|', errorlevel=2)
            unpacker.unpack(archive)
    except untar.UnpackError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise ValidationError('%s is not a readable checkpoint archive (corrupt or truncated?): %s' % (path, exc))
    manifest_data = unpacker.captured.get(MANIFEST)
    integrity_data = unpacker.captured.get(INTEGRITY)
    if manifest_data is None:
        raise ValidationError('%s is not a runcible.oci checkpoint archive (no manifest.json first)' % path)
    missing = [part for part in ('config.json', 'images') if (part,) not in unpacker.model]
    if missing:
        raise ValidationError('%s lacks %s: it is truncated or not a checkpoint archive' % (path, ', '.join(missing)))
    integrity = _check_integrity(path, digest, integrity_data)
    return validate_manifest(manifest_data, path), integrity


def _check_integrity(path: str, digest: hmac.HMAC | None, data: bytes | None) -> str:
    if data is not None:
        try:
            document = json.loads(data.decode('utf-8'))
            recorded = str(document['digest'])
        except (ValueError, KeyError, TypeError, UnicodeError):
            raise ValidationError('%s has an unreadable %s: refusing the archive' % (path, INTEGRITY))
    if digest is None:
        return 'unsigned' if data is None else 'not checked'
    if data is None:
        raise ValidationError('%s carries no integrity digest, but integrity_key was given: it was exported without '
                              'the key (or the digest was removed): refusing it' % path)
    if not hmac.compare_digest(digest.hexdigest(), recorded):
        raise ValidationError('%s does not match its integrity digest with this integrity_key: it was changed after '
                              'its export, or exported with another key: refusing it' % path)
    return 'verified'


def validate_manifest(data: bytes, path: str) -> dict[str, Any]:
    """The manifest as a dict of checked fields (types, identifiers); its ``config`` is checked by the task layer."""
    try:
        manifest = json.loads(data.decode('utf-8'))
    except (ValueError, UnicodeError) as exc:
        raise ValidationError('%s has an unreadable manifest.json: %s' % (path, exc))
    if not isinstance(manifest, dict) or manifest.get('format') != ARCHIVE_FORMAT:
        raise ValidationError('%s is not a runcible.oci checkpoint archive (foreign manifest)' % path)
    if manifest.get('version') != ARCHIVE_VERSION:
        raise ValidationError('%s has archive version %r; this collection reads version %d'
                              % (path, manifest.get('version'), ARCHIVE_VERSION))
    unknown = sorted(set(manifest) - set(MANIFEST_FIELDS))
    if unknown:
        raise ValidationError('%s has unknown manifest fields %s: refusing it' % (path, ', '.join(unknown)))
    for field, kind in MANIFEST_FIELDS.items():
        if field not in manifest:
            if field in OPTIONAL_MANIFEST_FIELDS:
                continue
            raise ValidationError('%s has a manifest without %s' % (path, field))
        value = manifest[field]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValidationError('%s: manifest field %s has the wrong type (%s)' % (path, field, type(value).__name__))
    if not re.fullmatch(CHECKPOINT_ID, manifest['checkpoint_id']):
        raise ValidationError('%s: manifest checkpoint_id %r is not a checkpoint id (32 hex digits): refusing it'
                              % (path, manifest['checkpoint_id']))
    if 'id' in manifest and not re.fullmatch(CONTAINER_ID, manifest['id']):
        raise ValidationError('%s: manifest id %r is not a container id (64 hex digits): refusing it'
                              % (path, manifest['id']))
    if manifest['runtime'] not in KNOWN_RUNTIMES:
        raise ValidationError('%s: manifest runtime %r is not one of %s: refusing it'
                              % (path, manifest['runtime'], ', '.join(KNOWN_RUNTIMES)))
    for field in ('runtime_version', 'criu_version', 'created', 'name'):
        if field in manifest and (len(manifest[field]) > 200 or '\0' in manifest[field]):
            raise ValidationError('%s: manifest field %s is not a short string: refusing it' % (path, field))
    return manifest


__all__ = ['ARCHIVE_FORMAT', 'ARCHIVE_VERSION', 'COMPRESSIONS', 'CheckpointPolicy', 'read_archive', 'write_archive',
           'integrity_digest', 'key_id', 'file_compression']
