# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/molecule.md, run as written: every fenced snippet, in the order of the page.

Each snippet is preceded by a marker that says what to do with it:

    <!-- test: run -->          run it with bash (set -euo pipefail) in $HOME
    <!-- test: file PATH -->    write it to ~/src/PATH
    <!-- test: login HOST -->   run it in a pseudo-terminal, type a command, expect systemd as PID 1

A snippet without a marker fails the test: nothing in the page escapes it. The page's host paths
are pointed at a temporary directory (``SUBSTITUTIONS``); $HOME is a fresh one, so the collection
is found where the page installs it, from the tarball built from this checkout. The roles made
here (with ``ansible-galaxy role init``/``collection init``) are not in this repository: a
standalone role with a systemd service, a handler and two platforms, and a role in a collection.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.environ.get('RUNCIBLE_REPO') or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(REPO, 'docs', 'molecule.md')
ROOTFS_DIR = os.path.join(REPO, 'build', 'rootfs')
BIN = os.path.dirname(sys.executable)
MARKER = re.compile(r'^<!-- test: (run|file|login)(?: (\S+))? -->$')
FENCE = re.compile(r'^```(\w*)\s*$')


def snippets(text):
    """[(kind, argument, body, line)] of every fenced block; a block without a marker is ('missing', ...)."""
    found = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index].strip())
        if not match or not match.group(1):
            index += 1
            continue
        start = index
        body = []
        index += 1
        while index < len(lines) and lines[index].strip() != '```':
            body.append(lines[index])
            index += 1
        index += 1
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        marker = MARKER.match(lines[previous].strip()) if previous >= 0 else None
        kind, argument = (marker.group(1), marker.group(2)) if marker else ('missing', None)
        found.append((kind, argument, '\n'.join(body) + '\n', start + 1))
    return found


def test_every_snippet_has_a_marker():
    with open(DOC) as handle:
        blocks = snippets(handle.read())
    assert blocks, 'no snippets found in %s' % DOC
    missing = ['line %d' % line for kind, _arg, _body, line in blocks if kind == 'missing']
    assert not missing, 'snippets of docs/molecule.md without a <!-- test: ... --> marker: %s' % ', '.join(missing)


def _cgroup_v2_only():
    return os.path.exists('/sys/fs/cgroup/cgroup.controllers')


def _login(command, env, cwd, timeout=60.0):
    """Run ``command`` in a pseudo-terminal, type into the shell it opens; -> all it printed."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.chdir(cwd)
            os.execve('/bin/bash', ['bash', '-c', command], env)
        finally:
            os._exit(127)
    output = b''

    def read_until(needle, limit):
        nonlocal output
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and needle not in output:
            ready, _w, _x = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    return
                if not chunk:
                    return
                output += chunk
    try:
        read_until(b'# ', timeout)
        os.write(fd, b'echo "pid1=$(cat /proc/1/comm) host=$(hostname)"; exit\n')
        read_until(b'Executed', timeout)
    finally:
        _done, status = os.waitpid(pid, 0)
        os.close(fd)
    return output.decode('utf-8', 'replace'), status


def test_molecule_doc_runs_as_written():
    if os.geteuid() != 0:
        pytest.fail('the Molecule scenarios run containers: run the tests as root')
    if _cgroup_v2_only():
        pytest.skip('docs/molecule.md\'s systemd platform is for cgroup v1/hybrid hosts; on this cgroup v2 host it needs '
                    'privileged: true (the VM suite would run it so)')
    base = tempfile.mkdtemp(prefix='rcmd-', dir='/tmp')  # short: conmon's socket paths are limited
    home = os.path.join(base, 'home')
    os.makedirs(home)
    substitutions = [
        ('/var/lib/runcible-rootfs/', ROOTFS_DIR + '/'),
        ('/var/lib/runcible-molecule', os.path.join(base, 'root')),
        ('/run/runcible-molecule', os.path.join(base, 'run')),
        ('/tmp/runcible-build', os.path.join(base, 'build')),
        ('cd runcible.oci ', 'cd %s ' % REPO),
    ]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(('ANSIBLE_', 'MOLECULE_', 'RUNCIBLE_MOLECULE_'))}
    env.update(HOME=home, PATH=BIN + ':' + env.get('PATH', '/usr/bin:/bin') + ':/usr/sbin:/sbin', NO_COLOR='1',
               DEBIAN_FRONTEND='noninteractive', ANSIBLE_NOCOLOR='1')
    with open(DOC) as handle:
        blocks = snippets(handle.read())
    timings = []
    projects = []
    networks_before = molecule_networks()
    try:
        for kind, argument, body, line in blocks:
            for old, new in substitutions:
                body = body.replace(old, new)
            where = 'docs/molecule.md line %d' % line
            if kind == 'file':
                path = os.path.join(home, 'src', argument)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, 'w') as handle:
                    handle.write(body)
                if path.endswith('/molecule/default/molecule.yml'):
                    projects.append(os.path.dirname(os.path.dirname(os.path.dirname(path))))
            elif kind == 'run':
                started = time.monotonic()
                proc = subprocess.run(['bash', '-euo', 'pipefail', '-c', body], cwd=home, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1200, check=False)
                output = proc.stdout.decode('utf-8', 'replace')
                assert proc.returncode == 0, '%s failed (rc %d):\n%s\n---\n%s' % (where, proc.returncode, body, output[-6000:])
                timings.append((body.strip().splitlines()[-1], time.monotonic() - started))
            elif kind == 'login':
                output, status = _login(body, env, home)
                assert 'pid1=systemd host=%s' % argument in output, '%s: no systemd shell on %s:\n%s' % (where, argument, output)
                assert status == 0, output
            else:
                pytest.fail('%s: a snippet without a marker' % where)
        installed = os.path.join(home, '.ansible', 'collections', 'ansible_collections', 'runcible', 'oci')
        assert os.path.isfile(os.path.join(installed, 'playbooks', 'molecule_create.yml')), 'the tarball lacks the playbooks'
        assert os.path.isfile(os.path.join(installed, 'playbooks', 'vars', 'molecule.yml'))
        _assert_store_empty(base, networks_before)
    finally:
        for project in projects:
            subprocess.run(['bash', '-c', 'molecule destroy'], cwd=project, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600, check=False)
        _clean_store(base)
        shutil.rmtree(base, ignore_errors=True)
        for label, seconds in timings:
            if 'molecule' in label:
                print('docs/molecule.md: %-40s %.1f s' % (label, seconds))


def molecule_networks():
    """The names of the host's networks that the Molecule playbooks made (molecule-SUFFIX)."""
    try:
        with open('/var/lib/runcible/networks/networks.json') as handle:
            names = json.load(handle).get('networks', {})
    except (OSError, ValueError):
        return set()
    return set(name for name in names if re.fullmatch(r'molecule-[0-9a-f]{10}', name))


def _assert_store_empty(base, networks_before):
    left = []
    for sub in ('root/containers', 'run/containers', 'run/exits', 'run/socket'):
        path = os.path.join(base, sub)
        if os.path.isdir(path) and os.listdir(path):
            left.append('%s: %s' % (sub, os.listdir(path)))
    locks = os.path.join(base, 'root', 'locks')
    if os.path.isdir(locks):
        named = [entry for entry in os.listdir(locks) if not entry.startswith('.')]
        if named:
            left.append('locks: %s' % named)
    left += ['network %s' % name for name in sorted(molecule_networks() - networks_before)]
    assert not left, 'molecule destroy left things behind: %s' % '; '.join(left)


def _clean_store(base):
    """Whatever a failed run left in the temporary store: its containers removed (their mounts and conmons)."""
    sys.path.insert(0, os.path.join(REPO, 'build', 'collections'))
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.engine import Engine  # pylint: disable=import-outside-toplevel
    root, run_root = os.path.join(base, 'root'), os.path.join(base, 'run')
    if not os.path.isdir(root):
        return
    engine = Engine(root, run_root)
    for name in engine.store.names():
        with engine.store.lock(name):
            record = engine.store.load(name)
            if record:
                engine.remove(record, stop_timeout=0)
