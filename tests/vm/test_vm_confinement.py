# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""On a host with AppArmor enabled (Debian's kernel; the image has the apparmor package): the default profile.

The container runs under ``runcible-default`` (loaded by the first launch that needs it, not again
while it is current), the kernel says so in ``/proc/PID/attr/current``, and what the profile denies
fails inside the container while the same container without the profile may do it. A cgroup v2 host
also gives a private cgroup namespace by default.
"""

from __future__ import annotations

import pytest

from vmhosts import GUEST_ROOTFS

LOOP = "trap 'exit 0' TERM; while true; do sleep 1; done"
# What the profile denies and capabilities/seccomp alone would allow: a mount by a container given
# CAP_SYS_ADMIN and no seccomp filter.
MOUNT = 'mkdir -p /tmp/m; mount -t tmpfs none /tmp/m && echo mounted; umount /tmp/m 2>/dev/null; true'


def exec_in(play, name, script):
    [result] = play.run([{'runcible.oci.container_exec': {'container': name, 'argv': ['sh', '-c', script]}}])
    return result['stdout']


@pytest.mark.quick
def test_the_default_apparmor_profile_confines_the_container(vm_a, play):
    if vm_a.sh('cat /sys/module/apparmor/parameters/enabled', check=False).strip() != 'Y':
        pytest.fail('AppArmor is not enabled in the VM (the Debian kernel enables it by default): the image is wrong')
    vm_a.sh('apparmor_parser -R /dev/stdin 2>/dev/null <<EOF || true\nprofile runcible-default {}\nEOF')
    args = {'name': 'test-aa', 'rootfs': GUEST_ROOTFS, 'command': ['sh', '-c', LOOP], 'runtime': 'runc',
            'network': 'none', 'stop_timeout': 1, 'cap_add': ['SYS_ADMIN'], 'seccomp_profile': 'unconfined'}
    results = play.four_ways(args)
    container = results[1]['container']
    assert container['config']['apparmor_profile'] == 'runcible-default'
    assert container['config']['cgroupns'] == 'private'
    assert vm_a.read('/proc/%d/attr/current' % container['pid']) == 'runcible-default (enforce)'
    assert 'runcible-default (enforce)' in vm_a.read('/sys/kernel/security/apparmor/profiles')
    # An exec runs under the container's profile too.
    assert exec_in(play, 'test-aa', 'cat /proc/self/attr/current').strip() == 'runcible-default (enforce)'
    # The profile denies the mount (root with CAP_SYS_ADMIN, no seccomp: only AppArmor stands in the way).
    out = exec_in(play, 'test-aa', MOUNT + '; echo x > /proc/sys/kernel/domainname 2>&1 || echo denied')
    assert 'mounted' not in out and 'denied' in out, out
    # Its own cgroup is the root of what it sees.
    assert exec_in(play, 'test-aa', 'cat /proc/self/cgroup').strip() == '0::/'

    # The same container unconfined can: the difference is the profile.
    results = play.four_ways(dict(args, apparmor_profile='unconfined'))
    assert results[1]['actions'] == ['recreated', 'started']
    pid = results[1]['container']['pid']
    assert vm_a.read('/proc/%d/attr/current' % pid) == 'unconfined'
    assert 'mounted' in exec_in(play, 'test-aa', MOUNT)

    # A profile that is not loaded is refused before anything is made.
    [failed] = play.run([{'runcible.oci.container': dict(args, name='test-aa2', apparmor_profile='no-such')}],
                        expect_rc=2)
    assert 'profile no-such is not loaded' in failed['msg']
    play.run([{'runcible.oci.container': {'name': 'test-aa', 'state': 'absent'}}])
