# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the container's network: ``network``, ``ip_address``, ``published_ports``, ``networks``, and its
names: ``dns``, ``dns_search``, ``dns_options``, ``etc_hosts``, ``aliases``.

``networks`` (a list of name, ip_address, ipv6_address, aliases) and the one-network shorthand (``network``,
``ip_address``, ``aliases``) exclude each other in a task; the group check records the other one's value
(``network``: the first entry's name; ``networks``: [] for the shorthand), so a container moved from one
form to the other is compared, and recreated, as it should be.

The values are checked against the host's network registry (does the network exist, is the address
or the host port free or already this container's) without writing anything, so check mode and bad
input change nothing; the runtime's network stage (``_runtime/network.py``) applies them when the
container is launched.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import TYPE_CHECKING

from .._runtime import network_registry as netreg
from .._runtime.errors import ValidationError

if TYPE_CHECKING:
    from typing import Any

    from .base import Context


# -- normalisers ---------------------------------------------------------------------------------------

def network(value: str, context: Context, registry: netreg.NetworkRegistry | None = None) -> str:
    """``none``, ``host``, ``bridge`` (= the default network) or the name of a network that exists."""
    value = str(value).strip()
    if value in netreg.NOT_NETWORKS:
        return value
    name = netreg.DEFAULT_NETWORK if value == netreg.BRIDGE_ALIAS else netreg.validate_network_name(value, 'network')
    if name != netreg.DEFAULT_NETWORK and name not in (registry or netreg.NetworkRegistry()).load()['networks']:
        raise ValidationError('network %s does not exist: create it first with runcible.oci.network' % name)
    return name


def ip_address(value: str, context: Context) -> str:
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ValidationError('ip_address: %r is not an IPv4 address' % (value,))
    if address.version != 4:
        raise ValidationError('ip_address: %r: only IPv4 addresses are supported' % (value,))
    return str(address)


NETWORK_ENTRY_KEYS = ('name', 'ip_address', 'ipv6_address', 'aliases')


def networks(value: list[Any], context: Context, registry: netreg.NetworkRegistry | None = None) -> list[dict[str, Any]]:
    """The container's networks in interface order (eth0, eth1...): [{name, ip_address, ipv6_address, aliases}]."""
    if not isinstance(value, list):
        raise ValidationError('networks: a list of networks ({name: NET, ip_address:, ipv6_address:, aliases:}), not %r'
                              % (value,))
    if len(value) > netreg.MAX_NETWORKS:
        raise ValidationError('networks: %d networks given; a container joins at most %d'
                              % (len(value), netreg.MAX_NETWORKS))
    found: list[dict[str, Any]] = []
    defined = None
    for item in value:
        if isinstance(item, str):
            item = {'name': item}
        if not isinstance(item, dict) or 'name' not in item:
            raise ValidationError('networks: %r is not a network entry: give at least its name, as {name: backend}'
                                  % (item,))
        unknown = sorted(set(item) - set(NETWORK_ENTRY_KEYS))
        if unknown:
            raise ValidationError('networks: entry %s has unknown keys %s (known: %s)'
                                  % (item['name'], ', '.join(map(str, unknown)), ', '.join(NETWORK_ENTRY_KEYS)))
        name = str(item['name']).strip()
        if name in netreg.NOT_NETWORKS:
            raise ValidationError('networks: %s is not a bridge network; for network: none or host use the network '
                                  'option alone' % name)
        name = netreg.DEFAULT_NETWORK if name == netreg.BRIDGE_ALIAS else netreg.validate_network_name(name, 'networks')
        if name != netreg.DEFAULT_NETWORK:
            if defined is None:
                defined = (registry or netreg.NetworkRegistry()).load()['networks']
            if name not in defined:
                raise ValidationError('network %s does not exist: create it first with runcible.oci.network' % name)
        if any(entry['name'] == name for entry in found):
            raise ValidationError('networks: network %s is listed twice' % name)
        entry: dict[str, Any] = {'name': name, 'ip_address': None, 'ipv6_address': None, 'aliases': []}
        if item.get('ip_address'):
            entry['ip_address'] = ip_address(item['ip_address'], context)
        if item.get('ipv6_address'):
            entry['ipv6_address'] = ipv6_address(item['ipv6_address'])
        if item.get('aliases'):
            entry['aliases'] = [alias for alias in _names(item['aliases'], 'networks: aliases of %s' % name, 'name')
                                if alias != context.name]
        found.append(entry)
    return found


def ipv6_address(value: Any) -> str:
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ValidationError('ipv6_address: %r is not an IPv6 address' % (value,))
    if address.version != 6:
        raise ValidationError('ipv6_address: %r is not an IPv6 address' % (value,))
    return str(address)


def published_ports(value: list[str], context: Context) -> list[str]:
    from .._runtime import ports  # pylint: disable=import-outside-toplevel
    return ports.normalise(value)


# A host name or domain: labels of letters, digits, '-' and '_' (not first), dots between them; 253 at most.
HOST_NAME = r'(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9_-]{0,62}))*\.?'
RESOLV_OPTION = r'[A-Za-z0-9_-]+(:[0-9]+)?'


def _names(value: Any, option: str, what: str = 'host name') -> list[str]:
    if not isinstance(value, list):
        raise ValidationError('%s: a list of %ss, not %r' % (option, what, value))
    names = []
    for item in value:
        text = str(item).strip()
        if not re.fullmatch(HOST_NAME, text):
            raise ValidationError('%s: %r is not a valid %s (letters, digits, - and _ in dot-separated labels)'
                                  % (option, item, what))
        if text not in names:
            names.append(text)
    return names


def dns(value: list[str], context: Context) -> list[str]:
    """Name servers (IPv4 or IPv6 addresses), in order, each once."""
    servers = []
    for item in value or []:
        try:
            address = str(ipaddress.ip_address(str(item).strip()))
        except ValueError:
            raise ValidationError('dns: %r is not an IP address' % (item,))
        if address not in servers:
            servers.append(address)
    if len(servers) > 3:
        raise ValidationError('dns: %d servers given; the resolver of most C libraries reads only the first 3'
                              % len(servers))
    return servers


def dns_search(value: list[str], context: Context) -> list[str]:
    return _names(value, 'dns_search', 'domain')


def dns_options(value: list[str], context: Context) -> list[str]:
    """resolv.conf options (``ndots:2``, ``edns0``...), in order, each once."""
    found = []
    for item in value or []:
        text = str(item).strip()
        if not re.fullmatch(RESOLV_OPTION, text):
            raise ValidationError('dns_options: %r is not a resolver option (NAME or NAME:NUMBER, as ndots:2)' % (item,))
        if text not in found:
            found.append(text)
    return found


def etc_hosts(value: dict[str, Any], context: Context) -> dict[str, str]:
    """Extra /etc/hosts entries: host name -> IP address."""
    if not isinstance(value, dict):
        raise ValidationError('etc_hosts: a dict of host name -> address, not %r' % (value,))
    hosts = {}
    for name, address in value.items():
        [text] = _names([name], 'etc_hosts')
        try:
            hosts[text] = str(ipaddress.ip_address(str(address).strip()))
        except ValueError:
            raise ValidationError('etc_hosts: %r for %s is not an IP address' % (address, text))
    return hosts


def aliases(value: list[str], context: Context) -> list[str]:
    """More names of the container on its network's DNS (a name of its own is its container name)."""
    return [name for name in _names(value, 'aliases', 'name') if name != context.name]


def map_network(spec: dict[str, Any], value: str, config: dict[str, Any]) -> None:
    """The spec's network: none (a namespace of its own), host (none), a bridge network (the named netns)."""
    if netreg.network_of(config) is None:
        if value != 'host':
            spec['linux']['namespaces'].append({'type': 'network'})
        return
    container_id = spec['annotations']['io.runcible.container.id']
    # pylint: disable-next=import-outside-toplevel
    from .._runtime.etc_files import ETC_MOUNT_OPTIONS, HOSTS_FILE, RESOLV_FILE
    from .._runtime.netns import netns_path  # pylint: disable=import-outside-toplevel
    spec['linux']['namespaces'].append({'type': 'network', 'path': netns_path(container_id)})
    # Relative sources are relative to the bundle (where the network stage writes them).
    for source, destination in ((HOSTS_FILE, '/etc/hosts'), (RESOLV_FILE, '/etc/resolv.conf')):
        spec['mounts'].append({'destination': destination, 'type': 'bind', 'source': source,
                               'options': list(ETC_MOUNT_OPTIONS)})


NAME_OPTIONS = ('dns', 'dns_search', 'dns_options', 'etc_hosts', 'aliases')


# -- the group check: the address and the ports against the network the container will be on -----------

def _is_self(allocation: dict[str, Any], context: Context) -> bool:
    """Is ``allocation`` the container of this task (same name, and same root)?"""
    return allocation['name'] == context.name and allocation['root'] == os.path.normpath(context.root)


def check(given: dict[str, Any], context: Context, registry: netreg.NetworkRegistry | None = None) -> None:
    """``ip_address``, ``published_ports`` and the name options need a bridge network; the address and host ports
    must be free. ``networks`` or the shorthand: one of them, the other recorded from it."""
    if given.get('networks'):
        shorthand = [option for option in ('network', 'ip_address', 'aliases') if given.get(option) not in (None, [])]
        if shorthand:
            raise ValidationError('networks replaces %s: give each network\'s ip_address and aliases in its entry of '
                                  'networks (or use network alone for one network)' % ', '.join(shorthand))
        given['network'] = given['networks'][0]['name']
    elif 'network' in given:
        given['networks'] = []
    named = [option for option in NAME_OPTIONS if given.get(option)]
    if named and netreg.network_of({'network': context.effective(given, 'network', netreg.DEFAULT_NETWORK)}) is None:
        raise ValidationError('%s needs a bridge network (network: bridge or a network name): with network: %s the '
                              'container has the files of its root filesystem (or the host\'s)'
                              % (', '.join(named), context.effective(given, 'network', 'none')))
    if given.get('networks'):
        _check_entries(given['networks'], context, registry)
    if 'ip_address' not in given and not given.get('published_ports'):
        return
    network_name = netreg.network_of({'network': context.effective(given, 'network', netreg.DEFAULT_NETWORK)})
    shown = context.effective(given, 'network', 'none')
    if network_name is None:
        option = 'ip_address' if 'ip_address' in given else 'published_ports'
        raise ValidationError('%s needs a bridge network (network: bridge or a network name); the container has '
                              'network: %s' % (option, shown))
    data = (registry or netreg.NetworkRegistry()).load()
    if 'ip_address' in given:
        _check_address(given['ip_address'], network_name, data, context)
    from .._runtime import ports  # pylint: disable=import-outside-toplevel
    mappings = ports.expand(given.get('published_ports'))
    if any(mapping.ipv6() and mapping.host_ip != '::1' for mapping in mappings) \
            and not (data['networks'].get(network_name) or {}).get('ipv6'):
        raise ValidationError('published_ports: IPv6 host addresses need the container\'s first network to have IPv6 '
                              '(only [::1] is proxied to its IPv4 address); network %s has none (runcible.oci.network '
                              'ipv6: true); nothing was changed' % network_name)
    for mapping in mappings:
        holder = netreg.holder_of(data, mapping)
        if holder and _is_self(holder[1], context):
            continue
        try:
            ports.probe([mapping])
        except ports.PortInUse as exc:
            who = netreg.holder_text(holder[1]) if holder else 'another process'
            raise ValidationError('published_ports: %s by %s; nothing was changed' % (exc.msg, who), port=mapping.text())


def _check_entries(entries: list[dict[str, Any]], context: Context, registry: netreg.NetworkRegistry | None) -> None:
    """Each ``networks`` entry's pinned addresses: in its network, not its gateway, not another container's."""
    data = None
    for entry in entries:
        if not entry.get('ip_address') and not entry.get('ipv6_address'):
            continue
        data = data or (registry or netreg.NetworkRegistry()).load()
        if entry.get('ip_address'):
            _check_address(entry['ip_address'], entry['name'], data, context)
        if entry.get('ipv6_address'):
            _check_address6(entry['ipv6_address'], entry['name'], data, context)


def _check_address6(address: str, network_name: str, data: dict[str, Any], context: Context) -> None:
    network_def = data['networks'].get(network_name) or {}
    if not network_def.get('ipv6'):
        raise ValidationError('networks: ipv6_address %s needs an IPv6 network: network %s has no ipv6 (create it with '
                              'runcible.oci.network ipv6: true)' % (address, network_name))
    subnet = ipaddress.ip_network(network_def['ipv6_subnet'])
    value = ipaddress.ip_address(address)
    if value not in subnet or value == subnet.network_address:
        raise ValidationError('ipv6_address: %s is not a host address of network %s (%s)' % (address, network_name, subnet))
    if address == network_def['ipv6_gateway']:
        raise ValidationError('ipv6_address: %s is the gateway of network %s' % (address, network_name))
    for allocation in data['allocations'].values():
        if allocation.get('ip6') == address and allocation['network'] == network_name and not _is_self(allocation, context):
            raise ValidationError('ipv6_address: %s is already the address of %s' % (address, netreg.holder_text(allocation)))


def _check_address(address: str, network_name: str, data: dict[str, Any], context: Context) -> None:
    network_def = data['networks'].get(network_name)
    if network_def is None:
        return  # the default network, made on first use: its subnet is checked then
    subnet = ipaddress.ip_network(network_def['subnet'])
    value = ipaddress.ip_address(address)
    if value not in subnet or value in (subnet.network_address, subnet.broadcast_address):
        raise ValidationError('ip_address: %s is not a host address of network %s (%s)' % (address, network_name, subnet))
    if address == network_def['gateway']:
        raise ValidationError('ip_address: %s is the gateway of network %s' % (address, network_name))
    for allocation in data['allocations'].values():
        if allocation['ip'] == address and allocation['network'] == network_name and not _is_self(allocation, context):
            raise ValidationError('ip_address: %s is already the address of %s' % (address, netreg.holder_text(allocation)))
