# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unpack a tar stream into a directory without ever writing outside it: the one unpacker of the collection.

Image layers (layers.py) and checkpoint archives (checkpoint_archive.py) both come from outside: an
image author or the author of an archive chooses every member name, type, link target, size and
extended attribute. Both go through :class:`Unpacker`, which differs between them only by a
:class:`Policy` (which member kinds, names and attributes a format allows).

For every member, in this order:

1. its name is split into components (``./a//b`` is ``a/b``); absolute names, ``..``, NUL bytes and
   empty names are refused;
2. it is checked against a model of what the stream made so far: a member below a symlink or a
   file of the stream, a hard link to anything but an earlier file of the stream, and (where the
   policy says names are unique) a name seen before are refused;
3. the policy checks its kind and place;
4. its size counts against ``Limits.max_bytes`` *before* anything is written: the expanded size
   of sparse members counts too, so a few KiB of tar cannot fill a disk;
5. it is written without ever following a symlink: each parent directory is opened component by
   component from the root with ``O_NOFOLLOW`` (a symlink or a non-directory on the way fails the
   stream, whatever the model said), and the member is created relative to its parent's file
   descriptor (``O_CREAT|O_EXCL|O_NOFOLLOW``, ``mknodat``, ``symlinkat``, ``linkat`` without
   following). A name that exists is removed first, never opened.

``dry_run`` runs steps 1 to 4 and writes nothing (check mode); the members named in ``capture`` are
kept in memory too (``captured``), so a manifest can be read in either mode. ``digest``, an object with
``update(bytes)`` (an HMAC), is fed a canonical record of every member (:func:`member_record`) and
its content, so the writer of an archive and its reader can agree on a keyed digest of what was
extracted, whatever the compression or the tar layout.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import struct
from typing import TYPE_CHECKING

from .errors import ValidationError

if TYPE_CHECKING:
    import tarfile
    from typing import Any, Iterable, NoReturn, Protocol

    Xattrs = list[tuple[str, bytes]]  # (name, value) pairs

    class Readable(Protocol):
        """A binary stream to read from (a file, a pipe, a decompressor)."""

        def read(self, __size: int = ...) -> bytes:
            ...

    class Digest(Protocol):
        """What a member record and its content are fed to (an HMAC)."""

        def update(self, __data: bytes) -> None:
            ...

DEFAULT_MAX_BYTES = 16 << 30
DEFAULT_MAX_ENTRIES = 2000000
CHUNK = 1 << 20

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_PATH = getattr(os, 'O_PATH', 0o10000000)

# What the model knows of a path the stream made.
DIR, FILE, SYMLINK, OTHER = 'dir', 'file', 'symlink', 'other'


class UnpackError(ValidationError):
    """A stream that is corrupt or tries to write outside its directory."""


class Limits(object):
    """Bounds of one stream: expanded bytes of its members, and the number of members."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries


def detect_compression(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` from the first bytes of a stream (its magic)."""
    if head[:2] == b'\x1f\x8b':
        return 'gzip'
    if head[:4] == b'\x28\xb5\x2f\xfd':
        return 'zstd'
    return 'none'


def member_parts(name: str, what: str = 'layer', kind: str = 'member') -> list[str]:
    """Split a tar member name into safe path components; refuses absolute names and ``..``."""
    if not name or '\0' in name:
        raise UnpackError('%s %s %r has an empty or invalid name' % (what, kind, name))
    if name.startswith('/'):
        raise UnpackError('%s %s %r is an absolute path: refusing the %s' % (what, kind, name, what))
    parts = [part for part in name.split('/') if part not in ('', '.')]
    if '..' in parts:
        raise UnpackError('%s %s %r contains "..": refusing the %s' % (what, kind, name, what))
    return parts


def member_kind(member: tarfile.TarInfo) -> str:
    """What a member makes: dir, file, symlink, hardlink, chr, blk, fifo (or its raw tar type)."""
    for kind, test in (('dir', member.isdir), ('file', member.isreg), ('symlink', member.issym),
                       ('hardlink', member.islnk), ('chr', member.ischr), ('blk', member.isblk),
                       ('fifo', member.isfifo)):
        if test():
            return kind
    return 'type-%r' % (member.type,)


def _model_kind(member: tarfile.TarInfo) -> str:
    kind = member_kind(member)
    return {'dir': DIR, 'file': FILE, 'hardlink': FILE, 'symlink': SYMLINK}.get(kind, OTHER)


def xattrs_of(member: tarfile.TarInfo) -> Xattrs:
    """The extended attributes a member carries (PAX ``SCHILY.xattr.*``), as sorted (name, bytes) pairs."""
    result = []
    for key, value in member.pax_headers.items():
        if key.startswith('SCHILY.xattr.'):
            result.append((key[len('SCHILY.xattr.'):], value.encode('utf-8', 'surrogateescape')))
    return sorted(result)


def _field(value: object) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode('utf-8', 'surrogateescape')
    return struct.pack('>Q', len(data)) + data


def member_record(parts: list[str], member: tarfile.TarInfo, xattrs: Xattrs) -> bytes:
    """The canonical bytes of one member for a keyed digest: name, type, owner, mode, mtime, size, link, device
    and extended attributes, each length-prefixed (so no two members encode alike)."""
    link = member.linkname if member.issym() else '/'.join(member_parts(member.linkname)) if member.islnk() else ''
    fields = ['/'.join(parts), member_kind(member), member.uid, member.gid, member.mode & 0o7777, int(member.mtime), member.size if member.isreg() else 0,
              link, member.devmajor if member.ischr() or member.isblk() else 0,
              member.devminor if member.ischr() or member.isblk() else 0, len(xattrs)]
    record = b''.join(_field(item) for item in fields)
    for name, value in xattrs:
        record += _field(name) + _field(value)
    return record


class Policy(object):
    """What one format allows; the base allows every kind a filesystem has (the unpacker stays safe anyway)."""

    what = 'archive'          # the noun of messages: "layer member ...: refusing the layer"
    unique_names = False      # refuse a name that appears twice (else the later member replaces the earlier)
    oci_whiteouts = False     # .wh.NAME and .wh..wh..opq are OCI whiteouts (image layers)

    def check(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        """Raise UnpackError when the format does not allow this member here."""

    def keep_xattr(self, parts: list[str], name: str, value: bytes) -> bool:
        """Write this extended attribute? (False: dropped and counted in ``skipped``)."""
        return True

    def in_digest(self, parts: list[str]) -> bool:
        """Does this member count in the keyed digest (the member holding the digest itself does not)?"""
        return True

    def refuse(self, member: tarfile.TarInfo, why: str) -> NoReturn:
        raise UnpackError('%s member %r %s: refusing the %s' % (self.what, member.name, why, self.what))


class Unpacker(object):
    """Unpack one tar stream into ``dest`` (an existing, empty directory) safely; see the module doc."""

    def __init__(self, dest: str | None, policy: Policy | None = None, limits: Limits | None = None, as_root: bool | None = None,
                 dry_run: bool = False, digest: Digest | None = None, capture: Iterable[str] = ()) -> None:
        self.dest = dest
        self.policy = policy or Policy()
        self.limits = limits or Limits()
        self.as_root = os.geteuid() == 0 if as_root is None else as_root
        self.dry_run = dry_run
        self.digest = digest
        self.root_fd: int | None = None  # while unpack() writes
        self.entries = 0
        self.bytes = 0
        self.skipped: dict[str, int] = {}
        self.dir_times: list[tuple[list[str], float]] = []
        self.model: dict[tuple[str, ...], str] = {}
        self._explicit: set[tuple[str, ...]] = set()
        # Small members whose content the caller wants in memory too (a manifest): name -> bytes.
        self.capture = frozenset(capture)
        self.captured: dict[str, bytes] = {}
        self._parent_cache: tuple[tuple[str, ...] | None, int | None] = (None, None)

    @property
    def what(self) -> str:
        return self.policy.what

    # fds ---------------------------------------------------------------------------------------
    def _root(self) -> int:
        """The fd of ``dest``, open while unpack() writes (never in a dry run)."""
        if self.root_fd is None:
            raise ValueError('the unpacker of %s is not writing' % self.dest)
        return self.root_fd

    def _close_cache(self) -> None:
        _key, fd = self._parent_cache
        if fd is not None:
            os.close(fd)
        self._parent_cache = (None, None)

    def _open_dir(self, parts: list[str], name: str, create: bool = True) -> int:
        """An fd of the directory ``parts`` under the root, walked without following any symlink."""
        key = tuple(parts)
        cached_key, cached_fd = self._parent_cache
        if cached_key == key and cached_fd is not None:
            return os.dup(cached_fd)
        fd = os.dup(self._root())
        try:
            for index, part in enumerate(parts):
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise UnpackError('%s member %r refers to %s, which is not in this %s: refusing the %s'
                                          % (self.what, name, '/'.join(parts[:index + 1]), self.what, self.what))
                    os.mkdir(part, 0o755, dir_fd=fd)
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                        raise UnpackError('%s member %r lies below %s, which is a symlink or not a directory: '
                                          'refusing the %s' % (self.what, name, '/'.join(parts[:index + 1]), self.what))
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        self._close_cache()
        self._parent_cache = (key, os.dup(fd))
        return fd

    def remove_at(self, dir_fd: int, entry: str) -> None:
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
                self.remove_at(fd, child)
        finally:
            os.close(fd)
        os.rmdir(entry, dir_fd=dir_fd)

    # the model ---------------------------------------------------------------------------------
    def _forget(self, parts: list[str]) -> None:
        """The model after ``parts`` was removed (a whiteout, or a member replacing another)."""
        key = tuple(parts)
        prefix = len(key)
        for other in [other for other in self.model if other[:prefix] == key]:
            del self.model[other]

    def plan(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        """Check a member against what the stream made so far and record it (no filesystem access)."""
        for index in range(1, len(parts)):
            kind = self.model.get(tuple(parts[:index]))
            if kind is None:
                self.model[tuple(parts[:index])] = DIR  # made implicitly
            elif kind != DIR:
                self.policy.refuse(member, 'lies below %s, which is a %s of the %s'
                                   % ('/'.join(parts[:index]), 'symlink' if kind == SYMLINK else 'non-directory',
                                      self.what))
        key = tuple(parts)
        previous = self.model.get(key)
        if previous is not None and self.policy.unique_names and not (previous == DIR and member.isdir()
                                                                      and key not in self._explicit):
            self.policy.refuse(member, 'appears twice')
        if member.islnk():
            target = tuple(member_parts(member.linkname, self.what, 'hard link target'))
            if not target or self.model.get(target) not in (FILE, OTHER):
                self.policy.refuse(member, 'is a hard link to %r, which is not an earlier file of this %s'
                                   % (member.linkname, self.what))
        self.policy.check(member, parts)
        if previous is not None and previous != DIR or not member.isdir():
            self._forget(parts)
        self.model[key] = _model_kind(member)
        self._explicit.add(key)

    # metadata --------------------------------------------------------------------------------
    def _skip(self, what: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1

    def _set_metadata(self, fd_or_path: int | str, member: tarfile.TarInfo, xattrs: Xattrs) -> None:
        """Owner, then mode (chown clears set-id bits), xattrs, mtime of an open fd (or /proc/self/fd path)."""
        if self.as_root:
            os.chown(fd_or_path, member.uid, member.gid)
        os.chmod(fd_or_path, member.mode & 0o7777)
        for attr, value in xattrs:
            try:
                os.setxattr(fd_or_path, attr, value)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
                    raise
                self._skip('xattr ' + attr)
        with contextlib.suppress(OverflowError, ValueError):
            os.utime(fd_or_path, (member.mtime, member.mtime))

    def _kept_xattrs(self, parts: list[str], member: tarfile.TarInfo) -> Xattrs:
        kept = []
        for attr, value in xattrs_of(member):
            if self.policy.keep_xattr(parts, attr, value):
                kept.append((attr, value))
            else:
                self._skip('xattr ' + attr)
        return kept

    # members ---------------------------------------------------------------------------------
    def unpack(self, archive: tarfile.TarFile) -> dict[str, Any]:
        """Unpack every member of ``archive`` (a tarfile opened in stream mode); -> stats."""
        if not self.dry_run:
            if self.dest is None:
                raise ValueError('only a dry run unpacks without a destination')
            self.root_fd = os.open(self.dest, _DIR_FLAGS)
        try:
            for member in archive:
                self.entries += 1
                if self.entries > self.limits.max_entries:
                    raise UnpackError('the %s has more than %d members: refusing it' % (self.what, self.limits.max_entries))
                self._member(archive, member)
            if not self.dry_run:
                self._close_cache()
                self._apply_dir_times()
        finally:
            self._close_cache()
            if self.root_fd is not None:
                os.close(self.root_fd)
                self.root_fd = None
        return {'entries': self.entries, 'bytes': self.bytes, 'skipped': dict(self.skipped)}

    def _apply_dir_times(self) -> None:
        for parts, mtime in reversed(self.dir_times):
            if not parts:
                os.utime(self._root(), (mtime, mtime))
                continue
            parent = self._open_dir(parts[:-1], '/'.join(parts), create=False)
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.utime(parts[-1], (mtime, mtime), dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(parent)

    def _count(self, member: tarfile.TarInfo) -> None:
        """The member's expanded size counts before a byte is written (sparse members at their full size)."""
        if member.isreg():
            self.bytes += member.size
            if self.bytes > self.limits.max_bytes:
                raise UnpackError('the %s is larger than the limit of %d bytes once unpacked (member %r is %d bytes%s): '
                                  'refusing it' % (self.what, self.limits.max_bytes, member.name, member.size,
                                                   ', sparse' if member.sparse else ''))

    def _member(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = member_parts(member.name, self.what)
        if self.policy.oci_whiteouts:
            for part in parts[:-1]:
                if part.startswith(WHITEOUT_PREFIX):
                    self.policy.refuse(member, 'lies below a whiteout')
        if not parts:
            # "./": the root directory itself.
            if not member.isdir():
                self.policy.refuse(member, 'names the root but is not a directory')
            self.policy.check(member, parts)
            xattrs = self._kept_xattrs(parts, member)
            self._feed(parts, member, xattrs)
            if not self.dry_run:
                self._set_metadata(self._root(), member, xattrs)
                self.dir_times.append(([], member.mtime))
            return
        if self.policy.oci_whiteouts and parts[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(member, parts)
            return
        self.plan(member, parts)
        self._count(member)
        xattrs = self._kept_xattrs(parts, member)
        self._feed(parts, member, xattrs)
        if self.dry_run:
            if member.isreg():
                self._copy(archive, member, None, parts)
            return
        if (member.ischr() or member.isblk()) and not self.as_root:
            self._skip('device node')
            return
        base = parts[-1]
        parent = self._open_dir(parts[:-1], member.name)
        try:
            if member.isdir():
                self._directory(parent, base, member, parts, xattrs)
            elif member.isreg():
                self._regular(archive, parent, base, member, parts, xattrs)
            elif member.issym():
                self.remove_at(parent, base)
                os.symlink(member.linkname, base, dir_fd=parent)
                if self.as_root:
                    os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
                os.utime(base, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
            elif member.islnk():
                self._hardlink(parent, base, member, parts)
            elif member.ischr() or member.isblk():
                self.remove_at(parent, base)
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(base, kind | (member.mode & 0o7777), os.makedev(member.devmajor, member.devminor),
                         dir_fd=parent)
                self._special_metadata(parent, base, member, xattrs)
            elif member.isfifo():
                self.remove_at(parent, base)
                os.mkfifo(base, member.mode & 0o7777, dir_fd=parent)
                self._special_metadata(parent, base, member, xattrs)
            else:
                self.policy.refuse(member, 'has an unsupported type %r' % member.type)
        finally:
            os.close(parent)

    def _feed(self, parts: list[str], member: tarfile.TarInfo, xattrs: Xattrs) -> None:
        if self.digest is not None and self.policy.in_digest(parts):
            self.digest.update(member_record(parts, member, xattrs_of(member)))

    def _directory(self, parent: int, base: str, member: tarfile.TarInfo, parts: list[str], xattrs: Xattrs) -> None:
        try:
            info = os.lstat(base, dir_fd=parent)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISDIR(info.st_mode):
            self.remove_at(parent, base)
            info = None
        if info is None:
            os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, _DIR_FLAGS, dir_fd=parent)
        try:
            self._set_metadata(fd, member, xattrs)
        finally:
            os.close(fd)
        self.dir_times.append((parts, member.mtime))

    def _copy(self, archive: tarfile.TarFile, member: tarfile.TarInfo, fd: int | None, parts: list[str]) -> None:
        """Stream the member's data into ``fd`` (None: only read it); holes of sparse members stay holes."""
        source = archive.extractfile(member)
        if source is None:  # (never: a regular file has its data)
            self.policy.refuse(member, 'has no data')
        digest = self.digest if self.digest is not None and self.policy.in_digest(parts) else None
        sparse = bool(member.sparse) and fd is not None
        captured: list[bytes] | None = [] if '/'.join(parts) in self.capture else None
        while True:
            data = source.read(CHUNK)
            if not data:
                break
            if digest is not None:
                digest.update(data)
            if captured is not None:
                captured.append(data)
            if fd is None:
                continue
            if sparse and data.count(0) == len(data):
                os.lseek(fd, len(data), os.SEEK_CUR)
                continue
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        if sparse and fd is not None:
            os.ftruncate(fd, member.size)
        if captured is not None:
            self.captured['/'.join(parts)] = b''.join(captured)

    def _regular(self, archive: tarfile.TarFile, parent: int, base: str, member: tarfile.TarInfo, parts: list[str],
                 xattrs: Xattrs) -> None:
        self.remove_at(parent, base)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
        try:
            self._copy(archive, member, fd, parts)
            self._set_metadata(fd, member, xattrs)
        finally:
            os.close(fd)

    def _hardlink(self, parent: int, base: str, member: tarfile.TarInfo, parts: list[str]) -> None:
        target_parts = member_parts(member.linkname, self.what, 'hard link target')
        if not target_parts:
            self.policy.refuse(member, 'is a hard link to the root')
        source_parent = self._open_dir(target_parts[:-1], member.name, create=False)
        try:
            try:
                info = os.lstat(target_parts[-1], dir_fd=source_parent)
            except FileNotFoundError:
                raise UnpackError('%s member %r is a hard link to %r, which is not in this %s: refusing the %s'
                                  % (self.what, member.name, member.linkname, self.what, self.what))
            if stat.S_ISDIR(info.st_mode):
                self.policy.refuse(member, 'is a hard link to the directory %r' % member.linkname)
            if target_parts == parts:
                return  # a link to itself: nothing to do
            self.remove_at(parent, base)
            os.link(target_parts[-1], base, src_dir_fd=source_parent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(source_parent)

    def _special_metadata(self, parent: int, base: str, member: tarfile.TarInfo, xattrs: Xattrs) -> None:
        """Metadata of a device or fifo, through an O_PATH fd so that the node is never opened."""
        fd = os.open(base, _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            self._set_metadata('/proc/self/fd/%d' % fd, member, xattrs)
        finally:
            os.close(fd)

    # OCI whiteouts (image layers) --------------------------------------------------------------
    def _whiteout(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        base = parts[-1]
        self.plan_whiteout(member, parts)
        self._feed(parts, member, [])
        if self.dry_run:
            return
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
            self.remove_at(parent, hidden)
            try:
                os.mknod(hidden, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=parent)
            except PermissionError:
                raise UnpackError('%s whiteout %r: creating an overlay whiteout (a 0:0 character device) needs root'
                                  % (self.what, member.name))
            if self.as_root:
                os.chown(hidden, 0, 0, dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)

    def plan_whiteout(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        base = parts[-1]
        for index in range(1, len(parts)):
            kind = self.model.get(tuple(parts[:index]))
            if kind is None:
                self.model[tuple(parts[:index])] = DIR
            elif kind != DIR:
                self.policy.refuse(member, 'lies below %s, which is not a directory of the %s'
                                   % ('/'.join(parts[:index]), self.what))
        if base == OPAQUE_MARKER or base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in ('', '.', '..'):
            raise UnpackError('%s whiteout %r names %r, outside its directory: refusing the %s'
                              % (self.what, member.name, hidden, self.what))
        self._forget(parts[:-1] + [hidden])
        self.model[tuple(parts[:-1] + [hidden])] = OTHER


WHITEOUT_PREFIX = '.wh.'
OPAQUE_MARKER = '.wh..wh..opq'
OPAQUE_XATTR = 'trusted.overlay.opaque'
