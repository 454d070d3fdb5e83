# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local volume driver's options (``type``, ``device``, ``o``), checked: what :mod:`.volumes` may mount."""

from __future__ import annotations

import os
import re
import stat
from typing import TYPE_CHECKING

from .errors import ValidationError

if TYPE_CHECKING:
    from typing import Any

OPTION_KEYS = ('type', 'device', 'o')

# mount(2) flags of the `o` words that are flags (0: the kernel's default, named only to say so).
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT = 1, 2, 4, 8, 16, 32
MS_DIRSYNC, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 128, 1024, 2048, 4096, 16384
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
UMOUNT_NOFOLLOW = 8
FLAG_WORDS = {'ro': MS_RDONLY, 'rw': 0, 'nosuid': MS_NOSUID, 'suid': 0, 'nodev': MS_NODEV, 'dev': 0,
              'noexec': MS_NOEXEC, 'exec': 0, 'sync': MS_SYNCHRONOUS, 'async': 0, 'dirsync': MS_DIRSYNC,
              'noatime': MS_NOATIME, 'nodiratime': MS_NODIRATIME, 'relatime': MS_RELATIME,
              'strictatime': MS_STRICTATIME, 'bind': MS_BIND, 'rbind': MS_BIND | MS_REC}
CONFLICTS = (('ro', 'rw'), ('nosuid', 'suid'), ('nodev', 'dev'), ('noexec', 'exec'), ('sync', 'async'),
             ('bind', 'rbind'), ('noatime', 'relatime'), ('noatime', 'strictatime'), ('relatime', 'strictatime'))
# `o` words with a value, tmpfs's, and what the value may be.
VALUE_WORDS = {'size': r'[0-9]+[kKmMgG%]?', 'nr_blocks': r'[0-9]+[kKmMgG]?', 'nr_inodes': r'[0-9]+[kKmMgG]?',
               'mode': r'[0-7]{3,4}', 'uid': r'[0-9]+', 'gid': r'[0-9]+'}
FS_TYPE = r'[a-z0-9][a-z0-9_.-]{0,31}'
# Not volumes: what the kernel shows or what would mount the host's own state into a container.
REFUSED_TYPES = ('proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'devtmpfs', 'securityfs', 'debugfs', 'tracefs',
                 'bpf', 'pstore', 'efivarfs', 'configfs', 'fusectl', 'mqueue', 'hugetlbfs', 'binfmt_misc',
                 'autofs', 'rpc_pipefs', 'nsfs', 'overlay')


def split_o(value: str) -> list[str]:
    """``"size=64m, mode=1777"`` -> ``['size=64m', 'mode=1777']`` (the words, stripped, empty ones dropped)."""
    return [word.strip() for word in value.split(',') if word.strip()]


def normalise_options(options: object) -> dict[str, str]:
    """The local driver's options checked -> {type, device, o} (only those given; {} for a plain directory).

    Raises ValidationError saying what is allowed. The device of a non-tmpfs volume is checked to exist here.
    """
    if options is None or options == {}:
        return {}
    if not isinstance(options, dict):
        raise ValidationError('options: expected a dictionary of type, device and o, got a %s' % type(options).__name__)
    unknown = sorted(str(key) for key in options if key not in OPTION_KEYS)
    if unknown:
        raise ValidationError('options: unknown %s; the local driver takes type, device and o' % ', '.join(unknown))
    result = {}
    for key in OPTION_KEYS:
        value = options.get(key)
        if value is None or value == '':
            continue
        if not isinstance(value, str):
            raise ValidationError('options.%s: expected a string, got %r' % (key, value))
        result[key] = value.strip()
    if not result:
        return {}
    fs_type = result.get('type')
    if fs_type is None:
        raise ValidationError('options: type is required with device or o (tmpfs, none with o=bind, or the file '
                              'system of the device, such as ext4)')
    if not re.fullmatch(FS_TYPE, fs_type) or fs_type in REFUSED_TYPES:
        raise ValidationError('options.type: %r is not a file system a volume can have; use tmpfs, none (with '
                              'o=bind) or a disk file system such as ext4 or xfs' % fs_type)
    words = split_o(result.get('o', ''))
    _check_words(fs_type, words)
    if words:
        result['o'] = ','.join(words)
    else:
        result.pop('o', None)
    _check_device(fs_type, result, words)
    return result


def _check_words(fs_type: str, words: list[str]) -> None:
    seen = set()
    for word in words:
        key, has_value, value = word.partition('=')
        if has_value:
            if key not in VALUE_WORDS:
                raise ValidationError('options.o: %r is not an allowed mount option; allowed: %s, and %s with a value'
                                      % (word, ', '.join(sorted(FLAG_WORDS)), ', '.join(sorted(VALUE_WORDS))))
            if not re.fullmatch(VALUE_WORDS[key], value):
                raise ValidationError('options.o: %r has a bad value (%s takes %s)' % (word, key, _value_help(key)))
            if fs_type != 'tmpfs':
                raise ValidationError('options.o: %s is an option of tmpfs, not of %s' % (key, fs_type))
        elif key not in FLAG_WORDS:
            raise ValidationError('options.o: %r is not an allowed mount option; allowed: %s, and %s with a value'
                                  % (word, ', '.join(sorted(FLAG_WORDS)), ', '.join(sorted(VALUE_WORDS))))
        if key in seen:
            raise ValidationError('options.o: %s is given twice' % key)
        seen.add(key)
    for first, second in CONFLICTS:
        if first in seen and second in seen:
            raise ValidationError('options.o: %s and %s contradict each other; give one of them' % (first, second))
    binds = seen & {'bind', 'rbind'}
    if fs_type == 'none' and not binds:
        raise ValidationError('options: type none is a bind mount: give o=bind (or rbind) and the host directory '
                              'as device')
    if binds and fs_type != 'none':
        raise ValidationError('options.o: %s needs type none (a bind mount of the host directory device)'
                              % binds.pop())


def _value_help(key: str) -> str:
    return {'size': 'bytes, or a number with k, m, g, or a percentage of RAM with %',
            'mode': 'octal permissions such as 1777', 'uid': 'a numeric user id',
            'gid': 'a numeric group id'}.get(key, 'a number, optionally with k, m or g')


def _check_device(fs_type: str, options: dict[str, str], words: list[str]) -> None:
    device = options.get('device')
    if fs_type == 'tmpfs':
        if device not in (None, 'tmpfs'):
            raise ValidationError('options.device: a tmpfs volume has no device (leave it out, or give tmpfs)')
        return
    if not device:
        raise ValidationError('options.device is required for a %s volume (%s)'
                              % (fs_type, 'the host directory to bind' if fs_type == 'none' else 'a block device'))
    if not device.startswith('/'):
        raise ValidationError('options.device: %r is not an absolute path (network file systems are not supported '
                              'by this driver)' % device)
    try:
        info = os.stat(device)
    except OSError as exc:
        raise ValidationError('options.device: %s does not exist (%s): create it first' % (device, exc.strerror))
    if fs_type == 'none' and not stat.S_ISDIR(info.st_mode):
        raise ValidationError('options.device: %s is not a directory (a bind volume binds a host directory)' % device)
    if fs_type != 'none' and not stat.S_ISBLK(info.st_mode):
        raise ValidationError('options.device: %s is not a block device (for an image file, attach it with '
                              '`losetup --find --show FILE` and give the loop device)' % device)


def same_options(first: dict[str, str], second: dict[str, str]) -> bool:
    """Whether two normalised option dicts mount the same (the words of ``o`` in any order)."""
    def key(options: dict[str, str]) -> tuple[Any, ...]:
        return (options.get('type'), options.get('device'), tuple(sorted(split_o(options.get('o', '')))))
    return key(first or {}) == key(second or {})
