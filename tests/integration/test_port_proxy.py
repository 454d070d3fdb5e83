# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ports published on IPv6 loopback (``[::1]``, and ``::1`` of ``[::]``): the host's own connections reach the
container through its port proxy (port_proxy.py); a peer on the bridge does not, not even with a frame it forges
to ``::1``. The proxy lives and dies with the container's conmon, runs as nobody, and a task restarts one that
was killed. Everything on the host's loopback, the test's bridges and namespaces."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import socket
import struct
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import network_registry as netreg
from ansible_collections.runcible.oci.plugins.module_utils._runtime import port_proxy, ports
from ansible_collections.runcible.oci.plugins.module_utils._runtime.host import process_alive
from ansible_collections.runcible.oci.plugins.module_utils._runtime.netns import socket_in_netns
from conftest import wait_for
from netfixtures import free_port, http_get, netenv, run_ip, udp_ask, udp_echo  # pylint: disable=unused-import  # fixtures
from test_network_attacks import ATTEMPT_TIMEOUT, reached, serve_tcp_and_udp

pytestmark = pytest.mark.timeout(300)


def get6(address, port, sock=None, timeout=ATTEMPT_TIMEOUT):
    """GET / over IPv6 (or through ``sock``) -> the body; raises OSError when it cannot connect or gets nothing."""
    body = http_get(address, port, sock or socket.socket(socket.AF_INET6, socket.SOCK_STREAM), timeout)
    if not body:
        raise ConnectionError('no answer')
    return body


def ask6(address, port, message, timeout=ATTEMPT_TIMEOUT):
    return udp_ask(address, port, message, socket.socket(socket.AF_INET6, socket.SOCK_DGRAM), timeout)


def proxy_of(netenv, name):
    record = netenv.env.engine.store.load(name)
    return (record.get('network') or {}).get('proxy'), record


def status_of(pid):
    with open('/proc/%d/status' % pid) as handle:
        return dict(line.split(':', 1) for line in handle.read().splitlines() if ':' in line)


def cgroup_of(pid):
    with open('/proc/%d/cgroup' % pid) as handle:
        return handle.read()


def port_free(host, port, protocol='tcp'):
    """Can the port be reserved now (as a launch binds it: TIME_WAIT of closed connections does not count)?"""
    try:
        ports.probe([ports.PortMapping(host, port, 1, protocol)])
    except ports.PortInUse:
        return False
    return True


def _checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def forged_syn(peer, gateway_mac, source6, port, destination='::1'):
    """From ``peer`` (a namespace on the bridge), a raw Ethernet frame to the host's bridge: IPv6 from its own
    address to ``destination`` (``::1``), a TCP SYN to ``port``. -> every TCP segment from ``port`` that comes back
    within the attempt (none, when the host keeps ::1 its own)."""
    sock = socket_in_netns(peer.path, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
    with contextlib.closing(sock):
        sock.bind(('eth0', 0x86dd))
        own_mac = sock.getsockname()[4]
        source, target = socket.inet_pton(socket.AF_INET6, source6), socket.inet_pton(socket.AF_INET6, destination)
        sport = random.randint(40000, 60000)
        tcp = struct.pack('!HHIIBBHHH', sport, port, 12345, 0, 5 << 4, 0x02, 65535, 0, 0)
        pseudo = source + target + struct.pack('!I3xB', len(tcp), socket.IPPROTO_TCP)
        tcp = tcp[:16] + struct.pack('!H', _checksum(pseudo + tcp)) + tcp[18:]
        ip6 = struct.pack('!IHBB', 6 << 28, len(tcp), socket.IPPROTO_TCP, 64) + source + target
        sock.send(gateway_mac + own_mac + struct.pack('!H', 0x86dd) + ip6 + tcp)
        answers = []
        sock.settimeout(0.2)
        deadline = time.monotonic() + ATTEMPT_TIMEOUT
        while time.monotonic() < deadline:
            try:
                frame = sock.recv(65536)
            except socket.timeout:
                continue
            if len(frame) >= 14 + 40 + 20 and frame[14 + 6] == socket.IPPROTO_TCP:
                from_port, to_port = struct.unpack('!HH', frame[54:58])
                if from_port == port and to_port == sport:
                    answers.append(frame[54:74])
        return answers


def ipv6_peer(netenv, network):
    """A namespace on ``network``'s bridge with an IPv6 address of its subnet, routed through the host."""
    peer = netenv.peer(network)
    subnet6 = ipaddress.ip_network(network['ipv6_subnet'])
    own6 = str(subnet6.network_address + 0xfffe)
    run_ip('-n', peer.name, '-6', 'addr', 'add', '%s/%d' % (own6, subnet6.prefixlen), 'dev', 'eth0', 'nodad')
    run_ip('-n', peer.name, '-6', 'route', 'add', 'default', 'via', network['ipv6_gateway'], 'dev', 'eth0')
    return peer, own6


def test_ipv6_loopback_ports_answer_the_host_through_the_proxy_and_no_peer(netenv, udp_echo):
    network = netenv.network(ipv6=True)['network']
    tcp_port, wildcard = free_port(), free_port()
    published = ['[::1]:%d:80' % tcp_port, '[::]:%d:80' % wildcard]
    params = {'name': 'test-pp6', 'rootfs': netenv.env.rootfs, 'network': network['name'], 'stop_timeout': 0,
              'published_ports': published}
    # Four ways, through ansible-playbook: nothing of the proxy shows in a re-run.
    results = netenv.env.four_ways(dict(params, command=['sleep', '600']))
    assert results[1]['actions'] == ['created', 'started'] and results[2]['actions'] == []
    first, _record = proxy_of(netenv, 'test-pp6')
    assert process_alive(first['pid'], first['start'])
    netenv.run(name='test-pp6', state='absent')
    assert wait_for(lambda: not process_alive(first['pid'], first['start']), timeout=5), 'the proxy outlived its container'

    hello = b'hello from test-pp6\n'
    container = serve_tcp_and_udp(netenv, udp_echo, 'test-pp6', network=network['name'], stop_timeout=0,
                                  published_ports=published)
    proxy, record = proxy_of(netenv, 'test-pp6')
    # The host's own connections to ::1: [::1]'s, and ::1 of the wildcard [::] (DNAT cannot: the kernel drops what
    # it would send from ::1 to the bridge), to the container's IPv6 address.
    assert wait_for(lambda: _quiet(lambda: get6('::1', tcp_port)), timeout=10) == hello
    assert get6('::1', wildcard) == hello
    gateway6 = network['ipv6_gateway']
    # [::] keeps its DNAT for every other address of the host.
    assert get6(gateway6, wildcard) == hello
    # The proxy: alive, its own uid, no capability, no_new_privs, in conmon's cgroup; its ports are held.
    assert process_alive(proxy['pid'], proxy['start'])
    status = status_of(proxy['pid'])
    assert status['Uid'].split() == [str(port_proxy.PROXY_UID)] * 4 and status['CapEff'].strip() == '0' * 16, status
    assert status['NoNewPrivs'].strip() == '1', status
    assert cgroup_of(proxy['pid']) == cgroup_of(record['conmon_pid'])
    assert not port_free('::1', tcp_port) and not port_free('::', wildcard)
    assert not ports.listed_rules('[::1]'), 'no DNAT rule for ::1: the kernel would drop it'

    # A peer on the bridge: its container's ports answer it, [::1]'s do not, neither through the gateway nor with a
    # frame it forges to ::1 (the IPv6 analogue of moby#41872).
    peer, own6 = ipv6_peer(netenv, network)

    def six():
        return socket_in_netns(peer.path, socket.AF_INET6, socket.SOCK_STREAM, 0)

    assert get6(container['networks'][0]['ipv6_address'] if container.get('networks') else gateway6, 80,
                sock=six()) == hello, 'the peer reaches the container'
    assert get6(gateway6, wildcard, sock=six()) == hello, 'the peer reaches a port published on [::]'
    with open('/sys/class/net/%s/address' % network['bridge']) as handle:
        gateway_mac = bytes.fromhex(handle.read().strip().replace(':', ''))
    assert forged_syn(peer, gateway_mac, own6, wildcard, gateway6), 'a forged frame to the gateway is answered'
    assert reached({
        'tcp [gateway6]:%d (published on [::1])' % tcp_port: lambda: get6(gateway6, tcp_port, sock=six()),
        'forged SYN to [::1]:%d' % tcp_port: lambda: forged_syn(peer, gateway_mac, own6, tcp_port) or _no(),
        'forged SYN to [::1]:%d (published on [::])' % wildcard:
            lambda: forged_syn(peer, gateway_mac, own6, wildcard) or _no(),
    }) == {}
    assert get6('::1', tcp_port) == hello, 'the host still does'

    # Stop: the proxy ends with conmon and the ports are free; start: a new one.
    stopped = netenv.env.four_ways(dict(params, state='stopped'))
    assert stopped[1]['actions'] == ['stopped']
    assert not process_alive(proxy['pid'], proxy['start'])
    assert port_free('::1', tcp_port) and port_free('::', wildcard)
    netenv.run(name='test-pp6', state='started', network=network['name'], published_ports=published)
    assert wait_for(lambda: _quiet(lambda: get6('::1', tcp_port)), timeout=10) == hello
    second, _record = proxy_of(netenv, 'test-pp6')
    assert second['pid'] != proxy['pid']
    netenv.run(name='test-pp6', state='absent')
    assert not process_alive(second['pid'], second['start'])
    assert port_free('::1', tcp_port) and netenv.env.proxy_pids() == []


def test_a_killed_proxy_is_restarted_by_the_next_task_and_follows_restarts(netenv, udp_echo):
    """On an IPv4-only network ([::1] then reaches the container's IPv4 address), TCP and UDP: the proxy killed, a
    task says ``ports repaired`` (four ways); the container restarted by its policy gets a new proxy."""
    port, udp_port = free_port(), free_port()
    params = {'name': 'test-ppk', 'rootfs': netenv.env.rootfs, 'stop_timeout': 0, 'restart_policy': 'always',
              'published_ports': ['[::1]:%d:80' % port, '[::1]:%d:5353/udp' % udp_port]}
    serve_tcp_and_udp(netenv, udp_echo, 'test-ppk', **dict((key, value) for key, value in params.items() if key != 'name'))
    hello = b'hello from test-ppk\n'
    assert wait_for(lambda: _quiet(lambda: get6('::1', port)), timeout=10) == hello
    # UDP: each client its own session; the container sees the gateway, as for a DNATed datagram.
    gateway = netreg.NetworkRegistry().load()['networks'][netreg.DEFAULT_NETWORK]['gateway']
    assert ask6('::1', udp_port, b'hi') == b'hi from %s' % gateway.encode()
    assert ask6('::1', udp_port, b'again') == b'again from %s' % gateway.encode()
    proxy, record = proxy_of(netenv, 'test-ppk')
    os.kill(proxy['pid'], 9)
    assert wait_for(lambda: not process_alive(proxy['pid'], proxy['start']), timeout=5)
    assert reached({'after the kill': lambda: get6('::1', port)}) == {}
    results = netenv.env.four_ways(params_for_tasks(params, udp_echo))
    assert results[0]['actions'] == ['ports repaired'] and results[1]['actions'] == ['ports repaired'], results
    assert get6('::1', port) == hello and ask6('::1', udp_port, b'hi') == b'hi from %s' % gateway.encode()
    repaired, record = proxy_of(netenv, 'test-ppk')
    assert repaired['pid'] != proxy['pid'] and process_alive(repaired['pid'], repaired['start'])
    # Its container killed: the exit command restarts it, with a new proxy (the old one ended with its conmon).
    os.kill(record['pid'], 9)
    assert wait_for(lambda: not process_alive(repaired['pid'], repaired['start']), timeout=10)
    assert wait_for(lambda: _quiet(lambda: get6('::1', port)), timeout=20) == hello
    restarted, _record = proxy_of(netenv, 'test-ppk')
    assert restarted['pid'] not in (proxy['pid'], repaired['pid'])
    netenv.run(name='test-ppk', state='absent')
    assert not process_alive(restarted['pid'], restarted['start']) and netenv.env.proxy_pids() == []


def params_for_tasks(params, udp_echo):
    """The serve_tcp_and_udp() parameters of a container as a task gives them."""
    from test_network_attacks import SERVE_TCP_AND_UDP  # pylint: disable=import-outside-toplevel
    return dict(params, command=['sh', '-c', SERVE_TCP_AND_UDP % params['name']], mounts=['%s:/udpecho:ro' % udp_echo])


def _quiet(attempt):
    try:
        return attempt()
    except OSError:
        return None


def _no():
    raise ConnectionError('nothing came back')


def test_a_launch_that_fails_leaves_no_proxy_and_frees_its_port(netenv):
    """The proxy is spawned before conmon (its Python starts while the runtime creates the container): a launch
    that fails (the command does not exist) ends it, and the port is free again."""
    port = free_port()
    with pytest.raises(Exception, match='no-such-command'):
        netenv.run(name='test-ppf', rootfs=netenv.env.rootfs, command=['/no-such-command'], stop_timeout=0,
                   published_ports=['[::1]:%d:80' % port])
    assert wait_for(lambda: netenv.env.proxy_pids() == [], timeout=5), netenv.env.proxy_pids()
    assert port_free('::1', port)
