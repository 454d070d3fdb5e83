# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Published ports: parsing, host port reservation, and the firewall (nftables) that forwards them.

``published_ports`` entries are ``[hostIP:]hostPort:containerPort[/tcp|udp]``, where both ports may
be ranges of the same length (``8000-8005:80-85``). They are normalised to canonical strings:
expanded, sorted, then consecutive mappings merged again into ranges, so ``["8000:80", "8001:81"]``
equals ``["8000-8001:80-81"]`` and the wildcard host address is left out.

Reservation, as libpod does: every host port is bound (TCP also listens) before the container is
created, and the sockets are handed to conmon, which keeps them open for the container's life. No
other process can take the port meanwhile; when the container ends, conmon exits and the port is
free again. Connections never reach these sockets: DNAT sends them to the container first.

The firewall is **nftables**, in a table of our own (``ip runcible``) that is rewritten whole, in
one atomic ``nft -f`` transaction, from the network registry (networks.py) on every change:

* nothing of anyone else is touched (iptables users such as Docker or firewalld keep their chains,
  and we never edit theirs); iptables would mean inserting into the shared built-in chains and
  one process per rule, with no transaction: a failure half-way leaves half the rules;
* the table is a pure function of the registry, so stale rules of a container killed behind our
  back disappear at the next change, and a flushed ruleset is rebuilt by the next task;
* every rule carries a comment naming its network or container (``runcible ctr=ID12 NAME ...``),
  so ``nft list table ip runcible`` says what each one is for.

Loopback stays the host's own, by construction of the table rather than by one rule per port:

* a port published on a loopback address (any of 127.0.0.0/8) is DNATed in the chain
  ``published_loopback``, which only the ``output`` hook (the host's own connections) jumps to;
  the ``prerouting`` hook (traffic from any interface) jumps to ``published`` only for destinations
  outside 127.0.0.0/8, and ``published`` never holds a loopback rule. Otherwise a neighbour that
  routes 127.0.0.1 through the host would be DNATed before the kernel's martian check could drop
  it (moby#41872, kube-proxy's CVE-2020-8558);
* every bridge of the registry gets a guard in the chain ``guard`` (prerouting at raw priority,
  before conntrack and NAT): what arrives on it from or to 127.0.0.0/8 is dropped. The bridges need
  ``route_localnet`` for the replies of the host's own ``127.0.0.1:PORT`` connections (masqueraded
  to the gateway going out, de-NATed back to 127.0.0.1 after this hook), which would otherwise let
  a container or neighbour on the bridge reach host services bound to 127.0.0.1. Those replies
  carry the gateway's address on the wire, so the guard never sees them as loopback traffic.

IPv6 (``[::]:8080:80``, ``[fd00::1]:8080:80``) has a table of its own, ``ip6 runcible``, rendered by
``render6()`` from the same registry and applied in the same transaction: DNAT of the published IPv6
ports to the container's IPv6 address (its first network's), NAT66 (masquerade) of what leaves a
network's IPv6 subnet for another interface, the hairpin, and the internal networks' drops. ``[::]``
means every IPv6 address of the host (the socket is IPv6-only; ``8080:80`` stays IPv4's). IPv6 loopback is
the exception: the kernel has no ``route_localnet`` for IPv6 and drops a packet from ``::1`` that would be
DNATed out of ``lo`` (tested: a SYN DNATed from ``::1`` and SNATed on the bridge never arrives). So the
``ip6`` hooks never DNAT to ``::1``, and the host's connections to ``::1`` of a port published on ``[::1]``
(the host's alone, as ``127.0.0.1``) or ``[::]`` reach its socket, which a proxy process holds
(port_proxy.py). IPv4-mapped host addresses are refused.

Debian 11+, RHEL 8+ and Ubuntu 20.04+ run iptables on the nftables kernel API anyway
(``iptables-nft``). Caveat: a host firewall in another table or in iptables-legacy whose forward
policy is drop still drops forwarded container traffic; nftables evaluates every table's hooks.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import subprocess
from typing import TYPE_CHECKING

from .errors import RuncibleError, RuntimeCommandError, ValidationError
from .host import find_program

if TYPE_CHECKING:
    import ctypes
    from typing import Any, Iterable

    # container id, name, address, its mappings (and its IPv6 address, when it has one)
    Published = tuple[Any, ...]  # (id, name, address, [PortMapping]) or with the IPv6 address (str or None) after

PROTOCOLS = ('tcp', 'udp')
TABLE = 'runcible'
LOOPBACK = '127.0.0.0/8'
# Prerouting filter at raw priority (-300): before conntrack (-200) and before DNAT and the reply
# de-NAT of masqueraded flows (-100), so daddr is still what came over the wire.
GUARD_PRIORITY = -300
COMMENT_PREFIX = 'runcible'
NFT_HINT = 'nft not found: publishing ports and bridge networks need nftables; install the Debian package "nftables"'
NFT_TIMEOUT = 60


class PortMapping(object):
    """One host port forwarded to one container port."""

    __slots__ = ('host_ip', 'host_port', 'container_port', 'protocol')

    def __init__(self, host_ip: str | None, host_port: int, container_port: int, protocol: str = 'tcp') -> None:
        self.host_ip = host_ip or ''
        self.host_port = host_port
        self.container_port = container_port
        self.protocol = protocol

    def key(self) -> tuple[str, str, int, int]:
        return (self.protocol, self.host_ip, self.host_port, self.container_port)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortMapping) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return 'PortMapping(%r)' % self.text()

    def ipv6(self) -> bool:
        return ':' in self.host_ip

    def text(self) -> str:
        shown = '[%s]' % self.host_ip if self.ipv6() else self.host_ip
        host = '%s:%d' % (shown, self.host_port) if self.host_ip else '%d' % self.host_port
        return '%s:%d/%s' % (host, self.container_port, self.protocol)

    def as_dict(self) -> dict[str, str | int]:
        return {'host_ip': self.host_ip, 'host_port': self.host_port, 'container_port': self.container_port,
                'protocol': self.protocol}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PortMapping:
        return cls(data.get('host_ip') or '', int(data['host_port']), int(data['container_port']),
                   data.get('protocol') or 'tcp')

    def loopback(self) -> bool:
        """Published on a loopback address (127.0.0.0/8): for the host's own connections only."""
        return bool(self.host_ip) and ipaddress.ip_address(self.host_ip).is_loopback

    def overlaps(self, other: PortMapping) -> bool:
        """Both want the same host port: same protocol and port, and the same or a wildcard address."""
        if self.protocol != other.protocol or self.host_port != other.host_port or self.ipv6() != other.ipv6():
            return False
        wildcard = '::' if self.ipv6() else ''
        return self.host_ip == wildcard or other.host_ip == wildcard or self.host_ip == other.host_ip


# -- parsing ----------------------------------------------------------------------------------------

def _port_range(text: str, what: str, entry: object) -> tuple[int, int]:
    parts = text.split('-')
    if len(parts) > 2 or not all(part.isdigit() for part in parts):
        raise ValidationError('published_ports: %r: %s %r is not a port or a range of ports (e.g. 8080 or '
                              '8000-8005)' % (entry, what, text))
    first, last = int(parts[0]), int(parts[-1])
    for port in (first, last):
        if not 1 <= port <= 65535:
            raise ValidationError('published_ports: %r: %s %d is not between 1 and 65535' % (entry, what, port))
    if last < first:
        raise ValidationError('published_ports: %r: the %s range %s ends before it starts' % (entry, what, text))
    return first, last


def parse_entry(entry: object) -> list[PortMapping]:
    """One ``[hostIP:]hostPort:containerPort[/proto]`` entry -> list of PortMapping."""
    if isinstance(entry, bool) or not isinstance(entry, (str, int)):
        raise ValidationError('published_ports: %r is not a string like "8080:80" or "127.0.0.1:8080:80/udp"'
                              % (entry,))
    text = str(entry).strip()
    protocol = 'tcp'
    if '/' in text:
        text, protocol = text.rsplit('/', 1)
        protocol = protocol.lower()
        if protocol not in PROTOCOLS:
            raise ValidationError('published_ports: %r: protocol %r is not tcp or udp' % (entry, protocol))
    if text.startswith('['):  # [IPv6]:hostPort:containerPort
        address_text, bracket, rest = text[1:].partition(']')
        parts = rest.split(':')
        if not bracket or len(parts) != 3 or parts[0]:
            raise ValidationError('published_ports: %r is not [IPv6 address]:hostPort:containerPort[/tcp|udp] (as '
                                  '"[::]:8080:80")' % (entry,))
        parts = ['[%s]' % address_text] + parts[1:]
    else:
        parts = text.split(':')
    if len(parts) == 2:
        host_ip, host, container = '', parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host, container = parts
    else:
        hint = (' (an IPv6 host address goes in brackets, as in "[::]:8080:80")' if len(parts) > 3 else
                ': give the host port too, as in "8080:80"')
        raise ValidationError('published_ports: %r is not [hostIP:]hostPort:containerPort[/tcp|udp]%s'
                              % (entry, hint))
    if host_ip:
        bracketed = host_ip.startswith('[')
        host_ip = host_ip.strip('[]')
        try:
            address = ipaddress.ip_address(host_ip)
        except ValueError:
            raise ValidationError('published_ports: %r: %r is not an IP address' % (entry, host_ip))
        if address.version == 6 and not bracketed:
            raise ValidationError('published_ports: %r: put the IPv6 address in brackets, as in "[::]:8080:80"'
                                  % (entry,))
        if address.version == 6 and (address.is_link_local or address.is_multicast or '%' in host_ip):
            raise ValidationError('published_ports: %r: a link-local, scoped or multicast IPv6 address is not a host '
                                  'address a port can be published on; use [::] or a global or ULA address' % (entry,))
        if address.version == 6 and getattr(address, 'ipv4_mapped', None):
            raise ValidationError('published_ports: %r: an IPv4-mapped IPv6 address is not a host address a port can '
                                  'be published on; give the IPv4 address (as "127.0.0.1:8080:80")' % (entry,))
        if address.version == 6:
            host_ip = str(address)  # '::' stays: every IPv6 address (IPv4's wildcard is '')
        else:
            host_ip = '' if address.is_unspecified else str(address)
    host_first, host_last = _port_range(host, 'host port', entry)
    ctr_first, ctr_last = _port_range(container, 'container port', entry)
    if host_last - host_first != ctr_last - ctr_first:
        raise ValidationError('published_ports: %r: the host range has %d ports and the container range %d; '
                              'they must have the same length'
                              % (entry, host_last - host_first + 1, ctr_last - ctr_first + 1))
    return [PortMapping(host_ip, host_first + offset, ctr_first + offset, protocol)
            for offset in range(host_last - host_first + 1)]


def expand(entries: object) -> list[PortMapping]:
    """Every mapping of ``entries`` (raw or canonical strings), sorted; raises on clashes."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        entries = [entries]
    mappings: list[PortMapping] = []
    for entry in entries:
        mappings.extend(parse_entry(entry))
    mappings.sort(key=lambda mapping: (mapping.protocol, mapping.host_ip, mapping.host_port))
    unique: list[PortMapping] = []
    for mapping in mappings:
        if mapping in unique:
            continue
        for other in unique:
            if mapping.overlaps(other):
                raise ValidationError('published_ports: host port %s is published twice (%s and %s)'
                                      % (_host_port_text(mapping), other.text(), mapping.text()))
        unique.append(mapping)
    return unique


def _host_port_text(mapping: PortMapping) -> str:
    shown = '[%s]' % mapping.host_ip if mapping.ipv6() else mapping.host_ip
    return '%s%d/%s' % (shown + ':' if mapping.host_ip else '', mapping.host_port, mapping.protocol)


def canonical(mappings: Iterable[PortMapping]) -> list[str]:
    """Sorted mappings -> canonical strings, consecutive ones merged into ranges."""
    result: list[str] = []
    run: list[PortMapping] = []

    def flush() -> None:
        if not run:
            return
        first, last = run[0], run[-1]
        host = ('%d' % first.host_port if first is last else '%d-%d' % (first.host_port, last.host_port))
        ctr = ('%d' % first.container_port if first is last else '%d-%d' % (first.container_port, last.container_port))
        prefix = ('[%s]:' % first.host_ip if first.ipv6() else first.host_ip + ':') if first.host_ip else ''
        result.append('%s%s:%s/%s' % (prefix, host, ctr, first.protocol))
        del run[:]

    for mapping in mappings:
        if run:
            last = run[-1]
            if (mapping.protocol == last.protocol and mapping.host_ip == last.host_ip
                    and mapping.host_port == last.host_port + 1 and mapping.container_port == last.container_port + 1):
                run.append(mapping)
                continue
            flush()
        run.append(mapping)
    flush()
    return result


def normalise(entries: object) -> list[str]:
    """``published_ports`` as given -> canonical list of strings (see the module docstring)."""
    return canonical(expand(entries))


# -- reservation ------------------------------------------------------------------------------------

class PortInUse(RuncibleError):
    """A host port could not be bound; ``mapping`` says which."""

    def __init__(self, mapping: PortMapping, reason: str) -> None:
        super(PortInUse, self).__init__('host port %s is %s' % (_host_port_text(mapping), reason))
        self.mapping = mapping
        self.reason = reason


def bind(mapping: PortMapping) -> socket.socket:
    """A socket holding ``mapping``'s host port (TCP: listening, as libpod; UDP: bound). Raises PortInUse."""
    kind = socket.SOCK_STREAM if mapping.protocol == 'tcp' else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET6 if mapping.ipv6() else socket.AF_INET, kind)
    try:
        if mapping.ipv6():
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # [::] is IPv6's alone
        if kind == socket.SOCK_STREAM:
            # Never in TIME_WAIT trouble; a listening socket still excludes every other bind of the port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((mapping.host_ip or '0.0.0.0', mapping.host_port))
        if kind == socket.SOCK_STREAM:
            sock.listen(1)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(mapping, 'already in use')
        if exc.errno == errno.EADDRNOTAVAIL:
            raise PortInUse(mapping, 'on an address this host does not have')
        if exc.errno == errno.EACCES:
            raise PortInUse(mapping, 'not allowed (%s)' % exc.strerror)
        raise PortInUse(mapping, 'not available (%s)' % exc.strerror)
    return sock


def reserve(mappings: Iterable[PortMapping]) -> list[socket.socket]:
    """Bind every mapping; -> list of sockets. All or nothing: on failure every socket is closed."""
    sockets = []
    try:
        for mapping in mappings:
            sockets.append(bind(mapping))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def probe(mappings: Iterable[PortMapping]) -> None:
    """Raise PortInUse for the first mapping whose host port cannot be bound now (nothing stays bound)."""
    for sock in reserve(mappings):
        sock.close()


# -- nftables ---------------------------------------------------------------------------------------

def _comment(text: str) -> str:
    # nft comments: at most 128 characters, no double quote (names and ids never hold one).
    return 'comment "%s"' % ('%s %s' % (COMMENT_PREFIX, text))[:128].replace('"', "'")


def container_tag(container_id: str, name: str) -> str:
    return 'ctr=%s %s' % (container_id[:12], name)


def network_tag(network_name: str) -> str:
    return 'net=%s' % network_name


def dnat_rules(container_id: str, name: str, address: str, mappings: Iterable[PortMapping]) -> list[str]:
    """The DNAT rules of one container's mappings (render() puts loopback ones in their own chain; IPv6 ones, to
    the container's IPv6 ``address``, are render6()'s)."""
    rules = []
    tag = container_tag(container_id, name)
    for mapping in mappings:
        if mapping.ipv6():
            match = 'ip6 daddr %s ' % mapping.host_ip if mapping.host_ip != '::' else ''
            target = '[%s]' % address
        else:
            match = 'ip daddr %s ' % mapping.host_ip if mapping.host_ip else ''
            target = address
        rules.append('%s%s dport %d dnat to %s:%d %s' % (
            match, mapping.protocol, mapping.host_port, target, mapping.container_port,
            _comment('%s %s' % (tag, mapping.text()))))
    return rules


def guard_rules(network: dict[str, Any]) -> list[str]:
    """The rules (chain ``guard``) that keep loopback the host's own on a network's bridge."""
    bridge, tag = network['bridge'], network_tag(network['name'])
    return [
        # To host services on 127.0.0.1 (route_localnet is set on the bridge) or to loopback-published ports.
        'iifname "%s" ip daddr %s drop %s' % (bridge, LOOPBACK, _comment(tag + ' loopback guard, to 127/8')),
        # From a forged loopback source: the kernel accepts any but the host's own addresses (127.0.0.2, say).
        'iifname "%s" ip saddr %s drop %s' % (bridge, LOOPBACK, _comment(tag + ' loopback guard, from 127/8')),
    ]


def network_rules(network: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """-> (postrouting, forward, guard) rules of one network (a dict: name, bridge, subnet, internal)."""
    bridge, subnet, tag = network['bridge'], network['subnet'], network_tag(network['name'])
    postrouting = [
        # Published ports reached from the host's own 127.0.0.1 (route_localnet is set on the bridge).
        'oifname "%s" ip saddr %s masquerade %s' % (bridge, LOOPBACK, _comment(tag + ' localhost')),
        # A container reaching a published port of its own network through a host address.
        'oifname "%s" ip saddr %s ct status dnat masquerade %s' % (bridge, subnet, _comment(tag + ' hairpin')),
    ]
    forward = internal_drops(bridge, tag + ' internal') if network.get('internal') else []
    if not network.get('internal'):
        postrouting.append('ip saddr %s oifname != "%s" masquerade %s'
                           % (subnet, bridge, _comment(tag + ' outbound')))
    return postrouting, forward, guard_rules(network)


def hook_rules() -> dict[str, list[str]]:
    """The rules of the NAT hooks that lead to the DNAT chains: -> {chain: rules}."""
    return {
        # From any interface: never to 127.0.0.0/8 (see the module docstring).
        'prerouting': ['ip daddr != %s fib daddr type local jump published %s'
                       % (LOOPBACK, _comment('published ports, not to 127/8'))],
        # The host's own connections: its loopback ports first, then the others.
        'output': ['ip daddr %s jump published_loopback %s' % (LOOPBACK, _comment('loopback ports, from the host')),
                   'fib daddr type local jump published %s' % _comment('published ports, from the host')],
    }


def chains_of(networks: Iterable[dict[str, Any]], published: Iterable[Published]) -> list[tuple[str, str | None, list[str]]]:
    """-> [(chain, base chain spec or None, rules)] of the table, in a stable order."""
    postrouting, forward, guard, dnat, dnat_loopback = [], [], [], [], []
    for network in sorted(networks, key=lambda item: item['name']):
        post, fwd, grd = network_rules(network)
        postrouting += post
        forward += fwd
        guard += grd
    for container_id, name, address, mappings, *_more in sorted(published, key=lambda item: (item[1], item[0])):
        mappings = [mapping for mapping in mappings if not mapping.ipv6()]
        loopback = [mapping for mapping in mappings if mapping.loopback()]
        dnat += dnat_rules(container_id, name, address, [mapping for mapping in mappings if mapping not in loopback])
        dnat_loopback += dnat_rules(container_id, name, address, loopback)
    hooks = hook_rules()
    return [
        ('guard', 'type filter hook prerouting priority %d; policy accept;' % GUARD_PRIORITY, guard),
        ('prerouting', 'type nat hook prerouting priority -100; policy accept;', hooks['prerouting']),
        ('output', 'type nat hook output priority -100; policy accept;', hooks['output']),
        ('published', None, dnat),
        ('published_loopback', None, dnat_loopback),
        ('postrouting', 'type nat hook postrouting priority 100; policy accept;', postrouting),
        ('forward', 'type filter hook forward priority 0; policy accept;', forward),
    ]


def render(networks: list[dict[str, Any]], published: list[Published]) -> str:
    """The whole ``ip runcible`` table as an nft script, applied as one transaction.

    ``networks``: network dicts; ``published``: (container id, name, address, mappings) tuples.
    The chains are declared (a no-op when they exist), every rule of the table flushed and the
    rules added again: the base chains stay hooked, so nothing passes unfiltered in between.
    With no network left the table is deleted.
    """
    if not networks and not published:
        return 'add table ip %s\ndelete table ip %s\n' % (TABLE, TABLE)
    chains = chains_of(networks, published)
    lines = ['add table ip %s' % TABLE]
    for chain, base, _rules in chains:
        lines.append('add chain ip %s %s%s' % (TABLE, chain, ' { %s }' % base if base else ''))
    lines.append('flush table ip %s' % TABLE)
    for chain, _base, rules in chains:
        lines += ['add rule ip %s %s %s' % (TABLE, chain, rule) for rule in rules]
    return '\n'.join(lines) + '\n'


def internal_drops(bridge: str, comment: str) -> list[str]:
    """An internal network's forward rules: nothing leaves its bridge for another interface, nothing comes in."""
    return ['iifname "%s" oifname != "%s" drop %s' % (bridge, bridge, _comment(comment)),
            'oifname "%s" iifname != "%s" drop %s' % (bridge, bridge, _comment(comment))]


def network_rules6(network: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """-> (postrouting, forward, guard) rules of the ``ip6`` table for an IPv6 network (NAT66 unless internal)."""
    bridge, subnet, tag = network['bridge'], network['ipv6_subnet'], network_tag(network['name'])
    postrouting = ['oifname "%s" ip6 saddr %s ct status dnat masquerade %s' % (bridge, subnet, _comment(tag + ' hairpin6'))]
    forward = internal_drops(bridge, tag + ' internal6') if network.get('internal') else []
    if not network.get('internal'):
        postrouting.append('ip6 saddr %s oifname != "%s" masquerade %s' % (subnet, bridge, _comment(tag + ' outbound6')))
    # IPv6 lets an unprivileged socket send from any address (IPV6_FREEBIND) and has no rp_filter: what comes in from
    # the bridge carries the network's subnet, a link-local or the unspecified address as its source, or is dropped.
    guard = ['iifname "%s" ip6 saddr != { %s, fe80::/10, ::/128 } drop %s' % (bridge, subnet, _comment(tag + ' spoof6'))]
    return postrouting, forward, guard


def hook_rules6() -> dict[str, list[str]]:
    """The rules of the ``ip6`` NAT hooks: never DNAT to ``::1`` (dropped by the kernel: the proxy serves it)."""
    return {
        'prerouting': ['ip6 daddr != ::1 fib daddr type local jump published %s' % _comment('published ports6')],
        'output': ['ip6 daddr != ::1 fib daddr type local jump published %s'
                   % _comment('published ports6, from the host, not to ::1')],
    }


def render6(networks: list[dict[str, Any]], published: list[Published]) -> str:
    """The ``ip6 runcible`` table (IPv6 networks and IPv6 published ports) as an nft script; deleted when empty."""
    networks = [network for network in networks if network.get('ipv6')]
    dnat: list[str] = []
    for item in sorted(published, key=lambda item: (item[1], item[0])):
        address6 = item[4] if len(item) > 4 else None
        # [::1] is the proxy's alone (port_proxy.py): the kernel cannot forward IPv6 loopback.
        mappings6 = [mapping for mapping in item[3] if mapping.ipv6() and mapping.host_ip != '::1']
        if address6 and mappings6:
            dnat += dnat_rules(item[0], item[1], address6, mappings6)
    if not networks and not dnat:
        return 'add table ip6 %s\ndelete table ip6 %s\n' % (TABLE, TABLE)
    postrouting, forward, guard = [], [], []
    for network in sorted(networks, key=lambda item: item['name']):
        post, fwd, grd = network_rules6(network)
        postrouting += post
        forward += fwd
        guard += grd
    hooks = hook_rules6()
    chains = [
        ('guard', 'type filter hook prerouting priority %d; policy accept;' % GUARD_PRIORITY, guard),
        ('prerouting', 'type nat hook prerouting priority -100; policy accept;', hooks['prerouting']),
        ('output', 'type nat hook output priority -100; policy accept;', hooks['output']),
        ('published', None, dnat),
        ('postrouting', 'type nat hook postrouting priority 100; policy accept;', postrouting),
        ('forward', 'type filter hook forward priority 0; policy accept;', forward),
    ]
    lines = ['add table ip6 %s' % TABLE]
    for chain, base, _rules in chains:
        lines.append('add chain ip6 %s %s%s' % (TABLE, chain, ' { %s }' % base if base else ''))
    lines.append('flush table ip6 %s' % TABLE)
    for chain, _base, rules in chains:
        lines += ['add rule ip6 %s %s %s' % (TABLE, chain, rule) for rule in rules]
    return '\n'.join(lines) + '\n'


def comments_of(rules: Iterable[str]) -> list[str]:
    """The ``comment "..."`` parts of rules, as nft lists them back."""
    return ['comment ' + rule.split(' comment ', 1)[1] for rule in rules if ' comment ' in rule]


def expected_comments(network: dict[str, Any]) -> list[str]:
    """The comments of every rule this version renders for ``network`` and of the hooks: all must be listed
    for the table to be complete (a flushed table, or one written by an older version, is not)."""
    rules = [rule for chain_rules in hook_rules().values() for rule in chain_rules]
    for part in network_rules(network):
        rules += part
    if network.get('ipv6'):
        rules += [rule for chain_rules in hook_rules6().values() for rule in chain_rules]
        for part in network_rules6(network):
            rules += part
    return sorted(set(comments_of(rules)))


_libnft: list[ctypes.CDLL | None] = []  # empty until loaded: then libnftables, or None when absent


def _libnftables() -> ctypes.CDLL | None:
    """libnftables through ctypes (what the nft program itself uses, minus a process), or None."""
    if not _libnft:
        import ctypes  # pylint: disable=import-outside-toplevel  # only when the firewall is changed
        try:
            lib = ctypes.CDLL('libnftables.so.1', use_errno=True)
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        except (OSError, AttributeError):
            lib = None
        _libnft.append(lib)
    return _libnft[0]


def run_nft(script: str) -> tuple[int, str, str]:
    """-> (rc, output, error text) of an nft script: libnftables when present, else the nft program."""
    lib = _libnftables()
    if lib is not None:
        ctx = lib.nft_ctx_new(0)
        if ctx:
            try:
                lib.nft_ctx_buffer_output(ctx)
                lib.nft_ctx_buffer_error(ctx)
                rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
                output = (lib.nft_ctx_get_output_buffer(ctx) or b'').decode('utf-8', 'replace')
                error = (lib.nft_ctx_get_error_buffer(ctx) or b'').decode('utf-8', 'replace')
                return rc, output, error.strip()
            finally:
                lib.nft_ctx_free(ctx)
    path = find_program('nft')
    if not path:
        raise ValidationError(NFT_HINT)
    argv = [path, '-f', '-']
    try:
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        proc = subprocess.run(argv, input=script.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=NFT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeCommandError('cannot run nft: %s' % exc, argv=argv)
    return (proc.returncode, proc.stdout.decode('utf-8', 'replace'),
            proc.stderr.decode('utf-8', 'replace').strip())


def apply(script: str) -> None:
    """Run an nft script as one transaction; raises with nft's own words."""
    rc, _output, error = run_nft(script)
    if rc != 0:
        raise RuntimeCommandError('nftables refused the runcible firewall rules: %s' % (error or 'exit code %d' % rc),
                                  script=script)


def listed_rules(comment_part: str | None = None) -> list[str]:
    """The rules of our tables (ip, ip6) as nft prints them (optionally only those whose comment holds
    ``comment_part``)."""
    rules = []
    for family in ('ip', 'ip6'):
        rc, output, _error = run_nft('list table %s %s' % (family, TABLE))
        if rc == 0:
            rules += [line.strip() for line in output.splitlines() if 'comment "' in line]
    return [rule for rule in rules if comment_part is None or comment_part in rule]
