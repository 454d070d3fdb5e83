# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""runcible.oci.container through the Python API: what the container really gets, and cleanup."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError
from conftest import read_log, wait_for


def _tree_digest(path):
    digest = hashlib.sha256()
    for directory, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files + dirs):
            full = os.path.join(directory, name)
            stat = os.lstat(full)
            digest.update(('%s %o %d %d' % (os.path.relpath(full, path), stat.st_mode, stat.st_size,
                                            stat.st_mtime_ns)).encode())
    return digest.hexdigest()


def _run_and_collect(e, name, script, **params):
    result = e.run(name=name, rootfs=e.rootfs, command=['sh', '-c', script], **params)
    assert result['changed']
    assert wait_for(lambda: e.inspect(name)['status'] == 'stopped'), read_log(result['container']['log_path'])
    info = e.inspect(name)
    assert info['exit_code'] == 0, read_log(info['log_path'])
    return read_log(info['log_path'])


def test_process_gets_its_config(env, tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'hello.txt').write_text('from the host\n')
    script = ('id -u; id -g; pwd; hostname; echo "FOO=$FOO"; cat /data/hello.txt; '
              'touch /data/x 2>/dev/null && echo data-rw || echo data-ro; '
              'touch /rootfile 2>/dev/null && echo root-rw || echo root-ro; '
              'ls /sys/class/net | tr "\\n" " "; echo; grep -c . /proc/self/mounts >/dev/null && echo ok')
    lines = _run_and_collect(env, 'test-cfg', script, user='app', workdir='/tmp', hostname='box1',
                             env={'FOO': 'bar baz'}, mounts=['%s:/data:ro' % data], read_only=True, network='none')
    assert lines[:9] == ['1000', '1000', '/tmp', 'box1', 'FOO=bar baz', 'from the host', 'data-ro', 'root-ro',
                         'lo '], lines
    assert not (data / 'x').exists()
    config = env.inspect('test-cfg')['config']
    assert config['user'] == '1000:1000' and config['mounts'][0]['options'] == ['rbind', 'ro']


def test_network_host_sees_host_interfaces(env):
    lines = _run_and_collect(env, 'test-hostnet', 'ls /sys/class/net | tr "\\n" " "', network='host')
    assert sorted(lines[0].split()) == sorted(os.listdir('/sys/class/net'))


def test_rlimits_and_capabilities(env):
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    lines = _run_and_collect(env, 'test-limits', 'ulimit -n; grep CapEff /proc/self/status')
    assert int(lines[0]) == min(hard, 1048576)
    numbers = {'CAP_CHOWN': 0, 'CAP_DAC_OVERRIDE': 1, 'CAP_FOWNER': 3, 'CAP_FSETID': 4, 'CAP_KILL': 5,
               'CAP_SETGID': 6, 'CAP_SETUID': 7, 'CAP_SETPCAP': 8, 'CAP_NET_BIND_SERVICE': 10,
               'CAP_SYS_CHROOT': 18, 'CAP_SETFCAP': 31}  # podman's default set, no NET_RAW/MKNOD/AUDIT_WRITE
    assert int(lines[1].split()[1], 16) == sum(1 << bit for bit in numbers.values())


def test_resource_limits_in_cgroups(env):
    result = env.run(name='test-cg', rootfs=env.rootfs, command=['sh', '-c', 'sleep 1000'],
                     memory='96m', cpus=0.5, pids_limit=64, stop_timeout=0)
    pid = result['container']['pid']
    with open('/proc/%d/cgroup' % pid) as handle:
        cgroups = dict((line.split(':')[1], line.strip().split(':')[2]) for line in handle)
    cid = result['container']['id']
    memory_path = cgroups.get('memory') or cgroups['']
    assert memory_path.endswith('runcible-' + cid)
    if os.path.exists('/sys/fs/cgroup/memory'):
        base = '/sys/fs/cgroup/memory' + memory_path
        assert int(open(base + '/memory.limit_in_bytes').read()) == 96 << 20
        assert int(open('/sys/fs/cgroup/pids' + cgroups['pids'] + '/pids.max').read()) == 64
        assert int(open('/sys/fs/cgroup/cpu' + cgroups.get('cpu,cpuacct', cgroups.get('cpu', '')) +
                        '/cpu.cfs_quota_us').read()) == 50000
    else:
        base = '/sys/fs/cgroup' + memory_path
        assert int(open(base + '/memory.max').read()) == 96 << 20
        assert int(open(base + '/pids.max').read()) == 64
    cgroup_dir = base
    env.run(name='test-cg', state='absent')
    assert not os.path.exists(cgroup_dir), 'the container cgroup is removed with the container'


def test_source_rootfs_unchanged_and_removal_leaves_nothing(env):
    before = _tree_digest(env.rootfs)
    result = env.run(name='test-overlay', rootfs=env.rootfs,
                     command=['sh', '-c', 'echo changed > /etc/motd; rm /bin/true; mkdir /newdir; echo done'])
    container = result['container']
    assert wait_for(lambda: env.inspect('test-overlay')['status'] == 'stopped')
    upper = os.path.join(env.root, 'containers', 'test-overlay', 'upper')
    assert open(os.path.join(upper, 'etc', 'motd')).read() == 'changed\n'
    assert _tree_digest(env.rootfs) == before, 'the source rootfs must never change'
    # Start again, same command: its own earlier writes are still there, so rm and mkdir now fail.
    env.run(name='test-overlay')
    expected = ["rm: can't remove '/bin/true': No such file or directory", 'done',
                "mkdir: can't create directory '/newdir': File exists"]
    assert wait_for(lambda: sorted(read_log(container['log_path'])[1:]) == sorted(expected)), \
        read_log(container['log_path'])
    env.run(name='test-overlay', state='absent')
    assert env.leftovers() == []
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-overlay'))
    assert not os.path.exists(os.path.join(env.run_root, 'containers', container['id']))
    assert not os.path.exists(os.path.join(env.run_root, 'exits', container['id']))
    assert _tree_digest(env.rootfs) == before


def test_direct_rootfs_mode(env, tmp_path):
    import shutil
    private = tmp_path / 'rootfs'
    shutil.copytree(env.rootfs, str(private), symlinks=True)
    result = env.run(name='test-direct', rootfs=str(private), rootfs_mode='direct',
                     command=['sh', '-c', 'echo hi > /written'])
    assert wait_for(lambda: env.inspect('test-direct')['status'] == 'stopped')
    assert (private / 'written').read_text() == 'hi\n'
    assert result['container']['rootfs'] == str(private)
    assert not env.mounts()


def test_reboot_makes_running_records_stopped(env):
    result = env.run(name='test-boot', rootfs=env.rootfs, command=['sh', '-c', 'sleep 1000'], stop_timeout=0)
    record_path = os.path.join(env.root, 'containers', 'test-boot', 'record.json')
    record = json.load(open(record_path))
    record['boot_id'] = 'an-earlier-boot'
    with open(record_path, 'w') as handle:
        json.dump(record, handle)
    info = env.inspect('test-boot')
    assert info['status'] == 'stopped' and info['pid'] == 0
    # The real process is still there (we faked the reboot): removal still finds and ends it.
    assert os.path.exists('/proc/%d' % result['container']['pid'])
    env.run(name='test-boot', state='absent')
    assert wait_for(lambda: not os.path.exists('/proc/%d' % result['container']['pid']))


def test_runtime_failure_message_is_the_runtimes(env):
    with pytest.raises(RuncibleError) as caught:
        env.run(name='test-fail', rootfs=env.rootfs, command=['/missing'])
    assert 'runc' in caught.value.msg and 'no such file' in caught.value.msg.lower()
    assert env.leftovers() == []
