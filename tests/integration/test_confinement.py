# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Confinement on the real runc: seccomp, capabilities, privileged, devices, no_new_privileges, cgroupns.

Each check runs the attack inside a container (through container_exec) and reads the kernel's own
view of the container's PID 1 (/proc/PID/status). AppArmor and SELinux need a host where they are
enabled: tests/vm/test_vm_confinement.py; here only their refusal on a host without them.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _exec
from ansible_collections.runcible.oci.plugins.module_utils._container_options import security
from ansible_collections.runcible.oci.plugins.module_utils._runtime import apparmor, seccomp, selinux_labels
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.spec import DEFAULT_CAPABILITIES

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
DEBIAN_ROOTFS = os.environ.get('RUNCIBLE_DEBIAN_ROOTFS') or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'build', 'rootfs', 'debian')
# keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING) and add_key, by number (x86_64): errno or 0.
KEYCTL = ("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
          "r = libc.syscall(250, 0, -3, 0); print('keyctl', r, os.strerror(ctypes.get_errno()) if r < 0 else 'ok')")


def mask(names):
    bits = 0
    for name in names:
        bits |= 1 << security.CAPABILITIES.index(name[4:])
    return bits


def status(view):
    """The kernel's /proc/PID/status of the container's PID 1, as a dict."""
    with open('/proc/%d/status' % view['pid']) as handle:
        return dict(line.rstrip('\n').split(':\t', 1) for line in handle if ':\t' in line)


def confinement_warnings(result):
    return [warning for warning in result.get('warnings') or [] if 'apparmor' in warning.lower()
            or 'seccomp' in warning.lower()]


def run_in(env, name, script, **params):
    result = _exec.run(dict(params, container=name, command=['sh', '-c', script], root=env.root, run_root=env.run_root),
                       check_mode=False)
    return result['rc'], result['stdout'] + result['stderr']


def box(env, name='test-conf', **params):
    params.setdefault('command', ['sh', '-c', LOOP])
    params.setdefault('rootfs', env.rootfs)
    params.setdefault('network', 'none')
    params.setdefault('stop_timeout', 1)
    result = env.run(name=name, **params)
    return result, env.inspect(name)


def test_a_default_container_is_confined_by_seccomp_and_the_default_capabilities(env):
    result, view = box(env)
    assert result['changed'] and not confinement_warnings(result), result
    config = result['container']['config']
    assert config['seccomp_profile'] == 'default' and config['cap_add'] == [] and config['no_new_privileges'] is True
    assert config['apparmor_profile'] == ('runcible-default' if apparmor.enabled() else 'unconfined')
    proc = status(view)
    assert proc['Seccomp'] == '2', proc                      # a filter, in filter mode
    assert int(proc['CapEff'], 16) == mask(DEFAULT_CAPABILITIES)
    assert int(proc['CapBnd'], 16) == mask(DEFAULT_CAPABILITIES)
    assert proc['NoNewPrivs'] == '1'
    # The attacks: a user namespace (every capability inside it), a mount, a kernel module.
    rc, out = run_in(env, 'test-conf', 'unshare -U -r id 2>&1; echo "unshare rc=$?"; mkdir -p /tmp/m; '
                                       'mount -t tmpfs none /tmp/m 2>&1; echo "mount rc=$?"; '
                                       'dd if=/dev/zero of=/tmp/x.ko bs=4k count=1 2>/dev/null; insmod /tmp/x.ko 2>&1; echo "insmod rc=$?"')
    lines = out.splitlines()
    assert 'unshare rc=1' in lines and 'Operation not permitted' in lines[0], out
    assert 'mount rc=1' in lines and 'permission denied' in lines[lines.index('unshare rc=1') + 1], out  # EPERM
    assert 'insmod rc=1' in lines and 'Operation not permitted' in lines[-2], out
    # An exec gets the container's confinement, not more.
    rc, out = run_in(env, 'test-conf', "grep -E '^(Seccomp|CapEff):' /proc/self/status")
    assert 'Seccomp:\t2' in out and 'CapEff:\t%016x' % mask(DEFAULT_CAPABILITIES) in out, out


@pytest.mark.skipif(not os.path.isfile(os.path.join(DEBIAN_ROOTFS, 'usr', 'bin', 'python3')),
                    reason='no Debian root filesystem with Python (make setup builds it)')
def test_the_kernel_keyring_is_out_of_reach_by_default_and_reachable_unconfined(env):
    box(env, rootfs=DEBIAN_ROOTFS, command=['sleep', '300'])
    rc, out = run_in(env, 'test-conf', 'python3 -c "%s"' % KEYCTL)
    assert 'keyctl -1 Operation not permitted' in out, out
    box(env, name='test-open', rootfs=DEBIAN_ROOTFS, command=['sleep', '300'], seccomp_profile='unconfined')
    rc, out = run_in(env, 'test-open', 'python3 -c "%s"' % KEYCTL)
    assert 'keyctl' in out and 'Operation not permitted' not in out, out


# The i386 ABI from a 64-bit process: getpid (20 in the i386 table) through int 0x80, from code in an
# executable page; prints the pid it returned. x86_64 only.
INT80 = ("import ctypes, mmap, os, sys; code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]); "
         "page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC); "
         "page.write(code); fn = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page))); "
         "print('int80', fn(), os.getpid()); sys.stdout.flush()")


@pytest.mark.skipif(os.uname().machine != 'x86_64', reason='the i386 ABI is an x86_64 kernel\'s compat ABI')
def test_the_32_bit_abi_is_closed_by_default_and_open_with_the_hosts_profile_file(env):
    """The attack: a process reaches the kernel through its old 32-bit entry (int 0x80), which the i386
    rules of a filter would have to cover. The default filter has the native ABI only: the process is killed."""
    box(env, rootfs=DEBIAN_ROOTFS, command=['sleep', '300'])
    view = env.inspect('test-conf')
    assert status(view)['Seccomp'] == '2'
    rc, out = run_in(env, 'test-conf', 'python3 -c "%s"; echo "rc=$?"' % INT80)
    assert 'int80' not in out and 'rc=159' in out, out  # 128 + SIGSYS
    # The host's containers-common file as the profile keeps the i386 ABI (as podman's default does).
    profile = next(path for path in seccomp.DEFAULT_PROFILE_PATHS if os.path.isfile(path))
    box(env, name='test-open', rootfs=DEBIAN_ROOTFS, command=['sleep', '300'], seccomp_profile=profile)
    rc, out = run_in(env, 'test-open', 'python3 -c "%s"' % INT80)
    words = out.split()
    assert words[0] == 'int80' and words[1] == words[2], out  # the 32-bit getpid returned the pid


def test_seccomp_unconfined_four_ways_turns_the_filter_off(env):
    box(env)
    results = env.four_ways({'name': 'test-conf', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP],
                             'network': 'none', 'stop_timeout': 1, 'seccomp_profile': 'unconfined'})
    assert results[1]['actions'] == ['recreated', 'started']
    assert results[1]['diff']['before']['seccomp_profile'] == 'default'
    assert results[1]['diff']['after']['seccomp_profile'] == 'unconfined'
    view = env.inspect('test-conf')
    assert status(view)['Seccomp'] == '0'
    rc, out = run_in(env, 'test-conf', 'unshare -U -r id -u; echo "unshare rc=$?"')
    assert 'unshare rc=0' in out and out.startswith('0'), out   # root in a namespace of its own: what default denies


def test_a_profile_file_is_applied_and_compared_by_its_content(env, tmp_path):
    profile = tmp_path / 'no-mkdir.json'
    # containers-common format: allow everything but mkdir/mkdirat (EACCES).
    profile.write_text(json.dumps({'defaultAction': 'SCMP_ACT_ALLOW', 'archMap': [
        {'architecture': 'SCMP_ARCH_X86_64', 'subArchitectures': ['SCMP_ARCH_X86']}], 'syscalls': [
        {'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 13, 'includes': {}, 'excludes': {}}]}))
    args = {'name': 'test-conf', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'network': 'none',
            'stop_timeout': 1, 'seccomp_profile': str(profile)}
    results = env.four_ways(args)
    after = results[1]['container']['config']['seccomp_profile']
    assert after['path'] == str(profile) and after['digest'] == seccomp.read_profile(str(profile))[1]
    rc, out = run_in(env, 'test-conf', 'mkdir /tmp/x; echo "mkdir rc=$?"; echo ok > /tmp/file && cat /tmp/file')
    assert 'mkdir rc=1' in out and 'Permission denied' in out and 'ok' in out, out
    # The same path with other content is another profile: the container is recreated with it.
    profile.write_text(json.dumps({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': []}))
    changed = env.run(**args)
    assert changed['actions'] == ['recreated', 'started'], changed
    rc, out = run_in(env, 'test-conf', 'mkdir /tmp/x; echo "mkdir rc=$?"')
    assert 'mkdir rc=0' in out, out
    assert env.run(**args)['changed'] is False


def test_a_bad_profile_file_fails_clearly_and_changes_nothing(env, tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{"syscalls": "all"}')
    with pytest.raises(RuncibleError, match='not a seccomp profile'):
        box(env, seccomp_profile=str(bad))
    with pytest.raises(RuncibleError, match='cannot read'):
        box(env, seccomp_profile=str(tmp_path / 'missing.json'))
    containers = os.path.join(env.root, 'containers')
    assert env.inspect('test-conf') is None and not (os.path.isdir(containers) and os.listdir(containers))


def test_cap_drop_all_leaves_no_capability_four_ways_and_for_execs(env):
    results = env.four_ways({'name': 'test-conf', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP],
                             'network': 'none', 'stop_timeout': 1, 'cap_drop': ['all']})
    assert results[1]['container']['config']['cap_drop'] == ['ALL']
    view = env.inspect('test-conf')
    proc = status(view)
    assert int(proc['CapEff'], 16) == 0 and int(proc['CapBnd'], 16) == 0 and int(proc['CapPrm'], 16) == 0
    rc, out = run_in(env, 'test-conf', 'chown 1:1 /tmp; echo "chown rc=$?"; grep CapEff /proc/self/status')
    assert 'chown rc=1' in out and 'CapEff:\t0000000000000000' in out, out


def test_cap_add_net_admin_allows_what_default_denies_and_recreates(env):
    box(env)
    rc, out = run_in(env, 'test-conf', 'ip link set lo mtu 1400; echo "ip rc=$?"')
    assert 'ip rc=0' not in out, out
    results = env.four_ways({'name': 'test-conf', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP],
                             'network': 'none', 'stop_timeout': 1, 'cap_add': ['NET_ADMIN', 'CAP_NET_RAW']})
    assert results[1]['actions'] == ['recreated', 'started']
    assert results[1]['diff']['after']['cap_add'] == ['CAP_NET_ADMIN', 'CAP_NET_RAW']
    rc, out = run_in(env, 'test-conf', 'ip link set lo mtu 1400 && ip link show lo')
    assert rc == 0 and 'mtu 1400' in out, out
    assert int(status(env.inspect('test-conf'))['CapEff'], 16) == mask(
        DEFAULT_CAPABILITIES + ['CAP_NET_ADMIN', 'CAP_NET_RAW'])
    # The order of a list of capabilities does not matter: they compare as sets.
    again = env.run(name='test-conf', rootfs=env.rootfs, command=['sh', '-c', LOOP], network='none',
                    cap_add=['net_raw', 'NET_ADMIN'])
    assert again['changed'] is False


def test_a_non_root_user_gets_only_the_capabilities_added(env):
    box(env, user='1000:1000', cap_add=['NET_BIND_SERVICE'])
    proc = status(env.inspect('test-conf'))
    assert int(proc['CapEff'], 16) == mask(['CAP_NET_BIND_SERVICE']) == int(proc['CapAmb'], 16)
    assert int(proc['CapBnd'], 16) == mask(DEFAULT_CAPABILITIES + ['CAP_NET_BIND_SERVICE'])


def test_bad_capabilities_fail_clearly(env):
    with pytest.raises(RuncibleError, match="cap_add: 'NET_ADMN' is not a capability"):
        box(env, cap_add=['NET_ADMN'])
    with pytest.raises(RuncibleError, match='both say ALL'):
        box(env, cap_add=['ALL'], cap_drop=['ALL'])
    assert env.inspect('test-conf') is None


@pytest.mark.skipif(not os.path.exists('/dev/net/tun'), reason='this host has no /dev/net/tun')
def test_a_device_entry_appears_and_works_four_ways(env):
    box(env)
    rc, out = run_in(env, 'test-conf', 'ls -l /dev/net/tun; echo "ls rc=$?"')
    assert 'ls rc=0' not in out, out
    results = env.four_ways({'name': 'test-conf', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP],
                             'network': 'none', 'stop_timeout': 1, 'devices': ['/dev/net/tun:/dev/net/tun:rwm']})
    assert results[1]['container']['config']['devices'] == [
        {'host': '/dev/net/tun', 'container': '/dev/net/tun', 'permissions': 'rwm'}]
    # Opening the clone device works (the device cgroup allows it); with no ioctl it reads EBADFD.
    rc, out = run_in(env, 'test-conf', 'ls -l /dev/net/tun; cat /dev/net/tun; echo "cat rc=$?"')
    assert out.startswith('c') and '10,' in out and 'File descriptor in bad state' in out, out


@pytest.mark.skipif(not os.path.exists('/dev/fuse'), reason='this host has no /dev/fuse')
@pytest.mark.parametrize('permissions', ['r', 'rw'])
def test_the_device_cgroup_allows_exactly_the_permissions_given(env, permissions):
    # (not /dev/net/tun: runc 1.1 allows the tun device to every container in its device cgroup)
    box(env, devices=[{'host': '/dev/fuse', 'permissions': permissions}])
    rc, out = run_in(env, 'test-conf', 'dd if=/dev/fuse of=/dev/null count=0; echo "read rc=$?"; '
                                       'dd if=/dev/zero of=/dev/fuse count=0; echo "write rc=$?"')
    assert 'read rc=0' in out, out
    if permissions == 'r':
        assert 'write rc=1' in out and 'Operation not permitted' in out, out
    else:
        assert 'write rc=0' in out, out


def test_a_device_that_is_not_one_fails_clearly(env):
    for device, message in (('/etc/passwd', 'not a character or block device'), ('/dev/nothing-here', 'No such file'),
                            ('/dev/null:/dev/x:rwz', 'permissions')):
        with pytest.raises(RuncibleError, match=message):
            box(env, devices=[device])
    assert env.inspect('test-conf') is None


def test_privileged_can_do_what_default_cannot(env):
    results = env.four_ways({'name': 'test-conf', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP],
                             'network': 'none', 'stop_timeout': 1, 'privileged': True})
    assert results[1]['container']['config']['privileged'] is True
    proc = status(env.inspect('test-conf'))
    assert proc['Seccomp'] == '0' and int(proc['CapEff'], 16) == mask(security.host_capabilities())
    rc, out = run_in(env, 'test-conf', 'mkdir -p /tmp/m; mount -t tmpfs none /tmp/m && echo mounted; '
                                       'unshare -U -r id -u; ls /dev | grep -c .; umount /tmp/m')
    lines = out.splitlines()
    assert lines[:2] == ['mounted', '0'], out
    assert int(lines[2]) > 10, out                               # the host's devices


def test_privileged_refuses_a_profile_given_with_it(env, tmp_path):
    profile = tmp_path / 'profile.json'
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    with pytest.raises(RuncibleError, match='privileged container runs without seccomp'):
        box(env, privileged=True, seccomp_profile=str(profile))
    assert env.inspect('test-conf') is None


def test_no_new_privileges_false_four_ways(env):
    env.four_ways({'name': 'test-conf', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'network': 'none',
                   'stop_timeout': 1, 'no_new_privileges': False})
    assert status(env.inspect('test-conf'))['NoNewPrivs'] == '0'


@pytest.mark.parametrize('mode', ['private', 'host'])
def test_the_cgroup_namespace(env, mode):
    env.four_ways({'name': 'test-conf', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'network': 'none',
                   'stop_timeout': 1, 'cgroupns': mode})
    view = env.inspect('test-conf')
    rc, out = run_in(env, 'test-conf', 'cat /proc/1/cgroup')
    paths = [line.split(':', 2)[2] for line in out.splitlines() if line.count(':') >= 2]
    own = os.readlink('/proc/%d/ns/cgroup' % view['pid']) != os.readlink('/proc/self/ns/cgroup')
    if mode == 'private':
        assert own and all(path == '/' for path in paths), out   # its own cgroup is its root
    else:
        assert not own and any(view['id'] in path for path in paths), out


def test_apparmor_asked_for_on_a_host_without_it_fails_clearly(env):
    if apparmor.enabled():
        pytest.skip('AppArmor is enabled on this host: tests/vm/test_vm_confinement.py covers it')
    with pytest.raises(RuncibleError, match='AppArmor is not enabled on this host'):
        box(env, apparmor_profile='runcible-default')
    result, _view = box(env, apparmor_profile='unconfined')
    assert result['changed'] and not confinement_warnings(result)


def test_selinux_labels_on_a_host_without_selinux(env, tmp_path):
    if selinux_labels.enabled():
        pytest.skip('SELinux is enabled on this host: tests/vm/test_vm_confinement.py covers it')
    result, _view = box(env)
    assert result['container']['config']['label'] == 'disable'
    with pytest.raises(RuncibleError, match='SELinux is not enabled on this host'):
        box(env, name='test-label', label={'type': 'container_t'})
    with pytest.raises(RuncibleError, match='not an SELinux level'):
        box(env, name='test-label', label={'level': 's0:c1;rm'})
    # z and Z are accepted and do nothing here (no label to give); system directories are refused anyway.
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'file').write_text('hi')
    env.four_ways({'name': 'test-label', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'network': 'none',
                   'stop_timeout': 1, 'label': 'disable', 'mounts': ['%s:/data:Z' % data]})
    rc, out = run_in(env, 'test-label', 'cat /data/file')
    assert out == 'hi', out
    with pytest.raises(RuncibleError, match='cannot be relabelled'):
        box(env, name='test-etc', mounts=['/etc:/host-etc:z'])
    with pytest.raises(RuncibleError, match='both z'):
        box(env, name='test-etc', mounts=[{'source': str(data), 'target': '/d', 'options': ['z', 'Z']}])
