# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The C library calls Python's ``os`` module lacks: mount, umount2, unshare.

One loader for the whole runtime. The library comes from the process's own symbols
(``CDLL(None)``): ``ctypes.util.find_library`` would run ldconfig in a subprocess. ctypes itself is
imported on the first call only, so a task that mounts nothing does not pay for it. A failed call
raises ``OSError(errno, strerror)``.
"""

from __future__ import annotations

import os

_libc = None


def _load():
    global _libc
    if _libc is None:
        import ctypes
        lib = ctypes.CDLL(None, use_errno=True)
        lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        lib.unshare.argtypes = [ctypes.c_int]
        _libc = (lib, ctypes.get_errno)
    return _libc


def _bytes(value):
    return value.encode() if isinstance(value, str) else value


def _call(name, *args):
    lib, get_errno = _load()
    if getattr(lib, name)(*args) != 0:
        code = get_errno()
        raise OSError(code, os.strerror(code))


def mount(source, target, fstype, flags, data):
    """mount(2); the strings may be str, bytes or None."""
    _call('mount', _bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data))


def umount2(target, flags):
    _call('umount2', _bytes(target), flags)


def unshare(flags):
    """unshare(2) for the calling thread (os.unshare exists only from Python 3.12 on)."""
    _call('unshare', flags)
