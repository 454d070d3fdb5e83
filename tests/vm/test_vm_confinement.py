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

import json

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
    # Its own cgroup is the root of what it sees (an exec runs in a sub-cgroup of it).
    cgroups = exec_in(play, 'test-aa', 'cat /proc/1/cgroup /proc/self/cgroup').split()
    assert cgroups[0] == '0::/' and cgroups[1].startswith('0::/runcible-exec-'), cgroups

    # The same container unconfined can: the difference is the profile.
    results = play.four_ways(dict(args, apparmor_profile='unconfined'))
    assert results[1]['actions'] == ['recreated', 'started']
    pid = results[1]['container']['pid']
    # Debian 12: 'unconfined'. Debian 13's AppArmor 4 ships a profile for runc itself in the unconfined
    # mode, which the container inherits when it asks for no profile: 'runc (unconfined)', as unconfined.
    label = vm_a.read('/proc/%d/attr/current' % pid)
    assert label == 'unconfined' or label.endswith(' (unconfined)'), label
    assert 'mounted' in exec_in(play, 'test-aa', MOUNT)

    # A profile that is not loaded is refused before anything is made.
    [failed] = play.run([{'runcible.oci.container': dict(args, name='test-aa2', apparmor_profile='no-such')}],
                        expect_rc=2)
    assert 'profile no-such is not loaded' in failed['msg']
    play.run([{'runcible.oci.container': {'name': 'test-aa', 'state': 'absent'}}])


def label_parts(label):
    user, role, kind, level = label.split(':', 3)
    return kind, level


def test_selinux_labels_with_a_unique_level_per_container_relabelled_mounts_and_release(vm_se, play):
    """The image booted with SELinux (permissive: Debian's policy has no container module, so its sVirt
    types stand in for container_t). Each container's processes and files carry a level of its own."""
    if vm_se.sh('cat /sys/fs/selinux/enforce', check=False).strip() not in ('0', '1'):
        pytest.fail('SELinux is not enabled in vm-se (security=selinux on its kernel command line): the VM set-up is wrong')
    data = play.base + '-data'
    vm_se.sh('mkdir -p %s/private %s/shared && echo hi > %s/private/file' % (data, data, data))
    common = {'rootfs': GUEST_ROOTFS, 'command': ['sh', '-c', LOOP], 'runtime': 'runc', 'stop_timeout': 1}
    mounts = ['%s/private:/data:Z' % data, '%s/shared:/shared:z' % data]
    first = play.four_ways(dict(common, name='test-se1', mounts=mounts), hosts='vm-se')
    second = play.run([{'runcible.oci.container': dict(common, name='test-se2',
                                                       mounts=['%s/shared:/shared:z' % data])}], hosts='vm-se')
    one, two = first[1]['container'], second[0]['container']
    labels = [vm_se.read('/proc/%d/attr/current' % container['pid']).rstrip('\x00') for container in (one, two)]
    assert labels[0] == one['config']['label']['process'] and labels[1] == two['config']['label']['process']
    (type_one, level_one), (type_two, level_two) = label_parts(labels[0]), label_parts(labels[1])
    assert type_one == type_two and type_one in ('container_t', 'svirt_t'), labels
    assert level_one != level_two and level_one.startswith('s0:c') and level_two.startswith('s0:c'), labels
    # The root filesystem and the Z source carry the container's own mount label, the z source the shared one.
    mount_one = one['config']['label']['mount']
    assert vm_se.sh("ls -dZ /proc/%d/root/etc | cut -d' ' -f1" % one['pid']).strip() == mount_one
    assert vm_se.sh("ls -dZ %s/private/file | cut -d' ' -f1" % data).strip() == mount_one
    assert vm_se.sh("ls -dZ %s/shared | cut -d' ' -f1" % data).strip() == mount_one.rsplit(':', 1)[0]
    # Execs run with the container's label; the level allocations name both containers.
    [execed] = play.run([{'runcible.oci.container_exec': {'container': 'test-se1', 'argv': ['cat', '/proc/self/attr/current']}}],
                        hosts='vm-se')
    assert execed['stdout'].rstrip('\x00') == labels[0]
    levels = json.loads(vm_se.read(play.root + '/selinux/levels.json'))
    assert {entry['id'] for entry in levels.values()} == {one['id'], two['id']}

    # label: disable -> recreated without a label; its level is released.
    disabled = play.four_ways(dict(common, name='test-se2', mounts=['%s/shared:/shared:z' % data], label='disable'),
                              hosts='vm-se')
    assert disabled[1]['actions'] == ['recreated', 'started']
    assert label_parts(vm_se.read('/proc/%d/attr/current' % disabled[1]['container']['pid']).rstrip('\x00'))[0] \
        not in ('container_t', 'svirt_t')
    # A level given is taken as it is (and not allocated).
    fixed = play.four_ways(dict(common, name='test-se3', label={'level': 's0:c7,c9'}), hosts='vm-se')
    assert fixed[1]['container']['config']['label']['process'].endswith(':s0:c7,c9')
    levels = json.loads(vm_se.read(play.root + '/selinux/levels.json'))
    assert {entry['id'] for entry in levels.values()} == {one['id']}
    # Removal releases the level.
    play.run([{'runcible.oci.container': {'name': name, 'state': 'absent'}} for name in ('test-se1', 'test-se2', 'test-se3')],
             hosts='vm-se')
    assert json.loads(vm_se.read(play.root + '/selinux/levels.json')) == {}
    vm_se.sh('rm -rf %s' % data)
