# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""runcible.oci.container through ansible-playbook: every transition four ways, diffs, failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import time

import pytest

from conftest import read_log, wait_for

# A process that stops at once on SIGTERM (PID 1 ignores signals it has no handler for).
LOOP = "trap 'exit 0' TERM; echo ready; while true; do sleep 0.05; done"


def test_lifecycle_four_ways(env):
    args = {'name': 'test-life', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'memory': '64m'}
    results = env.four_ways(args)
    check, apply, again, check_again = results
    assert check['actions'] == ['created', 'started']
    assert check['container']['id'] is None
    assert check['diff']['before'] == {'status': 'absent'}
    assert check['diff']['after']['memory'] == 64 * 1024 * 1024
    assert apply['actions'] == ['created', 'started']
    container = apply['container']
    assert container['status'] == 'running' and container['pid'] > 0 and container['conmon_pid'] > 0
    assert again['container']['pid'] == container['pid'], 'an idempotent run must not restart the process'
    assert again['actions'] == [] and check_again['actions'] == []
    assert os.path.exists('/proc/%d' % container['pid'])
    assert wait_for(lambda: 'ready' in read_log(container['log_path']))

    # Same value spelt differently: still no change.
    same = dict(args, memory=67108864)
    env.four_ways(same, expect=(False, False, False, False))

    stopped = env.four_ways(dict(name='test-life', state='stopped'))
    assert stopped[0]['actions'] == ['stopped'] and stopped[0]['container']['status'] == 'stopped'
    assert stopped[1]['container']['status'] == 'stopped'
    assert stopped[1]['container']['exit_code'] == 0
    assert stopped[1]['container']['pid'] == 0
    assert not os.path.exists('/proc/%d' % container['pid'])
    assert stopped[1]['diff'] == {'before': {'status': 'running'}, 'after': {'status': 'stopped'}}

    started = env.four_ways(dict(name='test-life', state='started'))
    assert started[1]['actions'] == ['started']
    assert started[1]['container']['id'] == container['id'], 'start again keeps the same container'
    assert started[1]['container']['pid'] not in (0, container['pid'])

    paused = env.four_ways(dict(name='test-life', state='paused'))
    assert paused[1]['container']['status'] == 'paused'
    unpaused = env.four_ways(dict(name='test-life', state='started'))
    assert unpaused[1]['actions'] == ['unpaused']
    assert unpaused[1]['container']['pid'] == started[1]['container']['pid']

    removed = env.four_ways(dict(name='test-life', state='absent'))
    assert removed[1]['actions'] == ['removed'] and removed[1]['container'] == {}
    assert removed[1]['diff'] == {'before': {'status': 'running'}, 'after': {'status': 'absent'}}
    assert env.leftovers() == []


def test_change_recreates_and_diff_shows_only_changes(env):
    args = {'name': 'test-diff', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'memory': '64m',
            'env': {'A': '1'}, 'stop_timeout': 5}
    first = env.playbook([{'runcible.oci.container': args}])[0]
    changed = dict(args, memory='1g', env={'A': '1', 'B': 2})
    results = env.four_ways(changed)
    check, apply = results[0], results[1]
    for result in (check, apply):
        assert result['actions'] == ['recreated', 'started']
        assert result['diff']['before'] == {'memory': 64 << 20, 'env': {'A': '1'}, 'status': 'running'}
        assert result['diff']['after'] == {'memory': 1 << 30, 'env': {'A': '1', 'B': '2'}, 'status': 'running'}
    assert apply['container']['id'] != first['container']['id']
    assert apply['container']['config']['memory'] == 1 << 30

    # stop_timeout changes how we stop, not what runs: updated in place, same process.
    updated = env.four_ways(dict(changed, stop_timeout=1))
    assert updated[1]['actions'] == ['updated']
    assert updated[1]['container']['pid'] == apply['container']['pid']
    assert updated[1]['diff'] == {'before': {'stop_timeout': 5, 'status': 'running'},
                                  'after': {'stop_timeout': 1, 'status': 'running'}}

    # comparisons: ignore env, then a different env does not recreate.
    ignored = env.four_ways(dict(changed, stop_timeout=1, env={'C': '3'}, comparisons={'env': 'ignore'}),
                            expect=(False, False, False, False))
    assert ignored[1]['container']['pid'] == apply['container']['pid']
    more = env.four_ways(dict(changed, stop_timeout=1, env={'B': '2'}, comparisons={'env': 'allow_more_present'}),
                         expect=(False, False, False, False))
    assert more[1]['container']['pid'] == apply['container']['pid']

    forced = env.playbook([{'runcible.oci.container': dict(changed, stop_timeout=1, recreate=True)}])[0]
    assert forced['actions'] == ['recreated', 'started'] and forced['changed']
    assert forced['container']['id'] != apply['container']['id']


def test_shm_size_four_ways(env):
    """/dev/shm is 64m by default (also for records older than the option), the given size, a change recreates."""
    args = {'name': 'test-shm', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP]}
    show = {'runcible.oci.container_exec': {'name': 'test-shm', 'argv': ['grep', ' /dev/shm ', '/proc/mounts']}}
    first = env.playbook([{'runcible.oci.container': dict(args)}, dict(show)])
    assert first[0]['container']['config']['shm_size'] == 64 << 20
    assert 'size=65536k' in first[1]['stdout'], first[1]['stdout']
    # A record written before the option existed has no shm_size: it means the 64m it was made with.
    path = os.path.join(env.root, 'containers', 'test-shm', 'record.json')
    with open(path) as handle:
        record = json.load(handle)
    del record['config']['shm_size']
    with open(path, 'w') as handle:
        json.dump(record, handle)
    env.four_ways(dict(args), expect=(False, False, False, False))
    env.four_ways(dict(args, shm_size='64m'), expect=(False, False, False, False))

    results = env.four_ways(dict(args, shm_size='128m'))
    for result in results[:2]:
        assert result['actions'] == ['recreated', 'started']
        assert result['diff']['before'] == {'shm_size': 64 << 20, 'status': 'running'}
        assert result['diff']['after'] == {'shm_size': 128 << 20, 'status': 'running'}
    [shown] = env.playbook([dict(show)])
    assert 'size=131072k' in shown['stdout'], shown['stdout']
    # Spelt otherwise, the same size; not given, the container keeps what it has.
    env.four_ways(dict(args, shm_size=128 * 1024 * 1024 - 1000), expect=(False, False, False, False))
    env.four_ways(dict(args), expect=(False, False, False, False))


def test_state_stopped_creates_without_running_and_created_state(env):
    args = {'name': 'test-created', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'state': 'created'}
    results = env.four_ways(args)
    assert results[1]['container']['status'] == 'created'
    assert results[1]['container']['pid'] > 0, 'created: the process waits for runtime start'
    started = env.playbook([{'runcible.oci.container': dict(args, state='started')}])[0]
    assert started['actions'] == ['started'] and started['container']['pid'] == results[1]['container']['pid']
    # created never stops a running container
    again = env.playbook([{'runcible.oci.container': args}])[0]
    assert not again['changed'] and again['container']['status'] == 'running'

    cold = env.four_ways({'name': 'test-cold', 'rootfs': env.rootfs, 'command': 'true', 'state': 'stopped'})
    assert cold[1]['actions'] == ['created'] and cold[1]['container']['status'] == 'stopped'
    assert cold[1]['container']['pid'] == 0 and cold[1]['container']['conmon_pid'] == 0
    assert not [m for m in env.mounts() if '/test-cold/' in m], 'a container that never ran has no mount'


def test_exit_code_and_natural_exit(env):
    result = env.playbook([{'runcible.oci.container': {
        'name': 'test-exit', 'rootfs': env.rootfs, 'command': ['sh', '-c', 'echo bye; exit 3']}}])[0]
    assert result['changed']
    assert wait_for(lambda: env.inspect('test-exit')['status'] == 'stopped')
    info = env.inspect('test-exit')
    assert info['exit_code'] == 3 and info['finished_at']
    assert read_log(info['log_path']) == ['bye']
    # It exited on its own: state=stopped wants no change, and releases its mount.
    env.four_ways({'name': 'test-exit', 'state': 'stopped'}, expect=(False, False, False, False))
    assert not env.mounts()
    # state=started starts it again: it runs and exits again with 3.
    again = env.playbook([{'runcible.oci.container': {'name': 'test-exit'}}])[0]
    assert again['actions'] == ['started']
    assert wait_for(lambda: len(read_log(info['log_path'])) == 2)


def test_killed_with_conmon_is_stopped_then_started(env):
    args = {'name': 'test-kill', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP]}
    first = env.playbook([{'runcible.oci.container': args}])[0]['container']
    os.kill(first['conmon_pid'], signal.SIGKILL)
    os.kill(first['pid'], signal.SIGKILL)
    assert wait_for(lambda: env.inspect('test-kill')['status'] == 'stopped')
    assert env.inspect('test-kill')['exit_code'] is None
    results = env.four_ways(args)
    assert results[0]['diff'] == {'before': {'status': 'stopped'}, 'after': {'status': 'running'}}
    assert results[1]['actions'] == ['started']
    assert results[1]['container']['pid'] not in (0, first['pid'])
    assert results[1]['container']['id'] == first['id']


def test_stop_signal_and_timeout(env):
    # USR1 ends it with 7; TERM is ignored, so only stop_signal can end it gracefully.
    command = "trap 'exit 7' USR1; trap '' TERM; while true; do sleep 0.05; done"
    args = {'name': 'test-sig', 'rootfs': env.rootfs, 'command': ['sh', '-c', command], 'stop_signal': 'SIGUSR1'}
    env.playbook([{'runcible.oci.container': args}])
    stopped = env.playbook([{'runcible.oci.container': {'name': 'test-sig', 'state': 'stopped'}}])[0]
    assert stopped['container']['exit_code'] == 7
    # With the default SIGTERM ignored, stop_timeout 1 ends in SIGKILL (137).
    env.playbook([{'runcible.oci.container': dict(args, stop_signal='TERM', stop_timeout=1)}])
    stopped = env.playbook([{'runcible.oci.container': {'name': 'test-sig', 'state': 'stopped'}}])[0]
    assert stopped['container']['exit_code'] == 137


BAD_INPUTS = [
    ({'name': 'bad/name'}, 'invalid container name'),
    ({'name': 'bad..name'}, 'invalid container name'),
    ({'name': 'bad name'}, 'invalid container name'),
    ({'name': 'x' * 129}, 'invalid container name'),
    ({'rootfs': '/nonexistent/rootfs'}, 'does not exist'),
    ({'rootfs': '/etc/hostname'}, 'not a directory'),
    ({'mounts': ['/tmp:relative/target']}, 'not an absolute path'),
    ({'mounts': ['/nonexistent-src:/data']}, 'does not exist on the host'),
    ({'memory': '64 lots'}, 'is not a size'),
    ({'memory': '-5m'}, 'is not a size'),
    ({'shm_size': '100'}, 'too small for a /dev/shm'),
    ({'shm_size': 'lots'}, 'shm_size: \'lots\' is not a size'),
    ({'stop_signal': 'SIGNOPE'}, 'unknown signal'),
    ({'runtime': 'dockerd'}, 'unknown runtime'),
    ({'runtime': 'crun'}, 'crun'),
    ({'user': 'nosuchuser'}, 'not in the root filesystem'),
    ({'command': None}, 'needs command'),
]


@pytest.mark.parametrize('override,message', BAD_INPUTS, ids=[m for _o, m in BAD_INPUTS])
def test_bad_input_fails_clearly_and_changes_nothing(env, override, message):
    args = {'name': 'test-bad', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP]}
    args.update(override)
    args = dict((key, value) for key, value in args.items() if value is not None)
    if override.get('runtime') == 'crun' and not os.path.exists('/sys/fs/cgroup/unified/cgroup.controllers'):
        pytest.skip('crun refuses only hybrid cgroup hosts; this host is not hybrid')
    results = env.playbook([{'runcible.oci.container': args, 'ignore_errors': True}])
    assert results[0]['_status'] == 'failed'
    assert message in results[0]['msg'], results[0]['msg']
    assert not os.path.exists(os.path.join(env.root, 'containers')) or not os.listdir(os.path.join(env.root, 'containers'))
    assert env.leftovers() == [] and not env.conmon_pids()


@pytest.mark.parametrize('fifo', ['/etc/passwd', '/etc/group'])
def test_a_fifo_for_the_user_database_fails_the_launch_at_once(env, tmp_path, fifo):
    """runc opens /etc/passwd and /etc/group inside the container to set up its user, and a FIFO there (an image
    author's, or one the container's own processes leave in its upper dir) would block it, and the task, for good."""
    rootfs = str(tmp_path / 'rootfs')
    shutil.copytree(env.rootfs, rootfs, symlinks=True)
    os.unlink(rootfs + fifo)
    os.mkfifo(rootfs + fifo)
    args = {'name': 'test-fifo-db', 'rootfs': rootfs, 'command': ['sh', '-c', LOOP], 'network': 'none'}
    message = 'cannot start container test-fifo-db: %s in its root filesystem is a FIFO, not a regular file' % fifo
    started = time.monotonic()
    [failed] = env.playbook([{'runcible.oci.container': dict(args), 'ignore_errors': True}])
    assert failed['_status'] == 'failed' and message in failed['msg'], failed['msg']
    assert time.monotonic() - started < 60
    assert env.leftovers() == []

    # Made by the container's own processes, in its upper dir: the next start fails the same way, nothing mounted.
    os.unlink(rootfs + fifo)
    shutil.copy(env.rootfs + fifo, rootfs + fifo)
    env.run(**args)
    made = env.playbook([{'runcible.oci.container_exec': {'name': 'test-fifo-db',
                                                          'argv': ['sh', '-c', 'rm %s && mkfifo %s' % (fifo, fifo)]}},
                         {'runcible.oci.container': {'name': 'test-fifo-db', 'state': 'stopped'}},
                         {'runcible.oci.container': {'name': 'test-fifo-db', 'state': 'started'}, 'ignore_errors': True}])
    assert made[2]['_status'] == 'failed' and message in made[2]['msg'], made[2]['msg']
    assert env.inspect('test-fifo-db')['status'] == 'stopped'
    assert env.mounts() == [] and not env.conmon_pids()
    assert stat.S_ISREG(os.stat(rootfs + fifo).st_mode), 'the container wrote into its upper dir only'


def test_failed_runtime_create_leaves_nothing(env):
    """The runtime fails (no such executable in the rootfs): its own error text, nothing left behind."""
    args = {'name': 'test-nocmd', 'rootfs': env.rootfs, 'command': ['/no/such/program']}
    results = env.playbook([{'runcible.oci.container': args, 'ignore_errors': True}])
    assert results[0]['_status'] == 'failed'
    assert 'no such file or directory' in results[0]['msg'].lower(), results[0]['msg']
    assert env.leftovers() == []
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-nocmd'))


def test_check_mode_writes_nothing(env):
    results = env.playbook([{'runcible.oci.container': {'name': 'test-check', 'rootfs': env.rootfs, 'command': 'true'},
                             'check_mode': True}])
    assert results[0]['changed']
    assert not os.path.exists(env.root) and not os.path.exists(env.run_root)


def test_async_parallel_creates(env):
    tasks = [{
        'name': 'create in parallel',
        'runcible.oci.container': {'name': 'test-par-{{ item }}', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP]},
        'loop': list(range(8)), 'async': 120, 'poll': 0, 'register': 'jobs'}, {
        'name': 'wait',
        'ansible.builtin.async_status': {'jid': '{{ item.ansible_job_id }}'},
        'loop': '{{ jobs.results }}', 'register': 'done', 'until': 'done.finished', 'retries': 300, 'delay': 0.2}]
    env.playbook(tasks)
    names = env.engine.store.names()
    assert names == sorted('test-par-%d' % i for i in range(8))
    pids = set()
    for name in names:
        info = env.inspect(name)
        assert info['status'] == 'running', info
        pids.add(info['pid'])
    assert len(pids) == 8
    again = env.playbook([{'runcible.oci.container': {'name': 'test-par-{{ item }}', 'rootfs': env.rootfs,
                                                      'command': ['sh', '-c', LOOP]},
                           'loop': list(range(8)), 'register': 'again'}])
    assert all(not result['changed'] for result in again[0]['results'])


def test_adhoc_command(env):
    import subprocess
    import sys
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
            '-e', 'ansible_python_interpreter=' + sys.executable, '-m', 'runcible.oci.container',
            '-a', 'name=test-adhoc rootfs=%s command=true state=stopped root=%s run_root=%s' % (
                env.rootfs, env.root, env.run_root)]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout.decode()
    assert proc.returncode == 0, output
    assert 'CHANGED' in output and '"created"' in output
    assert env.inspect('test-adhoc')['status'] == 'stopped'
