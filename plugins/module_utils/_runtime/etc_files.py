# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bridged container's ``/etc/hosts`` and ``/etc/resolv.conf``, written into its bundle and bind-mounted."""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

HOSTS_FILE = 'hosts'
RESOLV_FILE = 'resolv.conf'
RESOLV_PATHS = ('/etc/resolv.conf', '/run/systemd/resolve/resolv.conf')
ETC_MOUNT_OPTIONS = ['rbind', 'nosuid', 'nodev', 'noexec', 'rw']


def resolv_conf() -> str:
    """The host's resolver configuration without loopback name servers (unreachable from a container)."""
    for path in RESOLV_PATHS:
        try:
            with open(path) as handle:
                lines = handle.read().splitlines()
        except (IOError, OSError):
            continue
        kept, servers = [], 0
        for line in lines:
            fields = line.split()
            if fields and fields[0] == 'nameserver' and len(fields) > 1:
                try:
                    if ipaddress.ip_address(fields[1].split('%')[0]).is_loopback:
                        continue
                except ValueError:
                    continue
                servers += 1
            if fields and not fields[0].startswith(('#', ';')):
                kept.append(' '.join(fields))
        if servers:
            return '\n'.join(kept) + '\n'
    return '# runcible.oci: the host has no name server a container can reach\n'


def hosts_file(hostname: str, name: str, address: str) -> str:
    names = [hostname] + ([name] if name != hostname else [])
    return ('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n'
            % (address, ' '.join(names)))


def _replace_file(path: str, text: str) -> None:
    """Write by rename, without fsync: these files are written again at every start."""
    temp = '%s.tmp-%d' % (path, os.getpid())
    with open(temp, 'w') as handle:
        handle.write(text)
    os.chmod(temp, 0o644)
    os.rename(temp, path)


def write_etc_files(bundle: str, config: dict[str, Any], name: str, address: str) -> None:
    _replace_file(os.path.join(bundle, HOSTS_FILE), hosts_file(config.get('hostname') or name, name, address))
    _replace_file(os.path.join(bundle, RESOLV_FILE), resolv_conf())
