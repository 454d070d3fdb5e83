# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the container's process: command, entrypoint, env, labels, working dir, user, host name, signals."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .._runtime.errors import ValidationError
from .._runtime.parsers import absolute_path, parse_signal, parse_size, split_command, string_dict

if TYPE_CHECKING:
    from typing import Any, Callable

    from .base import Context

HOSTNAME_MAX = 64  # the kernel's limit (HOST_NAME_MAX)
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
_HOSTNAME = r'[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*'


# -- normalisers: (value, context) -> normalised value ---------------------------------------------------

def command(value: object, context: Context) -> list[str] | None:
    return split_command(value)


def entrypoint(value: object, context: Context) -> list[str] | None:
    if value in ('', []):
        return []
    return split_command(value, 'entrypoint')


def env(value: dict[str, Any], context: Context) -> dict[str, str] | None:
    return string_dict(value, 'env')


def labels(value: dict[str, Any], context: Context) -> dict[str, str] | None:
    return string_dict(value, 'labels')


def workdir(value: str, context: Context) -> str:
    return absolute_path(value, 'workdir')


def user(value: str, context: Context) -> str:
    """``uid[:gid]`` or ``name[:group]``, syntax only: names are resolved by the group check ``user``."""
    text = str(value).strip()
    if not text:
        raise ValidationError('user: must not be empty')
    return text


def hostname(value: str, context: Context) -> str:
    value = str(value)
    if len(value) > HOSTNAME_MAX or not re.fullmatch(_HOSTNAME, value):
        raise ValidationError('hostname: %r is not a valid host name (up to %d letters, digits, "-" and ".")'
                              % (value, HOSTNAME_MAX))
    return value


def default_hostname(context: Context) -> str:
    """The container name made a valid host name: '_' -> '-', empty or dashed labels cleaned."""
    parts = [label.strip('-') for label in context.name.replace('_', '-').split('.')]
    return '.'.join(label for label in parts if label)[:HOSTNAME_MAX - 1].strip('.-') or 'container'


def stop_signal(value: object, context: Context) -> int:
    return parse_signal(value, 'stop_signal')


def log_size_max(value: object, context: Context) -> int:
    return parse_size(value, 'log_size_max')


def non_negative_int(option: str) -> Callable[[int, Context], int]:
    def normalise(value: int, context: Context) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError('%s: %r must be a whole number of 0 or more' % (option, value))
        return value
    return normalise


stop_timeout = non_negative_int('stop_timeout')


# -- spec mappers: (spec, value, config) -> None -----------------------------------------------------------

def map_command(spec: dict[str, Any], value: list[str], config: dict[str, Any]) -> None:
    spec['process']['args'] = list(config.get('entrypoint') or []) + list(value)


def map_env(spec: dict[str, Any], value: dict[str, str] | None, config: dict[str, Any]) -> None:
    variables = {'PATH': DEFAULT_PATH, 'HOSTNAME': spec['hostname'], 'container': 'runcible'}
    variables.update((config.get('image_config') or {}).get('env') or {})  # the image's Env, under the task's
    variables.update(value or {})
    spec['process']['env'] = ['%s=%s' % item for item in sorted(variables.items())]


def map_workdir(spec: dict[str, Any], value: str, config: dict[str, Any]) -> None:
    spec['process']['cwd'] = value


def map_user(spec: dict[str, Any], value: str, config: dict[str, Any]) -> None:
    uid, gid = (int(part) for part in value.split(':'))
    spec['process']['user'] = {'uid': uid, 'gid': gid}
    if uid != 0:
        # As podman: a non-root process keeps the bounding set but no effective or permitted capabilities.
        spec['process']['capabilities']['effective'] = []
        spec['process']['capabilities']['permitted'] = []


def map_hostname(spec: dict[str, Any], value: str, config: dict[str, Any]) -> None:
    spec['hostname'] = value


def map_read_only(spec: dict[str, Any], value: bool, config: dict[str, Any]) -> None:
    spec['root']['readonly'] = bool(value)


def map_labels(spec: dict[str, Any], value: dict[str, str] | None, config: dict[str, Any]) -> None:
    merged = dict((config.get('image_config') or {}).get('labels') or {})  # the image's Labels, under the task's
    merged.update(value or {})
    for key, item in merged.items():
        spec['annotations']['io.runcible.label.' + key] = item
