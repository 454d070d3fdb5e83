# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ulimits and sysctls on the real runc: what the container's processes see, four ways, and what is refused."""

from __future__ import annotations

import resource

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _exec
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def run_in(env, name, script):
    result = _exec.run({'container': name, 'command': ['sh', '-c', script], 'root': env.root,
                        'run_root': env.run_root}, check_mode=False)
    return result['stdout'] + result['stderr']


def args(env, **params):
    base = {'name': 'test-limits', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'network': 'none',
            'stop_timeout': 1}
    base.update(params)
    return base


def test_ulimits_four_ways_reach_the_process_and_its_execs(env):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted_hard = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    results = env.four_ways(args(env, ulimits={'nofile': '1024:%d' % wanted_hard, 'RLIMIT_CORE': 0,
                                               'nproc': {'soft': 500, 'hard': 600}}))
    assert results[1]['container']['config']['ulimits'] == {
        'nofile': {'soft': 1024, 'hard': wanted_hard}, 'core': {'soft': 0, 'hard': 0},
        'nproc': {'soft': 500, 'hard': 600}}
    pid = env.inspect('test-limits')['pid']
    with open('/proc/%d/limits' % pid) as handle:
        limits = handle.read()
    assert [line.split()[3:5] for line in limits.splitlines() if line.startswith('Max open files')] == [
        ['1024', str(wanted_hard)]]
    assert [line.split()[2:4] for line in limits.splitlines() if line.startswith('Max processes')] == [['500', '600']]
    out = run_in(env, 'test-limits', 'ulimit -n; ulimit -c')
    assert out.split() == ['1024', '0'], out
    # Another limit recreates; the same limits in another spelling do not.
    changed = env.run(**args(env, ulimits={'nofile': 2048}))
    assert changed['actions'] == ['recreated', 'started']
    assert env.run(**args(env, ulimits={'RLIMIT_NOFILE': '2048:2048'}))['changed'] is False


def test_ulimits_the_host_cannot_give_or_that_make_no_sense_are_refused(env):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cases = [({'nofile': '10:5'}, 'soft limit 10 is above the hard limit 5'), ({'files': 10}, 'not a limit'),
             ({'nofile': 'lots'}, 'not a number')]
    if hard != resource.RLIM_INFINITY:
        cases.append(({'nofile': hard + 1}, "above this host's hard limit"))
    for limits, message in cases:
        with pytest.raises(RuncibleError, match=message):
            env.run(**args(env, ulimits=limits))
    assert env.inspect('test-limits') is None


def host_settings():
    found = []
    for path in ('/proc/sys/net/ipv4/ping_group_range', '/proc/sys/kernel/shmmni', '/proc/sys/fs/mqueue/msg_max'):
        with open(path) as handle:
            found.append(handle.read().split())
    return found


def test_sysctls_four_ways_in_the_containers_own_namespaces(env):
    before = host_settings()
    results = env.four_ways(args(env, sysctls={'net.ipv4.ping_group_range': '0 2147483647',
                                               'kernel/shmmni': '1024', 'fs.mqueue.msg_max': '20'}))
    assert results[1]['container']['config']['sysctls'] == {
        'net.ipv4.ping_group_range': '0 2147483647', 'kernel.shmmni': '1024', 'fs.mqueue.msg_max': '20'}
    script = 'cat /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/shmmni /proc/sys/fs/mqueue/msg_max'
    out = run_in(env, 'test-limits', script)
    assert out.split() == ['0', '2147483647', '1024', '20'], out
    assert host_settings() == before  # the container's namespaces changed, not the host's


def test_host_wide_sysctls_and_net_with_the_host_network_are_refused(env):
    for settings, extra, message in (({'kernel.panic': '1'}, {}, 'not a setting of the container'),
                                     ({'vm.swappiness': '1'}, {}, 'not a setting of the container'),
                                     ({'net.ipv4.ip_forward': '1'}, {'network': 'host'}, 'network of the container'),
                                     ({'bad key!': '1'}, {}, 'not a kernel setting name'),
                                     ({'net.core.somaxconn': '1\n2'}, {}, 'one line')):
        with pytest.raises(RuncibleError, match=message):
            env.run(**args(env, sysctls=settings, **extra))
    assert env.inspect('test-limits') is None
