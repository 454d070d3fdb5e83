# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File primitives of the runtime: atomic writes, lock files, sizes of trees."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import time
from typing import TYPE_CHECKING

from .errors import RuncibleError

if TYPE_CHECKING:
    from typing import Iterator


def atomic_write(path: str, data: str | bytes, mode: int = 0o600) -> None:
    """Write bytes or text to ``path`` atomically: temp file in the same dir, fsync, rename, fsync dir."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    directory = os.path.dirname(path)
    fd, tmp_path = tempfile.mkstemp(prefix='.tmp-', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, mode)
        os.rename(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _open_lock_file(path: str, create_dirs: bool = True) -> int:
    """An fd of the lock file ``path`` (made 0600, its directory 0700)."""
    if create_dirs:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _flock(fd: int, shared: bool) -> bool:
    """One attempt to flock ``fd``: False when another process holds the lock (on another error ``fd`` is closed)."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except (IOError, OSError) as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
    return False


def lock_file(path: str, what: str, shared: bool = False, timeout: float = 300.0, interval: float = 0.01,
              create_dirs: bool = True) -> int:
    """An fd holding an flock of ``path`` (made 0600, its directory 0700 unless ``create_dirs`` is false: then a
    missing directory raises FileNotFoundError); close it to release.

    After ``timeout`` seconds: RuncibleError naming ``what`` ("the lock of container web", say).
    """
    fd = _open_lock_file(path, create_dirs)
    deadline = time.monotonic() + timeout
    while not _flock(fd, shared):
        if time.monotonic() > deadline:
            os.close(fd)
            raise RuncibleError('timed out after %ds waiting for %s (another task holds it)' % (timeout, what))
        time.sleep(interval)
    return fd


def try_lock_file(path: str, shared: bool = False) -> int | None:
    """lock_file() without waiting: None when another process holds the lock."""
    fd = _open_lock_file(path)
    if _flock(fd, shared):
        return fd
    os.close(fd)
    return None


@contextlib.contextmanager
def locked(path: str, what: str, shared: bool = False, timeout: float = 300.0, interval: float = 0.01) -> Iterator[None]:
    """``with locked(path, what):`` -- lock_file() as a context."""
    fd = lock_file(path, what, shared=shared, timeout=timeout, interval=interval)
    try:
        yield
    finally:
        os.close(fd)


def tree_size(path: str) -> int:
    """Bytes of the regular files under ``path`` (hard links counted once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for directory, _dirs, names in os.walk(path):
        for name in names:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total
