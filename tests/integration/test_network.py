# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bridge networks and published ports on the real kernel: namespaces, veths, bridges, nftables.

Traffic stays on loopback or in client namespaces the tests make (netfixtures.py); every
container, namespace, veth, rule and allocation a test makes is checked gone afterwards.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket
import subprocess

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import bridges
from ansible_collections.runcible.oci.plugins.module_utils._runtime import netns
from ansible_collections.runcible.oci.plugins.module_utils._runtime import network_registry as netreg
from ansible_collections.runcible.oci.plugins.module_utils._runtime import ports
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError
from conftest import read_log, wait_for
from netfixtures import SERVE_LOOP, free_port, http_get, udp_ask
from netfixtures import netenv, restore_default_network, udp_echo  # pylint: disable=unused-import  # fixtures

pytestmark = pytest.mark.timeout(300)


def run_script(netenv, name, script, **params):
    """Run ``script`` in a container to its end; -> its output lines."""
    result = netenv.run(name=name, rootfs=netenv.env.rootfs, command=['sh', '-c', script], **params)
    log = result['container']['log_path']
    assert wait_for(lambda: netenv.env.inspect(name)['status'] == 'stopped', timeout=20), read_log(log)
    return read_log(log)


def get_or_none(address, port):
    """http_get, or None while nothing answers yet (a container just started)."""
    try:
        return http_get(address, port, timeout=2)
    except OSError:
        return None


def bind_fails(port, address='0.0.0.0', kind=socket.SOCK_STREAM):
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.bind((address, port))
    except OSError as exc:
        return exc.errno == errno.EADDRINUSE
    finally:
        sock.close()
    return False


# -- what a container on a bridge network gets -----------------------------------------------------------

def test_bridge_container_has_address_route_hosts_and_resolv_conf(netenv):
    lines = run_script(netenv, 'test-inside', 'echo $(ls /sys/class/net); ip -4 -o addr show eth0; '
                       'ip route; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf', hostname='box1')
    container = netenv.env.inspect('test-inside')
    address = container['ip_address']
    data = netreg.NetworkRegistry().load()
    network = data['networks'][netreg.DEFAULT_NETWORK]
    subnet = ipaddress.ip_network(network['subnet'])
    assert container['config']['network'] == 'runcible'
    assert ipaddress.ip_address(address) in subnet and address != network['gateway']
    assert lines[0] == 'eth0 lo', lines
    assert '%s/%d' % (address, subnet.prefixlen) in lines[1], lines
    assert 'default via %s dev eth0' % network['gateway'] in [line.strip() for line in lines], lines
    hosts = lines[lines.index('---') + 1:]
    assert '%s\tbox1 test-inside' % address in hosts and '127.0.0.1\tlocalhost' in hosts, lines
    resolv = lines[len(lines) - 1 - lines[::-1].index('---') + 1:]
    host_servers = [line for line in open('/etc/resolv.conf').read().splitlines()
                    if line.startswith('nameserver') and not line.split()[1].startswith('127.')]
    assert [line for line in resolv if line.startswith('nameserver')] == host_servers, lines
    # It exited: the next task on it releases its namespace and veth; the address stays its own until removal.
    assert not netenv.run(name='test-inside', state='stopped')['changed']
    assert wait_for(lambda: not os.path.exists(netns.netns_path(container['id'])))
    assert wait_for(lambda: bridges.veth_name(container['id']) not in os.listdir('/sys/class/net'))
    assert netenv.env.inspect('test-inside')['ip_address'] == address
    assert data['allocations'][container['id']]['ip'] == address


def test_network_none_has_only_loopback_and_needs_no_registry(netenv):
    lines = run_script(netenv, 'test-none', 'echo $(ls /sys/class/net); ip route | wc -l',
                       network='none')
    assert [line.strip() for line in lines[:2]] == ['lo', '0'], lines
    container = netenv.env.inspect('test-none')
    assert container['ip_address'] is None and container['config']['published_ports'] == []
    assert container['id'] not in netreg.NetworkRegistry().load()['allocations']


# -- published ports ----------------------------------------------------------------------------------------

def test_http_through_a_published_port_from_the_host_and_a_client_namespace(netenv):
    port = free_port()
    result = netenv.serve('test-web', published_ports=['%d:80' % port])
    container = result['container']
    assert container['config']['published_ports'] == ['%d:80/tcp' % port]
    assert http_get('127.0.0.1', port) == b'hello from test-web\n'
    client = netenv.client()
    assert client.http_get(client.host_ip, port) == b'hello from test-web\n'
    # Reserved: conmon holds the socket (fd 5), no other process can bind the port.
    conmon_fds = [os.readlink('/proc/%d/fd/%s' % (container['conmon_pid'], fd))
                  for fd in os.listdir('/proc/%d/fd' % container['conmon_pid'])]
    assert os.readlink('/proc/%d/fd/5' % container['conmon_pid']).startswith('socket:'), conmon_fds
    assert bind_fails(port) and bind_fails(port, '127.0.0.1')
    rules = ports.listed_rules('ctr=%s ' % container['id'][:12])
    assert len(rules) == 1 and 'tcp dport %d dnat to %s:80' % (port, container['ip_address']) in rules[0], rules

    netenv.run(name='test-web', state='absent')
    assert not ports.listed_rules('ctr=%s ' % container['id'][:12])
    assert not bind_fails(port), 'the port is free again'
    assert wait_for(lambda: not netenv.leftovers([container['id']])), netenv.leftovers([container['id']])
    with pytest.raises(OSError):
        http_get('127.0.0.1', port, timeout=1)


def test_udp_through_a_published_port(netenv, udp_echo):
    port = free_port()
    result = netenv.run(name='test-udp', rootfs=netenv.env.rootfs, command=['/udpecho/udpecho', '5353'],
                        mounts=['%s:/udpecho:ro' % udp_echo], published_ports=['%d:5353/udp' % port])
    container = result['container']
    assert wait_for(lambda: 'udp echo on 5353' in read_log(container['log_path']))
    network = netreg.NetworkRegistry().load()['networks'][netreg.DEFAULT_NETWORK]
    # From the host's 127.0.0.1: masqueraded to the gateway (the reply must come back out of the bridge).
    assert udp_ask('127.0.0.1', port, b'hi') == b'hi from %s' % network['gateway'].encode()
    client = netenv.client()
    assert client.udp_ask(client.host_ip, port, b'ho') == b'ho from %s' % client.ns_ip.encode()
    assert bind_fails(port, kind=socket.SOCK_DGRAM)


def test_port_on_127_0_0_1_is_not_reachable_from_another_address(netenv):
    local, public = free_port(), free_port()
    netenv.serve('test-local', published_ports=['127.0.0.1:%d:80' % local, '%d:80' % public])
    assert http_get('127.0.0.1', local) == b'hello from test-local\n'
    client = netenv.client()
    assert client.http_get(client.host_ip, public) == b'hello from test-local\n'
    with pytest.raises(OSError):
        client.http_get(client.host_ip, local, timeout=2)
    assert not bind_fails(local, netenv.clients[0].host_ip), 'only 127.0.0.1:%d is reserved' % local


def test_port_ranges_are_published_one_to_one(netenv):
    first = free_port()
    while not all(not bind_fails(first + offset) for offset in range(3)):
        first = free_port()
    netenv.serve('test-range', published_ports=['%d-%d:80-82' % (first, first + 2)])
    container = netenv.env.inspect('test-range')
    assert container['config']['published_ports'] == ['%d-%d:80-82/tcp' % (first, first + 2)]
    assert http_get('127.0.0.1', first) == b'hello from test-range\n'
    with pytest.raises(OSError):
        http_get('127.0.0.1', first + 1, timeout=2)  # container port 81: nothing listens there
    assert len(ports.listed_rules('ctr=%s ' % container['id'][:12])) == 3


def test_port_taken_by_another_container_or_a_process_fails_clearly(netenv):
    port = free_port()
    first = netenv.serve('test-first', published_ports=['%d:80' % port])['container']
    with pytest.raises(RuncibleError, match=r'host port %d/tcp is already in use by container test-first \(root %s\)'
                       % (port, netenv.env.root)):
        netenv.run(name='test-second', rootfs=netenv.env.rootfs, command=['sleep', '60'],
                   published_ports=['%d:80' % port])
    assert netenv.env.inspect('test-second') is None, 'nothing was created'
    assert http_get('127.0.0.1', port) == b'hello from test-first\n', 'the first keeps serving'

    other = free_port()
    holder = socket.socket()
    holder.bind(('127.0.0.1', other))
    holder.listen(1)
    try:
        with pytest.raises(RuncibleError, match='host port %d/tcp is already in use by another process' % other):
            netenv.run(name='test-third', rootfs=netenv.env.rootfs, command=['sleep', '60'],
                       published_ports=['%d:80' % other])
        # The same through ansible-playbook, in check mode too: a failed task, nothing created.
        results = netenv.playbook([
            {'runcible.oci.container': {'name': 'test-third', 'rootfs': netenv.env.rootfs, 'command': 'sleep 60',
                                        'published_ports': ['%d:80' % other]}, 'ignore_errors': True,
             'check_mode': True},
            {'runcible.oci.container': {'name': 'test-third', 'rootfs': netenv.env.rootfs, 'command': 'sleep 60',
                                        'published_ports': ['%d:80' % other]}, 'ignore_errors': True},
        ])
        assert [r['_status'] for r in results] == ['failed', 'failed']
        assert all('already in use by another process' in r['msg'] for r in results), results
    finally:
        holder.close()
    assert netenv.env.inspect('test-third') is None
    assert netenv.env.inspect('test-first')['pid'] == first['pid']


def test_published_ports_need_a_bridge_network(netenv):
    for network in ('none', 'host'):
        with pytest.raises(RuncibleError, match='published_ports needs a bridge network'):
            netenv.run(name='test-noports', rootfs=netenv.env.rootfs, command=['true'], network=network,
                       published_ports=['%d:80' % free_port()])
    with pytest.raises(RuncibleError, match='ip_address needs a bridge network'):
        netenv.run(name='test-noports', rootfs=netenv.env.rootfs, command=['true'], network='none',
                   ip_address='10.89.0.77')
    with pytest.raises(RuncibleError, match='network nosuchnet does not exist'):
        netenv.run(name='test-noports', rootfs=netenv.env.rootfs, command=['true'], network='nosuchnet')
    assert netenv.env.inspect('test-noports') is None


# -- idempotency, check and diff ----------------------------------------------------------------------------

def test_ports_four_ways_and_a_change_recreates_with_diff(netenv):
    port, other = free_port(), free_port()
    args = {'name': 'test-pb', 'rootfs': netenv.env.rootfs, 'command': 'sleep 600', 'stop_timeout': 0,
            'published_ports': ['%d:80' % port]}
    results = netenv.env.four_ways(args)
    for result in results:
        netenv.seen(result)
    check, apply = results[0], results[1]
    assert check['diff']['after']['published_ports'] == ['%d:80/tcp' % port]
    assert check['container']['id'] is None and check['actions'] == ['created', 'started']
    assert apply['container']['ip_address'] and bind_fails(port)
    assert results[2]['container']['pid'] == apply['container']['pid']

    changed = dict(args, published_ports=['127.0.0.1:%d:8080' % other])
    results = netenv.env.four_ways(changed)
    for result in results:
        netenv.seen(result)
    assert results[1]['actions'] == ['recreated', 'started']
    assert results[1]['diff']['before']['published_ports'] == ['%d:80/tcp' % port]
    assert results[1]['diff']['after']['published_ports'] == ['127.0.0.1:%d:8080/tcp' % other]
    assert not bind_fails(port), 'the old port was released'
    assert bind_fails(other, '127.0.0.1')
    # Equivalent spellings are no change.
    same = netenv.run(name='test-pb', published_ports=['127.0.0.1:%d:8080/TCP' % other])
    assert not same['changed']


def test_network_change_recreates_into_the_other_network(netenv):
    created = netenv.network(subnet=None)['network']
    first = netenv.run(name='test-move', rootfs=netenv.env.rootfs, command=['sleep', '600'], stop_timeout=0)
    assert first['container']['config']['network'] == 'runcible'
    moved = netenv.run(name='test-move', network=created['name'])
    assert moved['actions'] == ['recreated', 'started']
    assert moved['diff'] == {'before': {'network': 'runcible', 'status': 'running'},
                             'after': {'network': created['name'], 'status': 'running'}}
    address = moved['container']['ip_address']
    assert ipaddress.ip_address(address) in ipaddress.ip_network(created['subnet'])
    assert not netenv.run(name='test-move', network=created['name'])['changed']
    # bridge is the default network's other name
    back = netenv.run(name='test-move', network='bridge')
    assert back['container']['config']['network'] == 'runcible'
    assert not netenv.run(name='test-move', network='runcible')['changed']


def test_pinned_address(netenv):
    created = netenv.network()['network']
    subnet = ipaddress.ip_network(created['subnet'])
    pinned = str(subnet.network_address + 77)
    result = netenv.run(name='test-pin', rootfs=netenv.env.rootfs, command=['sleep', '600'], stop_timeout=0,
                        network=created['name'], ip_address=pinned)
    assert result['container']['ip_address'] == pinned
    assert not netenv.run(name='test-pin', network=created['name'], ip_address=pinned)['changed']
    with pytest.raises(RuncibleError, match='ip_address: %s is already the address of container test-pin' % pinned):
        netenv.run(name='test-pin2', rootfs=netenv.env.rootfs, command=['sleep', '1'], network=created['name'],
                   ip_address=pinned)
    with pytest.raises(RuncibleError, match='is not a host address of network'):
        netenv.run(name='test-pin2', rootfs=netenv.env.rootfs, command=['sleep', '1'], network=created['name'],
                   ip_address='192.0.2.200')
    with pytest.raises(RuncibleError, match='is the gateway'):
        netenv.run(name='test-pin2', rootfs=netenv.env.rootfs, command=['sleep', '1'], network=created['name'],
                   ip_address=created['gateway'])


# -- between containers, and out --------------------------------------------------------------------------

def test_two_containers_on_one_network_reach_each_other_by_address(netenv):
    created = netenv.network()['network']
    server = netenv.serve('test-srv', network=created['name'])['container']
    lines = run_script(netenv, 'test-cli', 'wget -q -O - http://%s/index.html' % server['ip_address'],
                       network=created['name'])
    assert lines[:1] == ['hello from test-srv'], lines


def test_outbound_nat_and_internal_network_without_a_route_out(netenv):
    client = netenv.client()
    outside_port = free_port()
    seen = client.serve_once(outside_port)
    lines = run_script(netenv, 'test-out', 'wget -q -O - http://%s:%d/ 2>&1' % (client.ns_ip, outside_port))
    assert 'hello from the client namespace' in lines, lines
    seen['thread'].join(10)
    assert seen.get('peer') == client.host_ip, 'the container\'s address is masqueraded behind the host\'s'

    internal = netenv.network(internal=True)['network']
    assert internal['internal'] is True
    lines = run_script(netenv, 'test-in', 'ip route; echo ---; nc -w 3 %s %d </dev/null 2>&1; echo rc=$?'
                       % (client.ns_ip, outside_port), network=internal['name'])
    routes = lines[:lines.index('---')]
    assert routes and not [line for line in routes if line.startswith('default')], lines
    assert 'rc=1' in lines and any('network is unreachable' in line.lower() for line in lines), lines
    assert ports.listed_rules('net=%s internal' % internal['name'])
    assert not ports.listed_rules('net=%s outbound' % internal['name'])


def test_parallel_containers_get_distinct_addresses(netenv):
    created = netenv.network()['network']
    hosts = ['par%d' % index for index in range(8)]
    results = netenv.playbook(
        [{'runcible.oci.container': {'name': 'test-{{ inventory_hostname }}', 'rootfs': netenv.env.rootfs,
                                     'command': 'sleep 600', 'stop_timeout': 0, 'network': created['name']}}],
        extra_args=['-i', ','.join(hosts) + ',', '-f', '8', '-e', 'ansible_connection=local'],
        play_extra={'hosts': 'par*'})
    assert len(results) == 8 and all(r['_status'] == 'ok' for r in results), results
    addresses = [r['container']['ip_address'] for r in results]
    assert len(set(addresses)) == 8, addresses
    subnet = ipaddress.ip_network(created['subnet'])
    assert all(ipaddress.ip_address(address) in subnet for address in addresses)
    listed = sorted(item['ip_address'] for item in netenv.network(name=created['name'])['network']['containers'])
    assert listed == sorted(addresses)


# -- behind our back -----------------------------------------------------------------------------------------

def test_killed_container_is_cleaned_or_repaired_by_the_next_task(netenv):
    port = free_port()
    container = netenv.serve('test-kill', published_ports=['%d:80' % port], stop_timeout=0)['container']
    os.kill(container['conmon_pid'], signal.SIGKILL)
    os.kill(container['pid'], signal.SIGKILL)
    assert wait_for(lambda: netenv.env.inspect('test-kill')['status'] == 'stopped')
    # The port is free (conmon held it); the namespace and the rule are still there.
    assert wait_for(lambda: not bind_fails(port))
    assert os.path.exists(netns.netns_path(container['id']))
    assert ports.listed_rules('ctr=%s ' % container['id'][:12])

    # Another container may take the port now: the dead one's rule must not shadow it.
    other = netenv.serve('test-taker', published_ports=['%d:80' % port], stop_timeout=0)['container']
    assert http_get('127.0.0.1', port) == b'hello from test-taker\n'
    assert not ports.listed_rules('ctr=%s ' % container['id'][:12])
    with pytest.raises(RuncibleError, match='already in use by container test-taker'):
        netenv.run(name='test-kill', state='started')
    netenv.run(name='test-taker', state='absent')
    assert wait_for(lambda: not netenv.leftovers([other['id']])), netenv.leftovers([other['id']])

    # The next task on it: started again (new namespace, same address, its rule back) ...
    again = netenv.run(name='test-kill', state='started')['container']
    assert again['pid'] != container['pid'] and again['ip_address'] == container['ip_address']
    assert wait_for(lambda: get_or_none('127.0.0.1', port) == b'hello from test-kill\n')
    # ... or, killed again, stopped: everything of its network is gone.
    os.kill(again['conmon_pid'], signal.SIGKILL)
    os.kill(again['pid'], signal.SIGKILL)
    assert wait_for(lambda: netenv.env.inspect('test-kill')['status'] == 'stopped')
    stopped = netenv.run(name='test-kill', state='stopped')
    assert not stopped['changed']
    assert not os.path.exists(netns.netns_path(container['id']))
    assert not ports.listed_rules('ctr=%s ' % container['id'][:12])


# -- a bare system Python: bridge networks need no Python library ----------------------------------------------

SYSTEM_PYTHON = '/usr/bin/python3'


def system_python_has_pyroute2():
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    return subprocess.run([SYSTEM_PYTHON, '-c', 'import pyroute2'], check=False, stderr=subprocess.DEVNULL).returncode == 0


@pytest.mark.skipif(not system_python_has_pyroute2(),
                    reason='%s or its pyroute2 is missing (scripts/host-setup.sh installs python3-pyroute2)'
                    % SYSTEM_PYTHON)
def test_a_bare_system_python_runs_none_host_and_bridge_networks(netenv):
    rootfs = netenv.env.rootfs
    tasks = [
        {'name': 'none', 'runcible.oci.container': {'name': 'test-sys', 'rootfs': rootfs, 'command': 'sleep 600',
                                                    'network': 'none', 'stop_timeout': 0}},
        {'name': 'host', 'runcible.oci.container': {'name': 'test-sys-host', 'rootfs': rootfs, 'command': 'true',
                                                    'network': 'host', 'state': 'stopped'}},
        {'name': 'bridge', 'runcible.oci.container': {'name': 'test-sys-br', 'rootfs': rootfs, 'stop_timeout': 0,
                                                      'command': ['sh', '-c', SERVE_LOOP % 'test-sys-br']}},
    ]
    python = ['-e', 'ansible_python_interpreter=' + SYSTEM_PYTHON]
    results = netenv.playbook(tasks, extra_args=python)
    assert [r['_status'] for r in results] == ['ok', 'ok', 'ok'], results
    assert results[0]['container']['status'] == 'running' and results[2]['container']['status'] == 'running'
    address = results[2]['container']['ip_address']
    assert address and wait_for(lambda: get_or_none(address, 80) == b'hello from test-sys-br\n', timeout=10)
    removed = netenv.playbook([{'name': 'remove', 'runcible.oci.container': {'name': name, 'state': 'absent'}}
                               for name in ('test-sys', 'test-sys-host', 'test-sys-br')], extra_args=python)
    assert [r['_status'] for r in removed] == ['ok'] * 3, removed
    bridged = [results[2]['container']['id']]
    assert wait_for(lambda: not netenv.leftovers(bridged)), netenv.leftovers(bridged)


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason='%s is missing' % SYSTEM_PYTHON)
def test_without_pyroute2_none_and_host_run_and_a_bridge_fails_with_missing_required_lib(netenv, tmp_path):
    """The system Python without its site packages (python -S: no pyroute2) stands for a node without it."""
    wrapper = tmp_path / 'python-without-site'
    wrapper.write_text('#!/bin/sh\nexec %s -S "$@"\n' % SYSTEM_PYTHON)
    wrapper.chmod(0o755)
    python = ['-e', 'ansible_python_interpreter=%s' % wrapper]
    rootfs = netenv.env.rootfs
    tasks = [
        {'name': 'none', 'runcible.oci.container': {'name': 'test-nolib', 'rootfs': rootfs, 'command': 'sleep 600',
                                                    'network': 'none', 'stop_timeout': 0}},
        {'name': 'host', 'runcible.oci.container': {'name': 'test-nolib-host', 'rootfs': rootfs, 'command': 'true',
                                                    'network': 'host', 'state': 'stopped'}},
        {'name': 'bridge', 'ignore_errors': True, 'runcible.oci.container': {
            'name': 'test-nolib-br', 'rootfs': rootfs, 'command': 'sleep 600', 'stop_timeout': 0}},
    ]
    results = netenv.playbook(tasks, extra_args=python)
    assert [r['_status'] for r in results][:2] == ['ok', 'ok'], results
    assert results[0]['container']['status'] == 'running'
    assert results[2]['_status'] == 'failed'
    assert 'Failed to import the required Python library (pyroute2)' in results[2]['msg']
    assert 'python3-pyroute2' in results[2]['msg']
    # It failed before the network stage changed anything; the containers go without pyroute2 too.
    removed = netenv.playbook([{'name': 'remove', 'runcible.oci.container': {'name': name, 'state': 'absent'}}
                               for name in ('test-nolib', 'test-nolib-host', 'test-nolib-br')], extra_args=python)
    assert [r['_status'] for r in removed] == ['ok'] * 3, removed
    assert not netenv.leftovers(list(netenv.ids)), netenv.leftovers(list(netenv.ids))


# -- the network module ------------------------------------------------------------------------------------

def test_network_module_four_ways_change_and_removal(netenv):
    name = 'rct%s' % os.urandom(3).hex()
    netenv.networks.append(name)
    results = netenv.four_ways({'name': name})
    created = results[1]['network']
    assert results[0]['actions'] == ['created'] and results[0]['diff']['before'] == {'state': 'absent'}
    assert created['bridge'] == 'rcb-' + name and created['internal'] is False and created['containers'] == []
    subnet = ipaddress.ip_network(created['subnet'])
    assert subnet.prefixlen == 24 and created['gateway'] == str(subnet.network_address + 1)
    assert bridges.bridge_ready(created)
    assert ports.listed_rules('net=%s outbound' % name)

    results = netenv.four_ways({'name': name, 'internal': True})
    assert results[1]['actions'] == ['updated']
    assert results[1]['diff'] == {'before': {'internal': False}, 'after': {'internal': True}}
    assert ports.listed_rules('net=%s internal' % name) and not ports.listed_rules('net=%s outbound' % name)

    # A container on it: no change of its subnet, no removal, with a message that says who is in the way.
    netenv.run(name='test-user', rootfs=netenv.env.rootfs, command=['sleep', '600'], network=name, stop_timeout=0)
    with pytest.raises(RuncibleError, match='test-user'):
        netenv.network(name=name, subnet='10.89.250.0/24')
    with pytest.raises(RuncibleError, match=r'still has containers .*test-user'):
        netenv.network(name=name, state='absent')
    netenv.run(name='test-user', state='absent')

    # Repaired when its bridge is removed behind our back.
    bridges.delete_bridge(created)
    repaired = netenv.network(name=name)
    assert repaired['actions'] == ['repaired'] and bridges.bridge_ready(created)

    results = netenv.four_ways({'name': name, 'state': 'absent'})
    assert results[1]['actions'] == ['removed']
    assert not os.path.exists('/sys/class/net/rcb-' + name)
    assert not ports.listed_rules('net=%s ' % name)
    assert name not in netreg.NetworkRegistry().load()['networks']


def test_network_module_validation(netenv):
    for params, message in [
            ({'name': 'bridge'}, 'reserved'),
            ({'name': 'bad/name'}, 'not a valid network name'),
            ({'name': 'rctv', 'subnet': '10.89.0.1/24'}, 'host bits set'),
            ({'name': 'rctv', 'subnet': '10.89.3.0/30'}, 'too small'),
            ({'name': 'rctv', 'subnet': 'fd00::/64'}, 'only IPv4'),
            ({'name': 'rctv', 'subnet': '10.89.4.0/24', 'gateway': '10.89.5.1'}, 'not a host address'),
            ({'name': 'rctv', 'bridge': 'eth7'}, 'looks like a host'),
    ]:
        with pytest.raises(RuncibleError, match=message):
            netenv.network(check_mode=True, **params)
    ours = set(network['bridge'] for network in netreg.NetworkRegistry().load()['networks'].values())
    route = [route for route, device in bridges.host_routes() if device not in ours and not device.startswith('rc')][0]
    with pytest.raises(RuncibleError, match='overlaps the host route %s' % route):
        netenv.network(check_mode=True, name='rctv', subnet=str(route))
    assert 'rctv' not in netreg.NetworkRegistry().load()['networks']
