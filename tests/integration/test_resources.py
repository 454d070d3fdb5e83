# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup placement, live resource updates and drift, on this host's real cgroups."""

from __future__ import annotations

import os
import secrets

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import cgroups
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
MODE = cgroups.cgroup_mode()
V1 = MODE != 'unified'


def cgroup_file(pid, controller, name):
    groups = cgroups.process_cgroups(pid)
    if V1:
        return os.path.join('/sys/fs/cgroup', controller, groups[controller].lstrip('/'), name)
    return os.path.join('/sys/fs/cgroup', groups[''].lstrip('/'), name)


def read(path):
    with open(path) as handle:
        return handle.read().strip()


MEMORY = ('memory', 'memory.limit_in_bytes' if V1 else 'memory.max')
PIDS = ('pids', 'pids.max')


@pytest.fixture
def parent():
    """A cgroup parent of this test's own, so that its removal can be checked."""
    path = '/runcible-test-%s' % secrets.token_hex(4)
    yield path
    for hierarchy in cgroups.hierarchies():
        assert not os.path.exists(os.path.join(hierarchy, path.lstrip('/'))), 'cgroups left behind in ' + hierarchy


def test_container_and_conmon_cgroups_and_limits(env, parent):
    result = env.run(name='test-cg1', rootfs=env.rootfs, command=['sh', '-c', LOOP], memory='96m', pids_limit=50,
                     cpus=0.5, cgroup_manager='cgroupfs', cgroup_parent=parent)
    container = result['container']
    groups = cgroups.process_cgroups(container['pid'])
    conmon_groups = cgroups.process_cgroups(container['conmon_pid'])
    key = 'memory' if V1 else ''
    assert groups[key] == '%s/runcible-%s' % (parent, container['id'])
    assert conmon_groups[key] == parent + '/conmon'
    if V1:
        assert conmon_groups['pids'] == parent + '/conmon' and conmon_groups['cpu'] == parent + '/conmon'
    assert int(read(cgroup_file(container['pid'], *MEMORY))) == 96 << 20
    assert read(cgroup_file(container['pid'], *PIDS)) == '50'
    assert container['config']['cgroup_manager'] == 'cgroupfs' and container['config']['cgroup_parent'] == parent
    env.run(name='test-cg1', state='absent')


def test_live_update_four_ways_keeps_the_pid(env, parent):
    base = {'name': 'test-live', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'memory': '64m',
            'pids_limit': 40, 'cgroup_parent': parent, 'cgroup_manager': 'cgroupfs'}
    first = env.playbook([{'runcible.oci.container': base}])[0]['container']
    changed = dict(base, memory='128m', pids_limit=80, cpus=0.25, cpu_shares=512, memory_reservation='32m')
    if V1:
        changed['memory_swap'] = '256m'
    results = env.four_ways(changed)
    check, apply = results[0], results[1]
    assert check['actions'] == ['updated'] and apply['actions'] == ['updated']
    assert apply['diff']['before']['memory'] == 64 << 20 and apply['diff']['after']['memory'] == 128 << 20
    assert apply['diff']['before']['pids_limit'] == 40 and apply['diff']['after']['pids_limit'] == 80
    assert apply['container']['pid'] == first['pid'], 'a live update keeps the process'
    assert apply['container']['id'] == first['id']
    pid = first['pid']
    assert int(read(cgroup_file(pid, *MEMORY))) == 128 << 20
    assert read(cgroup_file(pid, *PIDS)) == '80'
    if V1:
        assert read(cgroup_file(pid, 'cpu', 'cpu.cfs_quota_us')) == '25000'
        assert read(cgroup_file(pid, 'cpu', 'cpu.shares')) == '512'
        assert int(read(cgroup_file(pid, 'memory', 'memory.soft_limit_in_bytes'))) == 32 << 20
        assert int(read(cgroup_file(pid, 'memory', 'memory.memsw.limit_in_bytes'))) == 256 << 20
    # The bundle has the new limits too: a restart keeps them.
    env.run(name='test-live', state='stopped')
    restarted = env.run(name='test-live')['container']
    assert int(read(cgroup_file(restarted['pid'], *MEMORY))) == 128 << 20
    env.run(name='test-live', state='absent')


def test_drift_is_seen_and_corrected(env, parent):
    args = {'name': 'test-drift', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'memory': '64m',
            'pids_limit': 30, 'cgroup_parent': parent}
    first = env.run(**args)['container']
    with open(cgroup_file(first['pid'], *PIDS), 'w') as handle:
        handle.write('99')
    with open(cgroup_file(first['pid'], *MEMORY), 'w') as handle:
        handle.write(str(200 << 20))
    results = env.four_ways(args)
    assert results[0]['diff'] == {'before': {'memory': 200 << 20, 'pids_limit': 99, 'status': 'running'},
                                  'after': {'memory': 64 << 20, 'pids_limit': 30, 'status': 'running'}}
    assert results[1]['actions'] == ['updated'] and results[1]['container']['pid'] == first['pid']
    assert read(cgroup_file(first['pid'], *PIDS)) == '30'
    assert int(read(cgroup_file(first['pid'], *MEMORY))) == 64 << 20
    # A value the kernel rounds (not page-aligned) is no drift.
    odd = dict(args, memory=64 * 1024 * 1024 + 100)
    rounded = env.run(**odd)
    assert rounded['actions'] == ['updated']
    assert not env.run(**odd)['changed']
    env.run(name='test-drift', state='absent')


def test_other_changes_recreate_and_removal_cleans_cgroups(env, parent):
    args = {'name': 'test-rec', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'memory': '64m',
            'cgroup_parent': parent}
    first = env.run(**args)['container']
    second = env.run(**dict(args, command=['sh', '-c', 'echo new; ' + LOOP]))
    assert second['actions'] == ['recreated', 'started']
    assert second['container']['pid'] != first['pid'] and second['container']['id'] != first['id']
    for hierarchy in cgroups.hierarchies():
        assert not os.path.exists(os.path.join(hierarchy, parent.lstrip('/'), 'runcible-' + first['id']))
    env.run(name='test-rec', state='absent')
    # the parent fixture asserts that <parent>, <parent>/conmon and the container's cgroup are gone


@pytest.mark.parametrize('params, message', [
    ({'cgroup_parent': 'machine.slice', 'cgroup_manager': 'cgroupfs'}, 'is a systemd slice'),
    ({'cgroup_parent': 'relative/path', 'cgroup_manager': 'cgroupfs'}, 'absolute cgroup path'),
    ({'cpus': 0.001}, 'smallest limit'),
    ({'cpu_shares': 1}, 'from 2 to 262144'),
    ({'cpuset_cpus': '3-1'}, 'backwards'),
    ({'memory': '64m', 'memory_swap': '32m'}, 'at least memory'),
])
def test_bad_resource_input(env, params, message):
    with pytest.raises(RuncibleError, match=message):
        env.run(name='test-badres', rootfs=env.rootfs, command=['true'], **params)
    assert env.leftovers() == [] and not os.path.exists(env.root)


def test_systemd_manager_where_systemd_is_not_pid1(env):
    if cgroups.systemd_available():
        pytest.skip('systemd is PID 1 here: the systemd manager is tested in the systemd suite')
    with pytest.raises(RuncibleError, match='systemd needs systemd as PID 1'):
        env.run(name='test-sd', rootfs=env.rootfs, command=['true'], cgroup_manager='systemd')
    assert env.run(name='test-sd', rootfs=env.rootfs, command=['true'], state='stopped',
                   cgroup_manager='auto')['container']['config']['cgroup_manager'] == 'cgroupfs'


def test_systemd_scopes(env):
    if not cgroups.systemd_available():
        pytest.skip('systemd is not PID 1 on this host (no D-Bus to systemd): the systemd cgroup manager and '
                    'the conmon scope cannot run here; tests/unit/test_cgroups.py covers the D-Bus call')
    result = env.run(name='test-sd2', rootfs=env.rootfs, command=['sh', '-c', LOOP], cgroup_manager='systemd',
                     memory='64m')
    container = result['container']
    own = cgroups.process_cgroups(container['pid'])['' if not V1 else 'memory']
    assert own.endswith('/runcible-%s.scope' % container['id']) and '/machine.slice/' in own + '/'
    conmon = cgroups.process_cgroups(container['conmon_pid'])['' if not V1 else 'memory']
    assert conmon.endswith('/runcible-conmon-%s.scope' % container['id'])
    env.run(name='test-sd2', state='absent')


def test_blkio_weight_where_the_host_has_no_controller(env):
    if cgroups.blkio_weight_supported():
        result = env.run(name='test-blk', rootfs=env.rootfs, command=['sh', '-c', LOOP], blkio_weight=300)
        assert cgroups.read_live(result['container']['pid']).get('blkio_weight') == 300
        env.run(name='test-blk', state='absent')
    else:
        with pytest.raises(RuncibleError, match='no block I/O weight controller'):
            env.run(name='test-blk', rootfs=env.rootfs, command=['true'], blkio_weight=300)


def test_defaults_of_a_new_container_as_podmans(env):
    """A pids limit of 2048 unless given (a fork bomb stays in its container); /proc/interrupts and powercap masked."""
    from ansible_collections.runcible.oci.plugins.module_utils import _exec
    container = env.run(name='test-defaults', rootfs=env.rootfs, command=['sh', '-c', LOOP], network='none')['container']
    assert container['config']['pids_limit'] == 2048
    assert read(cgroup_file(container['pid'], *PIDS)) == '2048'
    result = _exec.run({'container': 'test-defaults', 'root': env.root, 'run_root': env.run_root,
                        'argv': ['sh', '-c', 'wc -c < /proc/interrupts; ls -A /sys/devices/virtual/powercap | wc -l']})
    assert result['stdout'].split() == ['0', '0'], result
    # A container made before the default (its record says no limit) is not changed by a task that gives none.
    record = env.engine.store.load('test-defaults')
    del record['config']['pids_limit']
    env.engine.store.save(record)
    unlimited = env.run(name='test-defaults', rootfs=env.rootfs, command=['sh', '-c', LOOP], network='none',
                        memory=0)
    assert unlimited['changed'] is False
