# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container's root filesystem: an overlay over the user's directory, which is never modified."""

from __future__ import annotations

import errno
import os

from . import libc
from .errors import RuncibleError

MNT_DETACH = 2


def _escape_overlay_path(path: str) -> str:
    # overlayfs splits its options at ',' and lower dirs at ':'; a backslash escapes both.
    return path.replace('\\', '\\\\').replace(',', '\\,').replace(':', '\\:')


def is_mounted(target: str) -> bool:
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


def _unescape_mountinfo(raw: bytes) -> str:
    text = raw.decode('utf-8', 'surrogateescape')
    if '\\' in text:
        for code in ('040', '011', '012', '134'):
            text = text.replace('\\' + code, chr(int(code, 8)))
    return text


def mount_overlay(lower_dirs: list[str], upper: str, work: str, target: str, mount_label: str | None = None) -> bool:
    """Mount an overlay of ``lower_dirs`` (top first) with ``upper``/``work`` at ``target``.

    ``mount_label``: the SELinux context every file of the mount shows (``context=``), the container's.
    """
    for directory in (upper, work, target):
        os.makedirs(directory, mode=0o755, exist_ok=True)
    if is_mounted(target):
        return False
    options = 'lowerdir=%s,upperdir=%s,workdir=%s' % (
        ':'.join(_escape_overlay_path(d) for d in lower_dirs), _escape_overlay_path(upper), _escape_overlay_path(work))
    if mount_label:
        options += ',context="%s"' % mount_label
    try:
        libc.mount('overlay', target, 'overlay', 0, options)
    except OSError as exc:
        raise RuncibleError('cannot mount the overlay root filesystem at %s (lower %s): %s; rootfs_mode: direct '
                            'avoids overlayfs' % (target, ':'.join(lower_dirs), exc.strerror))
    return True


def unmount(target: str) -> bool:
    """Unmount ``target`` if mounted (lazily if busy); -> True when something was unmounted."""
    if not is_mounted(target):
        return False
    try:
        libc.umount2(target, 0)
    except OSError as exc:
        failure = exc
        if exc.errno == errno.EBUSY:
            try:
                libc.umount2(target, MNT_DETACH)
                return True
            except OSError as again:
                failure = again
        if failure.errno not in (errno.EINVAL, errno.ENOENT):
            # libc's OSError says os.strerror(errno)
            raise RuncibleError('cannot unmount %s: %s' % (target, failure.strerror))
    return True
