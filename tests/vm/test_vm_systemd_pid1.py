# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``systemd: true`` on a cgroup v2 host (systemd mounts cgroup2 with nsdelegate): systemd as the
container's PID 1 manages services in the container's own cgroup, and cannot touch its own limits."""

from __future__ import annotations

import shlex

import pytest

from vmhosts import wait_for

# A root filesystem with systemd: the guest's own /usr and /etc, hard-linked (instant, no copy; the
# container's overlay never writes to its lower layer).
SYSROOT = '/var/tmp/runcible-sysroot'
MAKE_SYSROOT = '''set -e
[ -x {root}/usr/lib/systemd/systemd ] && exit 0
rm -rf {root}.tmp && mkdir -p {root}.tmp/var && cd /
cp -a bin sbin lib lib64 {root}.tmp/ 2>/dev/null || true
cp -al usr etc {root}.tmp/
cp -al var/lib {root}.tmp/var/
mkdir -p {root}.tmp/proc {root}.tmp/sys {root}.tmp/dev {root}.tmp/run {root}.tmp/tmp {root}.tmp/root
mv {root}.tmp {root}
'''.format(root=SYSROOT)


def inside(vm, pid, command, check=True):
    """``command`` in every namespace of the container (its cgroup namespace too), as root."""
    return vm.sh('nsenter -t %d -a sh -c %s' % (pid, shlex.quote(command)), check=check)


@pytest.mark.quick
def test_systemd_as_pid_1_runs_services_in_its_own_cgroup_and_cannot_raise_its_limits(vm_a, play):
    vm_a.sh(MAKE_SYSROOT)
    assert 'nsdelegate' in vm_a.sh('grep " /sys/fs/cgroup cgroup2 " /proc/self/mounts'), \
        'the VM mounts cgroup2 without nsdelegate: systemd always sets it, the image is wrong'
    args = {'name': 'test-sd1', 'rootfs': SYSROOT, 'systemd': True, 'network': 'none', 'runtime': 'runc',
            'memory': '256m'}
    results = play.four_ways(args)
    assert results[0]['actions'] == ['created', 'started'] and results[1]['actions'] == ['created', 'started']
    container = results[1]['container']
    pid = container['pid']
    assert container['config']['command'] == ['/sbin/init'] and container['config']['stop_signal'] == 37
    assert container['config']['cgroupns'] == 'private'

    # systemd boots (degraded is fine: some units of a VM's root expect hardware).
    def booted():
        state = inside(vm_a, pid, 'systemctl is-system-running', check=False).strip()
        return state in ('running', 'degraded')
    wait_for(booted, timeout=240, interval=3)
    assert inside(vm_a, pid, 'cat /proc/1/comm').strip() == 'systemd'
    assert inside(vm_a, pid, 'cat /proc/1/cgroup').strip() == '0::/init.scope'

    # It runs a service in a cgroup of its own, below the container's on the host.
    inside(vm_a, pid, 'systemd-run --unit=test-sleeper sleep 600')
    assert inside(vm_a, pid, 'systemctl is-active test-sleeper').strip() == 'active'
    scope = vm_a.cgroup(pid).rsplit('/init.scope', 1)[0]
    host_cgroups = vm_a.sh('for p in $(pgrep -x sleep); do cat /proc/$p/cgroup; done')
    assert '0::%s/system.slice/test-sleeper.service' % scope in host_cgroups.splitlines(), (scope, host_cgroups)

    # The attack: root in the container raises its own memory limit. nsdelegate refuses the write to
    # the control files of its namespace's root cgroup; the limit stays the task's.
    out = inside(vm_a, pid, 'echo max > /sys/fs/cgroup/memory.max 2>&1; echo rc=$?', check=False)
    assert 'rc=0' not in out, out
    assert vm_a.read('/sys/fs/cgroup%s/memory.max' % scope) == str(256 << 20)

    # Stopped with SIGRTMIN+3: systemd shuts down in order; then removed, nothing left (the fixture checks).
    stopped = play.run([{'runcible.oci.container': dict(args, state='stopped')}])
    assert stopped[0]['actions'] == ['stopped'] and stopped[0]['container']['status'] == 'stopped'
    play.run([{'runcible.oci.container': {'name': 'test-sd1', 'state': 'absent'}}])
