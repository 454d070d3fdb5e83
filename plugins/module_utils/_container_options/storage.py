# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of what the container sees on disk: its root filesystem, bind mounts and secrets."""

from __future__ import annotations

import os

from .._runtime import secrets as container_secrets
from .._runtime.errors import ValidationError
from .._runtime.rootfs import validate_rootfs
from .._runtime.parsers import normalise_mounts


def rootfs(value, context):
    return validate_rootfs(value)


def mounts(value, context):
    normalised = normalise_mounts(value)
    for mount in normalised:
        if not os.path.exists(mount['source']):
            raise ValidationError('mounts: source %s does not exist on the host; create it first' % mount['source'])
    return normalised


def map_mounts(spec, value, config):
    for mount in value or []:
        spec['mounts'].append({'destination': mount['target'], 'type': 'bind', 'source': mount['source'],
                               'options': list(mount['options'])})


def secrets(value, context):
    """Names, targets, modes and keyed hashes; the values go to ``context.secret_values``, never the config."""
    normalised, values = container_secrets.normalise(value, container_secrets.store_key(context.root))
    context.secret_values = values
    return normalised


def map_secrets(spec, value, config):
    """A read-only bind mount of each file secret from the tmpfs store (``bundle/secrets`` links to it)."""
    for name, entry in sorted((value or {}).items()):
        if entry['type'] == 'file':
            spec['mounts'].append({'destination': entry['target'], 'type': 'bind',
                                   'source': os.path.join('secrets', name),
                                   'options': ['rbind', 'ro', 'nosuid', 'nodev', 'noexec']})
