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

from .errors import RuncibleError


def atomic_write(path, data, mode=0o600):
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


def lock_file(path, what, shared=False, blocking=True, timeout=300.0, interval=0.01):
    """An fd holding an flock of ``path`` (made 0600, its directory 0700); close it to release.

    Not ``blocking``: None when another process holds it. After ``timeout`` seconds: RuncibleError
    naming ``what`` ("the lock of container web", say).
    """
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return fd
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        if not blocking or time.monotonic() > deadline:
            os.close(fd)
            if not blocking:
                return None
            raise RuncibleError('timed out after %ds waiting for %s (another task holds it)' % (timeout, what))
        time.sleep(interval)


@contextlib.contextmanager
def locked(path, what, shared=False, timeout=300.0, interval=0.01):
    """``with locked(path, what):`` -- lock_file() as a context."""
    fd = lock_file(path, what, shared=shared, timeout=timeout, interval=interval)
    try:
        yield
    finally:
        os.close(fd)


def tree_size(path):
    """Bytes of the regular files under ``path`` (hard links counted once)."""
    total = 0
    seen = set()
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
