# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the network tests: client namespaces of the test's own, test networks, and a leftovers check.

Test traffic stays on loopback or in network namespaces made here: a "client" namespace is linked
to the host by a veth pair on a free /30 of 198.18.0.0/15 (the benchmarking range, never routed on
the internet); a "bridge peer" namespace is plugged into a network's bridge instead, as another
container or a neighbour on that segment would be. Either can be turned into an attacker that
routes 127.0.0.0/8 out of its eth0 (``route_loopback_via``). Nothing of the host's own interfaces,
routes or rules is touched. The ``netenv`` fixture removes the test's containers, then checks that
none of their namespaces, veths, firewall rules or address allocations is left, then removes its
client (and bridge peer) namespaces and networks.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import socket
import subprocess
import threading

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _network
from ansible_collections.runcible.oci.plugins.module_utils._runtime import bridges
from ansible_collections.runcible.oci.plugins.module_utils._runtime import netns
from ansible_collections.runcible.oci.plugins.module_utils._runtime import network_registry as netreg
from ansible_collections.runcible.oci.plugins.module_utils._runtime import ports
from ansible_collections.runcible.oci.plugins.module_utils._runtime.rtnl import Rtnl
from conftest import wait_for

CLIENT_POOL = ipaddress.ip_network('198.18.0.0/15')
SERVE_LOOP = "trap 'exit 0' TERM; mkdir -p /www; echo 'hello from %s' > /www/index.html; httpd -f -p 80 -h /www & wait"
UDP_ECHO_C = r'''
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void bye(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5353;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0}, peer;
    char buf[1024], out[1200];
    signal(SIGTERM, bye);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    printf("udp echo on %d\n", port);
    fflush(stdout);
    for (;;) {
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&peer, &len);
        if (n < 0) continue;
        buf[n] = 0;
        int m = snprintf(out, sizeof out, "%s from %s", buf, inet_ntoa(peer.sin_addr));
        sendto(s, out, m, 0, (struct sockaddr *)&peer, len);
    }
}
'''


def free_port(protocol='tcp'):
    """A host port that nothing holds right now (TCP and UDP both free)."""
    for _attempt in range(50):
        port = random.randint(20000, 32000)
        try:
            ports.probe([ports.PortMapping('', port, 1, 'tcp'), ports.PortMapping('', port, 1, 'udp')])
        except ports.PortInUse:
            continue
        return port
    raise AssertionError('no free port found')


def http_get(address, port, sock=None, timeout=5.0):
    """GET / with HTTP/1.0 -> the body (bytes); raises OSError when it cannot connect."""
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with contextlib.closing(sock):
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.sendall(b'GET /index.html HTTP/1.0\r\nHost: test\r\n\r\n')
        data = b''
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b'\r\n\r\n', 1)[-1]


def udp_ask(address, port, message, sock=None, timeout=3.0):
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with contextlib.closing(sock):
        sock.settimeout(timeout)
        sock.sendto(message, (address, port))
        return sock.recvfrom(2048)[0]


def interfaces():
    return set(os.listdir('/sys/class/net'))


def run_ip(*argv):
    """iproute2's ``ip`` with ``argv``; raises with its output when it fails."""
    proc = subprocess.run(['ip'] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    output = proc.stdout.decode('utf-8', 'replace')
    assert proc.returncode == 0, 'ip %s: %s' % (' '.join(argv), output)
    return output


def free_client_subnet(prefixlen=30):
    """A subnet of 198.18.0.0/15 (a /30 unless ``prefixlen`` says otherwise) that no host route overlaps."""
    taken = [route for route, _device in bridges.host_routes()]
    for _attempt in range(100):
        size = 2 ** (32 - prefixlen)
        subnet = ipaddress.ip_network('%s/%d' % (CLIENT_POOL.network_address + size * random.randrange(
            CLIENT_POOL.num_addresses // size), prefixlen))
        if not any(subnet.overlaps(route) for route in taken):
            return subnet
    raise AssertionError('no free /%d left in %s' % (prefixlen, CLIENT_POOL))


class ClientNamespace(object):
    """A network namespace of the test, linked to the host: host end HOST_IP/30, inside eth0 NS_IP/30."""

    def __init__(self):
        self.name = 'rct-' + secrets.token_hex(4)
        self.path = os.path.join(netns.NETNS_DIR, self.name)
        self.host_if = self.name + 'h'
        self.host_ip = self.ns_ip = None

    def add_veth(self, rtnl):
        """The veth pair: ``host_if`` here, ``eth0`` in the namespace."""
        netns_fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            rtnl.add_veth(self.host_if, 'eth0', netns_fd)
        finally:
            os.close(netns_fd)

    def create(self):
        """The namespace, veth pair, addresses and default route, with the collection's rtnetlink client (rtnl.py)."""
        subnet = free_client_subnet()
        self.host_ip, self.ns_ip = str(subnet.network_address + 1), str(subnet.network_address + 2)
        inside_socket = netns.create_netns(self.path, netlink=True)
        with Rtnl() as rtnl:
            self.add_veth(rtnl)
            index = rtnl.link_index(self.host_if)
            rtnl.set_link(index, self.host_if, alias='runcible.oci integration test client')
            rtnl.add_address(index, self.host_ip, 30, self.host_if)
            rtnl.set_link(index, self.host_if, up=True)
        # Our own interface: let what comes in from the client (and the replies to it) be forwarded.
        with open('/proc/sys/net/ipv4/conf/%s/forwarding' % self.host_if, 'w') as handle:
            handle.write('1')
        with Rtnl(inside_socket) as inside:
            inside.set_link(1, 'lo', up=True)
            eth0 = inside.link_index('eth0')
            inside.add_address(eth0, self.ns_ip, 30, 'eth0')
            inside.set_link(eth0, 'eth0', up=True)
            inside.add_default_route(self.host_ip)
        return self

    def socket(self, kind=socket.SOCK_STREAM):
        return netns.socket_in_netns(self.path, socket.AF_INET, kind, 0)

    def route_loopback_via(self, gateway):
        """Act as an attacker that sends to 127.0.0.0/8 through ``gateway``: lo without its address (so no
        local 127/8 routes), 127.0.0.0/8 routed out of eth0 via ``gateway``, route_localnet on eth0 (the
        kernel then sends such packets, and accepts replies from 127/8 sources). -> ``ip route get 127.0.0.1``."""
        run_ip('-n', self.name, 'addr', 'flush', 'dev', 'lo')
        subprocess.run(['ip', 'netns', 'exec', self.name, 'sysctl', '-q', '-w',
                        'net.ipv4.conf.eth0.route_localnet=1'], check=True)
        run_ip('-n', self.name, 'route', 'add', '127.0.0.0/8', 'via', gateway, 'dev', 'eth0')
        return run_ip('-n', self.name, 'route', 'get', '127.0.0.1')

    def http_get(self, address, port, timeout=5.0):
        return http_get(address, port, self.socket(), timeout)

    def udp_ask(self, address, port, message, timeout=3.0):
        return udp_ask(address, port, message, self.socket(socket.SOCK_DGRAM), timeout)

    def serve_once(self, port):
        """Accept one TCP connection in the namespace; -> dict filled with the peer's address and data."""
        server = self.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.ns_ip, port))
        server.listen(1)
        server.settimeout(20)
        seen = {}

        def accept():
            with contextlib.closing(server):
                try:
                    conn, peer = server.accept()
                except OSError:
                    return
                with contextlib.closing(conn):
                    seen['peer'] = peer[0]
                    conn.settimeout(5)
                    with contextlib.suppress(OSError):
                        conn.recv(4096)
                        conn.sendall(b'HTTP/1.0 200 OK\r\n\r\nhello from the client namespace\n')

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        seen['thread'] = thread
        return seen

    def close(self):
        if self.host_if in interfaces():
            subprocess.run(['ip', 'link', 'del', self.host_if], check=False)
        if os.path.lexists(self.path):
            netns.remove_netns(self.path)


class BridgePeer(ClientNamespace):
    """A namespace plugged into a network's bridge (a neighbour on that segment, or a container that
    configures its own network): its veth's host end on the bridge, eth0 with the subnet's last host
    address. ``host_ip`` is the network's gateway, ``ns_ip`` its own address; lo stays down, without address."""

    def __init__(self, network):
        super(BridgePeer, self).__init__()
        self.network = network

    def create(self):
        subnet = ipaddress.ip_network(self.network['subnet'])
        self.host_ip, self.ns_ip = self.network['gateway'], str(subnet.broadcast_address - 1)
        inside_socket = netns.create_netns(self.path, netlink=True)
        with Rtnl() as rtnl:
            self.add_veth(rtnl)
            bridge_index = rtnl.link_index(self.network['bridge'])
            assert bridge_index is not None, 'bridge %s is missing' % self.network['bridge']
            rtnl.set_link(rtnl.link_index(self.host_if), self.host_if, up=True, master=bridge_index,
                          alias='runcible.oci integration test bridge peer')
        with Rtnl(inside_socket) as inside:
            eth0 = inside.link_index('eth0')
            inside.add_address(eth0, self.ns_ip, subnet.prefixlen, 'eth0')
            inside.set_link(eth0, 'eth0', up=True)
        return self


class NetEnv(object):
    """The ``env`` of a test plus its client namespaces and networks, and the ids of its containers."""

    def __init__(self, env):
        self.env = env
        self.clients = []
        self.networks = []
        self.ids = env.ids  # the same set: every container id a task of the test reported

    def client(self):
        client = ClientNamespace()
        self.clients.append(client)
        return client.create()

    def peer(self, network):
        """A BridgePeer on ``network`` (a network dict), removed after the test with the clients."""
        peer = BridgePeer(network)
        self.clients.append(peer)
        return peer.create()

    def four_ways(self, params):
        """env.four_ways for runcible.oci.network (``action``/``args``: it has no root or run_root)."""
        tasks = [
            {'name': 'check', 'action': 'runcible.oci.network', 'args': dict(params), 'check_mode': True, 'diff': True},
            {'name': 'apply', 'action': 'runcible.oci.network', 'args': dict(params), 'diff': True},
            {'name': 'again', 'action': 'runcible.oci.network', 'args': dict(params), 'diff': True},
            {'name': 'check again', 'action': 'runcible.oci.network', 'args': dict(params), 'check_mode': True,
             'diff': True},
        ]
        if params['name'] not in self.networks:
            self.networks.append(params['name'])
        results = self.env.playbook(tasks)
        assert [r['_status'] for r in results] == ['ok'] * 4, results
        assert [r['changed'] for r in results] == [True, True, False, False], [r.get('actions') for r in results]
        return results

    def network(self, check_mode=False, **params):
        params.setdefault('name', 'rct' + secrets.token_hex(4))
        result = _network.run(params, check_mode=check_mode)
        if params['name'] not in self.networks:
            self.networks.append(params['name'])
        return result

    def run(self, check_mode=False, **params):
        return self.env.run(check_mode=check_mode, **params)

    def seen(self, result):
        return self.env.seen(result)

    def playbook(self, tasks, **kwargs):
        return self.env.playbook(tasks, **kwargs)

    def serve(self, name, **params):
        """A busybox httpd container answering 'hello from NAME' on port 80; waits until it answers."""
        params.setdefault('rootfs', self.env.rootfs)
        params.setdefault('command', ['sh', '-c', SERVE_LOOP % name])
        result = self.run(name=name, **params)
        container = result['container']
        if container.get('ip_address'):
            assert wait_for(lambda: _answers(container['ip_address'], 80), timeout=10), container
        return result

    def store_ids(self):
        ids = set()
        for name in self.env.engine.store.names():
            record = self.env.engine.store.load(name)
            if record and record.get('id'):
                ids.add(record['id'])
        return ids

    def leftovers(self, ids, whole_store=False):
        """What is left of the network state of containers ``ids`` (and of this test's store, if asked)."""
        found = self.env.links_left(ids)
        rules = ports.listed_rules('ctr=')
        for container_id in ids:
            tagged = [rule for rule in rules if 'ctr=%s ' % container_id[:12] in rule]
            if tagged:
                found.append('nft rules %s' % tagged)
        data = netreg.NetworkRegistry().load()
        for key, allocation in data['allocations'].items():  # ID, or ID:N for its N-th network
            if netreg.container_of_key(key) in ids or (whole_store and allocation.get('root') == self.env.engine.store.root):
                found.append('address allocation %s (%s)' % (allocation['ip'], allocation['name']))
        return found


def _answers(address, port):
    try:
        return http_get(address, port, timeout=1.0)
    except OSError:
        return None


@pytest.fixture
def netenv(env):
    helper = NetEnv(env)
    yield helper
    env.remove_all()  # adds the ids of the containers still there to helper.ids
    ids = helper.ids
    # The kernel frees a namespace (and its veth pair) a moment after its last user is gone.
    left = [] if wait_for(lambda: not helper.leftovers(ids, True), timeout=10) else helper.leftovers(ids, True)
    problems = []
    for client in helper.clients:
        client.close()
    for name in helper.networks:
        try:
            _network.run({'name': name, 'state': 'absent'})
        except Exception as exc:  # report, but go on cleaning up
            problems.append('network %s: %s' % (name, exc))
    data = netreg.NetworkRegistry().load()
    problems += ['network %s left in the registry' % name for name in helper.networks if name in data['networks']]
    # Their rules too, in both tables (ip runcible, and ip6 runcible of IPv6 networks).
    problems += ['nft rules of network %s left: %s' % (name, ports.listed_rules('net=%s ' % name))
                 for name in helper.networks if name not in data['networks'] and ports.listed_rules('net=%s ' % name)]
    links = interfaces()
    problems += ['client link %s left' % client.host_if for client in helper.clients if client.host_if in links]
    assert not left, 'the test left network state behind: %s' % '; '.join(left)
    assert not problems, '; '.join(problems)


@pytest.fixture(scope='module', autouse=True)
def restore_default_network():
    """Leave the host as found: the default network, when these tests made it, goes when no container uses it."""
    existed = netreg.DEFAULT_NETWORK in netreg.NetworkRegistry().load()['networks']
    yield
    if not existed:
        # Fails (and is left alone) while another test run's containers still have addresses on it.
        with contextlib.suppress(Exception):
            _network.run({'name': netreg.DEFAULT_NETWORK, 'state': 'absent'})


@pytest.fixture(scope='session')
def udp_echo(tmp_path_factory):
    """A static UDP echo server (C, built here with gcc -static): the busybox rootfs has none."""
    gcc = subprocess.run(['sh', '-c', 'command -v gcc'], stdout=subprocess.PIPE, check=False).stdout.strip()
    if not gcc:
        pytest.skip('gcc is not installed: cannot build the UDP echo server the UDP test runs in the container')
    directory = tmp_path_factory.mktemp('udpecho')
    source = directory / 'udpecho.c'
    source.write_text(UDP_ECHO_C)
    proc = subprocess.run([gcc.decode(), '-static', '-O2', '-o', str(directory / 'udpecho'), str(source)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        pytest.skip('cannot build a static UDP echo server here (gcc -static: %s)' % proc.stdout.decode()[-300:])
    return str(directory)
