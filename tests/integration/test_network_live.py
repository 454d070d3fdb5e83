# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Networks attached to and detached from a running container without a recreate (the same process goes on):
networks appended, the last ones removed, aliases changed, four ways each; what changes eth0 or an address, or
the order, recreates; a stopped container joins its new networks at its next start."""

from __future__ import annotations

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import network_registry as netreg
from conftest import wait_for
from netfixtures import SERVE_LOOP, interfaces, netenv  # pylint: disable=unused-import  # the fixture
from test_network_multi import dns_file, loop, needs_aardvark, resolves, sh, soon_resolves
from test_network_multi import two_dns_networks  # noqa: F401  # pylint: disable=unused-import  # the fixture

pytestmark = [pytest.mark.timeout(400), needs_aardvark]


def fetch(netenv, client, name):
    rc, output = sh(netenv, client, 'busybox timeout 5 busybox wget -q -O - http://%s/index.html' % name)
    return output if rc == 0 else None


def interfaces_of(netenv, name):
    rc, output = sh(netenv, name, 'ls /sys/class/net')
    assert rc == 0, output
    return sorted(output.split())


def test_networks_are_attached_and_detached_live_and_their_names_follow(netenv, two_dns_networks):
    first, second = (network['name'] for network in two_dns_networks)
    loop(netenv, 'test-lv-peer', networks=[second])  # on the second network only: it sees what is attached there
    base = {'name': 'test-lv', 'rootfs': netenv.env.rootfs, 'command': ['sh', '-c', SERVE_LOOP % 'test-lv'],
            'stop_timeout': 0}
    created = netenv.run(networks=[first], **base)['container']
    assert interfaces_of(netenv, 'test-lv') == ['eth0', 'lo']
    assert not resolves(netenv, 'test-lv-peer', 'test-lv')

    # Attach: the second network appended, with an alias, four ways; the same process goes on.
    attach = dict(base, networks=[first, {'name': second, 'aliases': ['svc']}])
    results = netenv.env.four_ways(attach)
    assert [result['actions'] for result in results] == [['updated'], ['updated'], [], []]
    container = results[1]['container']
    assert (container['id'], container['pid']) == (created['id'], created['pid']), 'attached live, not recreated'
    address = container['networks'][1]['ip_address']
    assert [item['name'] for item in container['networks']] == [first, second]
    assert interfaces_of(netenv, 'test-lv') == ['eth0', 'eth1', 'lo']
    rc, output = sh(netenv, 'test-lv', 'ip -4 addr show dev eth1; cat /etc/hosts /etc/resolv.conf')
    assert rc == 0 and output.count(address) == 2, output  # on eth1, and in its /etc/hosts (rewritten in place)
    assert two_dns_networks[1]['gateway'] in output.split('resolv.conf')[-1] or \
        ('nameserver %s' % two_dns_networks[1]['gateway']) in output, output
    assert soon_resolves(netenv, 'test-lv-peer', 'test-lv', address) and soon_resolves(netenv, 'test-lv-peer', 'svc', address)
    assert 'hello from test-lv' in (fetch(netenv, 'test-lv-peer', 'svc') or ''), 'reached by name over the new network'

    # Its aliases changed live.
    renamed = dict(base, networks=[first, {'name': second, 'aliases': ['svc2']}])
    results = netenv.env.four_ways(renamed)
    assert results[1]['actions'] == ['updated'] and results[1]['container']['pid'] == created['pid']
    assert soon_resolves(netenv, 'test-lv-peer', 'svc2', address)
    assert wait_for(lambda: not resolves(netenv, 'test-lv-peer', 'svc'), timeout=8), 'the old alias is gone'

    # Detach: the last network removed; its records go, its address is released, eth1 is gone.
    results = netenv.env.four_ways(dict(base, networks=[first]))
    assert results[1]['actions'] == ['updated'] and results[1]['container']['pid'] == created['pid']
    assert [item['name'] for item in results[1]['container']['networks'] or [{'name': first}]] == [first]
    assert interfaces_of(netenv, 'test-lv') == ['eth0', 'lo']
    assert not {'test-lv', 'svc2'} & set(dns_file(second).replace(',', ' ').split()), dns_file(second)
    assert wait_for(lambda: not resolves(netenv, 'test-lv-peer', 'test-lv'), timeout=8)
    allocations = netreg.NetworkRegistry().load()['allocations']
    assert sorted(netreg.keys_of({'allocations': allocations}, created['id'])) == [created['id']]
    rc, output = sh(netenv, 'test-lv', 'cat /etc/hosts')
    assert rc == 0 and address not in output, output

    # What changes eth0 (here: the order) recreates, and says so.
    results = netenv.env.four_ways(dict(base, networks=[second, first]))
    assert 'recreated' in results[1]['actions'] and results[1]['container']['id'] != created['id']

    # A stopped container: its networks recorded, joined at its next start.
    netenv.run(state='stopped', networks=[second, first], **base)
    results = netenv.env.four_ways(dict(base, state='stopped', networks=[second]))
    assert results[1]['actions'] == ['updated']
    started = netenv.run(networks=[second], **base)['container']
    assert [item['name'] for item in started.get('networks') or [{'name': started['config']['network']}]] == [second]
    assert interfaces_of(netenv, 'test-lv') == ['eth0', 'lo']
    assert soon_resolves(netenv, 'test-lv-peer', 'test-lv', started['ip_address'])


def test_a_failed_attachment_leaves_the_container_as_it_was(netenv, two_dns_networks):
    """A pinned address another container holds: the task fails before anything is attached."""
    first, second = (network['name'] for network in two_dns_networks)
    holder = loop(netenv, 'test-lv-holder', networks=[second])
    base = {'name': 'test-lvf', 'rootfs': netenv.env.rootfs, 'command': ['sh', '-c', SERVE_LOOP % 'x'], 'stop_timeout': 0}
    created = netenv.run(networks=[first], **base)['container']
    results = netenv.env.playbook([{'name': 'attach', 'runcible.oci.container': dict(
        base, networks=[first, {'name': second, 'ip_address': holder['ip_address']}]), 'ignore_errors': True}])
    assert results[0]['_status'] == 'failed' and 'is already the address of' in results[0]['msg'], results
    after = netenv.env.inspect('test-lvf')
    assert (after['id'], after['pid']) == (created['id'], created['pid'])
    assert interfaces_of(netenv, 'test-lvf') == ['eth0', 'lo']
    assert 'test-lvf' not in dns_file(second).replace(',', ' ').split()


def test_an_attachment_that_fails_half_way_is_undone(netenv, two_dns_networks, monkeypatch):
    """The veth pair made, then the plumbing fails (a fault injected after the real plumbing): the task fails, and
    the pair, the allocation and the DNS records are gone again; the container and its record are as they were."""
    from ansible_collections.runcible.oci.plugins.module_utils._runtime import network  # pylint: disable=import-outside-toplevel
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.bridges import veth_name  # pylint: disable=import-outside-toplevel
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError  # pylint: disable=import-outside-toplevel
    first, second = (network_['name'] for network_ in two_dns_networks)
    base = {'name': 'test-lvu', 'rootfs': netenv.env.rootfs, 'command': ['sh', '-c', SERVE_LOOP % 'x'], 'stop_timeout': 0}
    created = netenv.run(networks=[first], **base)['container']
    real = network.plumb_all

    def plumb_then_fail(links, *args, **kwargs):
        real(links, *args, **kwargs)
        assert interfaces_of(netenv, 'test-lvu') == ['eth0', 'eth1', 'lo'], 'the fault comes after the plumbing'
        raise RuncibleError('injected fault')

    monkeypatch.setattr(network, 'plumb_all', plumb_then_fail)
    with pytest.raises(RuncibleError, match='injected fault'):
        netenv.run(networks=[first, second], **base)
    monkeypatch.undo()
    after = netenv.env.inspect('test-lvu')
    assert (after['id'], after['pid']) == (created['id'], created['pid'])
    assert after['config']['networks'] == created['config']['networks']
    assert interfaces_of(netenv, 'test-lvu') == ['eth0', 'lo']
    assert veth_name(created['id'], 1) not in interfaces()
    assert netreg.keys_of(netreg.NetworkRegistry().load(), created['id']) == [created['id']]
    assert 'test-lvu' not in dns_file(second).replace(',', ' ').split()
    # And the same task, without the fault, attaches it.
    assert netenv.run(networks=[first, second], **base)['actions'] == ['updated']
    assert interfaces_of(netenv, 'test-lvu') == ['eth0', 'eth1', 'lo']
