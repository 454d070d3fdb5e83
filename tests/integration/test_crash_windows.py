# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module killed at any step of create, start, stop, pause or remove: the next run converges, nothing leaks.

Each case runs one container task in a process of its own that SIGKILLs itself at one step
(tools/killed_task.py wraps that step in that process only: fault injection lives in the test
suite, never in the collection), then runs the same task again normally. The second run must reach
the wanted state, a third must change nothing, and after removal nothing may be left: no conmon,
mount, runtime state, cgroup, run dir, exit file, lock, network namespace, veth, firewall rule or
address allocation.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import COLLECTIONS
from netfixtures import netenv, restore_default_network  # pylint: disable=unused-import  # fixtures

KILLED_TASK = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'tools', 'killed_task.py')
COMMAND = ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
NAME = 'test-crash'

# (module under module_utils, function or Class.method, before/after its call, which call)
CREATE_STEPS = [
    ('_runtime.store', 'Store.save', 'after', 1),                # the new record, nothing else yet
    ('_runtime.engine', 'Engine._write_bundle', 'after', 1),     # the bundle
    ('_runtime.rootfs', 'mount_overlay', 'after', 1),            # the root filesystem mounted
    ('_runtime.network', 'attach', 'after', 1),                  # namespace, address (veth plumbing in flight)
    ('_runtime.cgroups', 'Placement.place_conmon', 'before', 1),  # conmon waiting on its start pipe
    ('_runtime.conmon', 'launch', 'after', 1),                   # created by conmon, no pid recorded
    ('_runtime.store', 'Store.save', 'after', 2),                # recorded as created
    ('_runtime.oci_cli', 'OCIRuntime.start', 'after', 1),        # started, the record still says created
]
START_STEPS = [
    ('_runtime.engine', 'Engine._finish', 'after', 1),           # the last run released
    ('_runtime.rootfs', 'mount_overlay', 'after', 1),
    ('_runtime.network', 'attach', 'after', 1),
    ('_runtime.cgroups', 'Placement.place_conmon', 'before', 1),
    ('_runtime.conmon', 'launch', 'after', 1),
    ('_runtime.store', 'Store.save', 'after', 1),                # recorded as created
    ('_runtime.oci_cli', 'OCIRuntime.start', 'after', 1),
]
STOP_STEPS = [
    ('_runtime.oci_cli', 'OCIRuntime.kill', 'after', 1),         # stop signal sent
    ('_runtime.engine', 'Engine._wait_stopped', 'after', 1),     # exited, nothing released
    ('_runtime.oci_cli', 'OCIRuntime.delete', 'after', 1),       # runtime state gone, mount and network not
    ('_runtime.rootfs', 'unmount', 'after', 1),                  # unmounted, network attached
    ('_runtime.network', 'detach', 'after', 1),                  # released, the record still says running
]
REMOVE_STEPS = [
    ('_runtime.engine', 'Engine.stop', 'after', 1),
    ('_runtime.network', 'release', 'after', 1),
    ('_runtime.cgroups', 'Placement.cleanup', 'after', 1),
    ('_runtime.store', 'Store.forget', 'before', 1),
]
PAUSE_STEPS = [
    ('_runtime.oci_cli', 'OCIRuntime.pause', 'after', 1),        # frozen, the record still says running
    ('_runtime.oci_cli', 'OCIRuntime.resume', 'after', 1),       # thawed, the record still says paused
]


def step_id(step):
    return '%s-%s-%s%d' % (step[1], step[2], '#', step[3])


def run_killed(env, params, step):
    module, attribute, when, nth = step
    spec = {'params': dict(params, root=env.root, run_root=env.run_root), 'module': module, 'attribute': attribute,
            'when': when, 'nth': nth}
    proc = subprocess.run([sys.executable, KILLED_TASK, json.dumps(spec)], env=dict(os.environ, RUNCIBLE_COLLECTIONS=COLLECTIONS),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                          check=False)
    assert proc.returncode == -signal.SIGKILL, 'not killed at %s: %s' % (step_id(step), proc.stdout.decode())


def remember_ids(netenv):
    netenv.ids |= netenv.store_ids()


def leaks(env, ids):
    found = list(env.leftovers())
    for container_id in ids:
        cgroups = glob.glob('/sys/fs/cgroup/*/runcible/runcible-%s' % container_id) + \
            glob.glob('/sys/fs/cgroup/runcible/runcible-%s' % container_id)
        if cgroups:
            found.append('cgroups %s' % cgroups)
    for sub in ('containers', 'exits', 'socket'):
        path = os.path.join(env.run_root, sub)
        if os.path.isdir(path) and os.listdir(path):
            found.append('%s: %s' % (path, os.listdir(path)))
    if os.path.exists(os.path.join(env.root, 'locks', NAME + '.lock')):
        found.append('lock file')
    return found


def converge(netenv, params, status):
    """The task run again: it reaches ``status``; once more (and in check mode) it changes nothing."""
    result = netenv.run(**params)
    assert result['container']['status'] == status, result
    again = netenv.run(**params)
    assert not again['changed'], again['actions']
    assert again['container']['pid'] == result['container']['pid']
    assert not netenv.run(check_mode=True, **params)['changed']
    if status == 'running':
        assert os.path.exists('/proc/%d' % result['container']['pid'])
    return result


def remove_and_check(netenv):
    remember_ids(netenv)
    netenv.run(name=NAME, state='absent')
    assert netenv.env.engine.store.load(NAME) is None
    assert not leaks(netenv.env, netenv.ids)


def params(env, **extra):
    return dict(name=NAME, rootfs=env.rootfs, command=COMMAND, **extra)


@pytest.mark.parametrize('step', CREATE_STEPS, ids=step_id)
def test_killed_while_creating_and_starting(netenv, step):
    env = netenv.env
    run_killed(env, params(env, state='started'), step)
    remember_ids(netenv)
    converge(netenv, params(env, state='started'), 'running')
    remove_and_check(netenv)


@pytest.mark.parametrize('step', START_STEPS, ids=step_id)
def test_killed_while_starting_a_stopped_container(netenv, step):
    env = netenv.env
    netenv.run(**params(env, state='stopped'))
    run_killed(env, params(env, state='started'), step)
    converge(netenv, params(env, state='started'), 'running')
    remove_and_check(netenv)


@pytest.mark.parametrize('step', STOP_STEPS, ids=step_id)
def test_killed_while_stopping(netenv, step):
    env = netenv.env
    netenv.run(**params(env))
    run_killed(env, params(env, state='stopped'), step)
    result = converge(netenv, params(env, state='stopped'), 'stopped')
    assert result['container']['exit_code'] in (0, 137), result['container']
    assert not env.mounts()
    remove_and_check(netenv)


@pytest.mark.parametrize('step', REMOVE_STEPS, ids=step_id)
def test_killed_while_removing(netenv, step):
    env = netenv.env
    netenv.run(**params(env))
    remember_ids(netenv)
    run_killed(env, dict(name=NAME, state='absent'), step)
    netenv.run(name=NAME, state='absent')
    assert not netenv.run(name=NAME, state='absent')['changed']
    assert env.engine.store.load(NAME) is None
    assert not leaks(env, netenv.ids)


@pytest.mark.parametrize('step', PAUSE_STEPS, ids=step_id)
def test_killed_while_pausing_or_resuming(netenv, step):
    env = netenv.env
    netenv.run(**params(env, state='paused' if step[1] == 'OCIRuntime.resume' else 'started'))
    wanted = 'started' if step[1] == 'OCIRuntime.resume' else 'paused'
    run_killed(env, params(env, state=wanted), step)
    converge(netenv, params(env, state=wanted), 'running' if wanted == 'started' else 'paused')
    remove_and_check(netenv)
