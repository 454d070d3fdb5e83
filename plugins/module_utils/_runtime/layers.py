# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe unpacking of OCI image layers into a directory used as an overlay lower layer.

A layer blob is read once: its sha256 (the blob digest, compressed) and the sha256 of the tar
stream inside (the diff_id) are computed while the tar is unpacked, and both must match what the
manifest and the image config say, or the unpacked tree is thrown away.

Every member is checked before anything is written, and written without ever following a symlink:
each parent directory is opened component by component from the layer's root with ``O_NOFOLLOW``
(a symlink or a non-directory on the way fails the layer), and the member is then created relative
to its parent's file descriptor (``O_CREAT|O_EXCL|O_NOFOLLOW``, ``mknodat``, ``symlinkat``,
``linkat`` without following). So absolute names, ``..``, members below a symlink (absolute or
relative), hard links to anything outside the layer and whiteouts naming ``..`` can never write
outside the layer directory; they fail the whole layer.

OCI whiteouts become overlayfs whiteouts, so that stacking the layer directories as overlay lower
dirs gives the image's view: ``.wh.NAME`` -> a character device 0:0 named NAME,
``DIR/.wh..wh..opq`` -> the ``trusted.overlay.opaque=y`` xattr on DIR.

Owners, modes (set-id bits too), mtimes and extended attributes are kept (``trusted.overlay.*``,
``user.overlay.*`` and ``security.selinux`` from the layer are dropped: only we decide what
overlayfs sees). Device nodes are created only when running as root, else skipped and counted.
The uncompressed size and the number of members are bounded (``Limits``) against tar bombs.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import os
import stat
import subprocess
import tarfile
import threading
import zlib

from .errors import ValidationError

WHITEOUT_PREFIX = '.wh.'
OPAQUE_MARKER = '.wh..wh..opq'
OPAQUE_XATTR = 'trusted.overlay.opaque'
DROPPED_XATTR_PREFIXES = ('trusted.overlay.', 'user.overlay.', 'security.selinux')
DEFAULT_MAX_BYTES = 16 << 30
DEFAULT_MAX_ENTRIES = 2000000
CHUNK = 1 << 20
GZIP_MAGIC = b'\x1f\x8b'
ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_PATH = getattr(os, 'O_PATH', 0o10000000)


class LayerError(ValidationError):
    """A layer that is corrupt, does not match its digests, or tries to write outside its directory."""


class Limits(object):
    """Bounds of one layer: bytes of the uncompressed tar stream and number of members."""

    def __init__(self, max_bytes=DEFAULT_MAX_BYTES, max_entries=DEFAULT_MAX_ENTRIES):
        self.max_bytes = max_bytes
        self.max_entries = max_entries


# -- streams ------------------------------------------------------------------------------------------

class HashingReader(object):
    """A file-like ``read()`` that hashes what passes through and refuses more than ``limit`` bytes."""

    def __init__(self, raw, algorithm='sha256', limit=None, what='stream'):
        self.raw = raw
        self.hasher = hashlib.new(algorithm)
        self.count = 0
        self.limit = limit
        self.what = what

    def read(self, size=-1):
        data = self.raw.read(size if size is not None and size >= 0 else CHUNK)
        if data:
            self.count += len(data)
            if self.limit is not None and self.count > self.limit:
                raise LayerError('%s is larger than the limit of %d bytes: refusing it (a tar bomb?)'
                                 % (self.what, self.limit))
            self.hasher.update(data)
        return data

    def drain(self):
        while self.read(CHUNK):
            pass

    def digest(self):
        return 'sha256:' + self.hasher.hexdigest()


def detect_compression(head):
    if head.startswith(GZIP_MAGIC):
        return 'gzip'
    if head.startswith(ZSTD_MAGIC):
        return 'zstd'
    return 'none'


class _ZstdStream(object):
    """Decompress zstd through the zstd program, fed by a thread (the reader hashes what it feeds)."""

    def __init__(self, raw, zstd_path):
        self.proc = subprocess.Popen([zstd_path, '-d', '-q', '-c'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.error = None
        self.thread = threading.Thread(target=self._feed, args=(raw,))
        self.thread.daemon = True
        self.thread.start()

    def _feed(self, raw):
        try:
            while True:
                data = raw.read(CHUNK)
                if not data:
                    break
                self.proc.stdin.write(data)
        except Exception as exc:  # pylint: disable=broad-except
            self.error = exc
        finally:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def read(self, size=-1):
        return self.proc.stdout.read(size if size is not None and size > 0 else CHUNK)

    def close(self, abort=False):
        if abort:
            with contextlib.suppress(OSError):
                self.proc.kill()
        with contextlib.suppress(OSError):
            self.proc.stdout.close()
        self.thread.join()
        err = self.proc.stderr.read().decode('utf-8', 'replace').strip()
        self.proc.stderr.close()
        rc = self.proc.wait()
        if isinstance(self.error, LayerError):
            raise self.error
        if rc != 0:
            raise LayerError('the layer blob is not a valid zstd stream: %s' % (err or 'zstd exit %d' % rc))


# -- names --------------------------------------------------------------------------------------------

def member_parts(name, what='member'):
    """Split a tar member name into safe path components; refuses absolute names and ``..``."""
    if not name or '\0' in name:
        raise LayerError('layer %s %r has an empty or invalid name' % (what, name))
    if name.startswith('/'):
        raise LayerError('layer %s %r is an absolute path: refusing the layer' % (what, name))
    parts = [part for part in name.split('/') if part not in ('', '.')]
    if '..' in parts:
        raise LayerError('layer %s %r contains "..": refusing the layer' % (what, name))
    return parts


# -- the unpacker -------------------------------------------------------------------------------------

class Unpacker(object):
    """Unpack one tar stream into ``dest`` (an existing, empty directory) safely; see the module doc."""

    def __init__(self, dest, limits=None, as_root=None):
        self.dest = dest
        self.limits = limits or Limits()
        self.as_root = os.geteuid() == 0 if as_root is None else as_root
        self.root_fd = None
        self.entries = 0
        self.bytes = 0
        self.skipped = {}
        self.dir_times = []
        self._parent_cache = (None, None)

    # fds ---------------------------------------------------------------------------------------
    def _close_cache(self):
        key, fd = self._parent_cache
        if fd is not None:
            os.close(fd)
        self._parent_cache = (None, None)

    def _open_dir(self, parts, name, create=True):
        """An fd of the directory ``parts`` under the root, walked without following any symlink."""
        key = tuple(parts)
        if self._parent_cache[0] == key:
            return os.dup(self._parent_cache[1])
        fd = os.dup(self.root_fd)
        try:
            for index, part in enumerate(parts):
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise LayerError('layer member %r refers to %s, which is not in this layer: refusing the layer'
                                         % (name, '/'.join(parts[:index + 1])))
                    os.mkdir(part, 0o755, dir_fd=fd)
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                        raise LayerError('layer member %r lies below %s, which is a symlink or not a directory: '
                                         'refusing the layer' % (name, '/'.join(parts[:index + 1])))
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        self._close_cache()
        self._parent_cache = (key, os.dup(fd))
        return fd

    def _remove_at(self, dir_fd, entry):
        """Remove ``entry`` of ``dir_fd`` whatever it is (a directory recursively, never following links)."""
        try:
            info = os.lstat(entry, dir_fd=dir_fd)
        except FileNotFoundError:
            return
        self._close_cache()
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(entry, dir_fd=dir_fd)
            return
        fd = os.open(entry, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            for child in os.listdir(fd):
                self._remove_at(fd, child)
        finally:
            os.close(fd)
        os.rmdir(entry, dir_fd=dir_fd)

    # metadata --------------------------------------------------------------------------------
    def _xattrs(self, member):
        result = []
        for key, value in member.pax_headers.items():
            if not key.startswith('SCHILY.xattr.'):
                continue
            attr = key[len('SCHILY.xattr.'):]
            if attr.startswith(DROPPED_XATTR_PREFIXES):
                self._skip('xattr ' + attr)
                continue
            result.append((attr, value.encode('utf-8', 'surrogateescape')))
        return result

    def _skip(self, what):
        self.skipped[what] = self.skipped.get(what, 0) + 1

    def _set_metadata(self, fd_or_path, member):
        """Owner, then mode (chown clears set-id bits), xattrs, mtime of an open fd (or /proc/self/fd path)."""
        if self.as_root:
            os.chown(fd_or_path, member.uid, member.gid)
        os.chmod(fd_or_path, member.mode & 0o7777)
        for attr, value in self._xattrs(member):
            try:
                os.setxattr(fd_or_path, attr, value)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
                    raise
                self._skip('xattr ' + attr)
        with contextlib.suppress(OverflowError, ValueError):
            os.utime(fd_or_path, (member.mtime, member.mtime))

    # members ---------------------------------------------------------------------------------
    def unpack(self, archive):
        """Unpack every member of ``archive`` (a tarfile opened in stream mode)."""
        self.root_fd = os.open(self.dest, _DIR_FLAGS)
        try:
            for member in archive:
                self.entries += 1
                if self.entries > self.limits.max_entries:
                    raise LayerError('the layer has more than %d members: refusing it' % self.limits.max_entries)
                self._member(archive, member)
            self._close_cache()
            self._apply_dir_times()
        finally:
            self._close_cache()
            os.close(self.root_fd)
            self.root_fd = None
        return {'entries': self.entries, 'bytes': self.bytes, 'skipped': dict(self.skipped)}

    def _apply_dir_times(self):
        for parts, mtime in reversed(self.dir_times):
            if not parts:
                os.utime(self.root_fd, (mtime, mtime))
                continue
            parent = self._open_dir(parts[:-1], '/'.join(parts), create=False)
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.utime(parts[-1], (mtime, mtime), dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(parent)

    def _member(self, archive, member):
        parts = member_parts(member.name)
        for part in parts[:-1]:
            if part.startswith(WHITEOUT_PREFIX):
                raise LayerError('layer member %r lies below a whiteout: refusing the layer' % member.name)
        if not parts:
            # "./": the layer's root directory itself.
            if not member.isdir():
                raise LayerError('layer member %r names the layer root but is not a directory' % member.name)
            self._set_metadata(self.root_fd, member)
            self.dir_times.append(([], member.mtime))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(member, parts)
            return
        parent = self._open_dir(parts[:-1], member.name)
        try:
            if member.isdir():
                self._directory(parent, base, member, parts)
            elif member.isreg():
                self._regular(archive, parent, base, member)
            elif member.issym():
                self._remove_at(parent, base)
                os.symlink(member.linkname, base, dir_fd=parent)
                if self.as_root:
                    os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
                os.utime(base, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
            elif member.islnk():
                self._hardlink(parent, base, member)
            elif member.ischr() or member.isblk():
                if not self.as_root:
                    self._skip('device node')
                    return
                self._remove_at(parent, base)
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(base, kind | (member.mode & 0o7777), os.makedev(member.devmajor, member.devminor),
                         dir_fd=parent)
                self._special_metadata(parent, base, member)
            elif member.isfifo():
                self._remove_at(parent, base)
                os.mkfifo(base, member.mode & 0o7777, dir_fd=parent)
                self._special_metadata(parent, base, member)
            else:
                raise LayerError('layer member %r has an unsupported type %r: refusing the layer'
                                 % (member.name, member.type))
        finally:
            os.close(parent)

    def _directory(self, parent, base, member, parts):
        try:
            info = os.lstat(base, dir_fd=parent)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISDIR(info.st_mode):
            self._remove_at(parent, base)
            info = None
        if info is None:
            os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, _DIR_FLAGS, dir_fd=parent)
        try:
            self._set_metadata(fd, member)
        finally:
            os.close(fd)
        self.dir_times.append((parts, member.mtime))

    def _regular(self, archive, parent, base, member):
        self._remove_at(parent, base)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
        try:
            source = archive.extractfile(member)
            while True:
                data = source.read(CHUNK)
                if not data:
                    break
                self.bytes += len(data)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            self._set_metadata(fd, member)
        finally:
            os.close(fd)

    def _hardlink(self, parent, base, member):
        target_parts = member_parts(member.linkname, what='hard link target')
        if not target_parts:
            raise LayerError('layer member %r is a hard link to the layer root: refusing the layer' % member.name)
        source_parent = self._open_dir(target_parts[:-1], member.name, create=False)
        try:
            try:
                info = os.lstat(target_parts[-1], dir_fd=source_parent)
            except FileNotFoundError:
                raise LayerError('layer member %r is a hard link to %r, which is not in this layer: refusing the layer'
                                 % (member.name, member.linkname))
            if stat.S_ISDIR(info.st_mode):
                raise LayerError('layer member %r is a hard link to the directory %r: refusing the layer'
                                 % (member.name, member.linkname))
            if target_parts[:-1] == member_parts(member.name)[:-1] and target_parts[-1] == base:
                return  # a link to itself: nothing to do
            self._remove_at(parent, base)
            os.link(target_parts[-1], base, src_dir_fd=source_parent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(source_parent)

    def _special_metadata(self, parent, base, member):
        """Metadata of a device or fifo, through an O_PATH fd so that the node is never opened."""
        fd = os.open(base, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            self._set_metadata('/proc/self/fd/%d' % fd, member)
        finally:
            os.close(fd)

    def _whiteout(self, member, parts):
        base = parts[-1]
        parent = self._open_dir(parts[:-1], member.name)
        try:
            if base == OPAQUE_MARKER:
                os.setxattr(parent, OPAQUE_XATTR, b'y')
                return
            if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                # aufs metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless here.
                self._skip('aufs metadata')
                return
            hidden = base[len(WHITEOUT_PREFIX):]
            if hidden in ('', '.', '..'):
                raise LayerError('layer whiteout %r names %r, outside its directory: refusing the layer'
                                 % (member.name, hidden))
            self._remove_at(parent, hidden)
            try:
                os.mknod(hidden, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=parent)
            except PermissionError:
                raise LayerError('layer whiteout %r: creating an overlay whiteout (a 0:0 character device) needs root'
                                 % member.name)
            if self.as_root:
                os.chown(hidden, 0, 0, dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)


# -- one layer blob -----------------------------------------------------------------------------------

def unpack_blob(blob, dest, expected_digest=None, expected_size=None, expected_diff_id=None, limits=None,
                zstd_path=None, as_root=None):
    """Unpack the layer blob ``blob`` (a readable binary file object at offset 0) into ``dest``.

    Verifies the blob's digest and size and the diff_id of its tar stream when given; raises
    LayerError on any mismatch or refused member (the caller throws ``dest`` away then).
    -> dict: digest, diff_id, size (blob bytes), compression, entries, bytes, skipped.
    """
    limits = limits or Limits()
    head = blob.read(8)
    compression = detect_compression(head)
    raw = HashingReader(_Prefixed(head, blob), limit=expected_size,
                        what='layer blob %s (its descriptor says %s bytes)' % (expected_digest, expected_size))
    if compression == 'gzip':
        stream = gzip.GzipFile(fileobj=raw, mode='rb')
    elif compression == 'zstd':
        if not zstd_path:
            raise LayerError('the layer is zstd-compressed: install the "zstd" package to unpack it')
        stream = _ZstdStream(raw, zstd_path)
    else:
        stream = raw
    tar_stream = HashingReader(stream, limit=limits.max_bytes, what='the uncompressed layer')
    unpacker = Unpacker(dest, limits=limits, as_root=as_root)
    finished = False
    try:
        archive = tarfile.open(fileobj=tar_stream, mode='r|', errorlevel=2)
        stats = unpacker.unpack(archive)
        tar_stream.drain()
        raw.drain()
        finished = True
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeError) as exc:
        raise LayerError('the layer blob is not a valid (compressed) tar archive: %s' % exc)
    finally:
        if compression == 'zstd':
            stream.close(abort=not finished)
    result = dict(stats, digest=raw.digest(), diff_id=tar_stream.digest(), size=raw.count, compression=compression)
    if expected_size is not None and raw.count != expected_size:
        raise LayerError('layer blob %s is %d bytes, its descriptor says %d: refusing it'
                         % (expected_digest or '', raw.count, expected_size))
    if expected_digest and result['digest'] != expected_digest:
        raise LayerError('layer blob digest mismatch: expected %s, the content is %s: refusing it'
                         % (expected_digest, result['digest']))
    if expected_diff_id and result['diff_id'] != expected_diff_id:
        raise LayerError('layer diff_id mismatch: the image config says %s, the uncompressed layer is %s: refusing it'
                         % (expected_diff_id, result['diff_id']))
    return result


class _Prefixed(object):
    """Bytes already read (the magic), then the rest of ``raw``."""

    def __init__(self, head, raw):
        self.head = head
        self.raw = raw

    def read(self, size=-1):
        if self.head:
            if size is None or size < 0 or size >= len(self.head):
                data, self.head = self.head, b''
                if size is None or size < 0:
                    return data + self.raw.read()
                return data + self.raw.read(size - len(data)) if size > len(data) else data
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.raw.read(size)


def tree_size(path):
    """Bytes of the regular files under ``path`` (hard links counted once)."""
    total = 0
    seen = set()
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total
