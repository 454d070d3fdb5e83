# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/ports.py: published_ports parsing and canonical form, reservation, the nftables script."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import port_proxy, ports
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.ports import PortMapping

CID = 'ab' * 32


# -- parsing and the canonical form ---------------------------------------------------------------------

@pytest.mark.parametrize('given, canonical', [
    (['8080:80'], ['8080:80/tcp']),
    ('8080:80', ['8080:80/tcp']),
    (['8080:80/udp'], ['8080:80/udp']),
    (['8080:80/TCP'], ['8080:80/tcp']),
    (['127.0.0.1:8080:80'], ['127.0.0.1:8080:80/tcp']),
    (['0.0.0.0:8080:80'], ['8080:80/tcp']),
    ([' 8080:80 '], ['8080:80/tcp']),
    (['8000-8005:80-85'], ['8000-8005:80-85/tcp']),
    (['8000:80', '8001:81', '8002:82'], ['8000-8002:80-82/tcp']),
    (['8001:81', '8000:80'], ['8000-8001:80-81/tcp']),
    (['8000:80', '8001:90'], ['8000:80/tcp', '8001:90/tcp']),
    (['8000:80', '8001:81/udp'], ['8000:80/tcp', '8001:81/udp']),
    (['8000:80/udp', '8000:80/tcp'], ['8000:80/tcp', '8000:80/udp']),
    (['8080:80', '8080:80'], ['8080:80/tcp']),
    (['127.0.0.1:8000:80', '127.0.0.2:8000:80'], ['127.0.0.1:8000:80/tcp', '127.0.0.2:8000:80/tcp']),
    (['9000-9000:90-90'], ['9000:90/tcp']),
    (['[::]:8080:80'], ['[::]:8080:80/tcp']),
    (['[FD00::1]:8000:80', '[fd00::1]:8001:81/tcp'], ['[fd00::1]:8000-8001:80-81/tcp']),
    (['[::]:8080:80', '8080:80'], ['8080:80/tcp', '[::]:8080:80/tcp']),  # IPv4's wildcard and IPv6's: both
    ([], []),
    (None, []),
])
def test_normalise(given, canonical):
    assert ports.normalise(given) == canonical
    assert ports.normalise(canonical) == canonical, 'the canonical form is a fixed point'


@pytest.mark.parametrize('given, message', [
    (['80'], 'give the host port too'),
    (['a:80'], "host port 'a' is not a port"),
    (['8080:b'], "container port 'b'"),
    (['0:80'], 'not between 1 and 65535'),
    (['70000:80'], 'not between 1 and 65535'),
    (['8080:80/sctp'], "protocol 'sctp' is not tcp or udp"),
    (['8005-8000:80-85'], 'ends before it starts'),
    (['8000-8005:80-81'], 'the host range has 6 ports and the container range 2'),
    (['300.1.1.1:8080:80'], 'is not an IP address'),
    (['[::ffff:127.0.0.1]:8080:80'], 'an IPv4-mapped IPv6 address is not a host address'),
    (['::1:8080:80'], 'an IPv6 host address goes in brackets'),
    (['[fe80::1]:8080:80'], 'a link-local, scoped or multicast IPv6 address'),
    (['[fe80::1%eth0]:8080:80'], 'a link-local, scoped or multicast IPv6 address'),
    (['[ff02::1]:8080:80'], 'a link-local, scoped or multicast IPv6 address'),
    (['[::]8080:80'], 'is not \\[IPv6 address\\]:hostPort:containerPort'),
    (['[fd00::1:8080:80'], 'is not \\[IPv6 address\\]:hostPort:containerPort'),
    (['[10.0.0.1]:8080:80', '10.0.0.1:8080:81'], 'host port 10.0.0.1:8080/tcp is published twice'),
    (['[::]:8080:80', '[fd00::1]:8080:81'], r'host port \[fd00::1\]:8080/tcp is published twice'),
    (['8000-8002-8004:80'], 'not a port or a range'),
    ([True], 'is not a string'),
    ([{'host': 80}], 'is not a string'),
    (['8080:80', '8080:81'], 'host port 8080/tcp is published twice'),
    (['8080:80', '127.0.0.1:8080:81'], 'host port 127.0.0.1:8080/tcp is published twice'),
    (['8000-8010:80-90', '8005:1'], 'host port 8005/tcp is published twice'),
])
def test_normalise_rejects(given, message):
    with pytest.raises(ValidationError, match=message):
        ports.normalise(given)


def test_expand_and_mapping_round_trip():
    mappings = ports.expand(['127.0.0.1:8000-8001:80-81/udp'])
    assert mappings == [PortMapping('127.0.0.1', 8000, 80, 'udp'), PortMapping('127.0.0.1', 8001, 81, 'udp')]
    assert [PortMapping.from_dict(mapping.as_dict()) for mapping in mappings] == mappings
    assert mappings[0].text() == '127.0.0.1:8000:80/udp'


@pytest.mark.parametrize('first, second, overlap', [
    (('', 80, 1, 'tcp'), ('', 80, 2, 'tcp'), True),
    (('', 80, 1, 'tcp'), ('127.0.0.1', 80, 2, 'tcp'), True),
    (('127.0.0.1', 80, 1, 'tcp'), ('127.0.0.2', 80, 2, 'tcp'), False),
    (('', 80, 1, 'tcp'), ('', 80, 1, 'udp'), False),
    (('', 80, 1, 'tcp'), ('', 81, 1, 'tcp'), False),
])
def test_overlaps(first, second, overlap):
    assert PortMapping(*first).overlaps(PortMapping(*second)) is overlap
    assert PortMapping(*second).overlaps(PortMapping(*first)) is overlap


# -- reservation ----------------------------------------------------------------------------------------

def _free_local_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_reserve_holds_the_port_and_says_when_it_is_taken():
    port = _free_local_port()
    held = ports.reserve([PortMapping('127.0.0.1', port, 80, 'tcp'), PortMapping('127.0.0.1', port, 80, 'udp')])
    try:
        assert [sock.type for sock in held] == [socket.SOCK_STREAM, socket.SOCK_DGRAM]
        assert all(sock.get_inheritable() is False for sock in held), 'never leaked into other programs'
        with pytest.raises(ports.PortInUse, match='host port 127.0.0.1:%d/tcp is already in use' % port):
            ports.probe([PortMapping('127.0.0.1', port, 80, 'tcp')])
        with pytest.raises(ports.PortInUse, match='/udp is already in use'):
            ports.bind(PortMapping('127.0.0.1', port, 80, 'udp'))
    finally:
        for sock in held:
            sock.close()
    ports.probe([PortMapping('127.0.0.1', port, 80, 'tcp')])  # free again


def test_reserve_is_all_or_nothing():
    taken = socket.socket()
    taken.bind(('127.0.0.1', 0))
    taken.listen(1)
    free = _free_local_port()
    try:
        with pytest.raises(ports.PortInUse):
            ports.reserve([PortMapping('127.0.0.1', free, 1), PortMapping('127.0.0.1', taken.getsockname()[1], 1)])
        ports.probe([PortMapping('127.0.0.1', free, 1)])  # the first one was let go again
    finally:
        taken.close()


def test_address_the_host_does_not_have():
    with pytest.raises(ports.PortInUse, match='on an address this host does not have'):
        ports.bind(PortMapping('192.0.2.254', 8080, 80))


# -- the nftables script --------------------------------------------------------------------------------

NETWORK = {'name': 'runcible', 'bridge': 'runcible0', 'subnet': '10.89.0.0/24', 'gateway': '10.89.0.1',
           'internal': False}
INTERNAL = {'name': 'secret', 'bridge': 'rcb-secret', 'subnet': '10.89.1.0/24', 'gateway': '10.89.1.1',
            'internal': True}


def test_render_nothing_deletes_the_table():
    assert ports.render([], []) == 'add table ip runcible\ndelete table ip runcible\n'


def test_render_networks_and_published_ports():
    script = ports.render([INTERNAL, NETWORK], [(CID, 'web', '10.89.0.2', ports.expand(['127.0.0.1:8080:80',
                                                                                        '5353:53/udp']))])
    lines = script.splitlines()
    assert lines[0] == 'add table ip runcible'
    assert 'add chain ip runcible prerouting { type nat hook prerouting priority -100; policy accept; }' in lines
    assert 'add chain ip runcible published' in lines
    # Flushed, then filled: one transaction, the base chains stay hooked.
    flush = lines.index('flush table ip runcible')
    assert all(line.startswith('add chain') for line in lines[1:flush])
    assert all(line.startswith('add rule ip runcible ') for line in lines[flush + 1:])
    rules = lines[flush + 1:]
    tag = 'ctr=%s web' % CID[:12]
    assert ('add rule ip runcible published_loopback ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.89.0.2:80 '
            'comment "runcible %s 127.0.0.1:8080:80/tcp"' % tag) in rules
    assert ('add rule ip runcible published udp dport 5353 dnat to 10.89.0.2:53 '
            'comment "runcible %s 5353:53/udp"' % tag) in rules
    assert ('add rule ip runcible postrouting ip saddr 10.89.0.0/24 oifname != "runcible0" masquerade '
            'comment "runcible net=runcible outbound"') in rules
    assert not [rule for rule in rules if 'net=secret outbound' in rule], 'internal: no masquerade out'
    assert ('add rule ip runcible forward iifname "rcb-secret" oifname != "rcb-secret" drop '
            'comment "runcible net=secret internal"') in rules
    assert [rule for rule in rules if 'net=runcible localhost' in rule and 'ip saddr 127.0.0.0/8 masquerade' in rule]
    assert all('comment "runcible ' in rule for rule in rules), 'every rule is tagged'


def _chains(script):
    """-> {chain: [rules]} and {chain: base spec} of a rendered script."""
    rules, bases = {}, {}
    for line in script.splitlines():
        words = line.split(' ', 5)
        if line.startswith('add chain '):
            bases[words[4]] = line.split('{', 1)[1].strip(' }') if '{' in line else None
            rules.setdefault(words[4], [])
        elif line.startswith('add rule '):
            rules[words[4]].append(words[5])
    return rules, bases


def _jumps_to(rules, target):
    return sorted(chain for chain, chain_rules in rules.items() for rule in chain_rules
                  if ('jump %s ' % target) in rule + ' ')


@pytest.mark.parametrize('host_ip', ['127.0.0.1', '127.0.0.2', '127.1.2.3', '127.255.255.254'])
@pytest.mark.parametrize('protocol', ['tcp', 'udp'])
def test_loopback_ports_are_only_for_the_hosts_own_connections(host_ip, protocol):
    """Issue 13 item 5: a port published on any 127.0.0.0/8 address is DNATed only from the output hook; from
    prerouting (any interface) nothing is DNATed to 127.0.0.0/8, a wildcard port included."""
    mappings = ports.expand(['%s:8080:80/%s' % (host_ip, protocol), '9090:90/%s' % protocol])
    assert [mapping.loopback() for mapping in mappings] == [False, True]
    rules, bases = _chains(ports.render([NETWORK], [(CID, 'web', '10.89.0.2', mappings)]))
    assert rules['published_loopback'] == [
        'ip daddr %s %s dport 8080 dnat to 10.89.0.2:80 comment "runcible ctr=%s web %s:8080:80/%s"'
        % (host_ip, protocol, CID[:12], host_ip, protocol)]
    assert rules['published'] == ['%s dport 9090 dnat to 10.89.0.2:90 comment "runcible ctr=%s web 9090:90/%s"'
                                  % (protocol, CID[:12], protocol)]
    assert not [rule for rule in rules['published'] if '127.' in rule], 'no loopback rule where prerouting jumps'
    assert bases['published_loopback'] is None and bases['published'] is None, 'regular chains: only jumped to'
    assert _jumps_to(rules, 'published_loopback') == ['output'], 'only the host\'s own connections'
    assert _jumps_to(rules, 'published') == ['output', 'prerouting']
    assert rules['prerouting'] == ['ip daddr != 127.0.0.0/8 fib daddr type local jump published '
                                   'comment "runcible published ports, not to 127/8"']
    assert rules['output'][0].startswith('ip daddr 127.0.0.0/8 jump published_loopback ')
    assert 'type nat hook output' in bases['output'] and 'type nat hook prerouting' in bases['prerouting']


@pytest.mark.parametrize('text, loopback', [
    ('8080:80', False), ('10.0.0.1:8080:80', False), ('127.0.0.1:8080:80', True), ('127.9.9.9:8080:80/udp', True),
    ('126.255.255.255:8080:80', False), ('128.0.0.1:8080:80', False),
])
def test_mapping_loopback(text, loopback):
    assert ports.expand([text])[0].loopback() is loopback


def test_every_bridge_gets_the_loopback_guard_at_raw_priority():
    """Issue 13 item 6: whatever arrives on one of our bridges from or to 127.0.0.0/8 is dropped before conntrack
    and NAT (so the de-NATed replies of the host's own masqueraded flows, which carry the gateway's address on
    the wire, are not), internal networks included."""
    other = dict(NETWORK, name='other', bridge='rcb-other', subnet='10.89.2.0/24', gateway='10.89.2.1')
    rules, bases = _chains(ports.render([NETWORK, INTERNAL, other], []))
    assert bases['guard'] == 'type filter hook prerouting priority -300; policy accept;'
    for network in (NETWORK, INTERNAL, other):
        bridge, name = network['bridge'], network['name']
        assert ('iifname "%s" ip daddr 127.0.0.0/8 drop comment "runcible net=%s loopback guard, to 127/8"'
                % (bridge, name)) in rules['guard']
        assert ('iifname "%s" ip saddr 127.0.0.0/8 drop comment "runcible net=%s loopback guard, from 127/8"'
                % (bridge, name)) in rules['guard']
    assert len(rules['guard']) == 6, 'two per bridge, nothing else'
    assert ports.GUARD_PRIORITY < -200, 'before conntrack (-200) and NAT (-100)'


def test_expected_comments_are_those_rendered():
    script = ports.render([NETWORK, INTERNAL], [])
    rendered = set(ports.comments_of([line for line in script.splitlines() if line.startswith('add rule ')]))
    for network in (NETWORK, INTERNAL):
        expected = ports.expected_comments(network)
        assert expected and set(expected) <= rendered
        assert 'comment "runcible net=%s loopback guard, to 127/8"' % network['name'] in expected
        assert 'comment "runcible published ports, not to 127/8"' in expected


def test_render_is_deterministic():
    published = [(CID, 'b', '10.89.0.3', ports.expand(['81:80'])), ('cd' * 32, 'a', '10.89.0.2', ports.expand(['80:80']))]
    assert ports.render([NETWORK, INTERNAL], published) == ports.render([INTERNAL, NETWORK], published[::-1])


def test_comment_is_bounded():
    rules = ports.dnat_rules(CID, 'x' * 128, '10.89.0.2', ports.expand(['8080:80']))
    comment = rules[0].split('comment ', 1)[1]
    assert len(comment) <= 130 and comment.startswith('"runcible ctr=')


def test_render6_forwards_ipv6_ports_to_the_ipv6_address_and_masquerades_the_ula_subnet():
    network = {'name': 'web6', 'bridge': 'rcb-web6', 'subnet': '10.89.7.0/24', 'gateway': '10.89.7.1',
               'internal': False, 'dns': True, 'ipv6': True, 'ipv6_subnet': 'fd12:3456:789a::/64',
               'ipv6_gateway': 'fd12:3456:789a::1'}
    mappings = ports.expand(['8080:80', '[::]:8080:80', '[fd00::5]:9090:90/udp'])
    published = [(CID, 'web', '10.89.7.2', mappings, 'fd12:3456:789a::2')]
    script6 = ports.render6([network], published)
    assert 'add rule ip6 runcible published tcp dport 8080 dnat to [fd12:3456:789a::2]:80 ' in script6
    assert 'add rule ip6 runcible published ip6 daddr fd00::5 udp dport 9090 dnat to [fd12:3456:789a::2]:90 ' in script6
    assert ('add rule ip6 runcible postrouting ip6 saddr fd12:3456:789a::/64 oifname != "rcb-web6" masquerade'
            in script6)
    assert 'dnat to 10.89.7.2' not in script6
    # What comes in from the bridge has the subnet's, a link-local or the unspecified source, or it is dropped.
    assert ('add rule ip6 runcible guard iifname "rcb-web6" ip6 saddr != { fd12:3456:789a::/64, fe80::/10, ::/128 } '
            'drop ' in script6)
    assert 'add chain ip6 runcible guard { type filter hook prerouting priority -300; policy accept; }' in script6
    script4 = ports.render([network], published)
    assert 'tcp dport 8080 dnat to 10.89.7.2:80' in script4 and 'fd12' not in script4 and '9090' not in script4
    # No IPv6 network and no IPv6 port: the ip6 table is deleted (created first, so that deleting never fails).
    assert ports.render6([dict(network, ipv6=False)], [(CID, 'web', '10.89.7.2', ports.expand(['8080:80']), None)]) == (
        'add table ip6 runcible\ndelete table ip6 runcible\n')
    internal = ports.render6([dict(network, internal=True)], [])
    assert 'masquerade' in internal and 'oifname != "rcb-web6" masquerade' not in internal
    assert 'iifname "rcb-web6" oifname != "rcb-web6" drop' in internal


def test_ipv6_loopback_is_never_dnated_but_proxied():
    """[::1] has no DNAT rule (the kernel drops what it would send from ::1 to a bridge), and the ip6 hooks never DNAT
    to ::1 (a [::] port reached on ::1 goes to the proxy's socket); every other IPv6 address still goes by DNAT."""
    network = {'name': 'web6', 'bridge': 'rcb-web6', 'subnet': '10.89.7.0/24', 'gateway': '10.89.7.1',
               'internal': False, 'ipv6': True, 'ipv6_subnet': 'fd12:3456:789a::/64', 'ipv6_gateway': 'fd12:3456:789a::1'}
    mappings = ports.expand(['[::1]:8080:80', '[::1]:5353:53/udp', '[::]:9090:90', '127.0.0.1:7070:70'])
    assert sorted(mapping.text() for mapping in mappings if port_proxy.proxied(mapping)) == sorted([
        '[::1]:8080:80/tcp', '[::]:9090:90/tcp', '[::1]:5353:53/udp'])
    script6 = ports.render6([network], [(CID, 'web', '10.89.7.2', mappings, 'fd12:3456:789a::2')])
    assert '::1 ' not in script6.replace('ip6 daddr != ::1 ', ''), script6
    assert 'tcp dport 9090 dnat to [fd12:3456:789a::2]:90' in script6
    assert ('add rule ip6 runcible output ip6 daddr != ::1 fib daddr type local jump published comment '
            '"runcible published ports6, from the host, not to ::1"') in script6
    assert 'add rule ip6 runcible prerouting ip6 daddr != ::1 fib daddr type local jump published ' in script6
    # The table of an older version (hooks without the ::1 exclusion) is incomplete: rewritten by the next task.
    assert 'comment "runcible published ports6, from the host, not to ::1"' in ports.expected_comments(network)
    # The IPv4 table knows nothing of them.
    assert '::1' not in ports.render([network], [(CID, 'web', '10.89.7.2', mappings, 'fd12:3456:789a::2')])


def test_ipv6_loopback_overlaps_the_ipv6_wildcard():
    with pytest.raises(ValidationError, match=r'host port \[::1\]:8080/tcp is published twice'):
        ports.normalise(['[::]:8080:80', '[::1]:8080:81'])
    assert ports.normalise(['[::1]:8080:80', '127.0.0.1:8080:80']) == ['127.0.0.1:8080:80/tcp', '[::1]:8080:80/tcp']
