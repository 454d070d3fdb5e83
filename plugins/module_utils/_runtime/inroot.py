# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paths inside a root (a container's ``/proc/PID/root``, a root filesystem directory), never out of it.

A path given to a container is the container's: ``/etc/passwd`` there may be an absolute symlink,
and the host resolving it (``open('/proc/PID/root/etc/passwd')``) would follow it to the *host's*
file, or block forever on a FIFO. Every read of a container's file by name goes through here:

* Resolution stays in the root, as a process whose root it is sees the path: an absolute symlink
  target starts again at the root, ``..`` stops there, at most MAX_SYMLINKS links are followed.
  Where the kernel has openat2(2) (Linux 5.6), it does this itself (``RESOLVE_IN_ROOT``, and
  ``RESOLVE_NO_MAGICLINKS`` so no ``/proc/PID/fd/N``-style link jumps anywhere); elsewhere a walk
  opens each component with ``O_PATH | O_NOFOLLOW`` relative to the previous one's fd and resolves
  symlinks by hand. Either gives an ``O_PATH`` fd: nothing is opened for reading yet. The walk keeps
  the fds of the directories it went through, so ``..`` goes back to one of them and never asks the
  kernel for a parent.
* Only a regular file is read: the ``O_PATH`` fd is fstat'ed first, and a FIFO, socket, device or
  directory is refused without ever being opened; the regular file is then re-opened through
  ``/proc/self/fd`` (the same inode, so nothing can be swapped in between) with ``O_NONBLOCK``.
* At most MAX_FILE_SIZE bytes (4 MiB) are read, and a lookup and its read must finish within a
  deadline (READ_TIMEOUT seconds), checked between system calls.

* Writing (container_copy) goes through directory fds opened here (:func:`open_dir`, :func:`make_dirs`):
  an exclusive temporary file renamed over the entry relative to the directory's fd
  (:func:`replace_file`), attributes changed through ``/proc/self/fd`` of an ``O_NOFOLLOW`` fd; a final
  symlink is replaced, never written through; a mount point is recognised (:func:`is_mount_point_at`).

The root itself (the ``root`` argument) is the caller's and is followed as given. Failures are
``OSError``: ``FileNotFoundError``/``NotADirectoryError`` when the path is not there in the root,
others (``ELOOP``, ``EINVAL`` for a file that is not regular, ``EFBIG``, ``ETIMEDOUT``) when it is
refused; :func:`reason` says which in words. ctypes is imported on the first lookup only (by :mod:`.libc`).
"""

from __future__ import annotations

import errno
import os
import stat
import time
from typing import TYPE_CHECKING

from . import libc

if TYPE_CHECKING:
    from typing import Callable, Iterable, Literal

MAX_SYMLINKS = 40  # as the kernel's MAXSYMLINKS
MAX_FILE_SIZE = 4 << 20
READ_TIMEOUT = 5.0
READ_CHUNK = 1 << 16

_O_PATH = getattr(os, 'O_PATH', 0o10000000)
_PATH_FLAGS = _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_AT_FDCWD = -100
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_OPENAT2_RETRIES = 16

# None: not probed yet; False: this kernel or architecture has no usable openat2; else the call.
_openat2: Callable[[int, str, int, int], int] | Literal[False] | None = None


# -- openat2(2) ------------------------------------------------------------------------------------

def _load_openat2() -> Callable[[int, str, int, int], int] | Literal[False]:
    """-> :func:`.libc.openat2` when a probe of it succeeds here, else False."""
    try:
        os.close(libc.openat2(_AT_FDCWD, '/', _O_PATH | os.O_CLOEXEC, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS))
    except OSError:
        # ENOSYS (kernel < 5.6, or an ABI whose number libc does not know), EPERM (a seccomp filter),
        # EINVAL/E2BIG (flags unknown)
        return False
    return libc.openat2


def have_openat2() -> bool:
    """Does this process resolve with openat2(2) (else with the component walk)?"""
    global _openat2
    if _openat2 is None:
        _openat2 = _load_openat2()
    return _openat2 is not False


def _kernel_lookup(root_fd: int, path: str, follow: bool) -> int | None:
    """-> an O_PATH fd from openat2, or None when the walk must do it (the kernel kept saying EAGAIN)."""
    openat2 = _openat2
    if not openat2:
        return None  # not probed, or not usable here: have_openat2() says which
    flags = _O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    for _attempt in range(_OPENAT2_RETRIES):
        try:
            return openat2(root_fd, path or '.', flags, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        except OSError as exc:
            # EAGAIN: a rename or mount elsewhere raced the lookup; the kernel asks to try again.
            if exc.errno != errno.EAGAIN:
                raise
    return None


# -- the component walk ------------------------------------------------------------------------------

def _components(path: str) -> list[str]:
    """The names of ``path``; a trailing ``/`` or ``/.`` is kept as ``.`` (the path must then be a directory)."""
    raw = path.split('/')
    parts = [part for part in raw if part not in ('', '.')]
    if parts and raw[-1] in ('', '.'):
        parts.append('.')
    return parts


def _check_deadline(deadline: float | None, path: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise OSError(errno.ETIMEDOUT, 'not resolved and read in the time allowed', path)


def _too_large(limit: int, path: str) -> OSError:
    return OSError(errno.EFBIG, 'larger than %s, the most that is read' % _size_text(limit), path)


def _size_text(size: int) -> str:
    return '%d MiB' % (size >> 20) if size and not size & ((1 << 20) - 1) else '%d bytes' % size


def _walk(root_fd: int, path: str, follow: bool = True, deadline: float | None = None, trail: list[str] | None = None) -> int:
    """-> an O_PATH fd of ``path`` resolved inside ``root_fd``, by hand, one component at a time.

    ``trail``, a list, receives the names walked through (in the root): on failure, the names up to
    the component that failed, then that one and the rest as given.
    """
    parts = _components(path)
    trail = [] if trail is None else trail
    held: list[int] = []  # O_PATH fds of the directories below the root walked into; held[-1] is the current one
    links = 0
    try:
        while parts:
            _check_deadline(deadline, path)
            part = parts.pop(0)
            if part == '..':
                if held:
                    os.close(held.pop())
                    trail.pop()
                continue
            if part == '.':  # a trailing '/': the component before it had to be a directory, and was
                continue
            try:
                fd = os.open(part, _PATH_FLAGS, dir_fd=held[-1] if held else root_fd)
            except OSError:
                trail.extend([part] + parts)
                raise
            try:
                mode = os.fstat(fd).st_mode
                if stat.S_ISLNK(mode) and (parts or follow):
                    target = os.readlink('', dir_fd=fd)
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                    if target.startswith('/'):
                        while held:
                            os.close(held.pop())
                        del trail[:]
                    parts[:0] = _components(target)
                    os.close(fd)
                    continue
                if parts and not stat.S_ISDIR(mode):
                    trail.extend([part] + parts)
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            except BaseException:
                os.close(fd)
                raise
            held.append(fd)
            trail.append(part)
        return held.pop() if held else os.dup(root_fd)
    finally:
        for fd in held:
            os.close(fd)


# -- the API ------------------------------------------------------------------------------------------

def open_root(root: str | int) -> int:
    """An O_PATH fd of ``root`` (a directory path, followed as given, or an fd, duplicated); the caller closes it."""
    if isinstance(root, int):
        return os.dup(root)
    return os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def lookup(root: str | int, path: str, follow: bool = True, deadline: float | None = None) -> int:
    """An O_PATH fd of ``path`` resolved inside ``root`` (a path or an fd); the caller closes it.

    ``follow``: follow a symlink in the last component (inside the root). Raises OSError.
    """
    if '\0' in path:
        raise OSError(errno.EINVAL, 'a path cannot hold a NUL byte', path)
    root_fd = open_root(root)
    try:
        if have_openat2():
            fd = _kernel_lookup(root_fd, path, follow)
            if fd is not None:
                return fd
        return _walk(root_fd, path, follow, deadline)
    finally:
        os.close(root_fd)


def exists(root: str | int, path: str) -> bool:
    """Is there something at ``path`` inside ``root`` (symlinks followed inside it; a dangling one is not)?

    Raises OSError for a lookup that is refused rather than missing (``ELOOP``: a symlink loop).
    """
    try:
        os.close(lookup(root, path, deadline=time.monotonic() + READ_TIMEOUT))
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return False
        raise
    return True


def listdir(root: str | int, path: str) -> list[str]:
    """The names in the directory ``path`` inside ``root``; raises OSError (NotADirectoryError for a non-directory)."""
    fd = lookup(root, path, deadline=time.monotonic() + READ_TIMEOUT)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        # Opening '.' relative to the O_PATH fd opens that very directory, and O_DIRECTORY opens nothing else.
        dir_fd = os.open('.', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        return os.listdir(dir_fd)
    finally:
        os.close(dir_fd)


def resolve_path(root: str | int, path: str) -> str:
    """The path inside ``root`` that ``path`` resolves to, for messages: never open it by name again.

    From the component walk (both lookups agree on where a path leads). Components from the first
    one that is missing on are kept as given; a symlink loop raises OSError (``ELOOP``).
    """
    trail: list[str] = []
    root_fd = open_root(root)
    try:
        os.close(_walk(root_fd, path, True, time.monotonic() + READ_TIMEOUT, trail))
    except (FileNotFoundError, NotADirectoryError):
        pass
    finally:
        os.close(root_fd)
    return '/' + '/'.join(part for part in trail if part != '.')


def kind(root: str | int, path: str) -> str | None:
    """What ``path`` inside ``root`` leads to, in words (``'a regular file'``, ``'a FIFO'``, ...); None for nothing.

    Nothing is opened but with ``O_PATH``. None too when the lookup fails (a missing file, a loop).
    """
    try:
        fd = lookup(root, path, deadline=time.monotonic() + READ_TIMEOUT)
    except OSError:
        return None
    try:
        return _kind(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISREG, 'a regular file'), (stat.S_ISDIR, 'a directory'), (stat.S_ISFIFO, 'a FIFO'),
                       (stat.S_ISSOCK, 'a socket'), (stat.S_ISCHR, 'a character device'),
                       (stat.S_ISBLK, 'a block device'), (stat.S_ISLNK, 'a symbolic link')):
        if test(mode):
            return name
    return 'a file of an unknown kind'


def read_file(root: str | int, path: str, limit: int = MAX_FILE_SIZE, timeout: float = READ_TIMEOUT) -> bytes:
    """The bytes of the regular file ``path`` inside ``root`` (a directory path or an fd).

    Refused (OSError) when it is not a regular file (``EINVAL``; never opened), larger than ``limit``
    bytes (``EFBIG``), or not read within ``timeout`` seconds (``ETIMEDOUT``).
    """
    deadline = time.monotonic() + timeout
    try:
        return _read_regular(root, path, limit, deadline)
    except OSError as exc:
        if exc.errno == errno.ETIMEDOUT:
            raise OSError(errno.ETIMEDOUT, 'not read within %s s' % timeout, path)
        raise


def _read_regular(root: str | int, path: str, limit: int, deadline: float) -> bytes:
    fd = lookup(root, path, deadline=deadline)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, '%s, not a regular file' % _kind(info.st_mode), path)
        if info.st_size > limit:
            raise _too_large(limit, path)
        try:
            # The inode the O_PATH fd holds, opened for reading: nothing can be swapped in meanwhile.
            data_fd = os.open('/proc/self/fd/%d' % fd, _READ_FLAGS)
        except FileNotFoundError:
            raise OSError(errno.EOPNOTSUPP, 'cannot re-open it through /proc/self/fd: is /proc mounted?', path)
    finally:
        os.close(fd)
    try:
        again = os.fstat(data_fd)
        if (again.st_dev, again.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(again.st_mode):
            raise OSError(errno.EINVAL, 'it changed while it was opened', path)
        chunks: list[bytes] = []
        size = 0
        while True:
            _check_deadline(deadline, path)
            chunk = os.read(data_fd, min(READ_CHUNK, limit + 1 - size))
            if not chunk:
                return b''.join(chunks)
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, path)
            chunks.append(chunk)
    finally:
        os.close(data_fd)


def reason(exc: OSError) -> str:
    """Why a lookup or read failed, in words."""
    if exc.errno == errno.ELOOP:
        return 'a symbolic link loop, more than %d symbolic links, or a link only /proc can follow' % MAX_SYMLINKS
    return exc.strerror or str(exc)


# -- writing: through directory fds, never by a path the host resolves ------------------------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_TEMP_PREFIX = '.runcible-'


def open_dir(root: str | int, path: str) -> int:
    """A directory fd (``O_RDONLY | O_DIRECTORY``) of ``path`` resolved inside ``root``; the caller closes it.

    Symlinks on the way are followed inside the root. Raises OSError (``NotADirectoryError`` when it
    leads to something else than a directory).
    """
    fd = lookup(root, path, deadline=time.monotonic() + READ_TIMEOUT)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        # '.' relative to the O_PATH fd opens that very directory.
        return os.open('.', _DIR_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def make_dirs(root: str | int, path: str, mode: int = 0o755) -> list[str]:
    """Create the missing directories of ``path`` inside ``root`` (owned by the caller, ``mode`` exactly).

    Each one is made with ``mkdirat`` relative to the fd of its parent, itself resolved inside the root.
    ``path`` must be absolute and hold no ``..``. -> the paths created, top first.
    """
    parts = [part for part in path.split('/') if part not in ('', '.')]
    if not path.startswith('/') or '..' in parts:
        raise OSError(errno.EINVAL, 'not an absolute path without ..', path)
    existing = len(parts)
    while existing:
        try:
            os.close(open_dir(root, '/' + '/'.join(parts[:existing])))
            break
        except FileNotFoundError:
            existing -= 1
    created = []
    for index in range(existing, len(parts)):
        parent = open_dir(root, '/' + '/'.join(parts[:index]))
        try:
            os.mkdir(parts[index], 0o700, dir_fd=parent)
            made = os.open(parts[index], _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent)
            try:
                os.fchmod(made, mode)  # the umask left out
            finally:
                os.close(made)
        finally:
            os.close(parent)
        created.append('/' + '/'.join(parts[:index + 1]))
    return created


def entry_at(dir_fd: int, name: str) -> os.stat_result | None:
    """The ``lstat`` of ``name`` in the directory ``dir_fd`` (a symlink is not followed); None when absent."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_regular_at(dir_fd: int, name: str) -> int:
    """A read fd (``O_NONBLOCK``) of the regular file ``name`` in ``dir_fd``; the caller closes it.

    A symlink is not followed (``ELOOP``); a FIFO, socket, device or directory is refused (``EINVAL``)
    without ever being opened for reading, as :func:`read_file` does.
    """
    if '/' in name or name in ('', '.', '..'):
        raise OSError(errno.EINVAL, 'not a name in a directory', name)
    fd = os.open(name, _PATH_FLAGS, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.ELOOP if stat.S_ISLNK(info.st_mode) else errno.EINVAL,
                          '%s, not a regular file' % _kind(info.st_mode), name)
        data_fd = os.open('/proc/self/fd/%d' % fd, _READ_FLAGS)
    finally:
        os.close(fd)
    again = os.fstat(data_fd)
    if (again.st_dev, again.st_ino) != (info.st_dev, info.st_ino):
        os.close(data_fd)
        raise OSError(errno.EINVAL, 'it changed while it was opened', name)
    return data_fd


def replace_file(dir_fd: int, name: str, chunks: Iterable[bytes], uid: int, gid: int, mode: int) -> None:
    """Make ``name`` in the directory ``dir_fd`` a regular file holding ``chunks``, atomically.

    A temporary file is created exclusively in that directory (``O_EXCL | O_NOFOLLOW``, mode 0600), filled,
    fsync'ed, given ``uid``/``gid`` and then ``mode`` (chown clears set-id bits, so the mode comes after),
    and renamed over ``name`` relative to ``dir_fd`` (whatever was there, a symlink included, is replaced;
    nothing is ever written through a link); then the directory is fsync'ed. On failure the temporary
    file is removed. ``chunks`` may raise to abandon the write.
    """
    if '/' in name or name in ('', '.', '..'):
        raise OSError(errno.EINVAL, 'not a name in a directory', name)
    temp = _TEMP_PREFIX + os.urandom(8).hex()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
            os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    os.fsync(dir_fd)


def set_attributes_at(dir_fd: int, name: str, uid: int, gid: int, mode: int) -> None:
    """Give the regular file ``name`` in ``dir_fd`` this owner and mode, without following a symlink.

    The file is reached by an ``O_PATH | O_NOFOLLOW`` fd, checked to be regular, and changed through
    ``/proc/self/fd`` (the same inode: nothing can be swapped in between).
    """
    fd = os.open(name, _PATH_FLAGS, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, '%s, not a regular file' % _kind(info.st_mode), name)
        magic = '/proc/self/fd/%d' % fd
        if (info.st_uid, info.st_gid) != (uid, gid):
            os.chown(magic, uid, gid)
        os.chmod(magic, mode)
    finally:
        os.close(fd)


def _mount_id(fd: int) -> int | None:
    """The id of the mount ``fd`` is on (``mnt_id`` of /proc/self/fdinfo), None when the kernel does not say."""
    try:
        with open('/proc/self/fdinfo/%d' % fd, 'rb') as handle:
            for line in handle:
                if line.startswith(b'mnt_id:'):
                    return int(line.split(b':', 1)[1])
    except (OSError, ValueError):
        pass
    return None


def is_mount_point_at(dir_fd: int, name: str) -> bool:
    """Is ``name`` in the directory ``dir_fd`` a mount point, in the mount namespace ``dir_fd`` belongs to?

    Also one of another namespace (a file bind-mounted into a container, seen through ``/proc/PID/root``):
    the kernel lets a process of the host rename over such an entry, and then detaches the container's
    mount. By the mount ids of the directory and of the entry (opened ``O_PATH | O_NOFOLLOW``, which
    crosses a mount on it). False when the entry is absent.
    """
    try:
        fd = os.open(name, _PATH_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    try:
        inner, outer = _mount_id(fd), _mount_id(dir_fd)
        return inner is not None and outer is not None and inner != outer
    finally:
        os.close(fd)
