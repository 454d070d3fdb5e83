# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit-managed containers on a systemd host: runcible-NAME.service four ways, active only after the container's
own READY=1 (sdnotify: container), stopped, disabled and removed with the container; socket activation: the
first connection to the socket unit's port starts the container, which answers on the socket systemd passed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from vmhosts import GUEST_ROOTFS, REPO, wait_for

HELPER_SOURCE = os.path.join(REPO, 'tests', 'vm', 'helpers', 'sdhelper.c')
READY_AFTER = 8  # seconds the container sleeps before it says READY=1


@pytest.fixture
def helper(vm_a, play, tmp_path):
    """The static helper (tests/vm/helpers/sdhelper.c) on the VM, in a directory the containers bind."""
    gcc = shutil.which('gcc')
    if not gcc:
        pytest.skip('gcc is not installed on the controller: the container helper cannot be built')
    binary = str(tmp_path / 'sdhelper')
    subprocess.run([gcc, '-static', '-O2', '-o', binary, HELPER_SOURCE], check=True)
    directory = play.base + '/helper'
    with open(binary, 'rb') as handle:
        vm_a.sh('mkdir -p %s && cat > %s/sdhelper && chmod 0755 %s/sdhelper' % (directory, directory, directory),
                input_data=handle.read())
    return directory


def container(helper, **args):
    args.update(rootfs=GUEST_ROOTFS, runtime='runc', stop_timeout=3,
                mounts=[{'type': 'bind', 'source': helper, 'target': '/opt/helper', 'options': ['ro']}])
    return args


def unit_files(vm_a, name):
    return vm_a.sh('ls /etc/systemd/system/ | grep -F runcible-%s. || true' % name).split()


def test_a_unit_managed_container_is_active_only_after_its_ready(vm_a, play, helper):
    name = 'unit-ready'
    service = 'runcible-%s.service' % name
    args = container(helper, name=name, command=['/opt/helper/sdhelper', 'ready', str(READY_AFTER)],
                     systemd_unit=True, sdnotify='container', restart_policy='always')
    results = play.four_ways(args)
    assert results[0]['actions'] == ['created', 'unit written', 'started'], results[0]
    assert unit_files(vm_a, name) == [service]
    assert vm_a.sh('stat -c %a /etc/systemd/system/' + service).strip() == '644'
    state = vm_a.unit(service, 'ActiveState', 'UnitFileState', 'Type', 'Restart', 'StatusText', 'MainPID')
    assert state['ActiveState'] == 'active' and state['UnitFileState'] == 'enabled', state
    assert state['Type'] == 'notify' and state['Restart'] == 'always', state
    assert state['StatusText'] == 'ready after the sleep', state
    running = results[1]['container']
    assert running['status'] == 'running' and int(state['MainPID']) == running['conmon_pid'], (state, running)
    # Active only after READY=1: the start command logged the container's start, then waited for its READY=1.
    journal = vm_a.sh('journalctl -u %s --no-pager -o short-unix' % service)
    waiting = [float(line.split()[0]) for line in journal.splitlines() if 'waiting for its READY=1' in line]
    ready = [float(line.split()[0]) for line in journal.splitlines() if 'is running (pid' in line]
    assert waiting and ready and ready[-1] - waiting[-1] >= READY_AFTER - 1, journal
    # A restart through systemd: activating (not active) while the container sleeps, then active.
    vm_a.sh('systemctl restart --no-block %s' % service)
    seen = set()

    def settled():
        seen.add(vm_a.unit(service, 'ActiveState')['ActiveState'])
        return 'activating' in seen and vm_a.unit(service, 'ActiveState')['ActiveState'] == 'active'
    assert wait_for(settled, timeout=180, interval=1), seen
    # Stopped: unit inactive and disabled; started again: active and enabled.
    stopped = play.run([{'runcible.oci.container': {'name': name, 'state': 'stopped'}},
                        {'runcible.oci.container': {'name': name, 'state': 'stopped'}}])
    assert [r['changed'] for r in stopped] == [True, False], stopped
    assert stopped[0]['actions'] == ['unit disabled', 'stopped'] and stopped[0]['container']['status'] == 'stopped'
    state = vm_a.unit(service, 'ActiveState', 'UnitFileState')
    assert state == {'ActiveState': 'inactive', 'UnitFileState': 'disabled'}, state
    started = play.run([{'runcible.oci.container': dict(args, state='started')}])
    assert started[0]['actions'] == ['unit enabled', 'started'] and started[0]['container']['status'] == 'running'
    # A change that recreates rewrites the unit and restarts it.
    recreated = play.run([{'runcible.oci.container': dict(args, sdnotify='conmon')}])
    assert recreated[0]['actions'] == ['recreated', 'started', 'unit written'], recreated[0]
    assert recreated[0]['container']['id'] != running['id']
    state = vm_a.unit(service, 'ActiveState', 'MainPID')
    assert state['ActiveState'] == 'active' and int(state['MainPID']) == recreated[0]['container']['conmon_pid']
    # Removed: stopped, disabled, its file gone, systemd forgot it.
    removed = play.run([{'runcible.oci.container': {'name': name, 'state': 'absent'}, 'check_mode': True},
                        {'runcible.oci.container': {'name': name, 'state': 'absent'}},
                        {'runcible.oci.container': {'name': name, 'state': 'absent'}}])
    assert [r['changed'] for r in removed] == [True, True, False]
    assert removed[1]['actions'] == ['removed', 'unit removed']
    assert unit_files(vm_a, name) == []
    assert vm_a.unit(service, 'LoadState')['LoadState'] == 'not-found'


def test_a_socket_activated_container_starts_on_its_first_connection(vm_a, play, helper):
    name = 'unit-socket'
    port = 18080
    args = container(helper, name=name, command=['/opt/helper/sdhelper', 'serve', 'hello'], systemd_unit=True,
                     systemd_socket=['127.0.0.1:%d' % port])
    play.four_ways(args)
    sock, service = 'runcible-%s.socket' % name, 'runcible-%s.service' % name
    assert sorted(unit_files(vm_a, name)) == [service, sock]
    assert vm_a.unit(sock, 'ActiveState', 'UnitFileState') == {'ActiveState': 'active', 'UnitFileState': 'enabled'}
    assert vm_a.unit(service, 'ActiveState')['ActiveState'] == 'inactive'  # nothing runs before a connection
    answer = vm_a.sh("python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', %d), timeout=240); "
                     "print(s.recv(200).decode())\"" % port, timeout=300)
    assert answer.strip() == 'hello pid=1 fds=1', answer  # the container's pid 1 got the socket as fd 3
    assert vm_a.unit(service, 'ActiveState')['ActiveState'] == 'active'
    again = vm_a.sh("python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', %d), timeout=60); "
                    "print(s.recv(200).decode())\"" % port)
    assert again.strip() == 'hello pid=1 fds=1'
    results = play.run([{'runcible.oci.container': dict(args)},
                        {'runcible.oci.container': {'name': name, 'state': 'absent'}}])
    assert [r['changed'] for r in results] == [False, True], results
    assert unit_files(vm_a, name) == []
    assert vm_a.unit(sock, 'LoadState')['LoadState'] == 'not-found'
    assert vm_a.unit(service, 'LoadState')['LoadState'] == 'not-found'


def test_health_timers_exist_while_the_container_does(vm_a, play):
    name = 'health-timer'
    check = {'test': ['test', '-e', '/tmp/sick'], 'interval': 3, 'retries': 2}
    args = {'name': name, 'rootfs': GUEST_ROOTFS, 'command': ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"],
            'runtime': 'runc', 'stop_timeout': 2, 'healthcheck': check}
    play.four_ways(args)
    record = play.run([{'runcible.oci.container_info': {'name': name}}])[0]['containers'][0]
    unit = 'runcible-health-' + record['id'][:32]

    def timers():
        return vm_a.sh('systemctl list-units --all --plain --no-legend "runcible-health-*" | cut -d" " -f1').split()
    assert unit + '.timer' in timers()
    assert vm_a.unit(unit + '.timer', 'ActiveState')['ActiveState'] == 'active'
    # No task asks: the timer runs the check, which fails (no /tmp/sick) until the file is there.
    assert wait_for(lambda: 'unhealthy (exit 1)' in vm_a.sh('journalctl -u %s.service --no-pager -o cat' % unit),
                    timeout=240, interval=3)
    play.run([{'runcible.oci.container_exec': {'name': name, 'command': 'touch /tmp/sick'}}])
    assert wait_for(lambda: play.run([{'runcible.oci.container_info': {'name': name}}])[0]['containers'][0]
                    ['health']['status'] == 'healthy', timeout=240, interval=3)
    # A restart keeps the one timer; a changed check replaces it; removal takes it away.
    play.run([{'runcible.oci.container': dict(args, state='restarted')}])
    assert timers().count(unit + '.timer') == 1
    changed = play.run([{'runcible.oci.container': dict(args, healthcheck=dict(args['healthcheck'], interval=5))}])
    assert changed[0]['actions'] == ['updated'], changed[0]
    assert vm_a.unit(unit + '.timer', 'ActiveState')['ActiveState'] == 'active'
    assert '5s' in vm_a.unit(unit + '.timer', 'TimersMonotonic')['TimersMonotonic']
    play.run([{'runcible.oci.container': {'name': name, 'state': 'absent'}}])
    assert [name for name in timers() if name.startswith(unit)] == []


def test_the_runtime_roles_boot_unit_setting(vm_a, play):
    import hashlib
    unit = 'runcible-boot-%s.service' % hashlib.sha256(play.root.encode()).hexdigest()[:12]
    path = '/etc/systemd/system/' + unit

    def role(value):
        return {'ansible.builtin.include_role': {'name': 'runcible.oci.runtime', 'tasks_from': 'boot_unit'},
                'vars': {'runcible_runtime_root': play.root, 'runcible_runtime_run_root': play.run_root,
                         'runcible_runtime_boot_unit': value}}
    vm_a.sh('mkdir -p -m 0700 %s' % play.root)
    first = play.run([role('true')])
    again = play.run([role('true')])
    assert any(result['changed'] for result in first) and not any(result['changed'] for result in again), again
    assert vm_a.sh('systemctl is-enabled %s' % unit).strip() == 'enabled'
    # Kept when the last container that needed it goes; its text is the modules' (not rewritten by them).
    text = vm_a.read(path)
    loop = ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"]
    play.run([{'runcible.oci.container': {'name': 'boot-kept', 'rootfs': GUEST_ROOTFS, 'command': loop,
                                          'restart_policy': 'always', 'stop_timeout': 2}},
              {'runcible.oci.container': {'name': 'boot-kept', 'state': 'absent'}}])
    assert vm_a.read(path) == text and vm_a.sh('systemctl is-enabled %s' % unit).strip() == 'enabled'
    # false: removed, and the modules do not install it again.
    play.run([role('false')])
    assert not vm_a.exists(path) and vm_a.exists(play.root + '/boot-unit.disabled')
    play.run([{'runcible.oci.container': {'name': 'boot-none', 'rootfs': GUEST_ROOTFS, 'command': loop,
                                          'restart_policy': 'always', 'stop_timeout': 2}}])
    assert not vm_a.exists(path)
    # auto: the modules decide again (the next launch of an always container installs it, the last removal
    # takes it away).
    play.run([role('auto'), {'runcible.oci.container': {'name': 'boot-auto', 'rootfs': GUEST_ROOTFS, 'command': loop,
                                                        'restart_policy': 'always', 'stop_timeout': 2}}])
    assert not vm_a.exists(play.root + '/boot-unit.disabled') and vm_a.exists(path)
    play.run([{'runcible.oci.container': {'name': name, 'state': 'absent'}} for name in ('boot-none', 'boot-auto')])
    assert not vm_a.exists(path)


def test_a_failed_start_leaves_no_unit_and_a_unit_can_be_given_up(vm_a, play):
    name = 'unit-fails'
    loop = ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"]
    base = {'name': name, 'rootfs': GUEST_ROOTFS, 'runtime': 'runc', 'stop_timeout': 2, 'systemd_unit': True}
    # The container exits before it says READY=1: the task fails with the unit's journal, nothing is left.
    failed = play.run([{'runcible.oci.container': dict(base, command=['sh', '-c', 'echo bye; exit 3'],
                                                       sdnotify='container'), 'ignore_errors': True}])
    assert failed[0]['_status'] == 'failed', failed[0]
    assert 'container %s exited before it sent READY=1' % name in failed[0]['msg'], failed[0]['msg']
    assert unit_files(vm_a, name) == [] and not vm_a.exists(play.root + '/containers/' + name)
    assert vm_a.unit('runcible-%s.service' % name, 'LoadState')['LoadState'] == 'not-found'
    # Unit-managed, then run by tasks again (systemd_unit false recreates it without a unit).
    made = play.run([{'runcible.oci.container': dict(base, command=loop)}])
    assert made[0]['container']['status'] == 'running' and unit_files(vm_a, name) == ['runcible-%s.service' % name]
    given_up = play.run([{'runcible.oci.container': dict(base, command=loop, systemd_unit=False)},
                         {'runcible.oci.container': dict(base, command=loop, systemd_unit=False)}])
    assert given_up[0]['actions'] == ['recreated', 'started', 'unit removed'], given_up[0]
    assert given_up[0]['container']['status'] == 'running' and not given_up[1]['changed']
    assert unit_files(vm_a, name) == []
    play.run([{'runcible.oci.container': {'name': name, 'state': 'absent'}}])


def test_an_enabled_unit_brings_its_container_back_after_a_reboot(vm_a, play):
    import time
    name = 'unit-boot'
    service = 'runcible-%s.service' % name
    loop = ['sh', '-c', "trap 'exit 0' TERM; while true; do sleep 1; done"]
    args = {'name': name, 'rootfs': GUEST_ROOTFS, 'command': loop, 'runtime': 'runc', 'stop_timeout': 2,
            'systemd_unit': True}
    before = play.run([{'runcible.oci.container': args}])[0]['container']
    boot_id = vm_a.read('/proc/sys/kernel/random/boot_id')
    vm_a.machine.ssh(['systemctl', 'reboot'], check=False, timeout=60)
    time.sleep(5)
    assert wait_for(lambda: vm_a.machine.ssh(['cat', '/proc/sys/kernel/random/boot_id'], check=False,
                                             timeout=30).stdout.decode().strip() not in ('', boot_id), timeout=600)
    vm_a.machine.wait_ready()
    assert vm_a.unit(service, 'ActiveState')['ActiveState'] == 'active'
    after = play.run([{'runcible.oci.container': args}])[0]
    assert not after['changed'], after  # the unit started it at boot: nothing for the task to do
    assert after['container']['status'] == 'running' and after['container']['id'] == before['id']
    assert after['container']['pid'] != before['pid']
    play.run([{'runcible.oci.container': {'name': name, 'state': 'absent'}}])
    assert unit_files(vm_a, name) == []


def test_on_failure_is_the_units_restart(vm_a, play):
    name = 'unit-on-failure'
    service = 'runcible-%s.service' % name
    args = {'name': name, 'rootfs': GUEST_ROOTFS, 'command': ['sh', '-c', 'sleep 3; exit 3'], 'runtime': 'runc',
            'stop_timeout': 2, 'systemd_unit': True, 'restart_policy': 'on-failure'}
    play.run([{'runcible.oci.container': args}])
    assert vm_a.unit(service, 'Restart')['Restart'] == 'on-failure'
    # The container's failed exit fails the unit (its main process, conmon, or its start), and systemd starts it again.
    assert wait_for(lambda: int(vm_a.unit(service, 'NRestarts')['NRestarts']) >= 1, timeout=120, interval=2), \
        vm_a.sh('journalctl -u %s --no-pager -o cat | tail -20' % service)
    play.run([{'runcible.oci.container': {'name': name, 'state': 'absent'}}])
    assert unit_files(vm_a, name) == [] and vm_a.unit(service, 'LoadState')['LoadState'] == 'not-found'
