# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the VM tests: a VM host reached over SSH, and one test's store on it driven by ansible-playbook."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
INVENTORY = os.path.join(HERE, 'inventory.yml')
CALLBACKS = os.path.join(os.path.dirname(HERE), 'integration', 'callback_plugins')  # record_results
BIN = os.path.dirname(sys.executable)
GUEST_ROOTFS = '/srv/runcible/rootfs/busybox'
COMMON_MODULES = ('runcible.oci.container', 'runcible.oci.container_exec', 'runcible.oci.container_info',
                  'runcible.oci.container_checkpoint')

# Run on the VM with python3: what a test left behind in its store base, and in systemd.
LEFTOVERS = r'''
import json, os, subprocess, sys
base = sys.argv[1]
found = {}
conmons = []
for entry in os.listdir('/proc'):
    if not entry.isdigit():
        continue
    try:
        with open('/proc/%s/cmdline' % entry, 'rb') as handle:
            argv = handle.read().split(b'\0')
        with open('/proc/%s/stat' % entry) as handle:
            zombie = handle.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        continue
    if argv and os.path.basename(argv[0]) == b'conmon' and base.encode() in b' '.join(argv) and not zombie:
        conmons.append(int(entry))
if conmons:
    found['conmon'] = conmons
with open('/proc/self/mountinfo') as handle:
    mounts = [line.split()[4] for line in handle if line.split()[4].startswith(base + '/')]
if mounts:
    found['mounts'] = mounts
runtime = os.path.join(base, 'run', 'runtime')
states = ['%s/%s' % (name, state) for name in (os.listdir(runtime) if os.path.isdir(runtime) else [])
          for state in os.listdir(os.path.join(runtime, name))]
if states:
    found['runtime state'] = states
containers = os.path.join(base, 'root', 'containers')
if os.path.isdir(containers) and os.listdir(containers):
    found['container dirs'] = os.listdir(containers)
units = subprocess.run(['systemctl', 'list-units', '--all', '--plain', '--no-legend', 'runcible-*'],
                       stdout=subprocess.PIPE, check=False).stdout.decode().splitlines()
units = [line.split()[0] for line in units if line.startswith('runcible-')]
if units:
    found['systemd units'] = units
cgroups = []
for top, dirs, _files in os.walk('/sys/fs/cgroup'):
    cgroups += [os.path.join(top, name) for name in dirs if name.startswith('runcible-')]
    dirs[:] = [name for name in dirs if not name.startswith('runcible-')]
if cgroups:
    found['cgroups'] = cgroups
if sys.argv[2:] == ['--clean']:
    for pid in conmons:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    for unit in units:
        subprocess.run(['systemctl', 'kill', '--signal=KILL', unit], check=False)
        subprocess.run(['systemctl', 'stop', unit], check=False)
    for name_state in states:
        name, state = name_state.split('/')
        subprocess.run([name, '--root', os.path.join(runtime, name), 'delete', '--force', state], check=False)
    for mount in sorted(mounts, reverse=True):
        subprocess.run(['umount', '-l', mount], check=False)
    for path in sorted(cgroups, key=len, reverse=True):
        for top, dirs, _files in os.walk(path, topdown=False):
            for name in dirs:
                subprocess.run(['rmdir', os.path.join(top, name)], check=False)
        subprocess.run(['rmdir', path], check=False)
    subprocess.run(['rm', '-rf', '--one-file-system', base], check=False)
print(json.dumps(found))
'''


class VMHost(object):
    """One booted VM (a scripts/vm/vm.py Machine) as a test sees it: commands and files over SSH."""

    def __init__(self, machine):
        self.machine = machine
        self.name = machine.name

    def sh(self, command, check=True, timeout=300, input_data=None):
        """Run ``command`` (a shell string) as root on the VM; -> its stdout (str)."""
        proc = self.machine.ssh(['sh', '-c', shlex.quote(command)], check=False, timeout=timeout,
                                input_data=input_data)
        if check and proc.returncode != 0:
            raise AssertionError('on %s: %s: exit %d\n%s%s' % (
                self.name, command, proc.returncode, proc.stdout.decode('utf-8', 'replace'),
                proc.stderr.decode('utf-8', 'replace')))
        return proc.stdout.decode('utf-8', 'replace')

    def read(self, path):
        return self.sh('cat %s' % shlex.quote(path)).strip()

    def write(self, path, value):
        self.sh('printf %%s %s > %s' % (shlex.quote(str(value)), shlex.quote(path)))

    def exists(self, path):
        return self.sh('test -e %s && echo yes || echo no' % shlex.quote(path)).strip() == 'yes'

    def cgroup(self, pid):
        """The cgroup v2 path of ``pid`` on the VM (``0::/x.slice/y.scope`` -> ``/x.slice/y.scope``)."""
        text = self.read('/proc/%d/cgroup' % pid)
        lines = [line for line in text.splitlines() if line.startswith('0::')]
        assert len(lines) == 1 and len(text.splitlines()) == 1, 'not a pure cgroup v2 process: %r' % text
        return lines[0][3:]

    def cgroup_file(self, pid, name):
        return self.read('/sys/fs/cgroup%s/%s' % (self.cgroup(pid), name))

    def unit(self, unit, *properties):
        """``systemctl show`` properties of ``unit`` as a dict."""
        text = self.sh('systemctl show %s %s' % (shlex.quote(unit), ' '.join('-p ' + name for name in properties)))
        return dict(line.split('=', 1) for line in text.splitlines() if '=' in line)

    def leftovers(self, base, clean=False):
        argv = ['python3', '-', base] + (['--clean'] if clean else [])
        proc = self.machine.ssh(argv, check=True, input_data=LEFTOVERS.encode(), timeout=300)
        return json.loads(proc.stdout.decode())


def wait_for(predicate, timeout=60.0, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class Playbooks(object):
    """ansible-playbook on the controller against the VM inventory; each test has a store of its own."""

    def __init__(self, run_dir, workdir, base):
        self.run_dir = run_dir
        self.workdir = workdir
        self.base = base  # the store's base directory on every VM (root and run_root below it)
        self.root = base + '/root'
        self.run_root = base + '/run'
        self.seconds = 0.0
        self.tasks = 0

    def env(self):
        return dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED='record_results',
                    ANSIBLE_COLLECTIONS_PATH=os.environ.get('ANSIBLE_COLLECTIONS_PATH') or
                    os.path.join(REPO, 'build', 'collections'),
                    RUNCIBLE_VM_RUN_DIR=self.run_dir, ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='0',
                    ANSIBLE_DEPRECATION_WARNINGS='0', ANSIBLE_RETRY_FILES_ENABLED='0',
                    ANSIBLE_LOCAL_TEMP=os.path.join(self.workdir, 'ansible-tmp'))

    def with_store(self, tasks):
        """Give every runcible.oci task this test's root/run_root (and network none to containers)."""
        for task in tasks:
            for key, args in task.items():
                if key in COMMON_MODULES and isinstance(args, dict):
                    args.setdefault('root', self.root)
                    args.setdefault('run_root', self.run_root)
                    if key == 'runcible.oci.container' and args.get('state') != 'absent':
                        args.setdefault('network', 'none')
        return tasks

    def run_file(self, playbook, extra_vars=None, expect_rc=0, limit=None):
        """Run a playbook file; -> the task results (dicts with _host, _task, _status)."""
        results = os.path.join(self.workdir, 'results.json')
        with contextlib.suppress(OSError):
            os.unlink(results)
        argv = [os.path.join(BIN, 'ansible-playbook'), '-i', INVENTORY, playbook]
        for key, value in (extra_vars or {}).items():
            argv += ['-e', json.dumps({key: value})]
        if limit:
            argv += ['--limit', limit]
        env = dict(self.env(), RUNCIBLE_RESULTS=results)
        started = time.monotonic()
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=1800, check=False)
        self.seconds += time.monotonic() - started
        output = proc.stdout.decode('utf-8', 'replace')
        if expect_rc is not None and proc.returncode != expect_rc:
            raise AssertionError('ansible-playbook exited %d (expected %d):\n%s' % (proc.returncode, expect_rc, output))
        with open(results) as handle:
            found = json.load(handle)
        self.tasks += len(found)
        for result in found:
            result['_output'] = output
        return found

    def run(self, tasks, hosts='vm-a', expect_rc=0):
        """Run ``tasks`` (dicts) in one play on ``hosts``; -> task results."""
        play = {'hosts': hosts, 'gather_facts': False, 'tasks': self.with_store(tasks)}
        book = os.path.join(self.workdir, 'play.yml')
        with open(book, 'w') as handle:
            json.dump([play], handle, indent=1)
        return self.run_file(book, expect_rc=expect_rc)

    def four_ways(self, module_args, module='runcible.oci.container', hosts='vm-a',
                  expect=(True, True, False, False)):
        """check mode, apply, idempotent re-run, idempotent check; asserts the changed pattern."""
        tasks = [
            {'name': 'check', module: dict(module_args), 'check_mode': True, 'diff': True},
            {'name': 'apply', module: dict(module_args), 'diff': True},
            {'name': 'again', module: dict(module_args), 'diff': True},
            {'name': 'check again', module: dict(module_args), 'check_mode': True, 'diff': True},
        ]
        results = self.run(tasks, hosts=hosts)
        assert [r['_status'] for r in results] == ['ok'] * 4, results[-1]['_output']
        assert tuple(r['changed'] for r in results) == tuple(expect), \
            [(r['_task'], r.get('actions'), r.get('diff')) for r in results]
        return results


__all__ = ['VMHost', 'Playbooks', 'wait_for', 'GUEST_ROOTFS', 'REPO', 'INVENTORY']
