# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Workload options on the real runc: tmpfs, init, env_file, groups, umask, OOM score, CPU quota, swappiness,
block device limits, and state restarted -- what the container's processes see, four ways, what is refused."""

from __future__ import annotations

import os
import shutil
import stat
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _exec
from ansible_collections.runcible.oci.plugins.module_utils._runtime import cgroups
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
NAME = 'test-workload'


def run_in(env, script, name=NAME):
    result = _exec.run({'container': name, 'command': ['sh', '-c', script], 'root': env.root,
                        'run_root': env.run_root}, check_mode=False)
    return result['stdout'] + result['stderr']


def args(store, **params):
    base = {'name': NAME, 'rootfs': store.rootfs, 'command': ['sh', '-c', LOOP], 'network': 'none', 'stop_timeout': 1}
    base.update(params)
    return base


def status_field(pid, field):
    with open('/proc/%d/status' % pid) as handle:
        for line in handle:
            if line.startswith(field + ':'):
                return line.split(':', 1)[1].split()
    return None


def test_tmpfs_four_ways_empty_again_after_a_restart_with_the_same_id(env):
    results = env.four_ways(args(env, tmpfs={'/scratch': 'size=8m,mode=750', '/cache': 'exec,size=4096k'}))
    assert results[1]['container']['config']['tmpfs'] == {
        '/scratch': ['mode=0750', 'nodev', 'noexec', 'nosuid', 'rw', 'size=8192k'],
        '/cache': ['exec', 'nodev', 'nosuid', 'rw', 'size=4096k']}
    mounts = run_in(env, 'grep -E " /(scratch|cache) " /proc/mounts')
    scratch = [line for line in mounts.splitlines() if ' /scratch ' in line][0]
    assert scratch.split()[2] == 'tmpfs' and 'noexec' in scratch and 'size=8192k' in scratch
    assert run_in(env, 'stat -c %a /scratch').strip() == '750'
    assert 'noexec' not in [line for line in mounts.splitlines() if ' /cache ' in line][0]
    run_in(env, 'echo data > /scratch/file && cp /bin/busybox /cache/bb && /cache/bb true && echo ran')
    first = env.inspect(NAME)
    # state restarted: a new process of the same container, and the tmpfs is new and empty.
    restarted = env.four_ways(args(env, tmpfs={'/scratch': 'mode=0750,size=8m', '/cache': 'size=4m,exec'},
                                   state='restarted'), expect=(True, True, True, True))
    assert restarted[1]['actions'] == ['restarted']
    second = env.inspect(NAME)
    assert second['id'] == first['id'] and second['pid'] != first['pid'] and second['status'] == 'running'
    assert run_in(env, 'ls -A /scratch /cache').split() == ['/cache:', '/scratch:']
    # Same options in another spelling: nothing to do; another size recreates.
    assert env.run(**args(env, tmpfs={'/scratch': 'size=8192k,mode=0750', '/cache': 'exec,size=4m'}))['changed'] is False
    assert env.run(**args(env, tmpfs={'/scratch': 'size=16m'}))['actions'] == ['recreated', 'started']


def test_force_restart_and_restarted_from_stopped(env):
    env.run(**args(env))
    pid = env.inspect(NAME)['pid']
    assert env.run(**args(env, force_restart=True))['actions'] == ['restarted']
    assert env.inspect(NAME)['pid'] != pid
    assert env.run(**args(env))['changed'] is False
    env.run(**args(env, state='stopped'))
    assert env.run(**args(env, state='restarted'))['actions'] == ['started']  # stopped: only started
    assert env.inspect(NAME)['status'] == 'running'


def test_bad_tmpfs_and_mount_clashes_are_refused_and_nothing_is_made(env, tmp_path):
    source = str(tmp_path)
    cases = [({'tmpfs': {'/proc/x': ''}}, 'cannot be a tmpfs'), ({'tmpfs': {'/': ''}}, 'cannot be a tmpfs'),
             ({'tmpfs': {'/t': 'size=1x'}}, 'size'), ({'tmpfs': {'/t': 'mode=999'}}, 'octal mode'),
             ({'tmpfs': {'/t': 'nosymfollow'}}, 'unknown tmpfs option'),
             ({'tmpfs': {'/data': ''}, 'mounts': ['%s:/data' % source]}, 'already a mount of mounts')]
    for params, message in cases:
        with pytest.raises(RuncibleError, match=message):
            env.run(**args(env, **params))
    assert env.inspect(NAME) is None


def zombies_in(pid):
    """Zombie processes in the container whose PID 1 (seen from the host) is ``pid``."""
    ns = os.readlink('/proc/%d/ns/pid' % pid)
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            if os.readlink('/proc/%s/ns/pid' % entry) != ns:
                continue
            with open('/proc/%s/stat' % entry) as handle:
                if handle.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    found.append(int(entry))
        except OSError:
            continue
    return found


# PID 1 ends as sleep, which never waits: without an init the orphans it inherits stay zombies.
ORPHANS = "i=0; while [ $i -lt 50 ]; do (sleep 0.2 &); i=$((i+1)); done; exec sleep 1000"


def test_init_reaps_50_orphans_and_forwards_the_stop_signal(env):
    # Without init the shell is PID 1 and never waits for the orphans: they stay zombies (the test can fail).
    env.run(**args(env, command=['sh', '-c', ORPHANS]))
    assert len(zombies_from_wait(env.inspect(NAME)['pid'])) >= 50
    results = env.four_ways(args(env, command=['sh', '-c', ORPHANS], init=True))
    assert results[1]['actions'] == ['recreated', 'started']
    container = env.inspect(NAME)
    with open('/proc/%d/cmdline' % container['pid'], 'rb') as handle:
        assert handle.read().split(b'\0')[:2] == [b'/run/runcible-init', b'--']
    time.sleep(1.0)  # every orphan has exited by now
    assert zombies_in(container['pid']) == []
    assert run_in(env, 'grep -c . /proc/1/cmdline >/dev/null; ls /run/runcible-init && touch /run/runcible-init'
                  ' 2>&1 || true').count('Read-only file system') == 1
    # sleep as PID 1 would ignore TERM; under the init it is not PID 1 and the forwarded TERM ends it.
    started = time.monotonic()
    env.run(**args(env, command=['sh', '-c', ORPHANS], init=True, state='stopped', stop_timeout=5))
    assert time.monotonic() - started < 2.0
    assert env.inspect(NAME)['exit_code'] == 143  # 128 + SIGTERM, passed on by the init


def zombies_from_wait(pid):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = zombies_in(pid)
        if len(found) >= 50:
            return found
        time.sleep(0.1)
    return zombies_in(pid)


def test_init_without_an_init_on_the_host_is_explained(env, monkeypatch):
    from ansible_collections.runcible.oci.plugins.module_utils._container_options import process
    monkeypatch.setattr(process, 'INIT_BINARIES', ('/nonexistent/catatonit',))
    with pytest.raises(RuncibleError, match='install the catatonit package'):
        env.run(**args(env, init=True))
    assert env.inspect(NAME) is None


def test_env_file_four_ways_merged_under_env_and_an_edit_recreates(env, tmp_path):
    first, second = tmp_path / 'a.env', tmp_path / 'b.env'
    first.write_text('\ufeff# comment\n\nGREETING=hello world\nQUOTED="kept"\n  SPACED=x \nOVER=file\n')
    second.write_text('OVER=second\nEMPTY=\n')
    params = args(env, env_file=[str(first), str(second)], env={'TASK': 'yes'})
    results = env.four_ways(params)
    assert results[1]['container']['config']['env_file'] == {
        'GREETING': 'hello world', 'QUOTED': '"kept"', 'SPACED': 'x ', 'OVER': 'second', 'EMPTY': ''}
    out = run_in(env, 'echo "[$GREETING][$QUOTED][$SPACED][$OVER][$EMPTY][$TASK]"')
    assert out.strip() == '[hello world]["kept"][x ][second][][yes]'
    assert run_in(env, 'echo "[$OVER]"', ).strip() == '[second]'
    env.run(**args(env, env_file=[str(first), str(second)], env={'OVER': 'task'}))
    assert run_in(env, 'echo "[$OVER]"').strip() == '[task]'  # env wins over the files
    second.write_text('OVER=edited\n')
    changed = env.run(**args(env, env_file=[str(first), str(second)], env={'OVER': 'task'}))
    assert changed['actions'] == ['recreated', 'started']
    assert changed['diff']['before']['env_file']['OVER'] == 'second'
    for bad, message in (([str(tmp_path / 'missing.env')], 'cannot read'), (['relative.env'], 'absolute path')):
        with pytest.raises(RuncibleError, match=message):
            env.run(**args(env, env_file=bad))
    (tmp_path / 'bad.env').write_text('MY VAR=1\n')
    with pytest.raises(RuncibleError, match='not a variable name'):
        env.run(**args(env, env_file=[str(tmp_path / 'bad.env')]))


@pytest.fixture
def grouped_rootfs(env, tmp_path):
    """The test root filesystem with /etc/group listing user app in two groups."""
    root = str(tmp_path / 'rootfs')
    shutil.copytree(env.rootfs, root, symlinks=True)
    with open(os.path.join(root, 'etc/group'), 'a') as handle:
        handle.write('staff:x:50:app,other\naudio:x:29:\nvideo:x:44:someone,app\n')
    return root


def test_group_add_and_the_users_own_groups_four_ways(env, grouped_rootfs):
    results = env.four_ways(args(env, rootfs=grouped_rootfs, user='app', group_add=['audio', 4242]))
    assert results[1]['container']['config']['group_add'] == ['29', '4242']
    pid = env.inspect(NAME)['pid']
    assert status_field(pid, 'Groups') == ['29', '44', '50', '4242']
    assert run_in(env, 'id -G').split() == ['1000', '29', '44', '50', '4242']  # execs too
    with pytest.raises(RuncibleError, match="group 'nosuch' is not in the root filesystem"):
        env.run(**args(env, rootfs=grouped_rootfs, user='app', group_add=['nosuch']))
    # Root is listed in no group: only the added one.
    env.run(**args(env, rootfs=grouped_rootfs, user='root', group_add=['video']))
    assert status_field(env.inspect(NAME)['pid'], 'Groups') == ['44']


def test_umask_and_oom_score_adj_four_ways(env):
    results = env.four_ways(args(env, umask='0027', oom_score_adj=300))
    assert results[1]['container']['config']['umask'] == 0o27
    pid = env.inspect(NAME)['pid']
    assert status_field(pid, 'Umask') == ['0027']
    with open('/proc/%d/oom_score_adj' % pid) as handle:
        assert handle.read().strip() == '300'
    assert run_in(env, 'touch /tmp/f && stat -c %a /tmp/f').strip() == '640'
    assert env.run(**args(env, umask=23, oom_score_adj=300))['changed'] is False  # 23 == 0o27
    for params, message in (({'umask': '0999'}, 'octal mask'), ({'oom_score_adj': 1001}, '-1000')):
        with pytest.raises(RuncibleError, match=message):
            env.run(**args(env, **params))


def cgroup_file(pid, controller, name):
    with open('/proc/%d/cgroup' % pid) as handle:
        for line in handle:
            _number, controllers, path = line.rstrip('\n').split(':', 2)
            if controller in controllers.split(','):
                with open(os.path.join('/sys/fs/cgroup', controller, path.lstrip('/'), name)) as value:
                    return value.read().strip()
    return None


needs_v1 = pytest.mark.skipif(cgroups.cgroup_mode() == 'unified', reason='cgroup v1 files (this host runs v2)')


@needs_v1
def test_cpu_quota_and_period_four_ways_live_and_drift(env):
    env.four_ways(args(env, cpu_quota=50000, cpu_period=200000))
    pid = env.inspect(NAME)['pid']
    assert (cgroup_file(pid, 'cpu', 'cpu.cfs_quota_us'), cgroup_file(pid, 'cpu', 'cpu.cfs_period_us')) == ('50000', '200000')
    updated = env.run(**args(env, cpu_quota=20000, cpu_period=200000))
    assert updated['actions'] == ['updated'] and env.inspect(NAME)['pid'] == pid
    assert cgroup_file(pid, 'cpu', 'cpu.cfs_quota_us') == '20000'
    # A hand edit of the cgroup shows as drift and is put back.
    with open('/proc/%d/cgroup' % pid) as handle:
        path = [line.split(':', 2)[2].strip() for line in handle if 'cpu' in line.split(':')[1].split(',')][0]
    with open(os.path.join('/sys/fs/cgroup/cpu', path.lstrip('/'), 'cpu.cfs_quota_us'), 'w') as handle:
        handle.write('90000')
    fixed = env.run(**args(env, cpu_quota=20000, cpu_period=200000))
    assert fixed['actions'] == ['updated'] and fixed['diff']['before']['cpu_quota'] == 90000
    # No limit again, live.
    assert env.run(**args(env, cpu_quota=0))['actions'] == ['updated']
    assert cgroup_file(pid, 'cpu', 'cpu.cfs_quota_us') == '-1'
    with pytest.raises(RuncibleError, match='cpus and cpu_quota and cpu_period exclude each other'):
        env.run(**args(env, cpus=0.5, cpu_quota=30000))
    # Moving to cpu_quota with "cpus: 0" (as the message says) is idempotent: cpus 0 asks for no limit of its own.
    assert env.run(**args(env, cpus=0, cpu_quota=30000, cpu_period=200000))['actions'] == ['updated']
    assert env.run(**args(env, cpus=0, cpu_quota=30000, cpu_period=200000))['changed'] is False


@needs_v1
def test_memory_swappiness_four_ways(env):
    if not os.path.exists('/sys/fs/cgroup/memory/memory.swappiness'):
        pytest.skip('no memory.swappiness in this host\'s memory cgroup')
    env.four_ways(args(env, memory_swappiness=7))
    assert cgroup_file(env.inspect(NAME)['pid'], 'memory', 'memory.swappiness') == '7'
    with pytest.raises(RuncibleError, match='from 0 to 100'):
        env.run(**args(env, memory_swappiness=101))


def a_block_device():
    for name in sorted(os.listdir('/sys/block')):
        path = '/dev/' + name
        if os.path.exists(path) and stat.S_ISBLK(os.stat(path).st_mode) and not name.startswith(('ram', 'zram')):
            return path
    return None


@needs_v1
def test_device_limits_four_ways_in_the_blkio_cgroup(env):
    device = a_block_device()
    if device is None:
        pytest.skip('no block device on this host')
    rdev = os.stat(device).st_rdev
    numbers = '%d:%d' % (os.major(rdev), os.minor(rdev))
    results = env.four_ways(args(env, device_read_bps=['%s:10m' % device], device_write_iops=[
        {'path': device, 'rate': 300}]))
    assert results[1]['container']['config']['device_read_bps'] == ['%s:%d' % (device, 10 * 1024 * 1024)]
    pid = env.inspect(NAME)['pid']
    assert cgroup_file(pid, 'blkio', 'blkio.throttle.read_bps_device') == '%s %d' % (numbers, 10 * 1024 * 1024)
    assert cgroup_file(pid, 'blkio', 'blkio.throttle.write_iops_device') == '%s 300' % numbers
    assert env.run(**args(env, device_read_bps=['%s:10485760' % device], device_write_iops=['%s:300' % device]))[
        'changed'] is False
    for bad, message in ((['/dev/null:1m'], 'not a block device'), (['%s:0' % device], 'above 0'),
                         (['sda'], 'DEVICE:RATE')):
        with pytest.raises(RuncibleError, match=message):
            env.run(**args(env, device_read_bps=bad))


def test_wait_fails_a_start_that_crashes_with_its_exit_code_and_logs(env):
    crash = ['sh', '-c', 'echo starting up; echo "config missing" >&2; sleep 0.3; exit 3']
    with pytest.raises(RuncibleError, match=r'(?s)exited with 3 within 2 s of its start.*config missing'):
        env.run(**args(env, command=crash, wait=2))
    assert env.inspect(NAME)['status'] == 'stopped' and env.inspect(NAME)['exit_code'] == 3
    # A process that stays up passes, and an idempotent run does not wait at all.
    started = env.run(**args(env, wait=0.5))
    assert started['actions'] == ['recreated', 'started'] and started['container']['status'] == 'running'
    began = time.monotonic()
    assert env.run(**args(env, wait=5))['changed'] is False
    assert time.monotonic() - began < 1.0
    with pytest.raises(RuncibleError, match='from 0 to'):
        env.run(**args(env, wait=-1))


def test_wait_with_stopped_lets_a_job_finish_and_reports_its_exit_code(env):
    job = ['sh', '-c', 'sleep 0.5; echo done; exit 7']
    env.run(**args(env, command=job))
    result = env.run(**args(env, command=job, state='stopped', wait=10))
    assert result['changed'] is False and result['actions'] == []  # it ended by itself
    assert result['container']['status'] == 'stopped' and result['container']['exit_code'] == 7
    # Without enough time the stop signal ends it (a change).
    env.run(**args(env, command=job, state='started'))
    stopped = env.run(**args(env, command=job, state='stopped', wait=0.1))
    assert stopped['actions'] == ['stopped']


def test_tty_four_ways_the_process_has_a_terminal_and_conmon_logs_it(env):
    command = ['sh', '-c', 'tty; test -t 0 && echo stdin-is-a-tty; ' + LOOP]
    results = env.four_ways(args(env, command=command, tty=True))
    assert results[1]['container']['config']['tty'] is True
    pid = env.inspect(NAME)['pid']
    assert os.readlink('/proc/%d/fd/0' % pid) == os.readlink('/proc/%d/fd/1' % pid)
    from conftest import read_log, wait_for
    log = env.inspect(NAME)['log_path']
    assert wait_for(lambda: 'stdin-is-a-tty' in read_log(log))
    assert read_log(log)[0] == '/dev/pts/0'
    assert run_in(env, 'test -t 0 || echo exec-has-pipes').strip() == 'exec-has-pipes'
    assert env.run(**args(env, command=command, tty=False))['actions'] == ['recreated', 'started']
