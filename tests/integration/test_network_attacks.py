# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attacks on bridge networks and published ports, performed on the real kernel (issue 13, items 5-7).

* A neighbour that routes 127.0.0.0/8 through the host must not reach a port published on a
  loopback address (the DNAT in prerouting ran before the kernel's martian check: moby#41872,
  kube-proxy's CVE-2020-8558), whether it comes from another interface or from the bridge.
* A peer on the bridge (``route_localnet`` is set there for the host's own 127.0.0.1 publishing)
  must not reach host services bound to 127.0.0.1, while the host still reaches its loopback ports.
* The network module must never change or delete a bridge it did not create.

The attackers are network namespaces of the test (netfixtures.py); every namespace, veth, bridge,
listener and registry entry a test makes is removed after it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _network
from ansible_collections.runcible.oci.plugins.module_utils._runtime import bridges
from ansible_collections.runcible.oci.plugins.module_utils._runtime import network_registry as netreg
from ansible_collections.runcible.oci.plugins.module_utils._runtime import ports
from ansible_collections.runcible.oci.plugins.module_utils._runtime.rtnl import Rtnl
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError
from conftest import read_log, wait_for
from netfixtures import free_client_subnet, free_port, http_get, interfaces, run_ip, udp_ask
from netfixtures import netenv, restore_default_network, udp_echo  # pylint: disable=unused-import  # fixtures

pytestmark = pytest.mark.timeout(300)

ATTEMPT_TIMEOUT = 2.0
IP_TRANSPARENT = 19  # linux/in.h: bind and send from an address the namespace does not have
SERVE_TCP_AND_UDP = ("trap 'exit 0' TERM; mkdir -p /www; echo 'hello from %s' > /www/index.html; "
                     "/udpecho/udpecho 5353 & httpd -f -p 80 -h /www & wait")


def serve_tcp_and_udp(netenv, udp_echo, name, **params):
    """A container answering HTTP on 80 and UDP echo on 5353; waits until both are up."""
    result = netenv.serve(name, command=['sh', '-c', SERVE_TCP_AND_UDP % name],
                          mounts=['%s:/udpecho:ro' % udp_echo], **params)
    container = result['container']
    assert wait_for(lambda: 'udp echo on 5353' in read_log(container['log_path'])), read_log(container['log_path'])
    return container


def reached(attempts):
    """Run every attempt (name -> callable); -> {name: what it got} of those that got through.

    An attempt that cannot connect or gets no answer raises OSError (a timeout included). All are
    run, so that a failure lists every hole at once.
    """
    through = {}
    for name, attempt in attempts.items():
        try:
            through[name] = attempt()
        except OSError:
            continue
    return through


@contextlib.contextmanager
def loopback_listeners():
    """A TCP listener and a UDP socket of the host on 127.0.0.1 (plain host services, nothing published)."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tcp.bind(('127.0.0.1', 0))
        tcp.listen(8)
        udp.bind(('127.0.0.1', 0))
        udp.settimeout(ATTEMPT_TIMEOUT)
        yield tcp, udp
    finally:
        tcp.close()
        udp.close()


def tcp_connects(namespace, address, port):
    """-> 'connected' when a TCP connection from ``namespace`` to address:port is established."""
    sock = namespace.socket()
    with contextlib.closing(sock):
        sock.settimeout(ATTEMPT_TIMEOUT)
        sock.connect((address, port))
        return 'connected'


def udp_arrives(namespace, receiver, address):
    """-> what ``receiver`` (a host UDP socket with a timeout) gets of a datagram sent from ``namespace``."""
    sender = namespace.socket(socket.SOCK_DGRAM)
    with contextlib.closing(sender):
        sender.sendto(b'let me in', (address, receiver.getsockname()[1]))
    return receiver.recvfrom(2048)


# -- item 5: a port published on 127.0.0.0/8 is the host's own ------------------------------------------

def test_a_routed_neighbour_cannot_reach_ports_published_on_loopback(netenv, udp_echo):
    """A neighbour on another interface routes 127.0.0.0/8 via the host (moby#41872): TCP on 127.0.0.1,
    UDP on 127.0.0.2, and a wildcard port through 127.0.0.1, none is forwarded to the container."""
    tcp_port, udp_port, public = free_port(), free_port(), free_port()
    hello = b'hello from test-lo-routed\n'
    serve_tcp_and_udp(netenv, udp_echo, 'test-lo-routed', stop_timeout=0, published_ports=[
        '127.0.0.1:%d:80' % tcp_port, '127.0.0.2:%d:5353/udp' % udp_port, '%d:80' % public])
    network = netreg.NetworkRegistry().load()['networks'][netreg.DEFAULT_NETWORK]
    # The host reaches its loopback ports (masqueraded to the gateway, the reply comes back out of the bridge).
    assert http_get('127.0.0.1', tcp_port) == hello
    assert udp_ask('127.0.0.2', udp_port, b'hi') == b'hi from %s' % network['gateway'].encode()

    client = netenv.client()
    assert client.http_get(client.host_ip, public) == hello, 'the neighbour reaches the host at all'
    route = client.route_loopback_via(client.host_ip)
    assert 'via %s dev eth0' % client.host_ip in route, route

    assert reached({
        'tcp 127.0.0.1:%d (published on 127.0.0.1)' % tcp_port:
            lambda: client.http_get('127.0.0.1', tcp_port, timeout=ATTEMPT_TIMEOUT),
        'udp 127.0.0.2:%d (published on 127.0.0.2)' % udp_port:
            lambda: client.udp_ask('127.0.0.2', udp_port, b'x', timeout=ATTEMPT_TIMEOUT),
        'tcp 127.0.0.1:%d (published on every address)' % public:
            lambda: client.http_get('127.0.0.1', public, timeout=ATTEMPT_TIMEOUT),
    }) == {}
    # Still a neighbour: its published port on the host's own address works, and so does the host's loopback.
    assert client.http_get(client.host_ip, public) == hello
    assert http_get('127.0.0.1', tcp_port) == hello


# -- items 5 and 6: a peer on the bridge, where route_localnet is set ---------------------------------------

def test_a_bridge_peer_reaches_neither_loopback_ports_nor_host_loopback_services(netenv, udp_echo):
    """A namespace on the bridge (a container that configures its own network would do the same)
    routes 127.0.0.0/8 via the gateway: the host's loopback-published ports (TCP on 127.0.0.1, UDP on
    127.0.0.2) and a plain host service on 127.0.0.1 (TCP and UDP) stay out of its reach, while the
    host still reaches its loopback ports through the same bridge."""
    network = netenv.network()['network']
    tcp_port, udp_port, public = free_port(), free_port(), free_port()
    hello = b'hello from test-lo-bridge\n'
    container = serve_tcp_and_udp(netenv, udp_echo, 'test-lo-bridge', stop_timeout=0, network=network['name'],
                                  published_ports=['127.0.0.1:%d:80' % tcp_port, '127.0.0.2:%d:5353/udp' % udp_port,
                                                   '%d:80' % public])
    assert http_get('127.0.0.1', tcp_port) == hello
    assert udp_ask('127.0.0.2', udp_port, b'hi') == b'hi from %s' % network['gateway'].encode()

    peer = netenv.peer(network)
    assert peer.http_get(container['ip_address'], 80) == hello, 'the peer is on the bridge'
    assert peer.http_get(network['gateway'], public) == hello, 'the peer reaches the host at all'
    route = peer.route_loopback_via(network['gateway'])
    assert 'via %s dev eth0' % network['gateway'] in route, route

    # Neither the ports published on loopback nor plain host services on 127.0.0.1 (item 6).
    with loopback_listeners() as (tcp, udp):
        assert reached({
            'tcp 127.0.0.1:%d (published on 127.0.0.1)' % tcp_port:
                lambda: peer.http_get('127.0.0.1', tcp_port, timeout=ATTEMPT_TIMEOUT),
            'udp 127.0.0.2:%d (published on 127.0.0.2)' % udp_port:
                lambda: peer.udp_ask('127.0.0.2', udp_port, b'x', timeout=ATTEMPT_TIMEOUT),
            'tcp 127.0.0.1:%d (published on every address)' % public:
                lambda: peer.http_get('127.0.0.1', public, timeout=ATTEMPT_TIMEOUT),
            'tcp 127.0.0.1:%d (a host service)' % tcp.getsockname()[1]:
                lambda: tcp_connects(peer, '127.0.0.1', tcp.getsockname()[1]),
            'udp 127.0.0.1:%d (a host service)' % udp.getsockname()[1]:
                lambda: udp_arrives(peer, udp, '127.0.0.1'),
        }) == {}

    # The host keeps its own loopback publishing: the replies of its masqueraded flows are not dropped.
    assert http_get('127.0.0.1', tcp_port) == hello
    assert udp_ask('127.0.0.2', udp_port, b'again') == b'again from %s' % network['gateway'].encode()
    assert peer.http_get(network['gateway'], public) == hello


def test_a_bridge_peer_cannot_spoof_a_loopback_source(netenv):
    """A peer on the bridge sends UDP from 127.0.0.2 (IP_TRANSPARENT) to the gateway: a host service
    that trusts 127.0.0.0/8 must not receive it. route_localnet lets the kernel accept such a source
    on the bridge; only the host's own addresses (127.0.0.1 among them) it refuses by itself."""
    network = netenv.network()['network']
    peer = netenv.peer(network)
    peer.route_loopback_via(network['gateway'])  # route_localnet on its eth0: its kernel sends from 127/8
    service = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with contextlib.closing(service):
        service.bind((network['gateway'], 0))
        service.settimeout(ATTEMPT_TIMEOUT)
        data, source = udp_arrives(peer, service, network['gateway'])
        assert (data, source[0]) == (b'let me in', peer.ns_ip), 'from its own address the datagram arrives'
        spoofer = peer.socket(socket.SOCK_DGRAM)
        with contextlib.closing(spoofer):
            spoofer.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
            spoofer.bind(('127.0.0.2', 0))
            spoofer.sendto(b'from localhost, trust me', (network['gateway'], service.getsockname()[1]))
        assert reached({'udp from 127.0.0.2': lambda: service.recvfrom(2048)}) == {}


# -- item 7: the network module and bridges it did not create ------------------------------------------------

def link_state(name):
    """What the tests compare of a link: alias, flags, IPv4 addresses, route_localnet, forwarding."""
    base = os.path.join('/sys/class/net', name)
    state = {}
    for key in ('ifalias', 'flags'):
        with open(os.path.join(base, key)) as handle:
            state[key] = handle.read().strip()
    for key in ('route_localnet', 'forwarding'):
        with open('/proc/sys/net/ipv4/conf/%s/%s' % (name, key)) as handle:
            state[key] = handle.read().strip()
    with Rtnl() as rtnl:
        state['addresses'] = sorted(rtnl.addresses(rtnl.link_index(name), name))
    return state


@contextlib.contextmanager
def foreign_bridge(alias=None):
    """A bridge made by someone else (``ip link add NAME type bridge``) with an address of its own."""
    name = 'rctf' + secrets.token_hex(4)
    subnet = free_client_subnet()
    run_ip('link', 'add', name, 'type', 'bridge')
    try:
        if alias is not None:
            run_ip('link', 'set', name, 'alias', alias)
        run_ip('addr', 'add', '%s/%d' % (subnet.network_address + 1, subnet.prefixlen), 'dev', name)
        yield name
    finally:
        if name in interfaces():
            run_ip('link', 'del', name)


def save_network(definition):
    """A registry entry as an older version of the collection left it (it took the bridge over)."""
    registry = netreg.NetworkRegistry()
    with registry.lock():
        data = registry.load()
        data['networks'][definition['name']] = definition
        registry.save(data)


def test_the_network_module_never_takes_over_a_bridge_it_did_not_create(netenv):
    name = 'rct' + secrets.token_hex(4)
    netenv.networks.append(name)
    with foreign_bridge() as bridge:
        before = link_state(bridge)
        task = {'action': 'runcible.oci.network', 'ignore_errors': True,
                'args': {'name': name, 'bridge': bridge, 'subnet': str(free_client_subnet(24))}}
        results = netenv.playbook([dict(task, check_mode=True), task])
        assert [r['_status'] for r in results] == ['failed', 'failed'], results
        for result in results:
            assert ('bridge %s already exists and was not created by runcible.oci' % bridge) in result['msg'], result
            assert 'choose another bridge name' in result['msg'] and 'remove the interface' in result['msg']
        assert link_state(bridge) == before, 'the bridge was not touched'
        assert name not in netreg.NetworkRegistry().load()['networks'], 'nothing left in the registry'
        assert not ports.listed_rules('net=%s ' % name), 'no firewall rule left'
        # absent: there is no such network; the bridge is not ours to delete.
        assert _network.run({'name': name, 'state': 'absent'})['changed'] is False
        assert link_state(bridge) == before


def test_a_bridge_taken_over_by_an_older_version_is_released_not_deleted(netenv):
    """Older versions took a foreign bridge over and recorded it: present now fails clearly, absent
    forgets the network and leaves the interface (with a warning), a container cannot be plumbed into it."""
    name = 'rct' + secrets.token_hex(4)
    netenv.networks.append(name)
    with foreign_bridge() as bridge:
        before = link_state(bridge)
        subnet = free_client_subnet(24)
        save_network({'name': name, 'bridge': bridge, 'subnet': str(subnet), 'gateway': str(subnet.network_address + 1),
                      'internal': False})
        with pytest.raises(ValidationError, match='bridge %s already exists and was not created by runcible.oci'
                           % bridge):
            _network.run({'name': name})
        with pytest.raises(RuncibleError, match='not created by runcible.oci'):
            netenv.run(name='test-intruder', rootfs=netenv.env.rootfs, command=['sleep', '60'], network=name)
        assert netenv.env.inspect('test-intruder') is None
        assert link_state(bridge) == before
        assert not [link for link in interfaces() if link.startswith(bridges.VETH_PREFIX) and _master(link) == bridge]
        removed = _network.run({'name': name, 'state': 'absent'})
        assert removed['actions'] == ['removed'] and name not in netreg.NetworkRegistry().load()['networks']
        assert any('not created by runcible.oci' in warning for warning in removed.get('warnings', [])), removed
        assert link_state(bridge) == before, 'the interface is left as it was'
        assert not ports.listed_rules('net=%s ' % name)


def _master(link):
    with contextlib.suppress(OSError):
        return os.path.basename(os.readlink('/sys/class/net/%s/master' % link))
    return None


def test_a_bridge_of_an_older_version_is_recognised_by_its_alias(netenv):
    """Bridges made by older versions carry the alias 'runcible.oci network NAME': still ours."""
    name = 'rct' + secrets.token_hex(4)
    netenv.networks.append(name)
    with foreign_bridge(alias='runcible.oci network %s' % name) as bridge:
        subnet = free_client_subnet(24)
        gateway = str(subnet.network_address + 1)
        definition = {'name': name, 'bridge': bridge, 'subnet': str(subnet), 'gateway': gateway, 'internal': False}
        save_network(definition)
        repaired = _network.run({'name': name})
        assert repaired['actions'] == ['repaired'] and bridges.bridge_ready(definition)
        assert link_state(bridge)['addresses'] == [(gateway, 24)]
        assert ports.listed_rules('net=%s ' % name)
        assert _network.run({'name': name, 'state': 'absent'})['actions'] == ['removed']
        assert bridge not in interfaces()
