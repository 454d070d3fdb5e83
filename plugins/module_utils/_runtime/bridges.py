# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Links on the host: the networks' bridges (ours only), and each container's veth pair into its namespace.

A bridge is the collection's only when it carries the alias ``runcible.oci network NAME`` (set when
it made the bridge, by this version and the older ones alike): an interface of the wanted name
without it belongs to someone else, and no network is defined on it, changed or deleted with it
(``ensure_bridge()``, ``delete_bridge()`` and ``bridge_ready()`` all ask ``bridge_owner()``).
Every bridge of the registry gets the loopback guard of ports.py. Links, addresses and routes are
made with rtnl.py (pyroute2, imported only when a link is changed).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import os
import socket
from typing import TYPE_CHECKING

from .rtnl import Rtnl
from .errors import RuncibleError, ValidationError
from .netns import netns_path

if TYPE_CHECKING:
    from typing import Any, Iterable

OWNED_BRIDGE_ALIAS = 'runcible.oci network %s'  # the alias of every bridge the collection makes
VETH_PREFIX = 'rcv'
CONTAINER_IFNAME = 'eth0'


def veth_name(container_id: str, index: int = 0) -> str:
    """The host end of the container's veth pair on its ``index``-th network: rcvID12 (eth0), rc1ID12 (eth1)..."""
    return VETH_PREFIX + container_id[:12] if index == 0 else 'rc%d%s' % (index, container_id[:12])


def container_ifname(index: int) -> str:
    return 'eth%d' % index


def host_addresses6(path: str = '/proc/net/if_inet6') -> list[tuple[str, int, str]]:
    """The host's IPv6 addresses (/proc/net/if_inet6) as (address text, prefixlen, device)."""
    found: list[tuple[str, int, str]] = []
    try:
        with open(path, 'r') as handle:
            lines = handle.read().splitlines()
    except (IOError, OSError):
        return found
    for line in lines:
        fields = line.split()
        if len(fields) >= 6:
            found.append((str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))), int(fields[2], 16), fields[5]))
    return found


def host_routes(exclude_devices: Iterable[str] = (),
                path: str = '/proc/net/route') -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    """IPv4 routes of the main table (/proc/net/route) as (network, device), default route left out."""
    routes: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    try:
        with open(path, 'r') as handle:
            lines = handle.read().splitlines()[1:]
    except (IOError, OSError):
        return routes
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0] in exclude_devices:
            continue
        destination = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, 'little'))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, 'little'))
        network = ipaddress.ip_network('%s/%s' % (destination, mask), strict=False)
        if network.prefixlen:
            routes.append((network, fields[0]))
    return routes


def interface_exists(name: str) -> bool:
    return os.path.exists(os.path.join('/sys/class/net', name))


def _write_sysctl(path: str, value: str) -> None:
    try:
        with open(path, 'w') as handle:
            handle.write(value)
    except (IOError, OSError) as exc:
        raise RuncibleError('cannot set %s to %s: %s' % (path, value, exc))


def _bridge_sysctls(network: dict[str, Any]) -> None:
    conf = '/proc/sys/net/ipv4/conf/%s/' % network['bridge']
    # 127.0.0.1:PORT on the host is DNATed out of this bridge, and the replies, de-NATed back to 127.0.0.1,
    # need loopback routing on it. The loopback guard of ports.py (every bridge of the registry) drops
    # whatever arrives on it from or to 127.0.0.0/8, so this opens no host loopback service to the bridge.
    _write_sysctl(conf + 'route_localnet', '1')
    # Forward what comes in from the containers (not for internal networks: no way out at all).
    _write_sysctl(conf + 'forwarding', '0' if network.get('internal') else '1')
    if network.get('ipv6'):
        # The bridge is a router's interface of ours: no router advertisement or redirect from a neighbour on it
        # changes the host's routes, and its gateway address is ours at once (no duplicate address detection).
        conf6 = '/proc/sys/net/ipv6/conf/%s/' % network['bridge']
        for name, value in (('disable_ipv6', '0'), ('accept_ra', '0'), ('accept_redirects', '0'),
                            ('accept_dad', '0')):
            _write_sysctl(conf6 + name, value)


def bridge_mac(network: dict[str, Any]) -> str:
    """The bridge's own MAC address: locally administered, unicast, from the network's name (stable).

    A bridge whose address was never set takes the lowest MAC of its ports, so it changed whenever a container
    came or went, and the containers' ARP entries of the gateway then pointed at an address nobody had any more:
    their traffic to the gateway (aardvark-dns, the way out) was lost until the entry expired. A set address
    stays (the kernel's BR_SET_MAC_ADDR).
    """
    digest = hashlib.sha256(('runcible.oci bridge ' + network['name']).encode()).digest()
    return ':'.join('%02x' % byte for byte in (bytes([0x02]) + digest[:5]))


def _mac_is_set(bridge: str) -> bool:
    """Was the bridge's address set (addr_assign_type 3, NET_ADDR_SET), so that its ports do not change it?"""
    try:
        with open(os.path.join('/sys/class/net', bridge, 'addr_assign_type')) as handle:
            return handle.read().strip() == '3'
    except (IOError, OSError):
        return False


def owned_alias(network: dict[str, Any]) -> str:
    return OWNED_BRIDGE_ALIAS % network['name']


def link_alias(name: str) -> str | None:
    """The alias of the interface ``name`` ('' when it has none), or None when there is no such interface."""
    try:
        with open(os.path.join('/sys/class/net', name, 'ifalias')) as handle:
            return handle.read().rstrip('\n')
    except FileNotFoundError:
        return None
    except (IOError, OSError) as exc:
        raise RuncibleError('cannot read the alias of the interface %s: %s' % (name, exc))


def bridge_owner(network: dict[str, Any]) -> str:
    """Who has the network's bridge name: 'missing' (nobody), 'ours' (its alias is the network's) or 'foreign'."""
    alias = link_alias(network['bridge'])
    if alias is None:
        return 'missing'
    return 'ours' if alias == owned_alias(network) else 'foreign'


def foreign_bridge_message(network: dict[str, Any]) -> str:
    alias = link_alias(network['bridge']) or ''
    return ('bridge %s already exists and was not created by runcible.oci for network %s (%s); runcible.oci never '
            'changes or deletes an interface it did not create: choose another bridge name for the network (option '
            'bridge), or remove the interface (ip link delete %s) if nothing else needs it'
            % (network['bridge'], network['name'], 'its alias is %r' % alias if alias else 'it has no alias',
               network['bridge']))


def require_own_bridge(network: dict[str, Any]) -> None:
    """Raise ValidationError when the network's bridge name is taken by an interface that is not ours."""
    if bridge_owner(network) == 'foreign':
        raise ValidationError(foreign_bridge_message(network))


def bridge_ready(network: dict[str, Any]) -> bool:
    """True when the bridge exists, is ours, is up and has the gateway address (by /sys and /proc: no netlink)."""
    base = os.path.join('/sys/class/net', network['bridge'])
    if not os.path.isdir(os.path.join(base, 'bridge')) or bridge_owner(network) != 'ours':
        return False
    if not _mac_is_set(network['bridge']):
        return False
    try:
        with open(os.path.join(base, 'flags')) as handle:
            if not int(handle.read().strip(), 16) & 1:
                return False
    except (IOError, OSError, ValueError):
        return False
    gateway = ipaddress.ip_address(network['gateway'])
    if network.get('ipv6') and not _has_gateway6(network):
        return False
    for route, device in host_routes():
        if device == network['bridge'] and gateway in route and str(route) == network['subnet']:
            return True
    return False


def _has_gateway6(network: dict[str, Any]) -> bool:
    wanted = (network['ipv6_gateway'], ipaddress.ip_network(network['ipv6_subnet']).prefixlen, network['bridge'])
    return wanted in host_addresses6()


def _link_index(rtnl: Rtnl, name: str, where: str = '') -> int:
    """The index of the interface ``name`` (Rtnl ``rtnl``'s namespace); OSError when missing."""
    index = rtnl.link_index(name)
    if index is None:
        raise OSError(errno.ENODEV, 'the interface %s%s is missing' % (name, where))
    return index


def _create_bridge(rtnl: Rtnl, network: dict[str, Any]) -> int:
    """A new bridge with our alias; -> its index. The kernel takes no alias with RTM_NEWLINK's creation, so it is
    set right after; when that fails, the bridge just made (ours: NLM_F_EXCL) is deleted again."""
    bridge = network['bridge']
    rtnl.add_bridge(bridge)
    index = _link_index(rtnl, bridge)
    try:
        rtnl.set_link(index, bridge, alias=owned_alias(network))
    except BaseException:
        with contextlib.suppress(OSError):
            rtnl.delete_link(index, bridge)
        raise
    return index


def ensure_bridge(network: dict[str, Any], rtnl: Rtnl | None = None) -> bool:
    """Create (or repair) the network's bridge: gateway address, up, sysctls; -> True when it changed.

    ``rtnl``: a Rtnl of the host's namespace to use (else one of its own). An interface of
    that name that is not ours is never touched: ValidationError.
    """
    bridge = network['bridge']
    changed = False
    try:
        with contextlib.ExitStack() as stack:
            if rtnl is None:
                rtnl = stack.enter_context(Rtnl())
            index = rtnl.link_index(bridge)
            if index is not None:
                require_own_bridge(network)
                if not os.path.isdir('/sys/class/net/%s/bridge' % bridge):
                    raise ValidationError('interface %s exists and is not a bridge: give network %s another bridge '
                                          'name' % (bridge, network['name']))
            else:
                index = _create_bridge(rtnl, network)
                changed = True
            prefixlen = ipaddress.ip_network(network['subnet']).prefixlen
            addresses = rtnl.addresses(index, bridge)
            if (network['gateway'], prefixlen) not in addresses:
                for address, other_prefixlen in addresses:
                    rtnl.delete_address(index, address, other_prefixlen, bridge)
                rtnl.add_address(index, network['gateway'], prefixlen, bridge)
                changed = True
            if network.get('ipv6'):
                _bridge_sysctls(network)  # before its address: no duplicate address detection on it
                prefixlen6 = ipaddress.ip_network(network['ipv6_subnet']).prefixlen
                addresses6 = [item for item in rtnl.addresses(index, bridge, family=socket.AF_INET6)
                              if not ipaddress.ip_address(item[0]).is_link_local]
                if (network['ipv6_gateway'], prefixlen6) not in addresses6:
                    for address, other_prefixlen in addresses6:
                        rtnl.delete_address(index, address, other_prefixlen, bridge)
                    rtnl.add_address(index, network['ipv6_gateway'], prefixlen6, bridge)
                    changed = True
            if not _mac_is_set(bridge):  # (bridges made by earlier versions, too)
                rtnl.set_link(index, bridge, mac=bridge_mac(network))
                changed = True
            with open('/sys/class/net/%s/flags' % bridge) as handle:
                if not int(handle.read().strip(), 16) & 1:
                    rtnl.set_link(index, bridge, up=True)
                    changed = True
    except OSError as exc:
        raise RuncibleError('cannot set up the bridge %s of network %s: %s' % (bridge, network['name'], exc))
    _bridge_sysctls(network)
    return changed


def delete_bridge(network: dict[str, Any]) -> bool:
    """Delete the network's bridge when it is ours; -> True when deleted. An interface of that name that is
    not ours is left as it is (see bridge_owner(); the caller may warn)."""
    bridge = network['bridge']
    if bridge_owner(network) != 'ours':
        return False
    try:
        with Rtnl() as rtnl:
            index = rtnl.link_index(bridge)
            if index is not None:
                rtnl.delete_link(index, bridge)
    except OSError as exc:
        raise RuncibleError('cannot delete the bridge %s of network %s: %s' % (bridge, network['name'], exc))
    return True


def plumb(network: dict[str, Any], container_id: str, address: str, name: str,
          inside_socket: socket.socket | None = None) -> None:
    """The veth pair of a container on one network: host end on the bridge, eth0 in its namespace (plumb_all)."""
    plumb_all([Link(network, 0, address)], container_id, name, inside_socket)


class Link(object):
    """One network of a container: its definition, its interface's index (eth0, eth1...), its addresses and
    whether its gateways give the container's default routes (the first network that is not internal)."""

    __slots__ = ('network', 'index', 'address', 'address6', 'default4', 'default6')

    def __init__(self, network: dict[str, Any], index: int, address: str, address6: str | None = None,
                 default4: bool | None = None, default6: bool | None = None) -> None:
        self.network = network
        self.index = index
        self.address = address
        self.address6 = address6
        internal = bool(network.get('internal'))
        self.default4 = (not internal) if default4 is None else default4
        self.default6 = bool(address6) and not internal if default6 is None else default6


def plumb_all(links: list[Link], container_id: str, name: str, inside_socket: socket.socket | None = None) -> None:
    """The veth pairs of a container: each host end on its network's bridge, ethN in its namespace with its
    addresses, and the default routes where the links say.

    ``inside_socket``: a netlink socket opened in the container's namespace, used and closed here
    (else one is opened in it by a thread that enters the namespace).
    """
    path = netns_path(container_id)
    link = links[0] if links else None
    try:
        with Rtnl() as rtnl:
            for link in links:
                network, host_end = link.network, veth_name(container_id, link.index)
                if not bridge_ready(network):
                    ensure_bridge(network, rtnl)
                stale = rtnl.link_index(host_end) if interface_exists(host_end) else None
                if stale is not None:
                    rtnl.delete_link(stale, host_end)
                netns_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    rtnl.add_veth(host_end, container_ifname(link.index), netns_fd)
                finally:
                    os.close(netns_fd)
                bridge_index = _link_index(rtnl, network['bridge'])
                rtnl.set_link(_link_index(rtnl, host_end), host_end, up=True, master=bridge_index,
                              alias='runcible.oci container %s' % name)
                # The host may still know the address with the MAC of its previous owner.
                for address in (link.address, link.address6):
                    if address:
                        with contextlib.suppress(OSError):
                            rtnl.delete_neighbour(bridge_index, address, network['bridge'])
        link = links[0] if links else None
        if inside_socket is not None:
            inside = Rtnl(inside_socket)
        else:
            inside = Rtnl.in_netns(path)
        with inside:
            inside.set_link(1, 'lo', up=True)  # lo: always index 1 in a namespace
            for link in links:
                network, ifname = link.network, container_ifname(link.index)
                index = _link_index(inside, ifname, ' in the namespace')
                inside.add_address(index, link.address, ipaddress.ip_network(network['subnet']).prefixlen, ifname)
                if link.address6:
                    inside.add_address(index, link.address6, ipaddress.ip_network(network['ipv6_subnet']).prefixlen,
                                       ifname)
                inside.set_link(index, ifname, up=True)
                if link.default4:
                    inside.add_default_route(network['gateway'])
                if link.default6:
                    inside.add_default_route(network['ipv6_gateway'])
    except OSError as exc:
        where = (link.network['name'], veth_name(container_id, link.index)) if link else ('?', '?')
        raise RuncibleError('cannot attach container %s to network %s (veth %s, namespace %s): %s'
                            % (name, where[0], where[1], path, exc))
