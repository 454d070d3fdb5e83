# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks on the real runc, evaluated on demand (no systemd here): state healthy waits and fails with the
check's output, retries make a container unhealthy, health_on_failure restarts it, container_info checks what
is due."""

from __future__ import annotations

import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _info
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError

NAME = 'test-health'
# Healthy once /tmp/ready exists, which the command makes after a moment.
SLOW_START = "sleep 1.5; touch /tmp/ready; trap 'exit 0' TERM; while true; do sleep 0.1; done"
CHECK = {'test': 'test -e /tmp/ready && echo ready || { echo not ready yet; exit 1; }', 'interval': '200ms',
         'retries': 30}


def args(store, **params):
    base = {'name': NAME, 'rootfs': store.rootfs, 'command': ['sh', '-c', SLOW_START], 'network': 'none',
            'stop_timeout': 1, 'healthcheck': CHECK}
    base.update(params)
    return base


def info(env, check_mode=False, **params):
    from ansible_collections.runcible.oci.plugins.module_utils._task import with_defaults
    params = with_defaults(_info.argument_spec(), dict({'name': NAME, 'root': env.root, 'run_root': env.run_root}, **params))
    return _info.InfoTask(params, check_mode=check_mode).run()


def test_state_healthy_four_ways_waits_for_the_check_to_pass(env):
    results = env.four_ways(args(env, state='healthy'))
    health = results[1]['container']['health']
    assert health['status'] == 'healthy' and health['failing_streak'] == 0
    assert health['log'][-1]['exit_code'] == 0 and health['log'][-1]['output'].strip() == 'ready'
    assert any(entry['exit_code'] == 1 for entry in health['log'])  # it waited through failing checks
    assert results[2]['actions'] == [] and results[2]['container']['health']['status'] == 'healthy'
    # A change of the check is a record update, no recreate.
    pid = env.inspect(NAME)['pid']
    changed = env.run(**args(env, healthcheck=dict(CHECK, interval=5)))
    assert changed['actions'] == ['updated'] and env.inspect(NAME)['pid'] == pid


def test_a_failing_check_fails_the_task_with_its_output_and_restart_acts(env):
    failing = {'test': ['sh', '-c', 'echo "db down" >&2; exit 3'], 'interval': 0.1, 'retries': 2}
    env.run(**args(env))
    with pytest.raises(RuncibleError, match=r'is unhealthy after 2 failed checks; its last check exited with 3: db down'):
        env.run(**args(env, healthcheck=failing, state='healthy'))
    assert env.inspect(NAME)['health']['status'] == 'unhealthy'
    # health_on_failure restart: a new process of the same container, health starting again.
    pid = env.inspect(NAME)['pid']
    with pytest.raises(RuncibleError, match=r'\(restarted \(unhealthy\)\)'):
        env.run(**args(env, healthcheck=failing, health_on_failure='restart', state='healthy'))
    after = env.inspect(NAME)
    assert after['status'] == 'running' and after['pid'] != pid and after['health']['log'] == []
    # A check that never passes within wait_timeout fails with its output too.
    with pytest.raises(RuncibleError, match='is starting after 0 failed checks.*not ready yet'):
        env.run(**args(env, healthcheck=dict(CHECK, start_period=60), state='healthy', wait_timeout=0.5))


def test_container_info_runs_the_checks_that_are_due_and_kill_acts(env):
    env.run(**args(env, healthcheck={'test': 'exit 1', 'interval': 0.2, 'retries': 2}, health_on_failure='kill'))
    assert info(env)['containers'][0]['health'] == {'status': 'starting', 'failing_streak': 0, 'log': []}
    assert info(env, check_health=True, check_mode=True)['containers'][0]['health']['log'] == []
    first = info(env, check_health=True)
    assert first['changed'] is False and first['containers'][0]['health']['failing_streak'] == 1
    assert info(env, check_health=True)['containers'][0]['health']['failing_streak'] == 1  # not due yet
    time.sleep(0.3)
    second = info(env, check_health=True)
    assert second['changed'] is True and second['actions'] == ['%s killed (unhealthy)' % NAME]
    assert env.inspect(NAME)['status'] == 'stopped' and env.inspect(NAME)['exit_code'] == 137


def test_bad_healthchecks_are_refused(env):
    for check, message in (({'test': 5}, 'must be a command'), ({'test': 'true', 'interval': 'soon'}, 'duration'),
                           ({'test': 'true', 'retries': 0}, '1 or more'), ({'cmd': 'true'}, 'unknown keys cmd'),
                           ({'test': 'true', 'timeout': '10ms'}, 'at least 0.1 s')):
        with pytest.raises(RuncibleError, match=message):
            env.run(**args(env, healthcheck=check))
    with pytest.raises(RuncibleError, match='needs a healthcheck'):
        env.run(**args(env, healthcheck={}, state='healthy'))
    assert env.run(**args(env, healthcheck={'test': ['NONE']}))['container']['config']['healthcheck'] == {}
