# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container's root filesystem: an overlay over the user's directory, which is never modified."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

from .errors import RuncibleError, ValidationError

MNT_DETACH = 2
_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return _libc


def _escape_overlay_path(path):
    # overlayfs splits its options at ',' and lower dirs at ':'; a backslash escapes both.
    return path.replace('\\', '\\\\').replace(',', '\\,').replace(':', '\\:')


def validate_rootfs(path):
    if not path or not os.path.isabs(path):
        raise ValidationError('rootfs: %r must be the absolute path of a directory' % (path,))
    if not os.path.isdir(path):
        raise ValidationError('rootfs: %s does not exist or is not a directory; create the root filesystem first '
                              '(e.g. with mmdebstrap or by unpacking an image)' % path)
    return os.path.normpath(path)


def is_mounted(target):
    """True when ``target`` is a mount point (by /proc/self/mountinfo; the path's 5th field)."""
    target = os.path.realpath(target)
    try:
        with open('/proc/self/mountinfo', 'rb') as handle:
            for line in handle:
                fields = line.split(b' ', 5)
                if len(fields) > 4 and _unescape_mountinfo(fields[4]) == target:
                    return True
    except (IOError, OSError):
        pass
    return False


def _unescape_mountinfo(raw):
    text = raw.decode('utf-8', 'surrogateescape')
    if '\\' in text:
        for code in ('040', '011', '012', '134'):
            text = text.replace('\\' + code, chr(int(code, 8)))
    return text


def mount_overlay(lower_dirs, upper, work, target):
    """Mount an overlay of ``lower_dirs`` (top first) with ``upper``/``work`` at ``target``."""
    for directory in (upper, work, target):
        os.makedirs(directory, mode=0o755, exist_ok=True)
    if is_mounted(target):
        return False
    options = 'lowerdir=%s,upperdir=%s,workdir=%s' % (
        ':'.join(_escape_overlay_path(d) for d in lower_dirs), _escape_overlay_path(upper), _escape_overlay_path(work))
    if _lib().mount(b'overlay', target.encode(), b'overlay', 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise RuncibleError('cannot mount the overlay root filesystem at %s (lower %s): %s; rootfs_mode: direct '
                            'avoids overlayfs' % (target, ':'.join(lower_dirs), os.strerror(err)))
    return True


def unmount(target):
    """Unmount ``target`` if mounted (lazily if busy); -> True when something was unmounted."""
    if not is_mounted(target):
        return False
    if _lib().umount2(target.encode(), 0) != 0:
        err = ctypes.get_errno()
        if err == errno.EBUSY:
            if _lib().umount2(target.encode(), MNT_DETACH) == 0:
                return True
            err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise RuncibleError('cannot unmount %s: %s' % (target, os.strerror(err)))
    return True
