# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/network.py and _network.py: the parts that need no kernel (names, registry, addresses, checks)."""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import json
import os
import socket

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options
from ansible_collections.runcible.oci.plugins.module_utils import _network
from ansible_collections.runcible.oci.plugins.module_utils._container_options import network as network_options
from ansible_collections.runcible.oci.plugins.module_utils._runtime import bridges
from ansible_collections.runcible.oci.plugins.module_utils._runtime import etc_files
from ansible_collections.runcible.oci.plugins.module_utils._runtime import netns
from ansible_collections.runcible.oci.plugins.module_utils._runtime import network as net
from ansible_collections.runcible.oci.plugins.module_utils._runtime import network_registry as netreg
from ansible_collections.runcible.oci.plugins.module_utils._runtime import ports
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError

CID = 'c0ffee' * 10 + 'abcd'
ROUTES = ('Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n'
          'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n'
          'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n'
          'docker0\t000059\n'  # a short line is skipped
          'docker0\t0000590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n')


@pytest.fixture
def aliases(monkeypatch):
    """The host's interfaces as the ownership checks see them: name -> alias (bridges.link_alias reads this, not /sys)."""
    found = {}
    monkeypatch.setattr(bridges, 'link_alias', found.get)
    return found


@pytest.fixture
def registry(tmp_path, monkeypatch, aliases):
    """A registry of the test's own (the host's is never read), and host routes: 192.0.2.0/24, 10.89.0.0/24."""
    monkeypatch.setattr(netreg, 'STATE_DIR', str(tmp_path / 'networks'))
    routes = tmp_path / 'route'
    routes.write_text(ROUTES)
    original = bridges.host_routes

    def fake(exclude_devices=(), path=str(routes)):
        return original(exclude_devices, path)
    monkeypatch.setattr(bridges, 'host_routes', fake)
    return netreg.NetworkRegistry()


def save(registry, networks=(), allocations=None):
    data = {'networks': dict((item['name'], item) for item in networks), 'allocations': allocations or {}}
    registry.save(data)
    return data


def network_def(name='web', subnet='10.89.5.0/24', internal=False):
    gateway = str(ipaddress.ip_network(subnet).network_address + 1)
    return {'name': name, 'bridge': netreg.default_bridge_name(name), 'subnet': subnet, 'gateway': gateway,
            'internal': internal}


# -- names --------------------------------------------------------------------------------------------------

def test_kernel_names_come_from_the_container_id():
    assert netns.netns_path(CID) == '/run/netns/rc-' + CID[:16]
    assert bridges.veth_name(CID) == 'rcv' + CID[:12] and len(bridges.veth_name(CID)) == 15


@pytest.mark.parametrize('value, expected', [
    ('none', 'none'), ('host', 'host'), ('bridge', 'runcible'), ('runcible', 'runcible'), ('backend', 'backend'),
    (' backend ', 'backend'),
])
def test_normalise_network(value, expected):
    known = type('Registry', (), {'load': lambda self: {'networks': {'backend': {}}}})()
    assert network_options.network(value, options.Context('c', '/r'), registry=known) == expected


@pytest.mark.parametrize('value', ['a/b', '-x', '', 'a' * 65, 'a..b', 'has space'])
def test_normalise_network_rejects(value):
    with pytest.raises(ValidationError, match='not a valid network name'):
        network_options.network(value, options.Context('c', '/r'))


@pytest.mark.parametrize('name, bridge', [
    ('runcible', 'runcible0'), ('web', 'rcb-web'), ('abcdefghijk', 'rcb-abcdefghijk'),
    ('abcdefghijkl', 'rcb-' + __import__('hashlib').sha1(b'abcdefghijkl').hexdigest()[:11]),
])
def test_default_bridge_name(name, bridge):
    assert netreg.default_bridge_name(name) == bridge
    assert len(bridge) <= 15


@pytest.mark.parametrize('config, expected', [
    ({'network': 'none'}, None), ({'network': 'host'}, None), ({}, None), (None, None),
    ({'network': 'bridge'}, 'runcible'), ({'network': 'web'}, 'web'),
])
def test_network_of(config, expected):
    assert netreg.network_of(config) == expected


@pytest.mark.parametrize('value, message', [('10.89.0.300', 'not an IPv4 address'), ('fd00::1', 'only IPv4')])
def test_normalise_ip_address_rejects(value, message):
    with pytest.raises(ValidationError, match=message):
        network_options.ip_address(value, options.Context('c', '/r'))


# -- the spec -----------------------------------------------------------------------------------------------

def _spec(network):
    context = options.Context('web', '/r')
    config = options.complete({'command': ['true'], 'network': network, 'cgroup_manager': 'cgroupfs'}, context)
    return options.build_spec(config, CID)


def test_spec_of_a_bridge_network_joins_the_named_namespace_and_mounts_etc_files():
    spec = _spec('runcible')
    assert {'type': 'network', 'path': '/run/netns/rc-' + CID[:16]} in spec['linux']['namespaces']
    etc = dict((mount['destination'], mount) for mount in spec['mounts'] if mount['destination'].startswith('/etc/'))
    assert etc['/etc/hosts']['source'] == 'hosts' and etc['/etc/resolv.conf']['source'] == 'resolv.conf'
    assert etc['/etc/hosts']['type'] == 'bind' and 'rbind' in etc['/etc/hosts']['options']
    assert [mount for mount in spec['mounts'] if mount['destination'] == '/sys'][0]['type'] == 'sysfs'


@pytest.mark.parametrize('network', ['none', 'host'])
def test_spec_of_none_and_host_is_unchanged(network):
    spec = _spec(network)
    namespaces = [item for item in spec['linux']['namespaces'] if item['type'] == 'network']
    assert namespaces == ([] if network == 'host' else [{'type': 'network'}])
    assert not [mount for mount in spec['mounts'] if mount['destination'].startswith('/etc/')]


# -- definitions, subnets, routes -----------------------------------------------------------------------------

def test_host_routes_parse_proc_net_route(registry):
    routes = bridges.host_routes()
    assert (ipaddress.ip_network('192.0.2.0/24'), 'eth0') in routes
    assert (ipaddress.ip_network('10.89.0.0/24'), 'docker0') in routes
    assert not [route for route, _device in routes if route.prefixlen == 0], 'the default route is left out'


def test_define_picks_the_first_free_subnet(registry):
    data = save(registry, [network_def('a', '10.89.1.0/24')])
    created = netreg.define(data, 'b')
    # 10.89.0.0/24 is a host route here (docker0), 10.89.1.0/24 network a.
    assert created == {'name': 'b', 'bridge': 'rcb-b', 'subnet': '10.89.2.0/24', 'gateway': '10.89.2.1',
                       'internal': False, 'dns': False}


@pytest.mark.parametrize('params, message', [
    ({'subnet': '10.89.1.0/24'}, 'overlaps network a'),
    ({'subnet': '10.89.0.0/16'}, 'overlaps network a'),
    ({'subnet': '192.0.2.0/25'}, 'overlaps the host route 192.0.2.0/24 dev eth0'),
    ({'subnet': '10.89.9.1/24'}, 'host bits set'),
    ({'subnet': '10.89.9.0/30'}, 'too small'),
    ({'subnet': 'fd00::/64'}, 'only IPv4'),
    ({'subnet': 'nonsense'}, 'not an IPv4 network'),
    ({'subnet': '127.0.0.0/8'}, 'not a usable network'),
    ({'subnet': '10.89.9.0/24', 'gateway': '10.89.8.1'}, 'not a host address of the subnet'),
    ({'subnet': '10.89.9.0/24', 'gateway': '10.89.9.255'}, 'not a host address of the subnet'),
    ({'bridge': 'rcb-a'}, 'already belongs to network a'),
    ({'bridge': 'way-too-long-for-linux'}, 'not a valid interface name'),
    ({'bridge': 'eth1'}, 'looks like a host or container interface'),
])
def test_define_rejects(registry, params, message):
    data = save(registry, [network_def('a', '10.89.1.0/24')])
    with pytest.raises(ValidationError, match=message):
        netreg.define(data, 'b', **params)


def test_define_keeps_its_own_subnet_when_redefined(registry, monkeypatch):
    data = save(registry, [network_def('a', '10.89.1.0/24')])
    # Its own bridge's route does not count as a clash.
    monkeypatch.setattr(bridges, 'host_routes', lambda exclude_devices=(), path=None: [
        (route, device) for route, device in [(ipaddress.ip_network('10.89.1.0/24'), 'rcb-a')]
        if device not in exclude_devices])
    assert netreg.define(data, 'a', subnet='10.89.1.0/24', internal=True)['internal'] is True


# -- the registry ---------------------------------------------------------------------------------------------

def test_registry_round_trip_and_lock(registry):
    assert registry.load() == {'networks': {}, 'allocations': {}}
    save(registry, [network_def()])
    assert registry.load()['networks']['web']['bridge'] == 'rcb-web'
    assert oct(os.stat(registry.path).st_mode & 0o777) == '0o600'
    with registry.lock():
        with pytest.raises(RuncibleError, match='timed out after 0s waiting for the network lock'):
            with netreg.NetworkRegistry(registry.dir).lock(timeout=0.05):
                pass
    with netreg.NetworkRegistry(registry.dir).lock(timeout=0.05):
        pass


def test_corrupt_registry_says_what_to_do(registry):
    os.makedirs(registry.dir, exist_ok=True)
    with open(registry.path, 'w') as handle:
        handle.write('{not json')
    with pytest.raises(RuncibleError, match='is corrupt'):
        registry.load()


def _record(tmp_path, name, container_id):
    directory = tmp_path / 'root' / 'containers' / name
    directory.mkdir(parents=True)
    (directory / 'record.json').write_text(json.dumps({'id': container_id, 'name': name}))


def test_collect_garbage_drops_allocations_of_containers_that_are_gone(tmp_path, registry):
    _record(tmp_path, 'kept', 'a' * 64)
    _record(tmp_path, 'replaced', 'b' * 64)
    root = str(tmp_path / 'root')
    data = save(registry, [network_def()], {
        'a' * 64: {'network': 'web', 'ip': '10.89.5.2', 'root': root, 'name': 'kept'},
        'c' * 64: {'network': 'web', 'ip': '10.89.5.3', 'root': root, 'name': 'replaced'},
        'd' * 64: {'network': 'web', 'ip': '10.89.5.4', 'root': '/nonexistent', 'name': 'gone'},
    })
    assert netreg.collect_garbage(data) is True
    assert list(data['allocations']) == ['a' * 64]
    assert netreg.collect_garbage(data) is False


# -- addresses and ports under the lock ---------------------------------------------------------------------

def test_address_allocation(registry):
    network = network_def(subnet='10.89.5.0/29')  # hosts .1 (gateway) to .6
    data = save(registry, [network], {'x': {'network': 'web', 'ip': '10.89.5.2', 'root': '/r', 'name': 'x'},
                                      'y': {'network': 'other', 'ip': '10.89.5.3', 'root': '/r', 'name': 'y'}})
    assert net._address_for(data, network, CID, None, {}) == '10.89.5.3', 'lowest free on this network'
    assert net._address_for(data, network, CID, None, {'ip': '10.89.5.6', 'network': 'web'}) == '10.89.5.6'
    assert net._address_for(data, network, CID, '10.89.5.5', {}) == '10.89.5.5'
    with pytest.raises(ValidationError, match='10.89.5.2 is already the address of container x'):
        net._address_for(data, network, CID, '10.89.5.2', {})
    for index, address in enumerate(['10.89.5.3', '10.89.5.4', '10.89.5.5', '10.89.5.6']):
        data['allocations']['z%d' % index] = {'network': 'web', 'ip': address, 'root': '/r', 'name': 'z'}
    with pytest.raises(RuncibleError, match='has no free address left'):
        net._address_for(data, network, CID, None, {})


def _local_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_reserve_drops_the_rule_of_a_dead_holder_and_names_a_live_one(registry):
    port = _local_port()
    mapping = ports.PortMapping('127.0.0.1', port, 80)
    data = save(registry, [network_def()], {'old': {
        'network': 'web', 'ip': '10.89.5.2', 'root': '/r', 'name': 'dead', 'attached': True,
        'ports': [mapping.as_dict()]}})
    sockets, dropped = net._reserve(data, [mapping], CID)
    try:
        assert dropped and data['allocations']['old']['ports'] == []
        data['allocations']['old']['ports'] = [mapping.as_dict()]
        with pytest.raises(ValidationError, match=r'in use by container dead \(root /r\); the container was not '):
            net._reserve(data, [mapping], CID)
    finally:
        for sock in sockets:
            sock.close()


def test_checks_of_the_container_options(registry):
    taken = socket.socket()
    taken.bind(('127.0.0.1', 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    save(registry, [network_def()], {'o': {'network': 'web', 'ip': '10.89.5.9', 'root': '/r', 'name': 'other',
                                           'attached': True, 'ports': []}})
    new = options.Context('c', '/r')

    def check(context=new, **given):
        return network_options.check(given, context)
    try:
        assert network_options.network('web', new) == 'web'
        assert network_options.network('runcible', new) == 'runcible', 'the default network is made on first use'
        with pytest.raises(ValidationError, match='network nope does not exist'):
            network_options.network('nope', new)
        check(ip_address='10.89.5.10', network='web')
        with pytest.raises(ValidationError, match='already the address of container other'):
            check(ip_address='10.89.5.9', network='web')
        check(options.Context('other', '/r'), ip_address='10.89.5.9', network='web')  # its own address
        with pytest.raises(ValidationError, match='is the gateway'):
            check(ip_address='10.89.5.1', network='web')
        with pytest.raises(ValidationError, match='not a host address of network web'):
            check(ip_address='10.89.6.1', network='web')
        with pytest.raises(ValidationError, match='ip_address needs a bridge network'):
            check(ip_address='10.89.5.10', network='host')
        with pytest.raises(ValidationError, match='ip_address needs a bridge network'):
            check(options.Context('c', '/r', {'network': 'none'}), ip_address='10.89.5.10')
        with pytest.raises(ValidationError, match='in use by another process; nothing was changed'):
            check(published_ports=['127.0.0.1:%d:80/tcp' % port], network='web')
        with pytest.raises(ValidationError, match='published_ports needs a bridge network'):
            check(published_ports=['8080:80/tcp'], network='none')
        check(published_ports=[], network='none')
    finally:
        taken.close()


def test_ports_held_by_the_same_container_are_not_probed(registry):
    taken = socket.socket()
    taken.bind(('127.0.0.1', 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    mapping = ports.PortMapping('127.0.0.1', port, 80)
    save(registry, [network_def()], {'me': {'network': 'web', 'ip': '10.89.5.9', 'root': '/r', 'name': 'web',
                                            'attached': True, 'ports': [mapping.as_dict()]}})
    try:
        network_options.check({'published_ports': [mapping.text()]}, options.Context('web', '/r', {'network': 'web'}))
        with pytest.raises(ValidationError, match=r'in use by container web \(root /r\)'):
            network_options.check({'published_ports': [mapping.text()]},
                                  options.Context('web', '/elsewhere', {'network': 'web'}))
    finally:
        taken.close()


# -- /etc files ----------------------------------------------------------------------------------------------

def test_resolv_conf_leaves_loopback_servers_out(tmp_path, monkeypatch):
    stub = tmp_path / 'stub'
    stub.write_text('# systemd-resolved\nnameserver 127.0.0.53\noptions edns0\nsearch example.org\n')
    upstream = tmp_path / 'upstream'
    upstream.write_text('nameserver 127.0.0.1\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch example.org\n')
    monkeypatch.setattr(etc_files, 'RESOLV_PATHS', (str(stub), str(upstream)))
    assert etc_files.resolv_conf() == 'nameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch example.org\n'
    monkeypatch.setattr(etc_files, 'RESOLV_PATHS', (str(stub), str(tmp_path / 'missing')))
    assert etc_files.resolv_conf().startswith('# runcible.oci: the host has no name server')


def test_hosts_file():
    assert etc_files.hosts_file('box', 'web', '10.89.0.2') == (
        '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.89.0.2\tbox web\n')
    assert etc_files.hosts_file('web', 'web', '10.89.0.2').endswith('10.89.0.2\tweb\n')


def test_ip_forward_warning(tmp_path, monkeypatch):
    flag = tmp_path / 'ip_forward'
    monkeypatch.setattr(netreg, 'IP_FORWARD', str(flag))
    flag.write_text('0\n')
    assert 'net.ipv4.ip_forward is 0' in netreg.ip_forward_warning(network_def())
    assert netreg.ip_forward_warning(network_def(internal=True)) is None
    flag.write_text('1\n')
    assert netreg.ip_forward_warning(network_def()) is None
    flag6 = tmp_path / 'forwarding6'
    monkeypatch.setattr(netreg, 'IP6_FORWARD', str(flag6))
    flag6.write_text('0\n')
    assert netreg.ip_forward_warning(network_def()) is None  # no IPv6 on it
    assert 'net.ipv6.conf.all.forwarding is 0' in netreg.ip_forward_warning(dict(network_def(), ipv6=True))
    flag.write_text('0\n')
    both = netreg.ip_forward_warning(dict(network_def(), ipv6=True))
    assert 'net.ipv4.ip_forward is 0' in both and 'net.ipv6.conf.all.forwarding is 0' in both


# -- the kernel side, through a recording netlink client ------------------------------------------------------

class RecordingNetlink(object):
    """rtnl.Rtnl's interface without a kernel: records every call as (namespace, method, args).

    ``links``: interface indexes by name; ``fail``: method name -> the OSError it raises.
    """

    calls = []
    links = {}
    fail = {}

    def __init__(self, sock=None, timeout=None):
        self.where = 'inside' if sock is not None else 'host'
        self.closed = False

    @classmethod
    def in_netns(cls, path, timeout=None):
        instance = cls()
        instance.where = 'inside:' + path
        return instance

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.closed = True
        return False

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self.calls.append((self.where, method, args, kwargs))
            if method in self.fail:
                raise self.fail[method]
            if method == 'link_index':
                return self.links.get(args[0])
            if method == 'add_bridge':
                self.links[args[0]] = max(self.links.values() or [1]) + 1
            return None
        return call


@pytest.fixture
def kernel(monkeypatch, tmp_path, aliases):
    """rtnl.Rtnl replaced by RecordingNetlink; namespace files under tmp_path; bridges ready."""
    monkeypatch.setattr(RecordingNetlink, 'calls', [])
    monkeypatch.setattr(RecordingNetlink, 'links', {'runcible0': 3, 'rcv' + CID[:12]: 8, 'eth0': 2})
    monkeypatch.setattr(RecordingNetlink, 'fail', {})
    monkeypatch.setattr(bridges, 'Rtnl', RecordingNetlink)
    monkeypatch.setattr(netns, 'NETNS_DIR', str(tmp_path))
    (tmp_path / netns.netns_name(CID)).write_text('')
    monkeypatch.setattr(bridges, 'bridge_ready', lambda network: True)
    return RecordingNetlink


def test_plumb_makes_the_veth_pair_and_configures_eth0_inside(kernel):
    network = dict(network_def('runcible', '10.89.0.0/24'), bridge='runcible0')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inside:  # stands for the netlink socket
        bridges.plumb(network, CID, '10.89.0.2', 'web', inside)
    host_end = 'rcv' + CID[:12]
    calls = [(where, method, args, kwargs) for where, method, args, kwargs in kernel.calls if method != 'link_index']
    assert calls[0][:2] == ('host', 'add_veth') and calls[0][2][:2] == (host_end, 'eth0')
    assert calls[1:] == [
        ('host', 'set_link', (8, host_end), {'up': True, 'master': 3, 'alias': 'runcible.oci container web'}),
        ('host', 'delete_neighbour', (3, '10.89.0.2', 'runcible0'), {}),
        ('inside', 'set_link', (1, 'lo'), {'up': True}),
        ('inside', 'add_address', (2, '10.89.0.2', 24, 'eth0'), {}),
        ('inside', 'set_link', (2, 'eth0'), {'up': True}),
        ('inside', 'add_default_route', ('10.89.0.1',), {})]


def test_plumb_of_an_internal_network_adds_no_route_and_opens_its_own_socket_inside(kernel):
    network = dict(network_def('runcible', '10.89.0.0/24', internal=True), bridge='runcible0')
    kernel.fail['delete_neighbour'] = OSError(errno.ENOENT, 'no such neighbour')  # suppressed
    bridges.plumb(network, CID, '10.89.0.2', 'web')
    methods = [(where, method) for where, method, _args, _kwargs in kernel.calls if method != 'link_index']
    inside = 'inside:' + netns.netns_path(CID)
    assert methods[-3:] == [(inside, 'set_link'), (inside, 'add_address'), (inside, 'set_link')]


def test_a_kernel_error_while_plumbing_is_a_clear_failure(kernel):
    kernel.fail['add_veth'] = OSError(errno.EEXIST, 'cannot add the veth pair rcvX (peer eth0 in another namespace): '
                                                    'File exists')
    with pytest.raises(RuncibleError, match=r'cannot attach container web to network runcible \(veth rcv%s, '
                                            r'namespace .*\): \[Errno 17\] cannot add the veth pair' % CID[:12]):
        bridges.plumb(dict(network_def('runcible', '10.89.0.0/24'), bridge='runcible0'), CID, '10.89.0.2', 'web')
    kernel.links.pop('eth0')
    kernel.fail.clear()
    with pytest.raises(RuncibleError, match='the interface eth0 in the namespace is missing'):
        bridges.plumb(dict(network_def('runcible', '10.89.0.0/24'), bridge='runcible0'), CID, '10.89.0.2', 'web')


def test_a_kernel_error_on_the_bridge_is_a_clear_failure(kernel, aliases):
    kernel.fail['link_index'] = OSError(errno.EPERM, 'cannot look up the interface rcb-web: Operation not permitted')
    with pytest.raises(RuncibleError, match=r'cannot set up the bridge rcb-web of network web: \[Errno 1\] cannot look'):
        bridges.ensure_bridge(network_def())
    aliases['rcb-web'] = 'runcible.oci network web'  # ours: netlink is asked
    with pytest.raises(RuncibleError, match=r'cannot delete the bridge rcb-web of network web: \[Errno 1\]'):
        bridges.delete_bridge(network_def())


# -- bridges the collection did not create -------------------------------------------------------------------

FOREIGN = 'bridge rcb-web already exists and was not created by runcible.oci for network web'


@pytest.mark.parametrize('alias, owner', [
    (None, 'missing'),
    ('runcible.oci network web', 'ours'),  # made by this version or an older one
    ('', 'foreign'),  # ip link add rcb-web type bridge
    ('runcible.oci network other', 'foreign'),
    ('runcible.oci network web ', 'foreign'),
    ('docker bridge', 'foreign'),
])
def test_bridge_owner_is_the_alias(aliases, alias, owner):
    if alias is not None:
        aliases['rcb-web'] = alias
    assert bridges.bridge_owner(network_def()) == owner


def test_link_alias_reads_sys():
    assert bridges.link_alias('lo') == ''
    assert bridges.link_alias('rcb-no-such-link') is None


def test_ensure_bridge_never_touches_a_foreign_interface(kernel, aliases):
    kernel.links['rcb-web'] = 5
    aliases['rcb-web'] = 'made by hand'
    message = (FOREIGN + r" \(its alias is 'made by hand'\); runcible.oci never changes or deletes .*"
               r'choose another bridge name .*remove the interface')
    with pytest.raises(ValidationError, match=message):
        bridges.ensure_bridge(network_def())
    assert [method for _where, method, _args, _kwargs in kernel.calls] == ['link_index'], 'nothing was changed'


def test_a_new_bridge_gets_our_alias_or_is_deleted_again(kernel):
    index = bridges._create_bridge(kernel(), network_def())
    assert [call[1:3] for call in kernel.calls if call[1] != 'link_index'] == [
        ('add_bridge', ('rcb-web',)), ('set_link', (index, 'rcb-web'))]
    assert kernel.calls[-1][3] == {'alias': 'runcible.oci network web'}
    del kernel.calls[:]
    kernel.links.pop('rcb-web')
    kernel.fail['set_link'] = OSError(errno.ENOMEM, 'no memory')
    with pytest.raises(OSError):
        bridges._create_bridge(kernel(), network_def())
    assert [call[1] for call in kernel.calls if call[1] != 'link_index'] == ['add_bridge', 'set_link', 'delete_link']


def test_delete_bridge_deletes_only_ours(kernel, aliases):
    assert bridges.delete_bridge(network_def()) is False, 'missing'
    aliases['rcb-web'] = ''
    assert bridges.delete_bridge(network_def()) is False, 'foreign'
    assert kernel.calls == [], 'netlink was not even asked'
    aliases['rcb-web'] = 'runcible.oci network web'
    kernel.links['rcb-web'] = 5
    assert bridges.delete_bridge(network_def()) is True
    assert [call[1:3] for call in kernel.calls if call[1] != 'link_index'] == [('delete_link', (5, 'rcb-web'))]


def test_bridge_ready_is_false_for_a_foreign_bridge(aliases, monkeypatch):
    monkeypatch.setattr(bridges.os.path, 'isdir', lambda path: True)
    aliases['rcb-web'] = 'someone else'
    assert bridges.bridge_ready(network_def()) is False


def test_define_refuses_a_foreign_bridge_name_and_takes_ours(registry, aliases):
    data = save(registry)
    aliases['rcb-web'] = ''
    with pytest.raises(ValidationError, match=FOREIGN + r' \(it has no alias\)'):
        netreg.define(data, 'web', subnet='10.89.5.0/24')
    aliases['somebr'] = 'x'
    with pytest.raises(ValidationError, match='bridge somebr already exists and was not created by runcible.oci'):
        netreg.define(data, 'other', subnet='10.89.6.0/24', bridge='somebr')
    aliases['rcb-web'] = 'runcible.oci network web'
    assert netreg.define(data, 'web', subnet='10.89.5.0/24')['bridge'] == 'rcb-web'


def test_attach_to_a_network_on_a_foreign_bridge_writes_nothing(registry, aliases, monkeypatch):
    monkeypatch.setattr(bridges, 'Rtnl', lambda *a, **k: pytest.fail('netlink used'))
    save(registry, [network_def()])
    aliases['rcb-web'] = ''
    before = open(registry.path).read()
    with pytest.raises(ValidationError, match=FOREIGN):
        net.attach({'id': CID, 'name': 'c', 'config': {'network': 'web'}}, '/r', '/r/bundle')
    assert open(registry.path).read() == before


def test_attach_never_defines_the_default_network_on_a_foreign_runcible0(registry, aliases, monkeypatch):
    monkeypatch.setattr(bridges, 'Rtnl', lambda *a, **k: pytest.fail('netlink used'))
    aliases['runcible0'] = ''
    with pytest.raises(ValidationError, match='bridge runcible0 already exists and was not created by runcible.oci'):
        net.attach({'id': CID, 'name': 'c', 'config': {'network': 'runcible'}}, '/r', '/r/bundle')
    assert 'runcible' not in registry.load()['networks']


@pytest.fixture
def kernel_side(monkeypatch):
    """The network task's kernel calls recorded: bridges made, bridges deleted (only ours), firewall writes."""
    done = []
    monkeypatch.setattr(bridges, 'ensure_bridge', lambda network, rtnl=None: done.append(('ensure', network['bridge'])))
    monkeypatch.setattr(net, 'apply_firewall', lambda data: done.append(('firewall', sorted(data['networks']))))
    original = bridges.delete_bridge

    def delete(network):
        deleted = original(network)
        done.append(('delete', network['bridge'], deleted))
        return deleted

    monkeypatch.setattr(bridges, 'delete_bridge', delete)
    monkeypatch.setattr(RecordingNetlink, 'calls', [])
    monkeypatch.setattr(RecordingNetlink, 'links', {})
    monkeypatch.setattr(RecordingNetlink, 'fail', {})
    monkeypatch.setattr(bridges, 'Rtnl', RecordingNetlink)
    return done


def test_network_task_refuses_a_foreign_bridge_and_writes_nothing(registry, aliases, kernel_side):
    aliases['somebr'] = ''
    for check_mode in (True, False):
        with pytest.raises(ValidationError, match='bridge somebr already exists and was not created by runcible.oci'):
            _network.run({'name': 'web', 'bridge': 'somebr', 'subnet': '10.89.5.0/24'}, check_mode=check_mode,
                         registry=registry)
    assert 'web' not in registry.load()['networks'] and kernel_side == [] and RecordingNetlink.calls == []
    assert _network.run({'name': 'web', 'state': 'absent'}, registry=registry)['changed'] is False
    assert kernel_side == [] and RecordingNetlink.calls == []


def test_network_task_releases_a_bridge_an_older_version_took_over(registry, aliases, kernel_side):
    save(registry, [dict(network_def(), bridge='somebr')])
    aliases['somebr'] = ''
    with pytest.raises(ValidationError, match='bridge somebr already exists'):
        _network.run({'name': 'web'}, registry=registry)
    assert kernel_side == []
    removed = _network.run({'name': 'web', 'state': 'absent'}, registry=registry)
    assert removed['actions'] == ['removed'] and 'web' not in registry.load()['networks']
    assert removed['warnings'] == ['bridge somebr of network web was not created by runcible.oci: it was left as it '
                                   'is. An older version may have set its address to 10.89.5.1 and route_localnet=1 '
                                   'on it; check its configuration'], 'no ip_forward warning either: it is gone'
    assert kernel_side == [('delete', 'somebr', False), ('firewall', [])] and RecordingNetlink.calls == []


def test_network_task_renaming_the_bridge_deletes_only_ours(registry, aliases, kernel_side):
    save(registry, [network_def()])
    aliases['rcb-web'] = 'runcible.oci network web'
    RecordingNetlink.links['rcb-web'] = 5
    result = _network.run({'name': 'web', 'bridge': 'rcb-web2'}, registry=registry)
    assert result['actions'] == ['updated']
    assert not [warning for warning in result.get('warnings', []) if 'not created by runcible.oci' in warning]
    assert kernel_side == [('delete', 'rcb-web', True), ('firewall', ['web']), ('ensure', 'rcb-web2')], \
        'the rules (with the new bridge\'s guard) before the bridge'
    assert [call[1:3] for call in RecordingNetlink.calls if call[1] != 'link_index'] == [('delete_link', (5, 'rcb-web'))]
    del kernel_side[:]
    del RecordingNetlink.calls[:]
    aliases['rcb-web2'] = 'hijacked'  # someone else's by now
    result = _network.run({'name': 'web', 'bridge': 'rcb-web3'}, registry=registry)
    assert kernel_side == [('delete', 'rcb-web2', False), ('firewall', ['web']), ('ensure', 'rcb-web3')]
    assert RecordingNetlink.calls == []
    assert [warning for warning in result['warnings'] if 'bridge rcb-web2 of network web was not created' in warning]


def test_firewall_has_every_rule_of_this_version(monkeypatch):
    network = network_def()
    script = ports.render([network], [])
    listed = [line.split(' ', 5)[5] for line in script.splitlines() if line.startswith('add rule ')]
    monkeypatch.setattr(ports, 'listed_rules', lambda comment_part=None: listed)
    assert net.firewall_has(network)
    # A table written by an older version (no loopback guard) or flushed in part: rewritten.
    monkeypatch.setattr(ports, 'listed_rules', lambda comment_part=None: [rule for rule in listed if 'guard' not in rule])
    assert not net.firewall_has(network)
    monkeypatch.setattr(ports, 'listed_rules', lambda comment_part=None: [])
    assert not net.firewall_has(network)


def test_attach_of_none_and_host_does_nothing(monkeypatch):
    monkeypatch.setattr(bridges, 'Rtnl', lambda *a, **k: pytest.fail('netlink used for none/host'))
    monkeypatch.setattr(net, 'NetworkRegistry', lambda *a: pytest.fail('registry touched for none/host'))
    for network in ('none', 'host'):
        record = {'id': CID, 'name': 'web', 'config': {'network': network}}
        attachment = net.attach(record, '/r', '/r/bundle')
        assert attachment.fds == []
        with attachment:
            pass
        net.detach(record)
        net.release(record)
        assert net.ip_address(record) is None


# -- the network task (check mode: no kernel, no write) -------------------------------------------------------

def test_network_task_check_mode_writes_nothing(registry):
    result = _network.run({'name': 'web', 'subnet': '10.89.7.0/24'}, check_mode=True, registry=registry)
    assert result['changed'] and result['actions'] == ['created']
    assert result['diff'] == {'before': {'state': 'absent'},
                              'after': {'name': 'web', 'bridge': 'rcb-web', 'subnet': '10.89.7.0/24',
                                        'gateway': '10.89.7.1', 'internal': False, 'dns': True,
                                        'state': 'present'}}
    assert result['network']['containers'] == []
    assert not os.path.exists(registry.dir)
    assert _network.run({'name': 'web', 'state': 'absent'}, check_mode=True, registry=registry)['changed'] is False


def test_network_task_refuses_changes_under_containers(registry, tmp_path):
    _record(tmp_path, 'db', 'a' * 64)
    save(registry, [network_def()], {'a' * 64: {'network': 'web', 'ip': '10.89.5.2', 'root': str(tmp_path / 'root'),
                                                'name': 'db'}})
    with pytest.raises(ValidationError, match=r'cannot change its subnet, gateway while containers .*db'):
        _network.run({'name': 'web', 'subnet': '10.89.8.0/24'}, check_mode=True, registry=registry)
    with pytest.raises(ValidationError, match='still has containers with addresses on it'):
        _network.run({'name': 'web', 'state': 'absent'}, check_mode=True, registry=registry)


@pytest.mark.parametrize('name', ['none', 'host', 'bridge', 'a/b'])
def test_network_task_rejects_names(registry, name):
    with pytest.raises(ValidationError):
        _network.run({'name': name}, check_mode=True, registry=registry)


def test_detach_waits_for_conmon_to_let_the_ports_go():
    import subprocess
    import time
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.host import read_proc_stat
    child = subprocess.Popen(['sleep', '0.3'])
    try:
        record = {'conmon_pid': child.pid, 'conmon_start': read_proc_stat(child.pid)[1]}
        started = time.monotonic()
        net._wait_conmon_gone(record, timeout=5)
        assert 0.2 < time.monotonic() - started < 3
        started = time.monotonic()
        net._wait_conmon_gone({'conmon_pid': child.pid, 'conmon_start': -1}, timeout=5)  # another process
        assert time.monotonic() - started < 0.1
    finally:
        child.wait()


# -- several networks, IPv6 -----------------------------------------------------------------------------------

def test_the_default_ipv6_subnet_is_a_ula_64_derived_from_the_name():
    first, again, other = netreg.ula_subnet('web'), netreg.ula_subnet('web'), netreg.ula_subnet('db')
    assert first == again != other
    assert first.prefixlen == 64 and str(first).startswith('fd') and first.is_private
    digest = hashlib.sha256(b'runcible.oci network web').digest()[:5]
    assert first.network_address.packed[:6] == b'\xfd' + digest and first.network_address.packed[6:] == bytes(10)


def test_define_an_ipv6_network_and_refuse_bad_or_clashing_ipv6_subnets(registry):
    data = save(registry, [network_def('a', '10.89.1.0/24')])
    created = netreg.define(data, 'b', subnet='10.89.2.0/24', ipv6=True)
    assert created['ipv6'] is True and created['ipv6_subnet'] == str(netreg.ula_subnet('b'))
    assert created['ipv6_gateway'] == str(netreg.ula_subnet('b').network_address + 1)
    assert 'ipv6' not in netreg.define(data, 'c', subnet='10.89.3.0/24')  # definitions without IPv6 stay as they were
    data['networks']['b'] = created
    for given, message in [('fd00::/8', 'prefix length from /48 to /120'), ('fd00::1/64', 'without host bits'),
                           ('10.0.0.0/24', 'not an IPv6 network'), ('::1/128', 'prefix length'),
                           (created['ipv6_subnet'], 'overlaps network b')]:
        with pytest.raises(ValidationError, match=message):
            netreg.define(data, 'd', subnet='10.89.4.0/24', ipv6=True, ipv6_subnet=given)
    with pytest.raises(ValidationError, match='ipv6_subnet needs ipv6: true'):
        netreg.define(data, 'd', subnet='10.89.4.0/24', ipv6_subnet='fd12::/64')


def test_attachments_of_a_config_and_allocation_keys():
    assert netreg.attachments_of({'network': 'none'}) == [] and netreg.attachments_of({'network': 'host'}) == []
    assert netreg.attachments_of({'network': 'bridge', 'ip_address': '10.89.0.5', 'aliases': ['x']}) == [
        {'name': netreg.DEFAULT_NETWORK, 'ip_address': '10.89.0.5', 'ipv6_address': None, 'aliases': ['x']}]
    config = {'network': 'a', 'networks': [{'name': 'a', 'ip_address': None, 'ipv6_address': 'fd00::5', 'aliases': []},
                                           {'name': 'b', 'ip_address': None, 'ipv6_address': None, 'aliases': ['y']}]}
    assert [item['name'] for item in netreg.attachments_of(config)] == ['a', 'b'] and netreg.network_of(config) == 'a'
    assert netreg.allocation_key(CID, 0) == CID and netreg.allocation_key(CID, 2) == CID + ':2'
    data = {'allocations': {CID + ':1': {}, CID: {}, 'f' * 64: {}, CID + ':2': {}}}
    assert netreg.keys_of(data, CID) == [CID, CID + ':1', CID + ':2']
    assert netreg.container_of_key(CID + ':1') == CID
    assert bridges.veth_name(CID, 0) == 'rcv' + CID[:12] and bridges.veth_name(CID, 3) == 'rc3' + CID[:12]
    assert len(bridges.veth_name(CID, 7)) == 15


def test_collect_garbage_keeps_every_network_of_a_live_container(registry, tmp_path):
    _record(tmp_path, 'db', CID)
    root = str(tmp_path / 'root')
    data = save(registry, [network_def('a', '10.89.1.0/24'), network_def('b', '10.89.2.0/24')],
                {CID: {'network': 'a', 'ip': '10.89.1.2', 'root': root, 'name': 'db'},
                 CID + ':1': {'network': 'b', 'ip': '10.89.2.2', 'root': root, 'name': 'db'},
                 'e' * 64 + ':1': {'network': 'b', 'ip': '10.89.2.3', 'root': root, 'name': 'gone'}})
    assert netreg.collect_garbage(data) is True
    assert sorted(data['allocations']) == [CID, CID + ':1']
    assert [item['name'] for item in netreg.containers_on(data, 'b')] == ['db']


def test_etc_files_of_a_container_on_several_networks(tmp_path):
    config = {'dns': ['192.0.2.53']}
    etc_files.write_etc_files(str(tmp_path), config, 'web', [('10.89.1.2', 'fd00::2'), ('10.89.2.2', None)],
                              dns_servers=['10.89.1.1', '10.89.2.1'])
    hosts = (tmp_path / 'hosts').read_text()
    assert '10.89.1.2\tweb\nfd00::2\tweb\n10.89.2.2\tweb\n' in hosts
    resolv = (tmp_path / 'resolv.conf').read_text()
    assert resolv.startswith('nameserver 10.89.1.1\nnameserver 10.89.2.1\n') and '192.0.2.53' not in resolv
    etc_files.write_etc_files(str(tmp_path), config, 'web', [('10.89.1.2', None)], dns_servers=[])
    assert (tmp_path / 'resolv.conf').read_text().startswith('nameserver 192.0.2.53\n')


def test_network_info_lists_networks_with_their_containers(registry, tmp_path):
    _record(tmp_path, 'db', CID)
    root = str(tmp_path / 'root')
    save(registry, [network_def('a', '10.89.1.0/24'), network_def('b', '10.89.2.0/24')],
         {CID: {'network': 'a', 'ip': '10.89.1.2', 'root': root, 'name': 'db'},
          CID + ':1': {'network': 'b', 'ip': '10.89.2.2', 'ip6': 'fd00::2', 'root': root, 'name': 'db'}})
    listed = _network.info({}, registry=registry)
    assert [item['name'] for item in listed['networks']] == ['a', 'b'] and 'exists' not in listed
    assert listed['networks'][1]['containers'] == [{'name': 'db', 'root': root, 'ip_address': '10.89.2.2',
                                                    'ipv6_address': 'fd00::2'}]
    assert _network.info({'name': 'b'}, registry=registry)['exists'] is True
    assert _network.info({'name': 'zz'}, registry=registry) == {'changed': False, 'networks': [], 'exists': False}


def test_a_bridge_has_a_stable_locally_administered_mac_of_its_own():
    mac = bridges.bridge_mac({'name': 'web'})
    assert mac == bridges.bridge_mac({'name': 'web'}) != bridges.bridge_mac({'name': 'db'})
    octets = [int(octet, 16) for octet in mac.split(':')]
    assert octets[0] == 0x02 and len(octets) == 6  # locally administered (bit 1), unicast (bit 0 clear)
