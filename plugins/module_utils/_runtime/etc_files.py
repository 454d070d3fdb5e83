# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bridged container's ``/etc/hosts`` and ``/etc/resolv.conf``, written into its bundle and bind-mounted.

``resolv.conf``: the name server is the network's aardvark-dns (its gateway) on a DNS-enabled network,
else the container's ``dns`` servers, else the host's (loopback ones left out: unreachable from a
container); ``search`` and ``options`` are the container's ``dns_search`` and ``dns_options`` when given,
else the host's. ``hosts``: localhost, the container's own address and names, its ``etc_hosts``.
"""

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


def host_resolv_lines() -> list[list[str]]:
    """The host's resolver configuration (fields of each line) without loopback name servers; [] when it has
    no name server a container can reach."""
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
                kept.append(fields)
        if servers:
            return kept
    return []


def resolv_conf(servers: list[str] | None = None, search: list[str] | None = None,
                options: list[str] | None = None) -> str:
    """A container's resolv.conf: ``servers`` (else the host's), ``search``, ``options`` (else the host's)."""
    host = host_resolv_lines()
    lines: list[str] = []
    if servers:
        lines.extend('nameserver %s' % server for server in servers)
    else:
        lines.extend(' '.join(fields) for fields in host if fields[0] == 'nameserver')
    if search:
        lines.append('search %s' % ' '.join(search))
    else:
        lines.extend(' '.join(fields) for fields in host if fields[0] in ('search', 'domain'))
    if options:
        lines.append('options %s' % ' '.join(options))
    else:
        lines.extend(' '.join(fields) for fields in host if fields[0] == 'options')
    lines.extend(' '.join(fields) for fields in host if fields[0] not in ('nameserver', 'search', 'domain', 'options'))
    if not any(line.startswith('nameserver ') for line in lines):
        lines.insert(0, '# runcible.oci: the host has no name server a container can reach')
    return '\n'.join(lines) + '\n'


def hosts_file(hostname: str, name: str, address: str | list[str], extra: dict[str, str] | None = None) -> str:
    """``address``: the container's address, or its addresses (one per network, IPv6 ones too)."""
    names = [hostname] + ([name] if name != hostname else [])
    text = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
    for own in [address] if isinstance(address, str) else address:
        text += '%s\t%s\n' % (own, ' '.join(names))
    for host_name, host_address in sorted((extra or {}).items()):
        text += '%s\t%s\n' % (host_address, host_name)
    return text


def _replace_file(path: str, text: str, in_place: bool = False) -> None:
    """Write by rename (a new file, created exclusively), without fsync: these files are written again at every
    start. ``in_place``: the file a running container has bind-mounted (its inode) is rewritten instead."""
    if in_place:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, 'wb') as handle:  # written over, then cut: a reader never sees it empty
            data = text.encode('utf-8')
            handle.write(data)
            handle.truncate(len(data))
        return
    temp = '%s.tmp-%d' % (path, os.getpid())
    if os.path.lexists(temp):
        os.unlink(temp)  # of a task killed with this pid before
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)
    os.chmod(temp, 0o644)  # whatever the umask
    os.rename(temp, path)


def write_etc_files(bundle: str, config: dict[str, Any], name: str, address: str | list[tuple[str, str | None]],
                    dns_server: str | None = None, dns_servers: list[str] | None = None, in_place: bool = False) -> None:
    """``address``: its address, or (IPv4, IPv6 or None) per network; ``dns_server``/``dns_servers``: the name
    servers of its networks (aardvark-dns on each DNS-enabled network's gateway, in network order), none on networks
    without DNS: then its ``dns`` servers, else the host's. ``in_place``: a running container's files (a network
    attached or detached live)."""
    if isinstance(address, str):
        own = [address]
    else:
        own = [item for pair in address for item in pair if item]
    hosts = hosts_file(config.get('hostname') or name, name, own, config.get('etc_hosts'))
    _replace_file(os.path.join(bundle, HOSTS_FILE), hosts, in_place)
    networks_dns = list(dns_servers or []) + ([dns_server] if dns_server else [])
    servers = networks_dns[:3] if networks_dns else config.get('dns')
    _replace_file(os.path.join(bundle, RESOLV_FILE), resolv_conf(servers, config.get('dns_search'), config.get('dns_options')),
                  in_place)
