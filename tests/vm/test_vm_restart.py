# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart policies on a systemd host: a rebooted VM brings back its always containers (the store's boot unit),
not the others; a killed process comes back; the unit goes with the last container that needs it."""

from __future__ import annotations

import hashlib
import time

import pytest

from vmhosts import GUEST_ROOTFS, wait_for

LOOP = "trap 'exit 0' TERM; while true; do sleep 1; done"


def info(play, names):
    results = play.run([{'runcible.oci.container_info': {'name': names}}])
    return dict((container['name'], container) for container in results[0]['containers'])


@pytest.mark.quick
def test_always_containers_come_back_after_a_reboot_and_no_ones_do_not(vm_a, play):
    base = {'rootfs': GUEST_ROOTFS, 'command': ['sh', '-c', LOOP], 'runtime': 'runc', 'stop_timeout': 2}
    play.run([{'runcible.oci.container': dict(base, name='boot-always', restart_policy='always')},
              {'runcible.oci.container': dict(base, name='boot-unless', restart_policy='unless-stopped')},
              {'runcible.oci.container': dict(base, name='boot-no')}])
    unit = 'runcible-boot-%s.service' % hashlib.sha256(play.root.encode()).hexdigest()[:12]
    assert vm_a.sh('systemctl is-enabled %s' % unit).strip() == 'enabled'
    before = info(play, ['boot-always', 'boot-unless', 'boot-no'])
    # A killed process comes back through conmon's exit command (systemd scopes, cgroup v2).
    vm_a.sh('kill -9 %d' % before['boot-always']['pid'])
    assert wait_for(lambda: info(play, ['boot-always'])['boot-always']['restart_count'] == 1, timeout=60)
    boot_id = vm_a.read('/proc/sys/kernel/random/boot_id')
    vm_a.machine.ssh(['systemctl', 'reboot'], check=False, timeout=60)
    time.sleep(5)
    assert wait_for(lambda: vm_a.machine.ssh(['cat', '/proc/sys/kernel/random/boot_id'], check=False,
                                             timeout=30).stdout.decode().strip() not in ('', boot_id), timeout=600)
    vm_a.machine.wait_ready()
    after = info(play, ['boot-always', 'boot-unless', 'boot-no'])
    assert after['boot-always']['status'] == 'running' and after['boot-unless']['status'] == 'running'
    assert after['boot-no']['status'] == 'stopped'
    assert after['boot-always']['id'] == before['boot-always']['id']
    ran = vm_a.unit(unit, 'Result', 'ExecMainStatus')
    assert ran == {'Result': 'success', 'ExecMainStatus': '0'}, ran
    journal = vm_a.sh('journalctl -b -u %s --no-pager -o cat' % unit)
    assert 'boot-always: started (always)' in journal and 'boot-no' not in journal, journal
    # The unit goes with the last container that needs it.
    play.run([{'runcible.oci.container': {'name': name, 'state': 'absent'}}
              for name in ('boot-always', 'boot-unless', 'boot-no')])
    assert vm_a.sh('test -e /etc/systemd/system/%s && echo left || echo gone' % unit).strip() == 'gone'
    assert vm_a.unit(unit, 'LoadState')['LoadState'] == 'not-found'  # systemd forgot it


def test_a_task_restarts_a_policy_container_while_its_old_conmons_exit_command_waits(vm_a, play):
    """state: restarted of a container with a restart policy: the old conmon's exit command still waits in
    runcible-conmon-ID.scope (for the lock the task holds) when the new conmon needs that scope. The task
    stops the old scope and goes on; it once failed with 'already exists'."""
    args = {'name': 'test-rs', 'rootfs': GUEST_ROOTFS, 'command': ['sh', '-c', LOOP], 'runtime': 'runc',
            'stop_timeout': 2, 'restart_policy': 'always'}
    first = play.run([{'runcible.oci.container': args}])[0]['container']
    pids = [first['pid']]
    for _round in range(3):
        result = play.run([{'runcible.oci.container': dict(args, state='restarted')}])[0]
        assert result['changed'] and result['container']['status'] == 'running', result
        pids.append(result['container']['pid'])
    assert len(set(pids)) == 4, pids
    scope = 'runcible-conmon-%s.scope' % first['id']
    assert vm_a.unit(scope, 'ActiveState')['ActiveState'] == 'active'
    # The restart policy still works after those restarts: a killed process comes back once.
    vm_a.sh('kill -9 %d' % pids[-1])
    assert wait_for(lambda: info(play, ['test-rs'])['test-rs']['pid'] not in pids
                    and info(play, ['test-rs'])['test-rs']['status'] == 'running', timeout=60)
    play.run([{'runcible.oci.container': {'name': 'test-rs', 'state': 'absent'}}])
