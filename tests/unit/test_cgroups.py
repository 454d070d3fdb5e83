# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup placement rules, the D-Bus call for conmon's scope, live values read back (fake trees)."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options
from ansible_collections.runcible.oci.plugins.module_utils._runtime import cgroups, host
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError


def test_transient_scope_message():
    argv = cgroups.transient_scope_call('runcible-conmon-abc.scope', 'machine.slice', 4242)
    assert argv[:8] == ['busctl', 'call', '--system', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1',
                        'org.freedesktop.systemd1.Manager', 'StartTransientUnit', 'ssa(sv)a(sa(sv))']
    assert argv[8:11] == ['runcible-conmon-abc.scope', 'fail', '4']
    properties = argv[11:-1]
    assert properties[:4] == ['PIDs', 'au', '1', '4242']
    assert properties[4:7] == ['Delegate', 'b', 'true']
    assert properties[7:10] == ['Slice', 's', 'machine.slice']
    assert properties[10:12] == ['Description', 's']
    assert argv[-1] == '0', 'no auxiliary units'
    # the declared count (4) matches the properties given: PIDs has 4 words (name, type, length, pid), the others 3
    assert len(properties) == 4 + 3 * 3 and argv[10] == '4'


@pytest.mark.parametrize('slice_name, path', [
    ('machine.slice', '/machine.slice'),
    ('runcible-web.slice', '/runcible.slice/runcible-web.slice'),
    ('a-b-c.slice', '/a.slice/a-b.slice/a-b-c.slice'),
    ('-.slice', ''),
])
def test_slice_path(slice_name, path):
    assert cgroups.slice_path(slice_name) == path


def test_container_cgroup_path_as_runc_makes_it():
    assert cgroups.Placement('systemd', 'a-b.slice', 'id1').cgroup_path == '/a.slice/a-b.slice/runcible-id1.scope'
    assert cgroups.Placement('cgroupfs', '/runcible/', 'id1').cgroup_path == '/runcible/runcible-id1'


def test_unit_object_path_escapes_like_sd_bus():
    assert cgroups.unit_object_path('runcible-conmon-0ab.scope') == \
        '/org/freedesktop/systemd1/unit/runcible_2dconmon_2d0ab_2escope'
    assert cgroups.unit_object_path('1x.slice') == '/org/freedesktop/systemd1/unit/_31x_2eslice'


class FakeBus(object):
    """busctl for place_in_scope(): the job runs (the pid moves) only after ``moves_after`` polls."""

    def __init__(self, monkeypatch, moves_after=3, start_rc=0, start_error=b'', state='inactive'):
        self.calls = []
        self.polls = 0
        self.moves_after = moves_after
        self.start_rc, self.start_error, self.state = start_rc, start_error, state
        monkeypatch.setattr(cgroups, '_busctl', self.busctl)
        monkeypatch.setattr(cgroups, 'process_cgroups', self.process_cgroups)
        monkeypatch.setattr(cgroups.time, 'sleep', lambda seconds: None)

    def busctl(self, argv):
        self.calls.append(argv[3] if argv[1] == 'get-property' else argv[6])
        if argv[1] == 'get-property':
            return subprocess.CompletedProcess(argv, 0, ('s "%s"\n' % self.state).encode(), b'')
        if argv[6] == 'StartTransientUnit':
            rc, error = self.start_rc, self.start_error
            self.start_rc, self.start_error = 0, b''
            return subprocess.CompletedProcess(argv, rc, b'o "/org/freedesktop/systemd1/job/7"\n', error)
        return subprocess.CompletedProcess(argv, 0, b'', b'')

    def process_cgroups(self, pid):
        self.polls += 1
        if self.polls > self.moves_after:
            return {'': '/machine.slice/runcible-conmon-x.scope'}
        return {'': '/user.slice/user-0.slice/session-3.scope'}


def test_place_in_scope_waits_until_systemd_moved_the_pid(monkeypatch):
    """StartTransientUnit returns before the job runs: conmon must not be released before it is moved."""
    bus = FakeBus(monkeypatch, moves_after=3)
    cgroups.place_in_scope(4242, 'runcible-conmon-x.scope', 'machine.slice')
    assert bus.polls == 4 and bus.calls[0] == 'StartTransientUnit'


def test_place_in_scope_resets_a_failed_scope_of_the_same_name(monkeypatch):
    bus = FakeBus(monkeypatch, moves_after=0, start_rc=1, start_error=b'Unit runcible-conmon-x.scope already exists.')
    cgroups.place_in_scope(4242, 'runcible-conmon-x.scope', 'machine.slice')
    assert bus.calls == ['StartTransientUnit', 'ResetFailedUnit', 'StartTransientUnit']


def test_place_in_scope_joins_an_active_scope_left_by_the_previous_conmon(monkeypatch):
    """A restart while the old conmon's exit command is still in runcible-conmon-ID.scope (waiting for the lock a
    task holds, or itself launching this conmon): the new conmon joins that scope instead of failing."""
    bus = FakeBus(monkeypatch, moves_after=0, start_rc=1, start_error=b'Unit runcible-conmon-x.scope already exists.')
    real = bus.busctl

    def busctl(argv):
        result = real(argv)
        if argv[6] == 'StartTransientUnit':
            return subprocess.CompletedProcess(argv, 1, b'', b'Call failed: Unit runcible-conmon-x.scope was already '
                                                             b'loaded or has a fragment file.')
        if argv[6] == 'AttachProcessesToUnit':
            assert argv[7:] == ['ssau', 'runcible-conmon-x.scope', '', '1', '4242']
        return result
    monkeypatch.setattr(cgroups, '_busctl', busctl)
    cgroups.place_in_scope(4242, 'runcible-conmon-x.scope', 'machine.slice')
    assert bus.calls == ['StartTransientUnit', 'ResetFailedUnit', 'StartTransientUnit', 'AttachProcessesToUnit']


def test_place_in_scope_fails_at_once_when_the_scope_failed(monkeypatch):
    FakeBus(monkeypatch, moves_after=10 ** 9, state='failed')
    clock = iter(range(10 ** 6))
    monkeypatch.setattr(cgroups.time, 'monotonic', lambda: next(clock) * 0.1)
    with pytest.raises(RuncibleError, match=r'did not move conmon .*\(the scope is failed; conmon is in /user'):
        cgroups.place_in_scope(4242, 'runcible-conmon-x.scope', 'machine.slice', timeout=3600)
    assert next(clock) < 20, 'failed is final: no waiting for the timeout'


def test_place_in_scope_fails_when_conmon_is_gone(monkeypatch):
    bus = FakeBus(monkeypatch)
    monkeypatch.setattr(cgroups, 'process_cgroups', lambda pid: {})
    with pytest.raises(RuncibleError, match='exited before systemd moved it'):
        cgroups.place_in_scope(4242, 'runcible-conmon-x.scope', 'machine.slice')
    assert bus.calls == ['StartTransientUnit']


@pytest.mark.parametrize('manager, parent, expected', [
    ('cgroupfs', None, '/runcible'),
    ('cgroupfs', '/a/b/', '/a/b'),
    ('systemd', None, 'machine.slice'),
    ('systemd', 'runcible.slice', 'runcible.slice'),
])
def test_validate_parent(manager, parent, expected):
    assert cgroups.validate_parent(manager, parent) == expected


@pytest.mark.parametrize('manager, parent, message', [
    ('cgroupfs', 'machine.slice', 'is a systemd slice'),
    ('cgroupfs', 'relative', 'absolute cgroup path'),
    ('cgroupfs', '/a/../b', 'absolute cgroup path'),
    ('systemd', '/runcible', 'not a systemd slice'),
    ('systemd', 'machine', 'not a systemd slice'),
])
def test_validate_parent_refuses(manager, parent, message):
    with pytest.raises(ValidationError, match=message):
        cgroups.validate_parent(manager, parent)


def test_container_cgroups_path():
    assert cgroups.container_cgroups_path('cgroupfs', '/runcible', 'abc') == '/runcible/runcible-abc'
    assert cgroups.container_cgroups_path('systemd', 'machine.slice', 'abc') == 'machine.slice:runcible:abc'


@pytest.mark.parametrize('value, expected', [
    ('0-2', '0-2'), ('2,0,1', '0-2'), ('0,2-3,5', '0,2-3,5'), ('', ''), ('3', '3'), (' 1 , 0 ', '0-1'),
])
def test_normalise_cpuset(value, expected):
    assert cgroups.normalise_cpuset(value) == expected


@pytest.mark.parametrize('value', ['a', '1-', '3-1', '1,,2'])
def test_normalise_cpuset_refuses(value):
    with pytest.raises(ValidationError):
        cgroups.normalise_cpuset(value)


def test_resolve_manager_without_systemd(monkeypatch):
    monkeypatch.setattr(cgroups, 'systemd_available', lambda: False)
    assert cgroups.resolve_manager('auto') == 'cgroupfs'
    assert cgroups.resolve_manager(None) == 'cgroupfs'
    with pytest.raises(ValidationError, match='PID 1'):
        cgroups.resolve_manager('systemd')
    monkeypatch.setattr(cgroups, 'systemd_available', lambda: True)
    assert cgroups.resolve_manager('auto') == 'systemd'


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(text)


def test_read_live_v1(tmp_path, monkeypatch):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'unified'))
    _write(os.path.join(root, 'unified', 'cgroup.controllers'), '')
    group = '/runcible/runcible-x'
    files = {
        'memory/memory.limit_in_bytes': str(64 << 20), 'memory/memory.soft_limit_in_bytes': str(0x7FFFFFFFFFFFF000),
        'memory/memory.memsw.limit_in_bytes': str(0x7FFFFFFFFFFFF000), 'cpu/cpu.cfs_quota_us': '50000',
        'cpu/cpu.cfs_period_us': '100000', 'cpu/cpu.shares': '1024', 'cpuset/cpuset.cpus': '0,1',
        'cpuset/cpuset.mems': '0', 'pids/pids.max': 'max',
    }
    for name, text in files.items():
        controller, filename = name.split('/')
        _write(os.path.join(root, controller, group.lstrip('/'), filename), text)
    monkeypatch.setattr(cgroups, 'process_cgroups', lambda pid: dict(
        (c, group) for c in ('memory', 'cpu', 'cpuset', 'pids', 'blkio')))
    live = cgroups.read_live(1, root=root)
    assert live == {'memory': 64 << 20, 'memory_reservation': 0, 'memory_swap': -1, 'cpus': 0.5, 'cpu_shares': 1024,
                    'cpu_quota': 50000, 'cpu_period': 100000, 'cpuset_cpus': '0-1', 'cpuset_mems': '0', 'pids_limit': 0}


def test_read_live_v2(tmp_path, monkeypatch):
    root = str(tmp_path)
    _write(os.path.join(root, 'cgroup.controllers'), 'cpu memory pids io')
    group = 'machine.slice/runcible-x.scope'
    for filename, text in {'memory.max': 'max', 'memory.low': str(1 << 20), 'cpu.max': '25000 100000',
                           'cpu.weight': '39', 'cpuset.cpus': '', 'pids.max': '12', 'io.weight': 'default 300'}.items():
        _write(os.path.join(root, group, filename), text)
    monkeypatch.setattr(cgroups, 'process_cgroups', lambda pid: {'': '/' + group})
    live = cgroups.read_live(1, root=root)
    assert live == {'memory': 0, 'memory_reservation': 1 << 20, 'cpus': 0.25, 'cpu_weight': 39, 'cpuset_cpus': '',
                    'pids_limit': 12, 'blkio_weight': 300, 'cpu_quota': 25000, 'cpu_period': 100000}
    assert live_match('cpu_shares', 512, live) is (cgroups.shares_to_weight(512) == 39)


def test_read_live_reads_the_containers_cgroup_when_its_init_moved_below_it(tmp_path, monkeypatch):
    """systemd as PID 1 moves itself into init.scope: the limits are the container's cgroup's, not that one's."""
    root = str(tmp_path)
    _write(os.path.join(root, 'cgroup.controllers'), 'cpu memory pids')
    group = 'machine.slice/runcible-%s.scope' % ('ab' * 32)
    _write(os.path.join(root, group, 'memory.max'), str(256 << 20))
    _write(os.path.join(root, group, 'pids.max'), '99')
    _write(os.path.join(root, group, 'init.scope', 'memory.max'), 'max')
    _write(os.path.join(root, group, 'init.scope', 'pids.max'), 'max')
    monkeypatch.setattr(cgroups, 'process_cgroups', lambda pid: {'': '/' + group + '/init.scope'})
    live = cgroups.read_live(1, root=root)
    assert live['memory'] == 256 << 20 and live['pids_limit'] == 99
    # Not a container's cgroup (no runcible-ID leaf): the path as it is.
    assert host.container_cgroup('/user.slice/session-1.scope') == '/user.slice/session-1.scope'
    assert host.container_cgroup('/runcible/runcible-%s/x' % ('0' * 64)) == '/runcible/runcible-%s' % ('0' * 64)


def live_match(name, wanted, live):
    """The option table's rule: does the live cgroup value say ``wanted``?"""
    return options.OPTIONS_BY_NAME[name].live.matches(name, wanted, live)


@pytest.mark.parametrize('name, wanted, live, expected', [
    ('memory', 64 << 20, {'memory': 64 << 20}, True),
    ('memory', (64 << 20) + 100, {'memory': 64 << 20}, True),  # page rounding
    ('memory', 64 << 20, {'memory': 65 << 20}, False),
    ('memory', 0, {'memory': 0}, True),
    ('cpus', 0.5, {'cpus': 0.5}, True),
    ('cpus', 1.0 / 3, {'cpus': 0.33333}, True),
    ('cpus', 0.5, {'cpus': 0.25}, False),
    ('pids_limit', 10, {}, None),
    ('cpuset_cpus', '', {'cpuset_cpus': '0-1'}, True),
    ('cpuset_cpus', '0', {'cpuset_cpus': '0-1'}, False),
])
def test_live_value_matches(name, wanted, live, expected):
    assert live_match(name, wanted, live) is expected


def test_shares_to_weight():
    assert cgroups.shares_to_weight(2) == 1
    assert cgroups.shares_to_weight(262144) == 10000
    assert cgroups.shares_to_weight(1024) == 39


def test_place_in_cgroupfs_copies_cpuset(tmp_path):
    root = str(tmp_path)
    for controller in ('cpuset', 'memory'):
        _write(os.path.join(root, controller, 'cgroup.procs'), '')
    _write(os.path.join(root, 'cpuset', 'cpuset.cpus'), '0-1')
    _write(os.path.join(root, 'cpuset', 'cpuset.mems'), '0')
    for parent in ('cpuset/runcible', 'cpuset/runcible/conmon'):
        _write(os.path.join(root, parent, 'cpuset.cpus'), '')
        _write(os.path.join(root, parent, 'cpuset.mems'), '')
    placed = cgroups.place_in_cgroupfs(4242, '/runcible/conmon', root=root)
    assert sorted(placed) == [os.path.join(root, 'cpuset/runcible/conmon'), os.path.join(root, 'memory/runcible/conmon')]
    for directory in placed:
        assert open(os.path.join(directory, 'cgroup.procs')).read() == '4242'
    assert open(os.path.join(root, 'cpuset/runcible/conmon/cpuset.cpus')).read() == '0-1'
    assert open(os.path.join(root, 'cpuset/runcible/cpuset.mems')).read() == '0'


def test_conmon_stays_in_a_systemd_unit(monkeypatch):
    monkeypatch.setenv('INVOCATION_ID', 'abc')
    placement = cgroups.Placement('cgroupfs', '/runcible', 'x')
    assert 'INVOCATION_ID' in placement.place_conmon(1)


def test_place_in_cgroupfs_retries_a_cgroup_removed_as_it_writes(tmp_path, monkeypatch):
    """Another task's cleanup rmdirs an empty /runcible/conmon between our mkdir and our write: the kernel says ENODEV
    (the directory was open, its cgroup dying); the placement makes it again and writes there."""
    import builtins  # pylint: disable=import-outside-toplevel
    root = str(tmp_path)
    _write(os.path.join(root, 'devices', 'cgroup.procs'), '')
    real_open, failures = builtins.open, []

    def dying_once(path, *args, **kwargs):
        if str(path).endswith('runcible/conmon/cgroup.procs') and not failures:
            failures.append(path)
            raise OSError(errno.ENODEV, 'No such device')
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, 'open', dying_once)
    placed = cgroups.place_in_cgroupfs(4242, '/runcible/conmon', root=root)
    monkeypatch.undo()
    assert failures and placed == [os.path.join(root, 'devices/runcible/conmon')]
    assert open(os.path.join(placed[0], 'cgroup.procs')).read() == '4242'
