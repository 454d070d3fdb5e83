# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of what the container sees on disk: its root filesystem, bind mounts, tmpfs, /dev/shm and secrets."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from .._runtime.errors import ValidationError
from .._runtime.parsers import absolute_path, normalise_mounts, parse_size, validate_rootfs

if TYPE_CHECKING:
    from typing import Any

    from .base import Context


def rootfs(value: str, context: Context) -> str:
    return validate_rootfs(value)


def mounts(value: list[Any], context: Context) -> list[dict[str, Any]] | None:
    """Bind mounts of host paths, named volumes (``path``: their data directory under the store) and tmpfs."""
    normalised = normalise_mounts(value)
    for mount in normalised or []:
        if mount['type'] == 'bind' and not os.path.exists(mount['source']):
            raise ValidationError('mounts: source %s does not exist on the host; create it first' % mount['source'])
        if mount['type'] == 'volume':
            from .._runtime.volumes import mountpoint  # pylint: disable=import-outside-toplevel
            mount['path'] = mountpoint(context.root, mount['source'])
        elif mount['type'] == 'tmpfs':
            mount['options'] = tmpfs_options(mount['options'], 'mounts %s' % tmpfs_target(mount['target'], 'mounts'))
    return normalised


def map_mounts(spec: dict[str, Any], value: list[dict[str, Any]] | None, config: dict[str, Any]) -> None:
    """After the base mounts (so /dev, /proc... never hide them); among themselves a mount below another after it."""
    first = len(spec['mounts'])
    for mount in value or []:
        if mount.get('type') == 'tmpfs':
            spec['mounts'].append({'destination': mount['target'], 'type': 'tmpfs', 'source': 'tmpfs',
                                   'options': list(mount['options'])})
            continue
        # A volume is its data directory bound (made and mounted by the runtime layer before each start).
        # z/Z are ours (the runtime layer relabels the source on SELinux hosts), not the kernel's.
        spec['mounts'].append({'destination': mount['target'], 'type': 'bind',
                               'source': mount['path'] if mount.get('type') == 'volume' else mount['source'],
                               'options': [option for option in mount['options'] if option not in ('z', 'Z')]})
    # The image's declared volumes (images.image_volumes), as docker mounts them: read-write, no devices or set-uid.
    for volume in config.get('image_volumes') or []:
        spec['mounts'].append({'destination': volume['target'], 'type': 'bind', 'source': volume['path'],
                               'options': ['nodev', 'nosuid', 'rbind', 'rw']})
    spec['mounts'][first:] = sorted(spec['mounts'][first:], key=_nesting)


def _nesting(mount: dict[str, Any]) -> int:
    """Stable sort key: a mount below another comes after it (by target, as normalised, within a depth)."""
    return mount['destination'].rstrip('/').count('/')


# tmpfs: what a tmpfs mount takes. Defaults as podman's and docker's: no set-uid, no devices, no executables.
TMPFS_DEFAULTS = ('nodev', 'noexec', 'nosuid', 'rw')
_TMPFS_FLAGS = {'ro': 'rw', 'rw': 'ro', 'exec': 'noexec', 'noexec': 'exec', 'suid': 'nosuid', 'nosuid': 'suid',
                'dev': 'nodev', 'nodev': 'dev', 'atime': 'noatime', 'noatime': 'atime', 'relatime': 'norelatime',
                'norelatime': 'relatime', 'strictatime': None}
_TMPFS_VALUES = ('size', 'mode', 'uid', 'gid', 'nr_inodes')
_NEVER_TMPFS = ('/', '/proc', '/sys', '/dev')


def tmpfs_options(text: object, where: str) -> list[str]:
    """``"size=64m,mode=1777,exec"`` -> the sorted mount options, defaults included, sizes in KiB."""
    options: dict[str, str | None] = dict((flag, None) for flag in TMPFS_DEFAULTS)
    items = text if isinstance(text, list) else str(text or '').split(',')
    for raw in items:
        item = str(raw).strip()
        if not item:
            continue
        key, equals, argument = item.partition('=')
        if equals:
            if key not in _TMPFS_VALUES:
                raise ValidationError('%s: unknown tmpfs option %r; known: %s and %s'
                                      % (where, key, ', '.join(_TMPFS_VALUES), ', '.join(sorted(_TMPFS_FLAGS))))
            if key == 'size':
                size = parse_size(argument, where + ' size')
                if size < 4096:
                    raise ValidationError('%s: size=%s is too small for a tmpfs (at least 4k)' % (where, argument))
                argument = '%dk' % ((size + 1023) // 1024)
            elif key == 'mode':
                if not re.fullmatch(r'[0-7]{3,4}', argument):
                    raise ValidationError('%s: mode=%s is not an octal mode such as 1777' % (where, argument))
                argument = '%04o' % int(argument, 8)
            elif not argument.isdigit():
                raise ValidationError('%s: %s=%s must be a number' % (where, key, argument))
            options[key] = argument
        elif key in _TMPFS_FLAGS:
            opposite = _TMPFS_FLAGS[key]
            if opposite:
                options.pop(opposite, None)
            options[key] = None
        else:
            raise ValidationError('%s: unknown tmpfs option %r; known: %s and %s=...'
                                  % (where, key, ', '.join(sorted(_TMPFS_FLAGS)), '=..., '.join(_TMPFS_VALUES)))
    return sorted(key if argument is None else '%s=%s' % (key, argument) for key, argument in options.items())


def tmpfs_target(path: object, where: str) -> str:
    target = absolute_path(str(path), where)
    if any(target == top or (top != '/' and target.startswith(top + '/')) for top in _NEVER_TMPFS):
        raise ValidationError('%s: %s cannot be a tmpfs (the root, /proc, /sys and /dev are the runtime\'s)'
                              % (where, target))
    return target


def tmpfs(value: dict[str, Any], context: Context) -> dict[str, list[str]]:
    """{path: "options"} -> {path: [options]}: an empty, private tmpfs at each path, new at each start."""
    if not isinstance(value, dict):
        raise ValidationError('tmpfs: give a dictionary of path: options, such as {/run: "size=64m,mode=0755"}')
    result: dict[str, list[str]] = {}
    for path, text in value.items():
        target = tmpfs_target(path, 'tmpfs')
        if target in result:
            raise ValidationError('tmpfs: %s is given more than once' % target)
        result[target] = tmpfs_options(text, 'tmpfs %s' % target)
    return result


def map_tmpfs(spec: dict[str, Any], value: dict[str, list[str]] | None, config: dict[str, Any]) -> None:
    """Each tmpfs goes before the mounts below it (a bind mount at /run/x then lands inside the tmpfs at /run)."""
    for target, mount_options in sorted((value or {}).items()):
        entry = {'destination': target, 'type': 'tmpfs', 'source': 'tmpfs', 'options': list(mount_options)}
        below = [index for index, mount in enumerate(spec['mounts'])
                 if mount['destination'].startswith(target.rstrip('/') + '/')]
        spec['mounts'].insert(below[0] if below else len(spec['mounts']), entry)


def shm_size(value: Any, context: Context) -> int:
    """A size (V(64m), bytes...) rounded up to whole KiB, as the tmpfs is given it."""
    size = parse_size(value, 'shm_size')
    if size < 1024:
        raise ValidationError('shm_size: %s is too small for a /dev/shm; give a size such as 64m (at least 1k)' % value)
    return (size + 1023) // 1024 * 1024


def map_shm_size(spec: dict[str, Any], value: int, config: dict[str, Any]) -> None:
    """The size of the base spec's /dev/shm tmpfs."""
    for mount in spec['mounts']:
        if mount['destination'] == '/dev/shm':
            mount['options'] = [option for option in mount['options'] if not option.startswith('size=')]
            mount['options'].append('size=%dk' % (value // 1024))


def secrets(value: dict[str, Any], context: Context) -> dict[str, dict[str, Any]]:
    """Names, targets, modes and keyed hashes; the values go to ``context.secret_values``, never the config."""
    from .._runtime import secrets as container_secrets  # pylint: disable=import-outside-toplevel
    normalised, values = container_secrets.normalise(value, container_secrets.store_key(context.root))
    context.secret_values = values
    return normalised


def map_secrets(spec: dict[str, Any], value: dict[str, dict[str, Any]] | None, config: dict[str, Any]) -> None:
    """A read-only bind mount of each file secret from the tmpfs store (``bundle/secrets`` links to it)."""
    for name, entry in sorted((value or {}).items()):
        if entry['type'] == 'file':
            spec['mounts'].append({'destination': entry['target'], 'type': 'bind',
                                   'source': os.path.join('secrets', name),
                                   'options': ['rbind', 'ro', 'nosuid', 'nodev', 'noexec']})


def mount_targets(config: dict[str, Any]) -> list[str]:
    """The paths in a container that its mounts cover while it runs: mounts, image volumes, tmpfs, file secrets."""
    targets = [mount.get('target') for mount in config.get('mounts') or [] if isinstance(mount, dict)]
    targets += [volume.get('target') for volume in config.get('image_volumes') or [] if isinstance(volume, dict)]
    targets += list(config.get('tmpfs') or {})
    targets += [entry.get('target') for entry in (config.get('secrets') or {}).values()
                if isinstance(entry, dict) and entry.get('type') == 'file']
    return [target for target in targets if isinstance(target, str)]
