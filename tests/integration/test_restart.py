# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart policies on the real runc and conmon, with no daemon: conmon's exit command brings a dead container
back (always, on-failure with retries), never one a task stopped or removed, and backs off a crash loop."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import payload
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError
from conftest import wait_for

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
NAME = 'test-restart'


def args(store, **params):
    base = {'name': NAME, 'rootfs': store.rootfs, 'command': ['sh', '-c', LOOP], 'network': 'none', 'stop_timeout': 1}
    base.update(params)
    return base


def running_again(env, old_pid):
    """The container's view when it runs with another process than ``old_pid``, else None."""
    now = env.inspect(NAME)
    return now if now['status'] == 'running' and now['pid'] not in (0, old_pid) else None


def restart_log(env, container_id):
    try:
        with open(os.path.join(env.run_root, 'containers', container_id, 'restart.log')) as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def test_always_four_ways_a_killed_process_is_back_within_a_second_through_the_playbook_payload(env):
    results = env.four_ways(args(env, restart_policy='always'))
    first = env.inspect(NAME)
    assert results[1]['container']['config']['restart_policy'] == 'always'
    # The exit command runs the library installed from the module's payload (ansible-playbook: AnsiballZ).
    lib = sorted(os.listdir(os.path.join(env.root, 'lib')), key=lambda entry: entry == 'current')  # the version, then 'current'
    assert len(lib) == 2 and lib[1] == 'current' and os.path.exists(os.path.join(env.root, 'lib', lib[0], payload.LAUNCHER))
    killed = time.monotonic()
    os.kill(first['pid'], signal.SIGKILL)
    back = wait_for(lambda: running_again(env, first['pid']), timeout=5)
    assert back, restart_log(env, first['id'])
    latency = time.monotonic() - killed
    assert latency < 2.0 and back['id'] == first['id'] and back['restart_count'] == 1
    assert wait_for(lambda: restart_log(env, first['id']), timeout=5)  # written once the start is done
    assert restart_log(env, first['id'])[-1].split(' ', 1)[1].startswith('restarted (always, exit 137')
    # A policy change is a record update: the same process, no recreate.
    changed = env.run(**args(env, restart_policy='on-failure', restart_retries=3))
    assert changed['actions'] == ['updated'] and env.inspect(NAME)['pid'] == back['pid']
    assert 'warnings' not in changed


def test_a_container_started_without_a_policy_gets_it_from_its_next_start(env):
    env.run(**args(env))
    pid = env.inspect(NAME)['pid']
    changed = env.run(**args(env, restart_policy='always'))
    assert changed['actions'] == ['updated'] and 'applies from its next start' in changed['warnings'][0]
    restarted = env.run(**args(env, restart_policy='always', state='restarted'))
    assert restarted['actions'] == ['restarted']
    new = env.inspect(NAME)['pid']
    os.kill(new, signal.SIGKILL)
    assert wait_for(lambda: running_again(env, new), timeout=5)


def test_on_failure_retries_then_stays_stopped_and_exit_0_is_not_restarted(env):
    env.run(**args(env, command=['sh', '-c', 'sleep 0.2; exit 3'], restart_policy='on-failure', restart_retries=2))
    container_id = env.inspect(NAME)['id']
    assert wait_for(lambda: env.inspect(NAME)['restart_count'] == 2 and env.inspect(NAME)['status'] == 'stopped'
                    and len(restart_log(env, container_id)) == 3, timeout=10), restart_log(env, container_id)
    time.sleep(1.0)
    assert env.inspect(NAME)['restart_count'] == 2 and env.inspect(NAME)['exit_code'] == 3
    assert 'no restart (on-failure, exit 3)' in restart_log(env, container_id)[-1]
    env.run(name=NAME, state='absent')
    env.run(**args(env, command=['sh', '-c', 'sleep 0.2; exit 0'], restart_policy='on-failure'))
    container_id = env.inspect(NAME)['id']
    assert wait_for(lambda: restart_log(env, container_id), timeout=5)
    assert env.inspect(NAME)['status'] == 'stopped' and env.inspect(NAME)['restart_count'] == 0
    with pytest.raises(RuncibleError, match='only restart_policy on-failure'):
        env.run(**args(env, restart_policy='always', restart_retries=2))


def test_a_crash_loop_backs_off_and_a_task_stop_wins_over_a_pending_restart(env):
    env.run(**args(env, command=['sh', '-c', 'exit 1'], restart_policy='always'))
    container_id = env.inspect(NAME)['id']
    time.sleep(3.0)
    count = env.inspect(NAME)['restart_count']
    # Delays 0, 0.1, 0.2, 0.4, 0.8, 1.6 s...: a handful in 3 s, not hundreds.
    assert 3 <= count <= 9, restart_log(env, container_id)
    stopped = env.run(**args(env, command=['sh', '-c', 'exit 1'], restart_policy='always', state='stopped'))
    assert stopped['container']['status'] == 'stopped'
    settled = env.inspect(NAME)['restart_count']
    time.sleep(3.5)  # longer than the pending back-off
    assert env.inspect(NAME)['status'] == 'stopped' and env.inspect(NAME)['restart_count'] == settled
    # Started again by a task, it is restarted again when it dies.
    env.run(**args(env, restart_policy='always'))
    pid = env.inspect(NAME)['pid']
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: running_again(env, pid), timeout=5)


def test_a_stop_or_removal_by_a_task_is_never_undone(env):
    env.run(**args(env, restart_policy='always'))
    first = env.inspect(NAME)
    env.run(**args(env, restart_policy='always', state='stopped'))
    time.sleep(1.0)
    assert env.inspect(NAME)['status'] == 'stopped' and env.inspect(NAME)['restart_count'] == 0
    assert 'stopped by a task' in restart_log(env, first['id'])[-1]
    env.run(**args(env, restart_policy='always'))
    env.run(name=NAME, state='absent')
    time.sleep(1.0)
    assert env.inspect(NAME) is None and env.conmon_pids() == []


def test_a_checkpoint_is_not_undone_by_the_restart_policy(env):
    from ansible_collections.runcible.oci.plugins.module_utils import _checkpoint
    if not os.environ.get('RUNCIBLE_CRIU'):
        pytest.skip('no CRIU that passes criu check here (RUNCIBLE_CRIU)')
    env.run(**args(env, restart_policy='always'))
    _checkpoint.run({'name': NAME, 'state': 'checkpointed', 'root': env.root, 'run_root': env.run_root})
    time.sleep(1.0)
    assert env.inspect(NAME)['status'] == 'stopped' and env.inspect(NAME)['restart_count'] == 0
    restored = _checkpoint.run({'name': NAME, 'state': 'restored', 'root': env.root, 'run_root': env.run_root})
    assert restored['container']['status'] == 'running'
    os.kill(restored['container']['pid'], signal.SIGKILL)  # restored, it is under its policy again
    assert wait_for(lambda: (running_again(env, 0) or {}).get('restart_count') == 1, timeout=5)


def test_boot_starts_always_and_unless_stopped_containers_from_their_kept_spec(env):
    """A reboot, as far as this host can have one: conmon and the process gone, the tmpfs emptied, mounts gone."""
    import shutil
    import subprocess
    from ansible_collections.runcible.oci.plugins.module_utils._runtime import restart
    env.run(**args(env, name='test-boot-always', restart_policy='always'))
    env.run(**args(env, name='test-boot-unless', restart_policy='unless-stopped'))
    env.run(**args(env, name='test-boot-unless-stopped', restart_policy='unless-stopped'))
    env.run(**args(env, name='test-boot-unless-stopped', restart_policy='unless-stopped', state='stopped'))
    env.run(**args(env, name='test-boot-no'))
    before = dict((name, env.inspect(name)) for name in ('test-boot-always', 'test-boot-unless', 'test-boot-no'))
    assert os.path.isfile(os.path.join(env.root, 'containers', 'test-boot-always', 'spec.json'))
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-boot-no', 'spec.json'))
    for container in before.values():
        os.kill(container['conmon_pid'], signal.SIGKILL)  # first: no exit command runs
        os.kill(container['pid'], signal.SIGKILL)
    assert wait_for(lambda: all(env.inspect(name)['status'] == 'stopped' for name in before), timeout=5)
    for mount in env.mounts():
        subprocess.run(['umount', mount], check=True)
    shutil.rmtree(env.run_root)
    done = restart.boot(env.root, env.run_root)
    assert done == ['test-boot-always: started (always)', 'test-boot-unless: started (unless-stopped)',
                    'test-boot-unless-stopped: stopped by a task, not started (unless-stopped)'], done
    for name in ('test-boot-always', 'test-boot-unless'):
        after = env.inspect(name)
        assert after['status'] == 'running' and after['pid'] != before[name]['pid'] and after['id'] == before[name]['id']
    assert env.inspect('test-boot-no')['status'] == 'stopped'
    assert env.inspect('test-boot-unless-stopped')['status'] == 'stopped'
    # And then a task finds them as it left them: nothing to do.
    assert env.run(**args(env, name='test-boot-always', restart_policy='always'))['changed'] is False


def test_a_python_another_user_could_change_is_refused_for_a_restart_policy(env, tmp_path):
    """Attack: a Python in a directory of uid 1000 (a virtualenv with its own copy of the interpreter) runs the task
    as root; its owner could swap it before the exit command runs it as root. The task fails and makes nothing;
    the same task without a restart policy (nothing runs after it) is fine."""
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    venv = tmp_path / 'uservenv'
    subprocess.run([sys.executable, '-m', 'venv', '--copies', '--without-pip', str(venv)], check=True)
    for directory, _dirs, files in os.walk(str(venv)):
        os.chown(directory, 1000, 1000)
        for name in files:
            os.chown(os.path.join(directory, name), 1000, 1000, follow_symlinks=False)
    python = str(venv / 'bin' / 'python3')
    task = {'name': 'test-rs-py', 'rootfs': env.rootfs, 'command': ['sleep', '60'], 'stop_timeout': 0, 'network': 'none'}
    results = env.playbook([{'name': 'policy', 'runcible.oci.container': dict(task, restart_policy='always'),
                             'ignore_errors': True}], extra_args=['-e', 'ansible_python_interpreter=' + python])
    assert results[0]['_status'] == 'failed', results
    assert 'belongs to uid 1000' in results[0]['msg'] and 'ansible_python_interpreter' in results[0]['msg'], results
    assert 'test-rs-py' not in env.engine.store.names() and not env.conmon_pids()
    results = env.playbook([{'name': 'no policy', 'runcible.oci.container': dict(task)}],
                           extra_args=['-e', 'ansible_python_interpreter=' + python])
    assert results[0]['_status'] == 'ok' and results[0]['actions'] == ['created', 'started'], results
    env.run(name='test-rs-py', state='absent')
