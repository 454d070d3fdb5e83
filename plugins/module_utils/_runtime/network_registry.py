# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's networks and address allocations: one JSON file, changed under one lock.

Networks are host objects (a bridge, a subnet route, firewall rules), so their registry is host-wide,
whatever ``root`` a container lives in: ``/var/lib/runcible/networks/networks.json`` holds every
network's definition and every container's address allocation (and, while it is attached, its
published ports), changed only under ``networks/lock``. Parallel tasks therefore never get the same
address or port, and two container stores on one host never fight over a bridge or a subnet.

Reading it is light (the option layer checks names and addresses against it on every task that gives
them): the kernel side (bridges, routes, ports) is imported by the functions that need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import errno
import hashlib
import ipaddress
import json
import os
import re

from .errors import RuncibleError, ValidationError
from .files import atomic_write, locked

STATE_DIR = '/var/lib/runcible/networks'
DEFAULT_NETWORK = 'runcible'
DEFAULT_BRIDGE = 'runcible0'
BRIDGE_ALIAS = 'bridge'
NOT_NETWORKS = ('none', 'host')
SUBNET_POOL = ipaddress.ip_network('10.89.0.0/16')
SUBNET_PREFIX = 24
LOCK_TIMEOUT = 120.0
REGISTRY_VERSION = 1
IP_FORWARD = '/proc/sys/net/ipv4/ip_forward'
IP6_FORWARD = '/proc/sys/net/ipv6/conf/all/forwarding'
ULA_PREFIX = 'fd'  # RFC 4193 locally assigned: fd + a 40-bit global id (from the network's name) + subnet id 0
IPV6_PREFIX = 64
MAX_NETWORKS = 8  # networks of one container (eth0..eth7)
NETWORK_NAME = r'[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}'  # patterns are compiled on first use (re's cache)
IFNAME = r'[a-zA-Z0-9_.-]{1,15}'

if TYPE_CHECKING:
    from typing import Any, ContextManager

    from .ports import PortMapping

    Data = dict[str, Any]  # the registry's document: networks and allocations


def validate_network_name(name: Any, option: str = 'name') -> str:
    if not isinstance(name, str) or not re.fullmatch(NETWORK_NAME, name) or '..' in name:
        raise ValidationError('%s: %r is not a valid network name: 1 to 64 characters from [a-zA-Z0-9_.-], starting '
                              'with a letter or digit' % (option, name))
    if name in NOT_NETWORKS or name == BRIDGE_ALIAS:
        raise ValidationError('%s: %r is reserved (network: none, host and bridge are not network names)' % (option, name))
    if name == 'aardvark.pid':  # dns.PID_FILE: the networks' names are the names of aardvark-dns's files
        raise ValidationError('%s: %r is reserved (the pid file of aardvark-dns)' % (option, name))
    return name


def default_bridge_name(name: str) -> str:
    if name == DEFAULT_NETWORK:
        return DEFAULT_BRIDGE
    candidate = 'rcb-' + name
    if re.fullmatch(IFNAME, candidate) and candidate not in ('.', '..'):
        return candidate
    return 'rcb-' + hashlib.sha1(name.encode()).hexdigest()[:11]


def validate_bridge_name(name: Any) -> str:
    if not isinstance(name, str) or not re.fullmatch(IFNAME, name) or name in ('.', '..'):
        raise ValidationError('bridge: %r is not a valid interface name (1 to 15 characters from [a-zA-Z0-9_.-])'
                              % (name,))
    if name.startswith(('rcv', 'eth', 'lo')) and name != DEFAULT_BRIDGE:  # rcv: bridges.VETH_PREFIX
        raise ValidationError('bridge: %r looks like a host or container interface name; choose another' % name)
    return name


def network_of(config: dict[str, Any] | None) -> str | None:
    """The name of the (first) bridge network of a container config, or None for none/host (or no network)."""
    listed = (config or {}).get('networks')
    if listed:
        return str(listed[0]['name'])
    value = (config or {}).get('network')
    if not value or value in NOT_NETWORKS:
        return None
    return DEFAULT_NETWORK if value == BRIDGE_ALIAS else value


def attachments_of(config: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The networks a container config joins, in interface order (eth0, eth1...): dicts of name, ip_address,
    ipv6_address, aliases. ``networks`` when given, else the one-network shorthand (``network``, ``ip_address``,
    ``aliases``); [] for none/host."""
    config = config or {}
    if config.get('networks'):
        return [dict(name=item['name'], ip_address=item.get('ip_address'), ipv6_address=item.get('ipv6_address'),
                     aliases=list(item.get('aliases') or [])) for item in config['networks']]
    name = network_of(config)
    if name is None:
        return []
    return [dict(name=name, ip_address=config.get('ip_address'), ipv6_address=None,
                 aliases=list(config.get('aliases') or []))]


def live_change(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """Can a running container go from the networks of config ``before`` to those of ``after`` without a recreate?
    None when it can (networks appended, the last ones removed, aliases changed); else why not, in words."""
    old, new = attachments_of(before), attachments_of(after)
    if not old or not new:
        return 'network none or host'
    for index, (was, now) in enumerate(zip(old, new)):
        if (was['name'], was['ip_address'], was['ipv6_address']) != (now['name'], now['ip_address'], now['ipv6_address']):
            return 'eth%d (network %s) or its addresses changed' % (index, was['name'])
    return None


def allocation_key(container_id: str, index: int) -> str:
    """The registry key of a container's allocation on its ``index``-th network: its id, then ID:1, ID:2..."""
    return container_id if index == 0 else '%s:%d' % (container_id, index)


def container_of_key(key: str) -> str:
    return key.split(':', 1)[0]


def keys_of(data: Data, container_id: str) -> list[str]:
    """Every allocation key of the container ``container_id`` (its networks), in interface order."""
    return sorted((key for key in data['allocations'] if container_of_key(key) == container_id),
                  key=lambda key: (key != container_id, len(key), key))


def ula_subnet(name: str) -> ipaddress.IPv6Network:
    """The default IPv6 subnet of network ``name``: fdXX:XXXX:XXXX::/64, the 40-bit global id of RFC 4193
    taken from the SHA-256 of the name (stable: the same name gives the same subnet on every host)."""
    global_id = hashlib.sha256(('runcible.oci network ' + name).encode()).digest()[:5]
    prefix = bytes.fromhex(ULA_PREFIX) + global_id + bytes(10)
    return ipaddress.IPv6Network((prefix, IPV6_PREFIX))


class NetworkRegistry(object):
    """Networks and address allocations of the host: one JSON file, changed under one lock."""

    def __init__(self, state_dir: str | None = None) -> None:
        self.dir = state_dir or STATE_DIR
        self.path = os.path.join(self.dir, 'networks.json')
        self.lock_path = os.path.join(self.dir, 'lock')

    def lock(self, timeout: float = LOCK_TIMEOUT) -> ContextManager[None]:
        """``with registry.lock():`` -- the one lock every change of the registry (and the firewall) takes."""
        return locked(self.lock_path, 'the network lock %s' % self.lock_path, timeout=timeout, interval=0.005)

    def load(self) -> Data:
        try:
            with open(self.path, 'r') as handle:
                data = json.load(handle)
        except (IOError, OSError) as exc:
            if exc.errno != errno.ENOENT:
                raise RuncibleError('cannot read the network registry %s: %s' % (self.path, exc))
            data = {}
        except ValueError as exc:
            raise RuncibleError('the network registry %s is corrupt (%s); fix or remove it (its bridges and '
                                'addresses are then forgotten)' % (self.path, exc))
        data.setdefault('networks', {})
        data.setdefault('allocations', {})
        return data

    def save(self, data: Data) -> None:
        data['version'] = REGISTRY_VERSION
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True))


def _record_of(allocation: dict[str, Any]) -> dict[str, Any] | None:
    path = os.path.join(allocation.get('root') or '/', 'containers', allocation.get('name') or '', 'record.json')
    try:
        with open(path, 'r') as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def collect_garbage(data: Data) -> bool:
    """Forget allocations whose container no longer exists (its store removed, say); -> True if any."""
    stale = [cid for cid, allocation in data['allocations'].items()
             if (_record_of(allocation) or {}).get('id') != container_of_key(cid)]
    for cid in stale:
        del data['allocations'][cid]
    return bool(stale)


def containers_on(data: Data, network_name: str) -> list[dict[str, Any]]:
    return sorted(({'name': allocation['name'], 'root': allocation['root'], 'ip_address': allocation['ip'],
                    'ipv6_address': allocation.get('ip6')}
                   for allocation in data['allocations'].values() if allocation['network'] == network_name),
                  key=lambda item: (item['root'], item['name']))


def holder_of(data: Data, mapping: PortMapping, exclude_id: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """The allocation (id, dict) of an attached container that publishes an overlapping host port."""
    from . import ports  # pylint: disable=import-outside-toplevel
    for cid, allocation in data['allocations'].items():
        if cid == exclude_id or not allocation.get('attached'):
            continue
        for item in allocation.get('ports') or []:
            if ports.PortMapping.from_dict(item).overlaps(mapping):
                return cid, allocation
    return None


def holder_text(allocation: dict[str, Any]) -> str:
    return 'container %s (root %s)' % (allocation['name'], allocation['root'])


def _overlap(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, data: Data,
             skip_network: str | None = None) -> str | None:
    """What ``subnet`` overlaps: another network of the registry or a host route; None when free."""
    from .bridges import host_routes  # pylint: disable=import-outside-toplevel
    own_bridge = None
    for name, network in data['networks'].items():
        if name == skip_network:
            own_bridge = network['bridge']
            continue
        for field in ('subnet', 'ipv6_subnet'):
            other = network.get(field)
            if other and subnet.version == ipaddress.ip_network(other).version and subnet.overlaps(
                    ipaddress.ip_network(other)):
                return 'network %s (%s)' % (name, other)
    if subnet.version == 6:
        return None  # host IPv6 routes: not read (a ULA of our own rarely meets one)
    for route, device in host_routes(exclude_devices=(own_bridge,) if own_bridge else ()):
        if subnet.overlaps(route):
            return 'the host route %s dev %s' % (route, device)
    return None


def same_subnet(first: Any, second: Any) -> bool:
    try:
        return ipaddress.ip_network(str(first), strict=False) == ipaddress.ip_network(str(second), strict=False)
    except ValueError:
        return False


def pick_subnet(data: Data) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    for subnet in SUBNET_POOL.subnets(new_prefix=SUBNET_PREFIX):
        if _overlap(subnet, data) is None:
            return subnet
    raise ValidationError('no free /%d left in %s for a new network: give its subnet' % (SUBNET_PREFIX, SUBNET_POOL))


def define(data: Data, name: str, subnet: str | None = None, gateway: str | None = None, internal: bool = False,
           bridge: str | None = None, dns: bool = False, ipv6: bool = False,
           ipv6_subnet: str | None = None) -> dict[str, Any]:
    """A validated network definition (dict), not yet in ``data``."""
    from .bridges import require_own_bridge  # pylint: disable=import-outside-toplevel
    validate_network_name(name)
    if subnet:
        try:
            network = ipaddress.ip_network(str(subnet), strict=False)
        except ValueError:
            raise ValidationError('subnet: %r is not an IPv4 network in CIDR form (e.g. 10.89.5.0/24)' % (subnet,))
        if network.version != 4:
            raise ValidationError('subnet: %r: only IPv4 networks are supported' % (subnet,))
        if str(network) != str(subnet).strip() and '/' in str(subnet):
            raise ValidationError('subnet: %r has host bits set; did you mean %s?' % (subnet, network))
        if network.prefixlen > 29:
            raise ValidationError('subnet: %s is too small: use a /29 or larger' % network)
        if network.is_loopback or network.is_multicast or network.is_link_local or network.is_unspecified:
            raise ValidationError('subnet: %s is not a usable network for containers' % network)
    else:
        network = pick_subnet(data)
    if gateway:
        try:
            gateway_address = ipaddress.ip_address(str(gateway))
        except ValueError:
            raise ValidationError('gateway: %r is not an IPv4 address' % (gateway,))
        if gateway_address not in network or gateway_address in (network.network_address, network.broadcast_address):
            raise ValidationError('gateway: %s is not a host address of the subnet %s' % (gateway_address, network))
    else:
        gateway_address = network.network_address + 1
    bridge = validate_bridge_name(bridge) if bridge else default_bridge_name(name)
    for other_name, other in data['networks'].items():
        if other_name != name and other['bridge'] == bridge:
            raise ValidationError('bridge %s already belongs to network %s' % (bridge, other_name))
    require_own_bridge({'name': name, 'bridge': bridge})
    clash = _overlap(network, data, skip_network=name)
    if clash:
        raise ValidationError('subnet %s of network %s overlaps %s; choose another subnet' % (network, name, clash))
    definition = {'name': name, 'bridge': bridge, 'subnet': str(network), 'gateway': str(gateway_address),
                  'internal': bool(internal), 'dns': bool(dns)}
    if ipv6:
        subnet6 = _ipv6_subnet(name, ipv6_subnet)
        clash = _overlap(subnet6, data, skip_network=name)
        if clash:
            raise ValidationError('ipv6_subnet %s of network %s overlaps %s; give another ipv6_subnet'
                                  % (subnet6, name, clash))
        definition.update(ipv6=True, ipv6_subnet=str(subnet6), ipv6_gateway=str(subnet6.network_address + 1))
    elif ipv6_subnet:
        raise ValidationError('ipv6_subnet needs ipv6: true')
    return definition


def _ipv6_subnet(name: str, given: str | None) -> ipaddress.IPv6Network:
    if not given:
        return ula_subnet(name)
    try:
        subnet6 = ipaddress.ip_network(str(given).strip(), strict=True)
    except ValueError as exc:
        raise ValidationError('ipv6_subnet: %r is not an IPv6 network in CIDR form without host bits (e.g. '
                              'fd12:3456:789a::/64): %s' % (given, exc))
    if subnet6.version != 6:
        raise ValidationError('ipv6_subnet: %r is not an IPv6 network' % (given,))
    if not 48 <= subnet6.prefixlen <= 120:
        raise ValidationError('ipv6_subnet: %s: give a prefix length from /48 to /120 (a /64 is usual)' % subnet6)
    if subnet6.is_loopback or subnet6.is_multicast or subnet6.is_link_local or subnet6.is_unspecified:
        raise ValidationError('ipv6_subnet: %s is not a usable network for containers' % subnet6)
    return subnet6


def ip_forward_warning(network: dict[str, Any]) -> str | None:
    """A warning when outbound traffic of a (non-internal) network cannot leave the host, else None."""
    if network.get('internal'):
        return None
    warnings = []
    if not _sysctl_on(IP_FORWARD):
        warnings.append('net.ipv4.ip_forward is 0 on this host: containers on network %s reach the host, each other and '
                        'their published ports, but not other hosts. Set it to 1 (e.g. with ansible.posix.sysctl) to let '
                        'their traffic out; runcible.oci does not change it for you' % network['name'])
    if network.get('ipv6') and not _sysctl_on(IP6_FORWARD):
        warnings.append('net.ipv6.conf.all.forwarding is 0 on this host: the IPv6 traffic of containers on network %s '
                        'reaches the host and each other, but not other hosts. Set it to 1 to let it out (NAT66); '
                        'runcible.oci does not change it for you' % network['name'])
    return ' '.join(warnings) or None


def _sysctl_on(path: str) -> bool:
    """Is the sysctl file ``path`` 1? (True when it cannot be read: nothing to warn about then.)"""
    try:
        with open(path) as handle:
            return handle.read().strip() == '1'
    except (IOError, OSError):
        return True
