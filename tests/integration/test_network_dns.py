# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container names: aardvark-dns on DNS-enabled networks, and the name options (dns, dns_search, dns_options,
etc_hosts, aliases) in the container's /etc files. Every query stays on the test's own bridges."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _exec
from ansible_collections.runcible.oci.plugins.module_utils._runtime import dns
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError
from conftest import wait_for
from netfixtures import netenv  # pylint: disable=unused-import  # the fixture

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"

pytestmark = pytest.mark.skipif(not os.path.exists('/usr/lib/podman/aardvark-dns') and not dns.find_program(dns.PROGRAM),
                                reason='aardvark-dns is not installed (scripts/host-setup.sh installs it)')


def aardvark_pids():
    """Every aardvark-dns process serving our directory (there must never be more than one)."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                argv = handle.read().split(b'\0')
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b'aardvark-dns' and dns.DNS_DIR.encode() in argv:
            pids.append(int(entry))
    return pids


def sh(netenv, name, script):
    result = _exec.run({'container': name, 'argv': ['sh', '-c', script], 'root': netenv.env.root,
                        'run_root': netenv.env.run_root})
    return result['rc'], result['stdout'] + result['stderr']


def lookup(netenv, name, query):
    """busybox nslookup in container ``name`` -> (rc, output); bounded (a name unknown here is forwarded)."""
    return sh(netenv, name, 'busybox timeout 4 busybox nslookup %s' % query)


def resolves_to(netenv, name, query, address):
    rc, output = lookup(netenv, name, query)
    return rc == 0 and ('Address: %s' % address) in output


def container(netenv, name, network, **params):
    result = netenv.run(name=name, rootfs=netenv.env.rootfs, command=['sh', '-c', LOOP], network=network,
                        stop_timeout=0, **params)
    return result['container']


@pytest.fixture
def no_aardvark_after(netenv):
    """The test starts without our aardvark-dns and must end without it (after its containers are removed)."""
    if aardvark_pids():
        pytest.skip('an aardvark-dns of runcible.oci already runs (another test or a container on a DNS network)')
    yield
    for name in sorted(netenv.env.engine.store.names()):
        netenv.run(name=name, state='absent')
    assert wait_for(lambda: not aardvark_pids(), timeout=5), 'aardvark-dns leaked: %s' % aardvark_pids()
    assert not [name for name in os.listdir(dns.DNS_DIR) if name != dns.PID_FILE] if os.path.isdir(dns.DNS_DIR) else True


def test_two_containers_resolve_each_other_and_a_third_network_does_not(netenv, no_aardvark_after):
    first, second = 'rct' + os.urandom(3).hex(), 'rct' + os.urandom(3).hex()
    net_a = netenv.network(name=first)['network']
    net_b = netenv.network(name=second)['network']
    assert net_a['dns'] is True and not aardvark_pids(), 'a network without containers runs no aardvark-dns'

    args = {'name': 'test-dns-web', 'rootfs': netenv.env.rootfs, 'command': ['sh', '-c', LOOP], 'network': first,
            'stop_timeout': 0, 'aliases': ['www', 'web-alias.example'], 'dns_search': ['example.test'],
            'dns_options': ['ndots:2'], 'etc_hosts': {'extra.example.test': '192.0.2.7'}, 'dns': ['192.0.2.53']}
    results = netenv.env.four_ways(args)
    assert results[0]['diff']['after']['aliases'] == ['www', 'web-alias.example']
    web = results[1]['container']
    netenv.env.ids.add(web['id'])
    [pid] = aardvark_pids()
    db = container(netenv, 'test-dns-db', first)
    other = container(netenv, 'test-dns-other', second)
    assert aardvark_pids() == [pid], 'one aardvark-dns for every network, told of changes by SIGHUP'

    # The files: resolv.conf names the network's aardvark-dns; dns_search, dns_options, etc_hosts are there.
    rc, resolv = sh(netenv, 'test-dns-web', 'cat /etc/resolv.conf')
    assert rc == 0 and resolv.splitlines() == ['nameserver %s' % net_a['gateway'], 'search example.test',
                                               'options ndots:2'], resolv
    rc, hosts = sh(netenv, 'test-dns-web', 'cat /etc/hosts')
    assert rc == 0 and '192.0.2.7\textra.example.test' in hosts and '%s\ttest-dns-web' % web['ip_address'] in hosts
    with open(os.path.join(dns.DNS_DIR, first)) as handle:
        served = handle.read()
    assert served.splitlines()[0] == net_a['gateway']
    assert '%s %s  test-dns-web,www,web-alias.example 192.0.2.53' % (web['id'], web['ip_address']) in served
    assert '%s %s  test-dns-db' % (db['id'], db['ip_address']) in served

    # Each resolves the other's name and aliases; the other network's container does not.
    assert wait_for(lambda: resolves_to(netenv, 'test-dns-db', 'test-dns-web', web['ip_address']), timeout=5)
    assert resolves_to(netenv, 'test-dns-db', 'www', web['ip_address'])
    assert resolves_to(netenv, 'test-dns-db', 'web-alias.example', web['ip_address'])
    # (Absolute: web's ndots:2 would try test-dns-db.example.test first, which aardvark-dns forwards to web's
    # own server 192.0.2.53, unreachable here.)
    assert resolves_to(netenv, 'test-dns-web', 'test-dns-db.', db['ip_address'])
    rc, output = lookup(netenv, 'test-dns-other', 'test-dns-web')
    assert web['ip_address'] not in output and rc != 0, output
    rc, resolv = sh(netenv, 'test-dns-other', 'cat /etc/resolv.conf')
    assert 'nameserver %s' % net_b['gateway'] in resolv
    assert other['ip_address']

    # Detach removes the records: db stopped, its line gone; aardvark-dns stays for the others.
    netenv.run(name='test-dns-db', state='stopped')
    with open(os.path.join(dns.DNS_DIR, first)) as handle:
        assert db['id'] not in handle.read()
    assert aardvark_pids() == [pid]
    rc, output = lookup(netenv, 'test-dns-web', 'test-dns-db.')
    assert db['ip_address'] not in output and rc != 0, output


def test_a_killed_aardvark_is_restarted_by_the_next_task_and_ends_with_the_last_container(netenv, no_aardvark_after):
    name = 'rct' + os.urandom(3).hex()
    netenv.network(name=name)
    web = container(netenv, 'test-dns-k1', name)
    [pid] = aardvark_pids()
    os.kill(pid, signal.SIGKILL)  # ours: started by this test's first container
    assert wait_for(lambda: not aardvark_pids(), timeout=5)
    # The network task sees it and repairs it (four ways: check, apply, then nothing to do).
    tasks = [{'name': way, 'action': 'runcible.oci.network', 'args': {'name': name}, 'diff': True,
              'check_mode': way.startswith('check')} for way in ('check', 'apply', 'again', 'check again')]
    results = netenv.playbook(tasks)
    # On a shared host any task that attaches or detaches a bridged container may restart it first (the
    # registry is host-wide): then the check or the apply finds nothing to repair.
    changed = [r['changed'] for r in results]
    assert changed[2:] == [False, False] and (changed[:2] == [True, True] or not changed[1]), results
    if changed[0]:
        assert results[0]['diff']['before'] == {'kernel': ['aardvark-dns not running']}
    assert len(aardvark_pids()) == 1
    os.kill(aardvark_pids()[0], signal.SIGKILL)
    assert wait_for(lambda: not aardvark_pids(), timeout=5)
    # So does the next container task that attaches one.
    peer = container(netenv, 'test-dns-k2', name)
    assert len(aardvark_pids()) == 1
    assert wait_for(lambda: resolves_to(netenv, 'test-dns-k2', 'test-dns-k1', web['ip_address']), timeout=5)
    assert resolves_to(netenv, 'test-dns-k1', 'test-dns-k2', peer['ip_address'])
    # The last container leaves: aardvark-dns ends (checked again by the fixture after removal).
    netenv.run(name='test-dns-k1', state='absent')
    assert len(aardvark_pids()) == 1
    netenv.run(name='test-dns-k2', state='stopped')
    assert wait_for(lambda: not aardvark_pids(), timeout=5), 'aardvark-dns outlived the last container'


def test_dns_false_runs_no_aardvark_and_the_files_name_the_given_servers(netenv, no_aardvark_after):
    name = 'rct' + os.urandom(3).hex()
    assert netenv.network(name=name, dns=False)['network']['dns'] is False
    container(netenv, 'test-dns-off', name, dns=['192.0.2.53', '192.0.2.54'], dns_search=['a.test', 'b.test'],
              aliases=['ignored'])
    assert not aardvark_pids()
    rc, resolv = sh(netenv, 'test-dns-off', 'cat /etc/resolv.conf')
    assert rc == 0 and resolv.splitlines()[:3] == ['nameserver 192.0.2.53', 'nameserver 192.0.2.54',
                                                   'search a.test b.test'], resolv
    # Turning it on needs the network empty of containers.
    with pytest.raises(ValidationError, match='cannot change its dns while containers'):
        netenv.network(name=name, dns=True)


@pytest.mark.parametrize('network', ['none', 'host'])
def test_the_name_options_need_a_bridge_network(netenv, network):
    with pytest.raises(ValidationError, match='etc_hosts needs a bridge network'):
        netenv.run(name='test-dns-none', rootfs=netenv.env.rootfs, command=['true'], network=network,
                   etc_hosts={'a.test': '192.0.2.1'})
