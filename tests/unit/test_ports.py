# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/ports.py: published_ports parsing and canonical form, reservation, the nftables script."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import ports
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
    (['[::1]:8080:80'], 'not supported'),
    (['::1:8080:80'], 'IPv6 host addresses are not supported'),
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
    assert ('add rule ip runcible published ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.89.0.2:80 '
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


def test_render_is_deterministic():
    published = [(CID, 'b', '10.89.0.3', ports.expand(['81:80'])), ('cd' * 32, 'a', '10.89.0.2', ports.expand(['80:80']))]
    assert ports.render([NETWORK, INTERNAL], published) == ports.render([INTERNAL, NETWORK], published[::-1])


def test_comment_is_bounded():
    rules = ports.dnat_rules(CID, 'x' * 128, '10.89.0.2', ports.expand(['8080:80']))
    comment = rules[0].split('comment ', 1)[1]
    assert len(comment) <= 130 and comment.startswith('"runcible ctr=')
