# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names: aardvark-dns's files from the registry (dns.py), resolv.conf and hosts (etc_files.py), and the
normalisers of dns, dns_search, dns_options, etc_hosts, aliases. The process itself: tests/integration."""

from __future__ import annotations

import os

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._container_options import network as network_options
from ansible_collections.runcible.oci.plugins.module_utils._container_options.base import Context
from ansible_collections.runcible.oci.plugins.module_utils._runtime import dns
from ansible_collections.runcible.oci.plugins.module_utils._runtime import etc_files
from ansible_collections.runcible.oci.plugins.module_utils._runtime import network_registry as netreg
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError

A, B, C = 'a' * 64, 'b' * 64, 'c' * 64


def registry_data():
    return {'networks': {
        'web': {'name': 'web', 'gateway': '10.89.5.1', 'subnet': '10.89.5.0/24', 'dns': True},
        'plain': {'name': 'plain', 'gateway': '10.89.6.1', 'subnet': '10.89.6.0/24', 'dns': False},
        'old': {'name': 'old', 'gateway': '10.89.7.1', 'subnet': '10.89.7.0/24'}},  # before the option: no DNS
        'allocations': {
            A: {'network': 'web', 'ip': '10.89.5.2', 'name': 'db', 'attached': True, 'aliases': ['database', 'db'],
                'dns_servers': []},
            B: {'network': 'web', 'ip': '10.89.5.3', 'name': 'app', 'attached': True, 'aliases': [],
                'dns_servers': ['192.0.2.53', '2001:db8::53']},
            C: {'network': 'web', 'ip': '10.89.5.4', 'name': 'gone', 'attached': False},
            'd' * 64: {'network': 'plain', 'ip': '10.89.6.2', 'name': 'x', 'attached': True},
            'e' * 64: {'network': 'old', 'ip': '10.89.7.2', 'name': 'y', 'attached': True}}}


def test_one_file_per_dns_network_with_attached_containers():
    files = dns.wanted_files(registry_data())
    assert list(files) == ['web']
    assert files['web'] == ('10.89.5.1\n'
                            '%s 10.89.5.3  app 192.0.2.53,2001:db8::53\n'
                            '%s 10.89.5.2  db,database\n' % (B, A))
    assert dns.gateways(files) == ['10.89.5.1']


def test_sync_writes_removes_and_leaves_no_process_when_nothing_is_served(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(dns, 'start', lambda directory, files: started.append(sorted(files)) or 4242)
    monkeypatch.setattr(dns, 'running_pid', lambda directory=None: None)
    data = registry_data()
    (tmp_path / 'stale-net').write_text('10.1.1.1\n')
    (tmp_path / '.tmp-x').write_text('half written')
    assert dns.sync(data, str(tmp_path)) is True
    assert sorted(os.listdir(tmp_path)) == ['web'] and started == [['web']]
    assert os.stat(tmp_path / 'web').st_mode & 0o777 == 0o600
    for allocation in data['allocations'].values():
        allocation['attached'] = False
    assert dns.sync(data, str(tmp_path)) is True
    assert os.listdir(tmp_path) == [] and started == [['web']], 'no file, no start'
    assert dns.problems(data, str(tmp_path)) == []


def test_sync_signals_a_running_server_only_on_a_change(tmp_path, monkeypatch):
    signals = []
    monkeypatch.setattr(dns, 'running_pid', lambda directory=None: 4242)
    monkeypatch.setattr(dns.os, 'kill', lambda pid, sig: signals.append((pid, sig)))
    data = registry_data()
    assert dns.sync(data, str(tmp_path)) is True and signals == [(4242, dns.signal.SIGHUP)]
    assert dns.sync(data, str(tmp_path)) is False and len(signals) == 1
    data['allocations'][A]['aliases'] = ['other']
    assert dns.problems(data, str(tmp_path)) == ['aardvark-dns files out of date']
    assert dns.sync(data, str(tmp_path)) is True and len(signals) == 2


def test_running_pid_is_ours_only(tmp_path):
    assert dns.running_pid(str(tmp_path)) is None
    (tmp_path / dns.PID_FILE).write_text(str(os.getpid()))  # this process is no aardvark-dns
    assert dns.running_pid(str(tmp_path)) is None


def test_the_pid_file_is_no_network_name():
    with pytest.raises(ValidationError, match='reserved'):
        netreg.validate_network_name('aardvark.pid')


def test_resolv_conf_servers_search_options(tmp_path, monkeypatch):
    host = tmp_path / 'resolv.conf'
    host.write_text('nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch host.test\noptions edns0\nsortlist 10.0.0.0\n')
    monkeypatch.setattr(etc_files, 'RESOLV_PATHS', (str(host),))
    assert etc_files.resolv_conf() == 'nameserver 192.0.2.1\nsearch host.test\noptions edns0\nsortlist 10.0.0.0\n'
    assert etc_files.resolv_conf(['10.89.5.1'], ['a.test', 'b.test'], ['ndots:2']) == (
        'nameserver 10.89.5.1\nsearch a.test b.test\noptions ndots:2\nsortlist 10.0.0.0\n')
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    config = {'dns': ['192.0.2.9'], 'etc_hosts': {'b.test': '192.0.2.2', 'a.test': '2001:db8::1'}}
    etc_files.write_etc_files(str(bundle), config, 'web', '10.89.5.2')
    assert (bundle / 'resolv.conf').read_text().startswith('nameserver 192.0.2.9\nsearch host.test\n')
    assert (bundle / 'hosts').read_text().endswith('10.89.5.2\tweb\n2001:db8::1\ta.test\n192.0.2.2\tb.test\n')
    etc_files.write_etc_files(str(bundle), config, 'web', '10.89.5.2', dns_server='10.89.5.1')
    assert (bundle / 'resolv.conf').read_text().startswith('nameserver 10.89.5.1\n'), 'the network DNS wins'


CONTEXT = Context('web', '/var/lib/runcible')


@pytest.mark.parametrize('option, value, expected', [
    ('dns', ['192.0.2.1', ' 2001:DB8::1 ', '192.0.2.1'], ['192.0.2.1', '2001:db8::1']),
    ('dns_search', ['example.test', 'a-b.example.', 'example.test'], ['example.test', 'a-b.example.']),
    ('dns_options', ['ndots:2', 'edns0'], ['ndots:2', 'edns0']),
    ('etc_hosts', {'db.test': '192.0.2.5'}, {'db.test': '192.0.2.5'}),
    ('aliases', ['www', 'web', 'api.internal', 'www'], ['www', 'api.internal']),  # its own name is no alias
])
def test_name_options_normalise(option, value, expected):
    assert getattr(network_options, option)(value, CONTEXT) == expected


@pytest.mark.parametrize('option, value, message', [
    ('dns', ['not-an-ip'], 'not an IP address'),
    ('dns', ['192.0.2.%d' % i for i in range(4)], 'only the first 3'),
    ('dns_search', ['bad domain'], 'not a valid domain'),
    ('dns_options', ['ndots 2'], 'not a resolver option'),
    ('etc_hosts', {'ok.test': 'nope'}, 'not an IP address'),
    ('etc_hosts', {'bad name': '192.0.2.1'}, 'not a valid host name'),
    ('aliases', ['-x'], 'not a valid name'),
    ('aliases', ['a,b'], 'not a valid name'),
])
def test_name_options_refuse(option, value, message):
    with pytest.raises(ValidationError, match=message):
        getattr(network_options, option)(value, CONTEXT)


def test_etc_files_are_replaced_at_a_launch_and_rewritten_in_place_for_a_running_container(tmp_path):
    """A launch writes new files (by rename, created exclusively: a link planted at the temporary name is not
    followed); a live attachment rewrites the same inodes, which the container's bind mounts hold."""
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    victim = tmp_path / 'victim'
    victim.write_text('untouched')
    os.symlink(str(victim), str(bundle / ('hosts.tmp-%d' % os.getpid())))
    etc_files.write_etc_files(str(bundle), {}, 'web', '10.89.5.2')
    assert victim.read_text() == 'untouched' and not (bundle / 'hosts').is_symlink()
    assert oct((bundle / 'hosts').stat().st_mode & 0o777) == '0o644'
    inodes = [(bundle / name).stat().st_ino for name in ('hosts', 'resolv.conf')]
    etc_files.write_etc_files(str(bundle), {}, 'web', [('10.89.5.2', None), ('10.89.6.3', 'fd00::3')],
                              dns_servers=['10.89.6.1'], in_place=True)
    assert [(bundle / name).stat().st_ino for name in ('hosts', 'resolv.conf')] == inodes
    hosts = (bundle / 'hosts').read_text()
    assert '10.89.6.3' in hosts and 'fd00::3' in hosts and (bundle / 'resolv.conf').read_text().startswith(
        'nameserver 10.89.6.1\n')
    # In place never follows a link either.
    os.unlink(str(bundle / 'hosts'))
    os.symlink(str(victim), str(bundle / 'hosts'))
    with pytest.raises(OSError):
        etc_files.write_etc_files(str(bundle), {}, 'web', '10.89.5.2', in_place=True)
    assert victim.read_text() == 'untouched'


@pytest.mark.parametrize('before, after, live', [
    ({'networks': [{'name': 'a'}]}, {'networks': [{'name': 'a'}, {'name': 'b'}]}, True),
    ({'networks': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}]}, {'networks': [{'name': 'a'}]}, True),
    ({'network': 'a', 'aliases': ['x']}, {'network': 'a', 'aliases': ['y']}, True),
    ({'network': 'a'}, {'network': 'a', 'networks': [{'name': 'a'}, {'name': 'b', 'aliases': ['z']}]}, True),
    ({'networks': [{'name': 'a'}, {'name': 'b', 'aliases': ['x']}]},
     {'networks': [{'name': 'a'}, {'name': 'b', 'aliases': ['y']}]}, True),
    ({'networks': [{'name': 'a'}, {'name': 'b'}]}, {'networks': [{'name': 'b'}, {'name': 'a'}]}, False),
    ({'networks': [{'name': 'a'}, {'name': 'b'}, {'name': 'c'}]}, {'networks': [{'name': 'a'}, {'name': 'c'}]}, False),
    ({'networks': [{'name': 'a'}, {'name': 'b'}]}, {'networks': [{'name': 'a'}, {'name': 'b', 'ip_address': '10.1.0.5'}]},
     False),
    ({'networks': [{'name': 'a'}]}, {'networks': [{'name': 'a', 'ipv6_address': 'fd00::5'}]}, False),
    ({'network': 'a'}, {'network': 'none'}, False),
])
def test_which_network_changes_a_running_container_takes_live(before, after, live):
    reason = netreg.live_change(before, after)
    assert (reason is None) is live, reason
