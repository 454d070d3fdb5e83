# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CRIU on the VM (Debian 12's criu): checkpoint/restore in place, and a migration between two VMs."""

from __future__ import annotations

import os
import time

import pytest

from vmhosts import GUEST_ROOTFS, REPO, wait_for

COUNTER = "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done"
MODULE = 'runcible.oci.container_checkpoint'
MIGRATE = os.path.join(REPO, 'playbooks', 'migrate.yml')


def counts(host, log_path):
    """The numbers a counter container wrote to its k8s-file log on ``host``."""
    text = host.sh('cat %s 2>/dev/null || true' % log_path)
    lines = [line.split(' ', 3)[3] for line in text.splitlines() if line.count(' ') >= 3]
    return [int(line) for line in lines if line.strip().isdigit()]


def start_counter(host, play, name):
    # runc: Debian 12's crun (1.8.1) is built without CRIU ("crun checkpoint: unknown command").
    container = play.run([{'runcible.oci.container': {'name': name, 'rootfs': GUEST_ROOTFS, 'runtime': 'runc',
                                                      'command': ['sh', '-c', COUNTER]}}],
                         hosts=host.name)[0]['container']
    assert wait_for(lambda: len(counts(host, container['log_path'])) >= 5), 'the counter does not count'
    return container


def assert_continues(host, log_path, last, lines_before):
    """The restored process counts on from ``last``: a restarted one would print 1 again."""
    assert wait_for(lambda: len(counts(host, log_path)) >= lines_before + 3)
    after = counts(host, log_path)[lines_before:]
    assert after[0] == last + 1, (last, after[:10])
    assert after == list(range(last + 1, last + 1 + len(after)))


def test_criu_checkpoint_and_restore_four_ways(vm_a, play):
    criu = vm_a.sh('criu --version; criu check').strip()
    assert 'Looks good.' in criu, criu
    container = start_counter(vm_a, play, 'ctr')
    log = container['log_path']
    results = play.four_ways({'name': 'ctr', 'state': 'checkpointed'}, module=MODULE)
    apply = results[1]
    assert apply['actions'] == ['checkpointed', 'stopped'] and apply['container']['status'] == 'stopped'
    assert apply['checkpoint']['criu_version'].startswith('3.17'), apply['checkpoint']
    scope, conmon_scope = 'runcible-%s.scope' % container['id'], 'runcible-conmon-%s.scope' % container['id']
    assert vm_a.unit(scope, 'ActiveState')['ActiveState'] == 'inactive'
    dumped = counts(vm_a, log)
    time.sleep(1)
    assert counts(vm_a, log) == dumped, 'the process must not run after the checkpoint'

    results = play.four_ways({'name': 'ctr', 'state': 'restored'}, module=MODULE)
    restored = results[1]['container']
    assert results[1]['actions'] == ['restored'] and restored['status'] == 'running'
    assert_continues(vm_a, log, dumped[-1], len(dumped))
    # Restored under systemd like a started container: both scopes again, in machine.slice.
    assert vm_a.cgroup(restored['pid']) == '/machine.slice/' + scope
    assert vm_a.cgroup(restored['conmon_pid']) == '/machine.slice/' + conmon_scope
    results = play.run([{'runcible.oci.container': {'name': 'ctr', 'state': 'absent'}}])
    assert results[0]['actions'] == ['removed']


@pytest.mark.quick
def test_migrate_a_running_container_between_hosts(vm_a, vm_b, play, tmp_path):
    """playbooks/migrate.yml: checkpoint + export on vm-a, through the controller, import + restore on vm-b."""
    container = start_counter(vm_a, play, 'mover')
    extra = {'migrate_container': 'mover', 'migrate_source': 'vm-a', 'migrate_target': 'vm-b',
             'migrate_local_dir': str(tmp_path), 'migrate_remote_dir': play.base,
             'runcible_root': play.root, 'runcible_run_root': play.run_root}
    vm_b.sh('mkdir -p %s' % play.base)
    results = play.run_file(MIGRATE, extra)
    by_task = dict(((r['_host'], r['_task']), r) for r in results)
    exported = by_task[('vm-a', 'Checkpoint it and export the checkpoint (its process ends here)')]
    assert exported['actions'] == ['checkpointed', 'stopped', 'exported']
    restored = by_task[('vm-b', 'Import and restore it (the process continues where it was frozen)')]
    assert restored['actions'] == ['imported', 'restored']
    moved = restored['container']
    assert moved['name'] == 'mover' and moved['status'] == 'running'
    assert moved['config']['cgroup_manager'] == 'systemd'
    assert vm_b.cgroup(moved['pid']) == '/machine.slice/runcible-%s.scope' % moved['id']
    assert vm_b.cgroup(moved['conmon_pid']) == '/machine.slice/runcible-conmon-%s.scope' % moved['id']
    # The count goes on on vm-b from where vm-a stopped; the log came along in the archive.
    dumped = counts(vm_b, moved['log_path'])
    assert dumped and dumped == list(range(1, len(dumped) + 1)), dumped
    assert_continues(vm_b, moved['log_path'], dumped[-1], len(dumped))
    # Nothing left on vm-a or on the controller.
    assert not vm_a.exists(container['log_path'])
    assert not vm_a.exists('%s/mover.checkpoint.tar.zst' % play.base)
    assert not vm_b.exists('%s/mover.checkpoint.tar.zst' % play.base)
    assert os.listdir(str(tmp_path)) == [] or 'mover.checkpoint.tar.zst' not in os.listdir(str(tmp_path))
    assert [r['_status'] for r in results if r['_host'] == 'vm-a' and r['_task'].startswith('Remove')] == ['ok'] * 3

    # Again: it runs on vm-b and is gone from vm-a, so nothing changes.
    again = play.run_file(MIGRATE, extra)
    assert [r['_task'] for r in again if r.get('changed')] == [], [(r['_host'], r['_task']) for r in again
                                                                   if r.get('changed')]
    assert vm_b.read('/proc/%d/comm' % moved['pid']) == 'sh'
    play.run([{'runcible.oci.container': {'name': 'mover', 'state': 'absent'}}], hosts='vm-b')
