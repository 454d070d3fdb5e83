# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bindings of the options of a unit-managed container: ``systemd_unit``, ``sdnotify``, ``systemd_socket``.

The unit itself (its text, its commands) is the runtime's ``units.py``; the task layer's
``_container_unit.py`` writes it and drives it with ``systemctl``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

from .._runtime.errors import ValidationError

if TYPE_CHECKING:
    from typing import Any

    from .base import Context


def systemd_unit(value: object, context: Context) -> bool:
    """A unit needs systemd as PID 1 and python-systemd for its Python (checked in check mode too)."""
    if value:
        from .._runtime import units  # pylint: disable=import-outside-toplevel
        units.require_systemd()
        units.require_python_systemd()
    return bool(value)


def systemd_socket(value: object, context: Context) -> list[str]:
    """``ListenStream=`` values of the unit's ``.socket``: ``PORT``, ``ADDRESS:PORT`` or ``[IPV6]:PORT``."""
    if not isinstance(value, list):
        raise ValidationError('systemd_socket: give a list of ports to listen on ("8080", "127.0.0.1:8080", "[::1]:80")')
    result = []
    for item in value:
        text = str(item)
        address, _sep, port = text.rpartition(':')
        try:
            number = int(port) if re.fullmatch(r'[0-9]{1,5}', port) else 0
            if address:
                ipaddress.ip_address(address[1:-1] if address.startswith('[') and address.endswith(']') else address)
                if ':' in address and not address.startswith('['):
                    raise ValueError(address)
        except ValueError:
            number = 0
        if not 1 <= number <= 65535:
            raise ValidationError('systemd_socket: %r is not PORT, ADDRESS:PORT or [IPV6]:PORT (a TCP port from 1 to '
                                  '65535 systemd listens on for the container)' % (item,))
        if text not in result:
            result.append(text)
    return result


def check(values: dict[str, Any], context: Context, complete: bool) -> None:
    """``sdnotify`` and ``systemd_socket`` are settings of the unit: they need ``systemd_unit``; systemd's
    ``Restart=`` has no count of restarts (``restart_retries``)."""
    managed = context.effective(values, 'systemd_unit')
    if not managed:
        if (values.get('sdnotify') or 'conmon') != 'conmon':
            raise ValidationError('sdnotify: %s is how a unit of the container tells systemd it is ready: give '
                                  'systemd_unit: true, or leave sdnotify out' % values['sdnotify'])
        if values.get('systemd_socket'):
            raise ValidationError('systemd_socket: the sockets of a unit that runs the container: give '
                                  'systemd_unit: true, or leave systemd_socket out')
        return
    if context.effective(values, 'restart_retries'):
        raise ValidationError('restart_retries: a container run by its systemd unit restarts by the unit\'s Restart= '
                              '(from restart_policy), which counts no retries: leave restart_retries out (0)')


def map_sdnotify(spec: dict[str, Any], value: str | None, config: dict[str, Any]) -> None:
    """``sdnotify: container``: the container gets ``NOTIFY_SOCKET``, a socket in a directory bind-mounted from its
    run dir (``bundle/notify`` links to it; the unit's start command binds the socket and relays READY=1)."""
    if value != 'container' or not config.get('systemd_unit'):
        return
    from .._runtime import units  # pylint: disable=import-outside-toplevel
    # Read-only: the container sends to the socket (a socket's inode ignores the mount's ro), and can put no file
    # on the host's /run through it.
    spec['mounts'].append({'destination': units.CONTAINER_NOTIFY_DIR, 'type': 'bind', 'source': units.NOTIFY_DIR,
                           'options': ['rbind', 'nosuid', 'nodev', 'noexec', 'ro']})
    env = [item for item in spec['process'].get('env') or [] if not item.startswith('NOTIFY_SOCKET=')]
    spec['process']['env'] = env + ['NOTIFY_SOCKET=' + units.CONTAINER_NOTIFY_SOCKET]
