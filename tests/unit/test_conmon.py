# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/conmon.py: conmon's command line, and the launch handshake against a fake conmon.

The fake behaves like conmon as libpod drives it: it blocks on the start pipe (fd 4), forks, the
parent exits 0, the child writes its pid to --conmon-pidfile and a JSON message to the sync pipe
(fd 3). Its cwd is the bundle, where a ``mode`` file says what to do and it leaves a report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import conmon
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuntimeCommandError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.oci_cli import OCIRuntime
from ansible_collections.runcible.oci.plugins.module_utils._runtime.host import read_proc_stat

CID = 'ab' * 32

FAKE_CONMON = r'''#!%(python)s
import json, os, sys, time

args = sys.argv[1:]


def value(flag):
    return args[args.index(flag) + 1]


with open('mode') as handle:
    mode = handle.read().strip()
fds = []
for name in os.listdir('/proc/self/fd'):
    try:
        os.fstat(int(name))
    except OSError:
        continue  # the fd listdir used, closed by now
    fds.append(int(name))
report = {
    'argv': args,
    'env': dict(os.environ),
    'cwd': os.getcwd(),
    'fds': sorted(fds),
    'links': dict((str(fd), os.readlink('/proc/self/fd/%%d' %% fd)) for fd in fds),
    'session_leader': os.getsid(0) == os.getpid(),
    'pid': os.getpid(),
}
with open('report.json', 'w') as handle:
    json.dump(report, handle)
if mode == 'exit3':
    sys.exit(3)
open('waiting', 'w').close()
data = os.read(4, 16)
with open('released', 'w') as handle:
    handle.write(repr(data))
if mode == 'no-daemon':
    time.sleep(30)
if os.fork():
    os._exit(0)
with open(value('--conmon-pidfile'), 'w') as handle:
    handle.write(str(os.getpid()))
if mode == 'ok':
    os.write(3, b'{"data": 4242}\n')
elif mode == 'ok-split':
    os.write(3, b'{"da')
    time.sleep(0.2)
    os.write(3, b'ta": 4343}')
elif mode == 'fail':
    os.write(3, json.dumps({'data': -1, 'message': 'boom\n'}).encode())
    time.sleep(30)
elif mode == 'close':
    os.close(3)
    time.sleep(30)
elif mode == 'hang':
    time.sleep(30)
os._exit(0)
'''


def wait_gone(pid, timeout=5.0):
    """True once ``pid`` no longer runs (gone, or a zombie waiting for init)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stat = read_proc_stat(pid)
        if stat is None or stat[0] in ('Z', 'X'):
            return True
        time.sleep(0.01)
    return False


def open_fds():
    return sorted(os.listdir('/proc/self/fd'))


@pytest.fixture
def env(tmp_path):
    """A fake conmon plus the directories of one container."""
    class Env(object):
        conmon = str(tmp_path / 'conmon')
        bundle = tmp_path / 'bundle'
        run_dir = tmp_path / 'run'
        runtime = OCIRuntime('runc', '/usr/sbin/runc', str(tmp_path / 'state'), log_path=str(tmp_path / 'rt.log'))
        leftovers = []

        def launch_spec(self, mode, **extra):
            (self.bundle / 'mode').write_text(mode)
            values = dict(conmon_path=self.conmon, runtime=self.runtime, container_id=CID, name='web',
                          bundle=str(self.bundle), pidfile=str(self.run_dir / 'pidfile'),
                          conmon_pidfile=str(self.run_dir / 'conmon.pid'), exit_dir=str(tmp_path / 'exits'),
                          persist_dir=None, socket_dir=str(tmp_path / 'socket'), log_path=str(tmp_path / 'ctr.log'),
                          runtime_log=str(tmp_path / 'rt.log'))
            values.update(extra)
            return conmon.ConmonLaunch(**values)

        def report(self):
            return json.loads((self.bundle / 'report.json').read_text())

        def daemon_pid(self):
            text = (self.run_dir / 'conmon.pid').read_text().strip()
            pid = int(text)
            self.leftovers.append(pid)
            return pid

    instance = Env()
    instance.bundle.mkdir()
    instance.run_dir.mkdir()
    with open(instance.conmon, 'w') as handle:
        handle.write(FAKE_CONMON % {'python': sys.executable})
    os.chmod(instance.conmon, 0o755)
    yield instance
    for pid in instance.leftovers:  # never leave a fake behind, even when a test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# -- argv -------------------------------------------------------------------------------------------

def flag_values(argv, flag):
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def make_launch(**extra):
    values = dict(conmon_path='/nonexistent/conmon', runtime=OCIRuntime('runc', '/usr/sbin/runc', '/run/r/runtime/runc'),
                  container_id=CID, name='web', bundle='/var/lib/r/containers/web/bundle', pidfile='/run/r/c/pidfile',
                  conmon_pidfile='/run/r/c/conmon.pid', exit_dir='/run/r/exits', persist_dir='/run/r/c/persist',
                  socket_dir='/run/r/socket', log_path='/var/lib/r/containers/web/ctr.log',
                  runtime_log='/run/r/c/runtime.log')
    values.update(extra)
    return conmon.ConmonLaunch(**values)


def test_argv_contents():
    argv = make_launch().argv()
    assert argv[0] == '/nonexistent/conmon'
    assert flag_values(argv, '--api-version') == ['1']
    assert flag_values(argv, '-c') == [CID]
    assert flag_values(argv, '-u') == [CID]
    assert flag_values(argv, '-n') == ['web']
    assert flag_values(argv, '-r') == ['/usr/sbin/runc']
    assert flag_values(argv, '-b') == ['/var/lib/r/containers/web/bundle']
    assert flag_values(argv, '-p') == ['/run/r/c/pidfile']
    assert flag_values(argv, '--exit-dir') == ['/run/r/exits']
    assert flag_values(argv, '--socket-dir-path') == ['/run/r/socket']
    assert flag_values(argv, '--conmon-pidfile') == ['/run/r/c/conmon.pid']
    assert flag_values(argv, '-l') == ['k8s-file:/var/lib/r/containers/web/ctr.log']
    assert flag_values(argv, '--runtime-arg') == [
        '--root', '/run/r/runtime/runc', '--log', '/run/r/c/runtime.log', '--log-format', 'json']
    for absent in ('--log-size-max', '--restore', '--runtime-opt', '--systemd-cgroup', '--log-tag', '--persist-dir',
                   '--terminal'):
        assert absent not in argv
    assert all(isinstance(arg, str) for arg in argv)


def test_argv_without_runtime_log():
    argv = make_launch(runtime_log=None).argv()
    assert flag_values(argv, '--runtime-arg') == ['--root', '/run/r/runtime/runc']


@pytest.mark.parametrize('size', [1048576, 1])
def test_argv_log_size_max(size):
    assert flag_values(make_launch(log_size_max=size).argv(), '--log-size-max') == [str(size)]


def test_argv_restore():
    argv = make_launch(restore_path='/var/lib/r/checkpoint', restore_args=['--tcp-established', '--file-locks']).argv()
    assert flag_values(argv, '--restore') == ['/var/lib/r/checkpoint']
    assert flag_values(argv, '--runtime-opt') == ['--tcp-established', '--file-locks']


def test_argv_restore_args_need_a_restore_path():
    argv = make_launch(restore_args=['--tcp-established']).argv()
    assert '--restore' not in argv
    assert '--runtime-opt' not in argv


@pytest.mark.parametrize('driver, log_args, tag', [
    ('journald', ['journald:'], ['web']),
    ('none', ['none:'], []),
    ('k8s-file', ['k8s-file:/var/lib/r/containers/web/ctr.log'], []),
])
def test_argv_log_drivers(driver, log_args, tag):
    argv = make_launch(log_driver=driver).argv()
    assert flag_values(argv, '-l') == log_args
    assert flag_values(argv, '--log-tag') == tag


def test_argv_systemd_cgroup():
    assert '--systemd-cgroup' in make_launch(systemd_cgroup=True).argv()


def test_argv_terminal():
    assert '--terminal' in make_launch(terminal=True).argv()


@pytest.mark.parametrize('help_text, expected', [('  --persist-dir   Persistent directory\n', True),
                                                 ('  --exit-dir  Exit directory\n', False)])
def test_argv_persist_dir_only_when_conmon_knows_it(tmp_path, help_text, expected):
    program = tmp_path / 'conmon'
    program.write_text('#!/bin/sh\ncat <<"EOF"\n%sEOF\n' % help_text)
    program.chmod(0o755)
    argv = make_launch(conmon_path=str(program)).argv()
    assert flag_values(argv, '--persist-dir') == (['/run/r/c/persist'] if expected else [])
    assert conmon.conmon_supports(str(program), '--persist-dir') is expected


def test_argv_persist_dir_not_set():
    assert '--persist-dir' not in make_launch(persist_dir=None).argv()


# -- launch -----------------------------------------------------------------------------------------

def test_launch_success_returns_the_pids(env):
    started = []

    def before_start(pid):
        deadline = time.monotonic() + 10
        while not (env.bundle / 'waiting').exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        # conmon waits on the start pipe: it has not been released yet
        assert (env.bundle / 'waiting').exists()
        assert not (env.bundle / 'released').exists()
        started.append(pid)

    before = open_fds()
    pid, conmon_pid = conmon.launch(env.launch_spec('ok'), timeout=10, before_start=before_start)
    assert pid == 4242
    assert conmon_pid == env.daemon_pid()
    assert started == [env.report()['pid']]
    assert conmon_pid != started[0]  # the daemonized child, not the process we started
    assert (env.bundle / 'released').read_text() == repr(b'0')
    assert open_fds() == before


def test_launch_reads_a_message_in_pieces(env):
    pid, conmon_pid = conmon.launch(env.launch_spec('ok-split'), timeout=10)
    assert pid == 4343
    assert conmon_pid == env.daemon_pid()


def test_launch_gives_conmon_dev_null_and_exactly_its_pipes(env, monkeypatch):
    monkeypatch.setenv('RUNCIBLE_UNIT_MARKER', 'must not leak')
    conmon.launch(env.launch_spec('ok'), timeout=10)
    env.daemon_pid()
    report = env.report()
    assert [report['links'][str(fd)] for fd in (0, 1, 2)] == ['/dev/null'] * 3
    assert report['fds'][:5] == [0, 1, 2, 3, 4]
    assert report['links']['3'].startswith('pipe:')
    assert report['links']['4'].startswith('pipe:')
    assert report['links']['3'] != report['links']['4']
    assert report['session_leader'] is True
    assert report['cwd'] == str(env.bundle)
    assert report['env']['_OCI_SYNCPIPE'] == '3'
    assert report['env']['_OCI_STARTPIPE'] == '4'
    assert 'RUNCIBLE_UNIT_MARKER' not in report['env']
    assert '_OCI_EXTRA_FDS' not in report['env']
    assert set(report['env']) - {'LC_CTYPE'} == {'PATH', '_OCI_SYNCPIPE', '_OCI_STARTPIPE'}
    assert report['argv'] == env.launch_spec('ok').argv()[1:]


def test_launch_leaks_no_inheritable_fd_to_conmon(env):
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)  # as fds a process inherited from its own parent are
    try:
        conmon.launch(env.launch_spec('ok'), timeout=10)
        env.daemon_pid()
    finally:
        os.close(read_end)
        os.close(write_end)
    report = env.report()
    assert write_end not in report['fds'] or write_end in (3, 4)
    assert report['fds'] == [0, 1, 2, 3, 4]


def test_launch_passes_extra_fds_from_5(env):
    read_end, write_end = os.pipe()
    pipe_name = os.readlink('/proc/self/fd/%d' % read_end)
    try:
        conmon.launch(env.launch_spec('ok', extra_fds=[read_end]), timeout=10)
        env.daemon_pid()
    finally:
        os.close(read_end)
        os.close(write_end)
    report = env.report()
    assert report['fds'][:6] == [0, 1, 2, 3, 4, 5]
    assert report['env']['_OCI_EXTRA_FDS'] == '1'
    assert report['links']['5'] == pipe_name  # the same pipe


def test_launch_failure_carries_the_runtime_message_and_kills_conmon(env):
    before = open_fds()
    with pytest.raises(RuntimeCommandError) as info:
        conmon.launch(env.launch_spec('fail'), timeout=10)
    assert info.value.msg == 'runc failed to create the container: boom'
    assert info.value.details['conmon_message'] == {'data': -1, 'message': 'boom\n'}
    assert wait_gone(env.daemon_pid())
    assert open_fds() == before


def test_launch_failure_of_a_restore_says_restore(env):
    with pytest.raises(RuntimeCommandError, match='runc failed to restore the container: boom'):
        conmon.launch(env.launch_spec('fail', restore_path='/tmp/checkpoint'), timeout=10)
    assert wait_gone(env.daemon_pid())


def test_launch_timeout_kills_the_daemon(env):
    before = open_fds()
    started = time.monotonic()
    with pytest.raises(RuntimeCommandError) as info:
        conmon.launch(env.launch_spec('hang'), timeout=1)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5
    assert 'runc create did not report a pid within 1s' in info.value.msg
    daemon = env.daemon_pid()
    assert wait_gone(daemon), 'the fake conmon %d is still running' % daemon
    assert open_fds() == before


def test_launch_sync_pipe_closed_without_a_pid(env):
    with pytest.raises(RuntimeCommandError, match='closed its sync pipe without a pid'):
        conmon.launch(env.launch_spec('close'), timeout=10)
    assert wait_gone(env.daemon_pid())


def test_launch_conmon_that_never_daemonizes(env):
    with pytest.raises(RuntimeCommandError, match='conmon did not daemonize within 1s'):
        conmon.launch(env.launch_spec('no-daemon'), timeout=1)
    assert wait_gone(env.report()['pid'])


def test_launch_conmon_exit_code(env):
    with pytest.raises(RuntimeCommandError) as info:
        conmon.launch(env.launch_spec('exit3'), timeout=10)
    assert 'conmon exited with code 3' in info.value.msg
    assert env.conmon in info.value.msg


def test_launch_missing_conmon(env, tmp_path):
    before = open_fds()
    with pytest.raises(RuntimeCommandError, match='cannot start conmon'):
        conmon.launch(env.launch_spec('ok', conmon_path=str(tmp_path / 'missing')), timeout=10)
    assert open_fds() == before


def _wait_until_exited(pid):
    deadline = time.monotonic() + 10
    while read_proc_stat(pid)[0] != 'Z' and time.monotonic() < deadline:
        time.sleep(0.005)
    assert read_proc_stat(pid)[0] == 'Z'


def test_launch_conmon_dead_before_the_start_pipe(env, tmp_path):
    quick = tmp_path / 'quick-conmon'
    quick.write_text('#!/bin/sh\nexit 3\n')
    quick.chmod(0o755)
    with pytest.raises(RuntimeCommandError, match='conmon exited with code 3'):
        conmon.launch(env.launch_spec('ok', conmon_path=str(quick)), timeout=10, before_start=_wait_until_exited)


class _Events(object):
    """Records, in order, closes of the start pipe's write end and kills of the conmon process."""

    def __init__(self, monkeypatch):
        self.events = []
        self.start_w = None
        real_pipe, real_close, real_kill = os.pipe, os.close, subprocess.Popen.kill
        pipes = []

        def pipe():
            fds = real_pipe()
            pipes.append(fds)
            if len(pipes) == 2:  # launch makes the sync pipe, then the start pipe
                self.start_w = fds[1]
            return fds

        def close(fd):
            if fd == self.start_w:
                self.events.append('close start pipe')
            return real_close(fd)

        def kill(proc):
            self.events.append('kill conmon')
            return real_kill(proc)

        monkeypatch.setattr(conmon.os, 'pipe', pipe)
        monkeypatch.setattr(conmon.os, 'close', close)
        monkeypatch.setattr(subprocess.Popen, 'kill', kill)


def test_failed_before_start_kills_conmon_before_releasing_it(env, monkeypatch):
    events = _Events(monkeypatch)

    def before_start(pid):
        raise OSError('cannot place conmon in its cgroup')

    with pytest.raises(OSError, match='cgroup'):
        conmon.launch(env.launch_spec('hang'), timeout=10, before_start=before_start)
    monkeypatch.undo()
    assert 'kill conmon' in events.events
    assert events.events.index('kill conmon') < events.events.index('close start pipe')


def test_failed_before_start_kills_conmon(env):
    def before_start(pid):
        raise OSError('cannot place conmon in its cgroup')

    with pytest.raises(OSError, match='cgroup'):
        conmon.launch(env.launch_spec('hang'), timeout=10, before_start=before_start)
    assert not (env.run_dir / 'conmon.pid').exists(), 'conmon must be killed before the start pipe releases it'
