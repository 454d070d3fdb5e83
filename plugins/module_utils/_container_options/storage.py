# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of what the container sees on disk: its root filesystem, bind mounts, /dev/shm and secrets."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .._runtime.errors import ValidationError
from .._runtime.parsers import normalise_mounts, parse_size, validate_rootfs

if TYPE_CHECKING:
    from typing import Any

    from .base import Context


def rootfs(value: str, context: Context) -> str:
    return validate_rootfs(value)


def mounts(value: list[Any], context: Context) -> list[dict[str, Any]] | None:
    normalised = normalise_mounts(value)
    for mount in normalised or []:
        if not os.path.exists(mount['source']):
            raise ValidationError('mounts: source %s does not exist on the host; create it first' % mount['source'])
    return normalised


def map_mounts(spec: dict[str, Any], value: list[dict[str, Any]] | None, config: dict[str, Any]) -> None:
    for mount in value or []:
        # z/Z are ours (the runtime layer relabels the source on SELinux hosts), not the kernel's.
        spec['mounts'].append({'destination': mount['target'], 'type': 'bind', 'source': mount['source'],
                               'options': [option for option in mount['options'] if option not in ('z', 'Z')]})


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
