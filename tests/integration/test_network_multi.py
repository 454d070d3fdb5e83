# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several networks per container (``networks``), IPv6 networks (dual-stack, NAT66, IPv6 published ports) and
``network_info``. Everything stays on the test's own bridges and on the host's own addresses."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _exec, _network
from ansible_collections.runcible.oci.plugins.module_utils._runtime import bridges, dns, ports
from ansible_collections.runcible.oci.plugins.module_utils._runtime import network_registry as netreg
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError
from conftest import wait_for
from netfixtures import SERVE_LOOP, free_port, http_get, netenv  # pylint: disable=unused-import  # the fixture
from test_network_dns import aardvark_pids

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"

needs_aardvark = pytest.mark.skipif(
    not os.path.exists('/usr/lib/podman/aardvark-dns') and not dns.find_program(dns.PROGRAM),
    reason='aardvark-dns is not installed (scripts/host-setup.sh installs it)')


def sh(netenv, name, script):
    result = _exec.run({'container': name, 'argv': ['sh', '-c', script], 'root': netenv.env.root,
                        'run_root': netenv.env.run_root})
    return result['rc'], result['stdout'] + result['stderr']


def soon_resolves(netenv, name, query, address=None):
    """resolves(), given a moment: aardvark-dns reloads its files on SIGHUP, a moment after the task signalled it."""
    return wait_for(lambda: resolves(netenv, name, query, address), timeout=8, interval=0.2)


def resolves(netenv, name, query, address=None):
    """Does ``query`` resolve in container ``name`` (to ``address``, when given)? busybox nslookup of the A record (the
    AAAA one for an IPv6 ``address``), bounded. One type only: a question aardvark-dns cannot answer is forwarded to
    the host's resolvers, which these test networks may not reach (seen: the AAAA half of a plain nslookup timing
    out after a recreate)."""
    kind = 'aaaa' if address and ':' in address else 'a'
    rc, output = sh(netenv, name, 'busybox timeout 4 busybox nslookup -type=%s %s' % (kind, query))
    if rc != 0:
        return False
    answers = output.split('Name:', 1)[-1] if 'Name:' in output else ''
    return bool(answers) and (address is None or ('Address: %s' % address) in answers)


def loop(netenv, name, **params):
    params.setdefault('stop_timeout', 0)
    params.setdefault('command', ['sh', '-c', LOOP])
    return netenv.run(name=name, rootfs=netenv.env.rootfs, **params)['container']


def dns_file(network_name):
    try:
        with open(os.path.join(dns.DNS_DIR, network_name)) as handle:
            return handle.read()
    except FileNotFoundError:
        return ''


@pytest.fixture
def two_dns_networks(netenv):
    # (aardvark-dns is the host's: other tests' DNS networks may share it meanwhile, which changes nothing here)
    first = netenv.network(name='test-mna', dns=True)['network']
    second = netenv.network(name='test-mnb', dns=True)['network']
    yield first, second
    for name in sorted(netenv.env.engine.store.names()):
        netenv.run(name=name, state='absent')
    assert not dns_file(first['name']) and not dns_file(second['name']), 'DNS records left'
    # aardvark-dns ends with the last container of a DNS network (other tests' networks may still need it).
    others = [name for name in os.listdir(dns.DNS_DIR) if name != dns.PID_FILE] if os.path.isdir(dns.DNS_DIR) else []
    if not others:
        assert wait_for(lambda: not aardvark_pids(), timeout=5), 'aardvark-dns leaked: %s' % aardvark_pids()


@needs_aardvark
def test_a_container_on_two_networks_reaches_both_and_names_stay_per_network(netenv, two_dns_networks):
    first, second = two_dns_networks
    only_a = loop(netenv, 'test-only-a', network=first['name'], aliases=['alpha'], command=['sh', '-c', SERVE_LOOP % 'a'])
    only_b = loop(netenv, 'test-only-b', network=second['name'], command=['sh', '-c', SERVE_LOOP % 'b'])
    args = {'name': 'test-both', 'rootfs': netenv.env.rootfs, 'command': ['sh', '-c', LOOP], 'stop_timeout': 0,
            'networks': [{'name': first['name'], 'aliases': ['front']}, second['name']]}
    macs = dict((network['bridge'], _mac(network['bridge'])) for network in (first, second))
    results = netenv.env.four_ways(args)
    assert results[0]['diff']['before'] == {'status': 'absent'}
    both = results[1]['container']
    entries = both['networks']
    assert [(entry['name'], entry['interface']) for entry in entries] == [
        (first['name'], 'eth0'), (second['name'], 'eth1')]
    assert ipaddress.ip_address(entries[0]['ip_address']) in ipaddress.ip_network(first['subnet'])
    assert ipaddress.ip_address(entries[1]['ip_address']) in ipaddress.ip_network(second['subnet'])
    assert both['ip_address'] == entries[0]['ip_address']
    rc, output = sh(netenv, 'test-both', 'ip -4 -o addr show; cat /etc/resolv.conf; cat /etc/hosts; ip route')
    assert rc == 0, output
    addresses = [line.split()[1:4:2] for line in output.splitlines() if ' inet ' in line]  # [ifname, address/len]
    assert ['eth0', '%s/24' % entries[0]['ip_address']] in addresses, output
    assert ['eth1', '%s/24' % entries[1]['ip_address']] in addresses, output
    assert 'nameserver %s\nnameserver %s' % (first['gateway'], second['gateway']) in output, output
    assert 'default via %s dev eth0' % first['gateway'] in output, output  # one default route: the first network's
    # It reaches a container of each network, by address and by name (busybox wget of their httpd).
    for other, target, said in ((only_a, only_a['ip_address'], 'a'), (only_b, only_b['ip_address'], 'b'),
                                (only_a, 'alpha', 'a'), (only_b, 'test-only-b', 'b')):
        rc, output = sh(netenv, 'test-both', 'busybox timeout 5 busybox wget -q -O - http://%s/index.html' % target)
        assert rc == 0 and 'hello from %s' % said in output, (other['name'], target, output)
    assert soon_resolves(netenv, 'test-both', 'test-only-a', only_a['ip_address'])
    assert resolves(netenv, 'test-both', 'alpha', only_a['ip_address'])
    assert resolves(netenv, 'test-both', 'test-only-b', only_b['ip_address'])
    # Each network's records name the container with that network's address and aliases only.
    assert resolves(netenv, 'test-only-a', 'test-both', entries[0]['ip_address'])
    assert resolves(netenv, 'test-only-a', 'front', entries[0]['ip_address'])
    assert resolves(netenv, 'test-only-b', 'test-both', entries[1]['ip_address'])
    assert not resolves(netenv, 'test-only-b', 'front')
    assert not resolves(netenv, 'test-only-b', 'test-only-a')  # a container of another network: no name
    assert not resolves(netenv, 'test-only-a', 'test-only-b')
    # network_info lists each network with its containers.
    listed = _network.info({})['networks']
    on = dict((item['name'], sorted(ctr['name'] for ctr in item['containers'])) for item in listed)
    assert on[first['name']] == ['test-both', 'test-only-a'] and on[second['name']] == ['test-both', 'test-only-b']
    one = _network.info({'name': second['name']})
    assert one['exists'] and [ctr['ip_address'] for ctr in one['networks'][0]['containers']
                              if ctr['name'] == 'test-both'] == [entries[1]['ip_address']]
    assert _network.info({'name': 'test-mn-none'}) == {'changed': False, 'networks': [], 'exists': False}

    # Detached from the second network, live (four ways; test_network_live.py has more), and its records there are gone.
    args['networks'] = [{'name': first['name'], 'aliases': ['front']}]
    results = netenv.env.four_ways(args)
    assert results[1]['actions'] == ['updated'], results[1]['actions']
    assert [entry['name'] for entry in results[0]['diff']['after']['networks']] == [first['name']]
    assert 'test-both' not in dns_file(second['name']) and 'test-both' in dns_file(first['name'])
    assert wait_for(lambda: not resolves(netenv, 'test-only-b', 'test-both'), timeout=8, interval=0.2)
    assert soon_resolves(netenv, 'test-only-a', 'front')
    data = netreg.NetworkRegistry().load()
    assert [item['network'] for item in data['allocations'].values() if item['name'] == 'test-both'] == [first['name']]
    # The bridges kept their own MAC addresses while ports came and went (else the containers' ARP entries of the
    # gateway go stale: seen as lookups timing out after a recreate, when a new port had the lowest MAC).
    assert dict((bridge, _mac(bridge)) for bridge in macs) == macs
    assert all(_read('/sys/class/net/%s/addr_assign_type' % bridge) == '3' for bridge in macs)
    # Back to the shorthand on the same network: recorded as networks [] (a change, made live), then idempotent.
    results = netenv.env.four_ways({'name': 'test-both', 'rootfs': netenv.env.rootfs, 'command': ['sh', '-c', LOOP],
                                    'stop_timeout': 0, 'network': first['name'], 'aliases': ['front']})
    assert results[1]['container']['config']['networks'] == []


def test_networks_refuses_the_shorthand_beside_it_and_bad_entries(netenv):
    network = netenv.network(name='test-mnc', dns=False)['network']
    cases = [
        ({'network': network['name']}, 'networks replaces network'),
        ({'ip_address': '10.0.0.5'}, 'networks replaces ip_address'),
        ({'aliases': ['x']}, 'networks replaces aliases'),
    ]
    for extra, message in cases:
        with pytest.raises(ValidationError, match=message):
            netenv.run(name='test-bad', rootfs=netenv.env.rootfs, networks=[network['name']], **extra)
    with pytest.raises(ValidationError, match='IPv6 host addresses need the container.s first network to have IPv6'):
        netenv.run(name='test-bad', rootfs=netenv.env.rootfs, networks=[network['name']], published_ports=['[::]:8080:80'])
    for networks, message in [
            ([network['name'], network['name']], 'listed twice'),
            (['test-mn-missing'], 'network test-mn-missing does not exist'),
            ([{'name': network['name'], 'port': 1}], 'unknown keys port'),
            ([{'name': network['name'], 'ipv6_address': 'fd00::5'}], 'has no ipv6'),
            (['host'], 'is not a bridge network'),
            ([{'ip_address': '10.0.0.1'}], 'give at least its name')]:
        with pytest.raises(ValidationError, match=message):
            netenv.run(name='test-bad', rootfs=netenv.env.rootfs, networks=networks)
    assert netenv.env.engine.store.names() == []


@needs_aardvark
def test_ipv6_network_gives_dual_stack_containers_names_nat66_and_ipv6_published_ports(netenv, two_dns_networks):
    name = 'test-mn6'
    netenv.networks.append(name)
    results = netenv.four_ways({'name': name, 'ipv6': True})
    network = results[1]['network']
    subnet6 = ipaddress.ip_network(network['ipv6_subnet'])
    assert subnet6 == netreg.ula_subnet(name) and str(subnet6).startswith('fd') and subnet6.prefixlen == 64
    assert network['ipv6_gateway'] == str(subnet6.network_address + 1)
    assert ports.listed_rules('net=%s outbound6' % name), 'NAT66 of the subnet'
    with open('/proc/sys/net/ipv6/conf/%s/accept_ra' % network['bridge']) as handle:
        assert handle.read().strip() == '0'
    port = free_port()
    server = netenv.run(name='test-web6', rootfs=netenv.env.rootfs, command=['sh', '-c', SERVE_LOOP % 'web6'],
                        stop_timeout=0, networks=[{'name': name, 'aliases': ['www']}],
                        published_ports=['[::]:%d:80' % port])['container']
    web6 = server['networks'][0]['ipv6_address']
    assert ipaddress.ip_address(web6) in subnet6
    pinned = str(subnet6.network_address + 100)
    client = netenv.env.four_ways({'name': 'test-cli6', 'rootfs': netenv.env.rootfs, 'command': ['sh', '-c', LOOP],
                                   'stop_timeout': 0, 'networks': [{'name': name, 'ipv6_address': pinned}]})[1]['container']
    assert client['networks'][0]['ipv6_address'] == str(subnet6.network_address + 100)
    rc, output = sh(netenv, 'test-cli6', 'ip -6 addr show dev eth0; ip -6 route; cat /etc/hosts')
    assert rc == 0 and str(subnet6.network_address + 100) in output, output
    # No router advertisement or redirect of a neighbour reconfigures it.
    rc, said = sh(netenv, 'test-cli6', 'cat /proc/sys/net/ipv6/conf/eth0/accept_ra '
                                       '/proc/sys/net/ipv6/conf/eth0/accept_redirects')
    assert rc == 0 and said.split() == ['0', '0'], said
    assert 'default via %s dev eth0' % network['ipv6_gateway'] in output, output
    # Reachable between containers over IPv6, by address and by name (AAAA record).
    rc, output = sh(netenv, 'test-cli6', 'busybox timeout 5 busybox wget -q -O - http://[%s]:80/index.html' % web6)
    assert rc == 0 and 'hello from web6' in output, output
    assert soon_resolves(netenv, 'test-cli6', 'www', web6)
    # The published IPv6 port answers from the host (to the host's IPv6 address on the bridge).
    assert wait_for(lambda: _get6(network['ipv6_gateway'], port), timeout=10) == b'hello from web6\n'
    # network_info shows the IPv6 addresses.
    listed = _network.info({'name': name})['networks'][0]
    assert sorted((ctr['name'], ctr['ipv6_address']) for ctr in listed['containers']) == [
        ('test-cli6', str(subnet6.network_address + 100)), ('test-web6', web6)]
    # (IPv6 loopback, [::1], goes through a proxy: test_port_proxy.py.)
    # Removal takes the IPv6 rules of the container with it.
    netenv.run(name='test-web6', state='absent')
    assert not ports.listed_rules('ctr=%s ' % server['id'][:12])
    assert _get6(network['ipv6_gateway'], port) is None
    # With the network gone, so are its IPv6 rules; the ip6 table goes with the last IPv6 network of the host.
    netenv.run(name='test-cli6', state='absent')
    assert _network.run({'name': name, 'state': 'absent'})['actions'] == ['removed']
    assert not ports.listed_rules('net=%s ' % name)
    if not any(item.get('ipv6') for item in netreg.NetworkRegistry().load()['networks'].values()):
        assert ports.run_nft('list table ip6 runcible')[0] != 0, 'the ip6 table outlived the IPv6 networks'


def _read(path):
    with open(path) as handle:
        return handle.read().strip()


def _mac(interface):
    return _read('/sys/class/net/%s/address' % interface)


def _get6(address, port):
    try:
        return http_get(address, port, socket.socket(socket.AF_INET6, socket.SOCK_STREAM), timeout=2)
    except OSError:
        return None


def test_a_bridge_made_without_its_own_mac_is_repaired(netenv):
    """A bridge of an earlier version (its MAC its lowest port's) is given its own: the network task says repaired."""
    network = netenv.network(name='test-mnm', dns=False)['network']
    bridge = network['bridge']
    subprocess.run(['ip', 'link', 'del', bridge], check=True)
    for argv in (['link', 'add', bridge, 'type', 'bridge'], ['link', 'set', bridge, 'alias', 'runcible.oci network test-mnm'],
                 ['addr', 'add', '%s/24' % network['gateway'], 'dev', bridge], ['link', 'set', bridge, 'up']):
        subprocess.run(['ip'] + argv, check=True)
    assert _read('/sys/class/net/%s/addr_assign_type' % bridge) != '3'
    results = netenv.four_ways({'name': 'test-mnm'})
    assert results[1]['actions'] == ['repaired'] and 'without its own MAC address' in str(results[1]['diff']['before'])
    assert _read('/sys/class/net/%s/addr_assign_type' % bridge) == '3'
    assert _mac(bridge) == bridges.bridge_mac(network)


# From a container: UDP to the gateway, from the given source address (IPV6_FREEBIND: any address, no privilege).
SEND6 = ("import socket, sys; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); "
         "s.setsockopt(socket.IPPROTO_IPV6, 78, 1); s.bind((sys.argv[1], 0)); "
         "s.sendto(sys.argv[3].encode(), (sys.argv[2], int(sys.argv[4])))")
DEBIAN_ROOTFS = os.environ.get('RUNCIBLE_DEBIAN_ROOTFS') or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'build', 'rootfs', 'debian')


def test_a_container_cannot_send_ipv6_from_a_forged_source(netenv):
    """The attack: a process in a container (default capabilities) binds a source address that is not its own,
    which IPv6 allows any socket with IPV6_FREEBIND, and sends to the host. The guard chain drops what comes in
    from the bridge with a source outside the network's subnet; the container's own address gets through."""
    name = 'test-sp6'
    netenv.networks.append(name)
    network = _network.run({'name': name, 'ipv6': True})['network']
    gateway = network['ipv6_gateway']
    assert ports.listed_rules('net=%s spoof6' % name), 'the guard rule of the network'
    client = netenv.run(name='test-spoofer', rootfs=DEBIAN_ROOTFS, command=['sleep', '300'], stop_timeout=0,
                        networks=[name])['container']
    own = client['networks'][0]['ipv6_address']
    listener = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    listener.bind((gateway, 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]

    def received(source, payload):
        deadline = 20
        for _attempt in range(deadline):
            rc, output = sh(netenv, 'test-spoofer', "python3 -c '%s' %s %s %s %d" % (SEND6, source, gateway, payload, port))
            assert rc == 0, output
            try:
                data, sender = listener.recvfrom(100)
            except socket.timeout:
                continue
            return data.decode(), sender[0]
        return None
    try:
        # The control: from its own address the datagram arrives (so the check below can fail).
        assert received(own, 'honest') == ('honest', own)
        # Forged: another network's, a global and another subnet's address: dropped.
        next_subnet = ipaddress.ip_network(network['ipv6_subnet']).network_address + (1 << 64) + 9  # same /48
        for forged in ('fd00:dead:beef::7', '2001:db8::1', str(next_subnet)):
            rc, output = sh(netenv, 'test-spoofer', "python3 -c '%s' %s %s forged %d" % (SEND6, forged, gateway, port))
            assert rc == 0, output  # the kernel let it bind and send: only the guard stands in the way
        with pytest.raises(socket.timeout):
            while True:
                data, sender = listener.recvfrom(100)
                assert data != b'forged', 'a forged source reached the host: %s' % sender[0]
    finally:
        listener.close()
