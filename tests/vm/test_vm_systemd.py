# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""On a systemd + cgroup v2 host over SSH: lifecycle, scopes, limits, live updates, drift, exec, info, journald, crun."""

from __future__ import annotations

import pytest

from vmhosts import GUEST_ROOTFS, wait_for

LOOP = "trap 'exit 0' TERM; while true; do sleep 1; done"
SLICE = 'runcible.slice'


def scopes(container):
    return 'runcible-%s.scope' % container['id'], 'runcible-conmon-%s.scope' % container['id']


@pytest.mark.quick
def test_systemd_scopes_limits_live_update_and_drift(vm_a, play):
    """cgroup_manager auto is systemd there: the container and its conmon in scopes of the chosen slice.

    Also the lifecycle over SSH in brief (create, live update, exec, info, remove): this is the test
    `make test` runs on one VM.
    """
    args = {'name': 'web', 'rootfs': GUEST_ROOTFS, 'command': ['sh', '-c', LOOP], 'runtime': 'runc',
            'cgroup_parent': SLICE, 'memory': '64m', 'cpus': 0.5, 'pids_limit': 64}
    results = play.four_ways(args)
    check, apply, again = results[0], results[1], results[2]
    assert check['actions'] == ['created', 'started'] and apply['actions'] == ['created', 'started']
    container = apply['container']
    assert container['status'] == 'running' and container['runtime'] == 'runc'
    assert container['config']['cgroup_manager'] == 'systemd' and container['config']['cgroup_parent'] == SLICE
    assert again['container']['pid'] == container['pid'] and again['actions'] == []

    scope, conmon_scope = scopes(container)
    assert vm_a.cgroup(container['pid']) == '/%s/%s' % (SLICE, scope)
    assert vm_a.cgroup(container['conmon_pid']) == '/%s/%s' % (SLICE, conmon_scope), \
        'conmon must leave the SSH session scope for a scope of its own'
    unit = vm_a.unit(scope, 'ActiveState', 'Slice', 'MemoryMax', 'TasksMax', 'CPUQuotaPerSecUSec')
    assert unit == {'ActiveState': 'active', 'Slice': SLICE, 'MemoryMax': str(64 << 20), 'TasksMax': '64',
                    'CPUQuotaPerSecUSec': '500ms'}, unit
    conmon_unit = vm_a.unit(conmon_scope, 'ActiveState', 'Slice', 'Delegate', 'MainPID')
    assert conmon_unit['ActiveState'] == 'active' and conmon_unit['Slice'] == SLICE
    assert conmon_unit['Delegate'] == 'yes'
    # The limits, in the cgroup v2 files.
    pid = container['pid']
    assert vm_a.cgroup_file(pid, 'memory.max') == str(64 << 20)
    assert vm_a.cgroup_file(pid, 'cpu.max') == '50000 100000'
    assert vm_a.cgroup_file(pid, 'pids.max') == '64'

    # Live update: same process, new values in the files and in systemd's unit.
    changed = dict(args, memory='128m', cpus=0.25, pids_limit=80, cpu_shares=512, memory_reservation='32m')
    results = play.four_ways(changed)
    assert results[0]['actions'] == ['updated'] and results[1]['actions'] == ['updated']
    assert results[1]['diff']['before']['memory'] == 64 << 20 and results[1]['diff']['after']['memory'] == 128 << 20
    assert results[1]['container']['pid'] == pid and results[1]['container']['id'] == container['id']
    assert vm_a.cgroup_file(pid, 'memory.max') == str(128 << 20)
    assert vm_a.cgroup_file(pid, 'memory.low') == str(32 << 20)
    assert vm_a.cgroup_file(pid, 'cpu.max') == '25000 100000'
    assert vm_a.cgroup_file(pid, 'pids.max') == '80'
    assert vm_a.cgroup_file(pid, 'cpu.weight') == '20'  # runc's conversion of 512 shares
    unit = vm_a.unit(scope, 'MemoryMax', 'TasksMax')
    assert unit == {'MemoryMax': str(128 << 20), 'TasksMax': '80'}, unit

    # Drift: limits changed behind the module's back are seen and corrected, live.
    vm_a.write('/sys/fs/cgroup/%s/%s/pids.max' % (SLICE, scope), '99')
    vm_a.write('/sys/fs/cgroup/%s/%s/memory.max' % (SLICE, scope), str(200 << 20))
    results = play.four_ways(changed)
    assert results[0]['diff'] == {'before': {'memory': 200 << 20, 'pids_limit': 99, 'status': 'running'},
                                  'after': {'memory': 128 << 20, 'pids_limit': 80, 'status': 'running'}}
    assert results[1]['actions'] == ['updated'] and results[1]['container']['pid'] == pid
    assert vm_a.cgroup_file(pid, 'memory.max') == str(128 << 20)
    assert vm_a.cgroup_file(pid, 'pids.max') == '80'

    # An exec runs in a sub-cgroup of the scope, under its limit; info reads the live state back.
    limit = 'cat "/sys/fs/cgroup$(dirname "$(cut -d: -f3 /proc/self/cgroup)")/memory.max"'
    results = play.run([
        {'runcible.oci.container_exec': {'container': 'web', 'argv': ['sh', '-c', limit + '; cat /proc/self/cgroup']}},
        {'runcible.oci.container_info': {'name': 'web'}},
    ])
    assert results[0]['stdout_lines'][0] == str(128 << 20), results[0]['stdout_lines']
    # Its private cgroup namespace (the default on cgroup v2) starts at the container's scope.
    assert results[0]['stdout_lines'][1].startswith('0::/runcible-exec-')
    info = results[1]['containers'][0]
    assert info['status'] == 'running' and info['pid'] == pid and info['config']['memory'] == 128 << 20

    # Removal: both scopes and their cgroups are gone.
    results = play.four_ways({'name': 'web', 'state': 'absent'})
    assert results[1]['actions'] == ['removed']
    for name in (scope, conmon_scope):
        assert vm_a.unit(name, 'LoadState')['LoadState'] == 'not-found', name
    assert not vm_a.exists('/sys/fs/cgroup/%s/%s' % (SLICE, scope))


def test_exec_and_info_over_ssh(vm_a, play):
    """container_exec (idempotent with creates), container_info; the exec runs within the container's limits."""
    created = play.run([{'runcible.oci.container': {'name': 'box', 'rootfs': GUEST_ROOTFS,
                                                    'command': ['sh', '-c', LOOP], 'memory': '48m'}}])
    container = created[0]['container']
    assert container['runtime'] == 'crun', 'runtime auto prefers crun on a pure cgroup v2 host'
    # The exec's own sub-cgroup is below the container's cgroup, whose memory.max is the container's limit.
    limit = 'cat "/sys/fs/cgroup$(dirname "$(cut -d: -f3 /proc/self/cgroup)")/memory.max" > /marker'
    results = play.four_ways({'container': 'box', 'argv': ['sh', '-c', limit], 'creates': '/marker'},
                             module='runcible.oci.container_exec')
    assert results[1]['rc'] == 0 and 'skipped' in results[2]['stdout']
    results = play.run([
        {'runcible.oci.container_exec': {'container': 'box', 'argv': ['cat', '/marker', '/proc/self/cgroup']}},
        {'runcible.oci.container_info': {'name': 'box'}},
        {'runcible.oci.container': {'name': 'box', 'state': 'stopped', 'stop_timeout': 5}},
        {'runcible.oci.container_info': {'name': 'box'}},
    ])
    output = results[0]['stdout_lines']
    assert output[0] == str(48 << 20), output
    # (as seen in its private cgroup namespace, whose root is the container's cgroup)
    assert output[1].startswith('0::/runcible-exec-'), output
    info = results[1]['containers'][0]
    assert info['name'] == 'box' and info['status'] == 'running' and info['config']['cgroup_manager'] == 'systemd'
    assert info['pid'] == container['pid']
    stopped = results[3]['containers'][0]
    assert stopped['status'] == 'stopped' and stopped['exit_code'] == 0, stopped
    assert vm_a.unit('runcible-conmon-%s.scope' % container['id'], 'LoadState')['LoadState'] == 'not-found', \
        'the conmon scope goes with its conmon'
    play.run([{'runcible.oci.container': {'name': 'box', 'state': 'absent'}}])


def test_journald_logs_and_crun(vm_a, play):
    """crun next to runc on pure cgroup v2; log_driver journald, read back through python-systemd."""
    script = "echo hello from crun; echo to stderr >&2; " + LOOP
    args = {'name': 'jc', 'rootfs': GUEST_ROOTFS, 'command': ['sh', '-c', script], 'runtime': 'crun',
            'log_driver': 'journald', 'memory': '32m'}
    results = play.four_ways(args)
    container = results[1]['container']
    assert container['runtime'] == 'crun' and container['status'] == 'running'
    scope, conmon_scope = scopes(container)
    # crun puts the process in a "container" sub-cgroup of its delegated scope, and the limits there.
    assert vm_a.cgroup(container['pid']) == '/machine.slice/%s/container' % scope
    assert vm_a.cgroup(container['conmon_pid']) == '/machine.slice/' + conmon_scope
    assert vm_a.cgroup_file(container['pid'], 'memory.max') == str(32 << 20)
    assert wait_for(lambda: 'hello from crun' in vm_a.sh('journalctl -o cat CONTAINER_NAME=jc'))

    results = play.run([
        {'runcible.oci.container_info': {'name': 'jc', 'logs_tail': -1}},
        {'runcible.oci.container_exec': {'container': 'jc', 'argv': ['sh', '-c', 'echo exec in crun; id -u']}},
        {'runcible.oci.container': {'name': 'jc', 'memory': '40m', 'runtime': 'crun', 'log_driver': 'journald'}},
    ])
    info = results[0]['containers'][0]
    assert 'hello from crun' in info['logs'] and 'to stderr' in info['logs'], info['logs']
    streams = dict((entry['message'], entry['stream']) for entry in info['log_entries'])
    assert streams['hello from crun'] == 'stdout' and streams['to stderr'] == 'stderr', info['log_entries']
    assert results[1]['stdout_lines'] == ['exec in crun', '0']
    assert results[2]['actions'] == ['updated'] and results[2]['container']['pid'] == container['pid']
    assert vm_a.cgroup_file(container['pid'], 'memory.max') == str(40 << 20)
    play.run([{'runcible.oci.container': {'name': 'jc', 'state': 'absent'}}])
