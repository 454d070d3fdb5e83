# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration tests: the real runc, conmon (and CRIU) on this host, as root.

Each test gets its own store (``root`` and ``run_root`` in a fresh short temp dir), so it never
sees or touches other containers; afterwards every container of that store is removed and the
test fails if a conmon, a mount or a runtime state dir of it is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.environ.get('RUNCIBLE_REPO') or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_path():
    path = os.environ.get('ANSIBLE_COLLECTIONS_PATH')
    if path:
        return path.split(':')[0]
    path = os.path.join(REPO, 'build', 'collections')
    link = os.path.join(path, 'ansible_collections', 'runcible', 'oci')
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink('../../../..', link)
    return path


COLLECTIONS = _collections_path()
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.runcible.oci.plugins.module_utils import _container  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.bridges import veth_name  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.engine import Engine  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.netns import netns_path  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.rootfs import is_mounted  # noqa: E402

CALLBACKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'callback_plugins')
BIN = os.path.dirname(sys.executable)


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: takes more than a few seconds')


@pytest.fixture(scope='session', autouse=True)
def bytecode_cache():
    """The tasks of this run keep their compiled module_utils in a cache of their own, removed afterwards."""
    if os.environ.get('RUNCIBLE_BYTECODE_CACHE'):
        yield os.environ['RUNCIBLE_BYTECODE_CACHE']
        return
    base = tempfile.mkdtemp(prefix='runcible-bytecode-')
    os.environ['RUNCIBLE_BYTECODE_CACHE'] = os.path.join(base, 'cache')
    try:
        yield os.environ['RUNCIBLE_BYTECODE_CACHE']
    finally:
        del os.environ['RUNCIBLE_BYTECODE_CACHE']
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope='session')
def stack():
    """The real stack must be here: a missing piece is a failed set-up, not a reason to skip."""
    problems = []
    if os.geteuid() != 0:
        problems.append('the integration tests run as root')
    for program in ('runc', 'conmon'):
        if not shutil.which(program, path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin'):
            problems.append('%s is not installed (run make setup)' % program)
    rootfs = os.environ.get('RUNCIBLE_TEST_ROOTFS') or os.path.join(REPO, 'build', 'rootfs', 'busybox')
    if not os.path.isfile(os.path.join(rootfs, 'bin', 'busybox')):
        problems.append('no busybox root filesystem at %s (run make setup)' % rootfs)
    if problems:
        pytest.fail('; '.join(problems))
    return {'rootfs': rootfs}


@pytest.fixture
def rootfs(stack):
    return stack['rootfs']


class Env(object):
    """One test's store plus helpers to drive it through ansible-playbook and the Python API."""

    def __init__(self, base, rootfs):
        self.base = base
        self.rootfs = rootfs
        self.root = os.path.join(base, 'root')
        self.run_root = os.path.join(base, 'run')
        self.engine = Engine(self.root, self.run_root)
        self.ids = set()  # every container id a task of this test reported: checked for leftovers at the end

    def seen(self, result):
        container_id = (result.get('container') or {}).get('id')
        if container_id:
            self.ids.add(container_id)
        return result

    # -- Python API -------------------------------------------------------------------------
    def run(self, check_mode=False, **params):
        params.setdefault('root', self.root)
        params.setdefault('run_root', self.run_root)
        return self.seen(_container.run(params, check_mode=check_mode))

    def inspect(self, name):
        record, live = self.engine.inspect(name)
        return self.engine.view(record, live) if record else None

    # -- ansible-playbook --------------------------------------------------------------------
    def playbook(self, tasks, extra_args=(), expect_rc=None, play_extra=None):
        """Run ``tasks`` (dicts) in one play on localhost; -> list of task results."""
        for task in tasks:
            for key, args in task.items():
                if key.startswith('runcible.oci.') and isinstance(args, dict):
                    args.setdefault('root', self.root)
                    args.setdefault('run_root', self.run_root)
        play = {'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}
        play.update(play_extra or {})
        book = os.path.join(self.base, 'play.yml')
        results = os.path.join(self.base, 'results.json')
        with open(book, 'w') as handle:
            json.dump([play], handle, indent=1)
        with contextlib.suppress(OSError):
            os.unlink(results)
        env = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED='record_results',
                   RUNCIBLE_RESULTS=results, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
                   ANSIBLE_HOST_KEY_CHECKING='0', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_DEPRECATION_WARNINGS='0')
        argv = [os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                '-e', 'ansible_python_interpreter=' + sys.executable, book] + list(extra_args)
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=600, check=False)
        output = proc.stdout.decode('utf-8', 'replace')
        if expect_rc is not None:
            assert proc.returncode == expect_rc, output
        elif proc.returncode != 0:
            raise AssertionError('ansible-playbook failed (rc %d):\n%s' % (proc.returncode, output))
        with open(results) as handle:
            found = json.load(handle)
        for result in found:
            result['_output'] = output
            self.seen(result)
        return found

    def four_ways(self, module_args, module='runcible.oci.container', expect=(True, True, False, False)):
        """check mode, apply, idempotent re-run, idempotent check; asserts the changed pattern."""
        tasks = [
            {'name': 'check', module: dict(module_args), 'check_mode': True, 'diff': True},
            {'name': 'apply', module: dict(module_args), 'diff': True},
            {'name': 'again', module: dict(module_args), 'diff': True},
            {'name': 'check again', module: dict(module_args), 'check_mode': True, 'diff': True},
        ]
        results = self.playbook(tasks)
        assert [r['_status'] for r in results] == ['ok'] * 4, results
        assert tuple(r['changed'] for r in results) == tuple(expect), [(r['_task'], r.get('actions')) for r in results]
        return results

    # -- leftovers -------------------------------------------------------------------------
    def conmon_pids(self):
        return self._pids(lambda argv: os.path.basename(argv[0]) == b'conmon' and self.run_root.encode() in b' '.join(argv))

    def proxy_pids(self):
        """Port proxies (port_proxy.py) run by this store's installed library."""
        return self._pids(lambda argv: b'--port-proxy' in argv and any(
            arg.startswith(os.path.join(self.root, 'lib').encode() + b'/') for arg in argv))

    @staticmethod
    def _pids(match):
        pids = []
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                    argv = handle.read().split(b'\0')
            except OSError:
                continue
            if argv and match(argv):
                try:
                    with open('/proc/%s/stat' % entry) as handle:
                        if handle.read().rsplit(')', 1)[1].split()[0] == 'Z':
                            continue
                except OSError:
                    continue
                pids.append(int(entry))
        return pids

    def mounts(self):
        with open('/proc/self/mountinfo') as handle:
            return [line.split()[4] for line in handle if self.base in line.split()[4]]

    def leftovers(self):
        found = []
        if self.conmon_pids():
            found.append('conmon running: %s' % self.conmon_pids())
        if self.proxy_pids():
            found.append('port proxy running: %s' % self.proxy_pids())
        if self.mounts():
            found.append('mounts: %s' % self.mounts())
        runtime_dir = os.path.join(self.run_root, 'runtime')
        for runtime in os.listdir(runtime_dir) if os.path.isdir(runtime_dir) else []:
            states = os.listdir(os.path.join(runtime_dir, runtime))
            if states:
                found.append('runtime state of %s: %s' % (runtime, states))
        containers = os.path.join(self.root, 'containers')
        if os.path.isdir(containers) and os.listdir(containers):
            found.append('container dirs: %s' % os.listdir(containers))
        # conmon's attach-socket links, exit files and run dirs; a container's lock file (the store's own
        # locks, such as .volumes.lock, start with a dot and stay)
        for where in ('socket', 'exits', 'containers'):
            path = os.path.join(self.run_root, where)
            if os.path.isdir(path) and os.listdir(path):
                found.append('%s in run_root: %s' % (where, sorted(os.listdir(path))))
        locks = os.path.join(self.root, 'locks')
        named = sorted(entry for entry in os.listdir(locks) if not entry.startswith('.')) if os.path.isdir(locks) else []
        if named:
            found.append('lock files: %s' % named)
        return found + self.links_left(self.ids)

    @staticmethod
    def links_left(ids):
        """The network namespaces and veth pairs of containers ``ids`` still on the host."""
        found = []
        links = os.listdir('/sys/class/net')
        for container_id in sorted(ids):
            if os.path.lexists(netns_path(container_id)):
                found.append('network namespace %s' % netns_path(container_id))
            for index in range(8):  # eth0..eth7: one veth pair per network (network_registry.MAX_NETWORKS)
                if veth_name(container_id, index) in links:
                    found.append('veth %s' % veth_name(container_id, index))
        return found

    def remove_all(self):
        for name in self.engine.store.names():
            with self.engine.store.lock(name):
                record = self.engine.store.load(name)
                if record:
                    self.ids.add(record['id'])
                    self.engine.remove(record, stop_timeout=0)


@pytest.fixture
def env(rootfs):
    base = tempfile.mkdtemp(prefix='rci-', dir='/tmp')
    environment = Env(base, rootfs)
    yield environment
    environment.remove_all()
    # The kernel frees a namespace (and its veth pair) a moment after its last user is gone.
    left = [] if wait_for(lambda: not environment.leftovers(), timeout=10) else environment.leftovers()
    for mount in environment.mounts():
        subprocess.run(['umount', '-l', mount], check=False)
    shutil.rmtree(base, ignore_errors=True)
    assert not left, 'the test left things behind: %s' % '; '.join(left)


def wait_for(predicate, timeout=10.0, interval=0.02):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def read_log(path):
    """Message lines of a k8s-file log (the 4th field on), a line conmon wrote in parts (tag P, partial, then F)
    joined again: where conmon's reads split a line depends on timing."""
    try:
        with open(path, 'rb') as handle:
            lines = handle.read().decode('utf-8', 'replace').splitlines()
    except OSError:
        return []
    messages, partial = [], ''
    for line in lines:
        fields = line.split(' ', 3) if line.count(' ') >= 3 else ['', '', 'F', '']
        if fields[2] == 'P':
            partial += fields[3]
            continue
        messages.append(partial + fields[3])
        partial = ''
    return messages + ([partial] if partial else [])


__all__ = ['Env', 'is_mounted', 'wait_for', 'read_log']
