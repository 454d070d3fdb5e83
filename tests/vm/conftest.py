# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""VM tests: the collection over SSH on Debian 12 guests with systemd as PID 1 and pure cgroup v2.

The session builds the VM image when its recipe changed (scripts/vm/build-image.sh), boots the VMs
the selected tests need (``vm-a``; ``vm-b`` too for the two-host tests) in parallel from copy-on-write
overlays, and shuts them down at the end: on success, failure, Ctrl-C or SIGTERM. Every test gets a
store of its own on the VMs (``root`` and ``run_root`` under ``/var/tmp/rci-XXXX``); afterwards the test
fails if a conmon, mount, runtime state, ``runcible-*`` systemd unit or cgroup is left there.

Knobs: ``RUNCIBLE_VM_REUSE=1`` runs on VMs already booted with ``make vm`` (build/vm/run) and leaves
them running (fast iterations while developing).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, 'scripts', 'vm'))

import vm  # noqa: E402  pylint: disable=wrong-import-position
from vmhosts import Playbooks, VMHost  # noqa: E402  pylint: disable=wrong-import-position

TIMINGS = {}
_BOOTED = []  # Machines this session booted (and must stop)


def pytest_configure(config):
    config.addinivalue_line('markers', 'two_hosts: needs vm-b as well as vm-a')
    config.addinivalue_line('markers', 'quick: in the subset `make test` runs (see docs/vm-tests.md)')


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item: the ``play`` fixture checks leftovers only after a passed test."""
    report = yield
    setattr(item, 'rep_' + report.when, report)
    return report


def _stop_booted():
    while _BOOTED:
        machine = _BOOTED.pop()
        started = time.monotonic()
        try:
            how = machine.stop()
            TIMINGS['shutdown %s' % machine.name] = '%.0fs (%s)' % (time.monotonic() - started, how)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            sys.stderr.write('vm tests: could not stop %s: %s\n' % (machine.name, exc))


def _on_sigterm(signum, frame):
    # Turn SIGTERM into an exception: pytest then runs the fixture finalizers, which stop the VMs.
    raise KeyboardInterrupt('SIGTERM')


@pytest.fixture(scope='session')
def vms(request):
    """{name: VMHost} of the booted VMs (built and booted on first use, stopped at the session's end)."""
    problems = []
    if os.geteuid() != 0:
        problems.append('the VM tests run as root (mmdebstrap builds the image as root)')
    for program in ('qemu-system-x86_64', 'qemu-img', 'mmdebstrap', 'ssh'):
        if not shutil.which(program, path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin'):
            problems.append('%s is not installed (run make setup)' % program)
    if problems:
        pytest.fail('; '.join(problems))
    # The VMs the selected tests need (session.items: after -k and -m deselection); vm-a when none says.
    # Only those: with RUNCIBLE_VM_REUSE=1 another engineer's VM is never checked (nor cleaned) by this run.
    names = [name for name in ('vm-a', 'vm-b', 'vm-se')
             if any(name.replace('-', '_') in item.fixturenames for item in request.session.items)] or ['vm-a']
    if os.environ.get('RUNCIBLE_VM_REUSE') == '1':
        machines = dict((name, vm.Machine(name, vm.DEFAULT_RUN_DIR)) for name in names)
        down = [name for name, machine in machines.items() if not machine.running()]
        if down:
            pytest.fail('RUNCIBLE_VM_REUSE=1 but %s not running: scripts/vm/vm.py boot %s'
                        % (', '.join(down), ' '.join(names)))
        TIMINGS['VMs'] = 'reused from build/vm/run'
        yield dict((name, VMHost(machine)) for name, machine in machines.items())
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    atexit.register(_stop_booted)
    started = time.monotonic()
    image_dir = vm.build_image()
    with open(os.path.join(image_dir, 'build-info')) as handle:
        TIMINGS['image'] = '%.0fs (%s)' % (time.monotonic() - started, handle.read().strip())
    run_dir = tempfile.mkdtemp(prefix='s', dir=_sessions_dir())
    machines = [vm.Machine(name, run_dir, image_dir) for name in names]
    _BOOTED.extend(machines)
    try:
        vm.boot_all(machines, die_with_parent=True)
        TIMINGS['boot'] = ', '.join('%s %.0fs' % (machine.name, machine.boot_seconds) for machine in machines)
        yield dict((machine.name, VMHost(machine)) for machine in machines)
    finally:
        _stop_booted()
        shutil.rmtree(run_dir, ignore_errors=True)


def _sessions_dir():
    """build/vm/sessions, without the directories of earlier sessions whose VMs are gone (a killed run)."""
    path = os.path.join(vm.VM_DIR, 'sessions')
    os.makedirs(path, exist_ok=True)
    for entry in os.listdir(path):
        session = os.path.join(path, entry)
        if not any(machine.running() for machine in vm.machines_in(session)):
            shutil.rmtree(session, ignore_errors=True)
    return path


@pytest.fixture
def vm_a(vms):
    return vms['vm-a']


@pytest.fixture
def vm_b(vms):
    return vms['vm-b']


@pytest.fixture
def vm_se(vms):
    """The image booted with SELinux (permissive) as its LSM."""
    return vms['vm-se']


@pytest.fixture
def play(vms, tmp_path, request):
    """This test's Playbooks (its own store on every VM); checks and cleans the VMs afterwards."""
    run_dir = list(vms.values())[0].machine.run_dir
    playbooks = Playbooks(run_dir, str(tmp_path), '/var/tmp/rci-%s' % secrets.token_hex(4))
    started = time.monotonic()
    yield playbooks
    left = {}
    for host in vms.values():
        found = host.leftovers(playbooks.base)
        if found:
            left[host.name] = found
            host.leftovers(playbooks.base, clean=True)
        else:
            with contextlib.suppress(Exception):
                host.sh('rm -rf --one-file-system %s' % playbooks.base)
    TIMINGS['test %s' % request.node.name] = '%.0fs, %d tasks in %.0fs of ansible-playbook' % (
        time.monotonic() - started, playbooks.tasks, playbooks.seconds)
    call = getattr(request.node, 'rep_call', None)
    if call is not None and call.passed:
        assert not left, 'the test left things behind on the VMs: %s' % left
    elif left:
        TIMINGS['cleaned after %s' % request.node.name] = str(left)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_sep('-', 'VM timings')
        for key, value in TIMINGS.items():
            terminalreporter.write_line('%s: %s' % (key, value))
