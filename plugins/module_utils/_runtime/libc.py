# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The C library calls Python's ``os`` module lacks: mount, umount2, unshare, prctl, the openat2 system call.

One loader for the whole runtime. The library comes from the process's own symbols
(``CDLL(None)``): ``ctypes.util.find_library`` would run ldconfig in a subprocess. ctypes itself is
imported on the first call only, so a task that mounts nothing does not pay for it. A failed call
raises ``OSError(errno, strerror)``.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ctypes
    from types import ModuleType
    from typing import Any, Literal, NoReturn

    # struct open_how, the syscall number, the struct's size
    OpenHowSetup = tuple[type[ctypes.Structure], ctypes.c_long, ctypes.c_size_t]

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

# openat2's number in the table shared by x86_64 and the generic (asm-generic) ABIs.
_OPENAT2_NUMBER = 437
_OPENAT2_MACHINES = ('x86_64', 'i386', 'i486', 'i586', 'i686', 'aarch64', 'arm64', 'riscv64', 'loongarch64',
                     'ppc64le', 'ppc64', 'ppc', 's390x')

_libc: tuple[ctypes.CDLL, ModuleType] | None = None
# None: not set up yet; False: no known number for this ABI; else (struct open_how, number, size).
_openat2: OpenHowSetup | Literal[False] | None = None


def _load() -> tuple[ctypes.CDLL, ModuleType]:
    """-> (the C library, the ctypes module), loaded on the first call."""
    global _libc
    if _libc is None:
        import ctypes
        lib = ctypes.CDLL(None, use_errno=True)
        lib.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        lib.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        lib.unshare.argtypes = [ctypes.c_int]
        lib.setns.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.syscall.restype = ctypes.c_long
        _libc = (lib, ctypes)
    return _libc


def _bytes(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _raise(ctypes: ModuleType, filename: str | None = None) -> NoReturn:
    code = ctypes.get_errno()
    if filename is None:
        raise OSError(code, os.strerror(code))
    raise OSError(code, os.strerror(code), filename)


def _call(name: str, *args: Any) -> None:
    lib, ctypes = _load()
    if getattr(lib, name)(*args) != 0:
        _raise(ctypes)


def mount(source: str | bytes | None, target: str | bytes, fstype: str | bytes | None, flags: int,
          data: str | bytes | None) -> None:
    """mount(2); the strings may be str, bytes or None."""
    _call('mount', _bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data))


def umount2(target: str | bytes, flags: int) -> None:
    _call('umount2', _bytes(target), flags)


def unshare(flags: int) -> None:
    """unshare(2) for the calling thread (os.unshare exists only from Python 3.12 on)."""
    _call('unshare', flags)


def setns(fd: int, nstype: int) -> None:
    """setns(2) for the calling thread (os.setns exists only from Python 3.12 on)."""
    if hasattr(os, 'setns'):
        os.setns(fd, nstype)
        return
    _call('setns', fd, nstype)


def child_subreaper() -> int:
    """prctl(PR_GET_CHILD_SUBREAPER): is this process a child subreaper (non-zero)?"""
    lib, ctypes = _load()
    value = ctypes.c_int(0)
    if lib.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0) != 0:
        _raise(ctypes)
    return value.value


def set_child_subreaper(enabled: bool) -> None:
    """prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are re-parented to this process (or no longer)."""
    _call('prctl', PR_SET_CHILD_SUBREAPER, 1 if enabled else 0, 0, 0, 0)


def _setup_openat2() -> OpenHowSetup | Literal[False]:
    global _openat2
    if _openat2 is None:
        machine = os.uname().machine
        if machine not in _OPENAT2_MACHINES and not machine.startswith('arm'):
            _openat2 = False
            return _openat2
        _load()
        import ctypes  # loaded by _load() already

        if machine == 'x86_64' and ctypes.sizeof(ctypes.c_void_p) != 8:
            _openat2 = False  # i386 or x32 on an x86_64 kernel: two tables, not worth guessing which
            return _openat2

        class OpenHow(ctypes.Structure):
            _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]

        _openat2 = (OpenHow, ctypes.c_long(_OPENAT2_NUMBER), ctypes.c_size_t(ctypes.sizeof(OpenHow)))
    return _openat2


def openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int:
    """openat2(2) with ``struct open_how`` {flags, mode 0, resolve} -> a new fd; raises OSError(errno, strerror, path).

    ``ENOSYS`` where the kernel lacks it (< 5.6) or its number is not known here (an architecture
    outside the shared table, or a 32-bit process on an x86_64 kernel; ctypes is not even loaded then).
    """
    setup = _setup_openat2()
    if setup is False:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS), path)
    open_how, number, size = setup
    lib, ctypes = _load()
    how = open_how(flags, 0, resolve)
    fd = lib.syscall(number, ctypes.c_long(dir_fd), ctypes.c_char_p(os.fsencode(path)), ctypes.byref(how), size)
    if fd < 0:
        _raise(ctypes, path)
    return fd
