# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/oci_cli.py: cgroup mode, runtime selection, and the runtime command line with a fake runtime."""

from __future__ import annotations

import json
import os
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import host, oci_cli
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuntimeCommandError, ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.oci_cli import OCIRuntime

# A fake OCI runtime: records its argv (one per line) and stdin, then acts as $FAKE_MODE says (a file next
# to the script, since OCIRuntime.run keeps the environment).
FAKE_RUNTIME = r'''#!/bin/sh
dir=$(dirname "$0")
log=
for arg in "$@"; do printf '%s\n' "$arg"; done > "$dir/argv"
prev=
for arg in "$@"; do
    if [ "$prev" = "--log" ]; then log=$arg; fi
    prev=$arg
done
mode=$(cat "$dir/mode")
case "$mode" in
fail-log)
    printf '{"level":"warning","msg":"just a warning","time":"2026-01-01T00:00:00Z"}\n' >> "$log"
    msg='runc run failed: unable to start container process: exec: \"nope\": executable file not found in $PATH'
    printf '{"level":"error","msg":"%s","time":"2026-01-01T00:00:00Z"}\n' "$msg" >> "$log"
    echo "stderr words" >&2
    exit 1 ;;
fail-plain-log)
    echo "not json at all" >> "$log"
    exit 1 ;;
fail-stderr)
    echo "only on stderr" >&2
    exit 2 ;;
fail-silent)
    exit 3 ;;
state)
    printf '{"ociVersion":"1.0.2","id":"abc","status":"running","pid":4242}\n'
    exit 0 ;;
bad-json)
    echo '{nope'
    exit 0 ;;
stdin)
    cat > "$dir/stdin"
    exit 0 ;;
sleep)
    exec sleep 10 ;;
fd0)
    readlink /proc/self/fd/0 > "$dir/fd0"
    exit 0 ;;
*)
    echo "ok"
    exit 0 ;;
esac
'''


@pytest.fixture
def fake(tmp_path):
    directory = tmp_path / 'bin'
    directory.mkdir()
    script = directory / 'runc'
    script.write_text(FAKE_RUNTIME)
    script.chmod(0o755)

    class Fake(object):
        path = str(script)
        state_root = str(tmp_path / 'state')
        log = str(tmp_path / 'runtime.log')

        @staticmethod
        def mode(text):
            (directory / 'mode').write_text(text)

        @staticmethod
        def argv():
            return (directory / 'argv').read_text().splitlines()

        @staticmethod
        def called():
            return (directory / 'argv').exists()

        @staticmethod
        def stdin():
            return (directory / 'stdin').read_bytes()

        def runtime(self, log=True):
            return OCIRuntime('runc', self.path, self.state_root, log_path=self.log if log else None)

    return Fake()


# -- cgroup_mode ------------------------------------------------------------------------------------

@pytest.mark.parametrize('files, expected', [
    (['cgroup.controllers'], 'unified'),
    (['cgroup.controllers', 'unified/cgroup.controllers'], 'unified'),
    (['unified/cgroup.controllers', 'memory/tasks'], 'hybrid'),
    (['memory/tasks', 'cpu/tasks'], 'legacy'),
    (['unified/other'], 'legacy'),
    ([], 'legacy'),
])
def test_cgroup_mode(tmp_path, files, expected):
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('')
    assert host.cgroup_mode(str(tmp_path)) == expected


def test_cgroup_mode_of_a_missing_root(tmp_path):
    assert host.cgroup_mode(str(tmp_path / 'missing')) == 'legacy'


def test_cgroup_mode_of_this_host():
    assert host.cgroup_mode() in ('unified', 'hybrid', 'legacy')


# -- find_program -----------------------------------------------------------------------------------

def test_find_program_searches_sbin_without_path(monkeypatch):
    monkeypatch.setenv('PATH', '')
    found = host.find_program('sh')
    assert found is not None and os.path.isabs(found) and os.access(found, os.X_OK)


def test_find_program_uses_path_first(monkeypatch, fake):
    monkeypatch.setenv('PATH', os.path.dirname(fake.path))
    assert host.find_program('runc') == fake.path


def test_find_program_missing():
    assert host.find_program('runcible-no-such-program') is None


# -- select_runtime ---------------------------------------------------------------------------------

INSTALLED = {'crun': '/usr/bin/crun', 'runc': '/usr/sbin/runc'}


def install(monkeypatch, *names):
    monkeypatch.setattr(oci_cli, 'find_program', lambda name, package=None: INSTALLED[name] if name in names else None)


@pytest.mark.parametrize('requested', [None, '', 'auto'])
@pytest.mark.parametrize('mode, installed, expected', [
    ('unified', ('crun', 'runc'), 'crun'),
    ('unified', ('runc',), 'runc'),
    ('unified', ('crun',), 'crun'),
    ('legacy', ('crun', 'runc'), 'crun'),
    ('hybrid', ('runc',), 'runc'),
])
def test_select_runtime_auto(monkeypatch, requested, mode, installed, expected):
    install(monkeypatch, *installed)
    assert oci_cli.select_runtime(requested, mode=mode) == (expected, INSTALLED[expected], [])


def test_select_runtime_auto_skips_crun_on_hybrid_with_a_warning(monkeypatch):
    install(monkeypatch, 'crun', 'runc')
    name, path, warnings = oci_cli.select_runtime(None, mode='hybrid')
    assert (name, path) == ('runc', '/usr/sbin/runc')
    assert len(warnings) == 1
    assert 'crun' in warnings[0]
    assert 'hybrid' in warnings[0]


@pytest.mark.parametrize('mode, installed', [('unified', ()), ('legacy', ()), ('hybrid', ()), ('hybrid', ('crun',))])
def test_select_runtime_auto_without_a_working_runtime(monkeypatch, mode, installed):
    install(monkeypatch, *installed)
    with pytest.raises(ValidationError) as info:
        oci_cli.select_runtime('auto', mode=mode)
    assert 'no working OCI runtime' in info.value.msg
    assert 'install the Debian package "runc"' in info.value.msg


@pytest.mark.parametrize('requested, mode', [('runc', 'unified'), ('runc', 'hybrid'), ('runc', 'legacy'),
                                             ('crun', 'unified'), ('crun', 'legacy')])
def test_select_runtime_by_name(monkeypatch, requested, mode):
    install(monkeypatch, 'crun', 'runc')
    assert oci_cli.select_runtime(requested, mode=mode) == (requested, INSTALLED[requested], [])


def test_select_runtime_crun_on_hybrid_fails_naming_runc(monkeypatch):
    install(monkeypatch, 'crun', 'runc')
    with pytest.raises(ValidationError) as info:
        oci_cli.select_runtime('crun', mode='hybrid')
    assert 'crun cannot run containers on this host' in info.value.msg
    assert 'hybrid' in info.value.msg
    assert 'runtime: runc' in info.value.msg


@pytest.mark.parametrize('requested', ['runc', 'crun'])
def test_select_runtime_by_name_not_installed(monkeypatch, requested):
    install(monkeypatch)
    with pytest.raises(ValidationError) as info:
        oci_cli.select_runtime(requested, mode='unified')
    assert '%s not found' % requested in info.value.msg
    assert 'Debian package "%s"' % requested in info.value.msg


def test_select_runtime_absolute_path(monkeypatch, fake):
    install(monkeypatch)
    assert oci_cli.select_runtime(fake.path, mode='unified') == ('runc', fake.path, [])


def test_select_runtime_absolute_path_not_executable(tmp_path):
    path = tmp_path / 'runc'
    path.write_text('#!/bin/sh\n')
    path.chmod(0o644)
    with pytest.raises(ValidationError, match='does not exist or is not executable'):
        oci_cli.select_runtime(str(path), mode='unified')


@pytest.mark.parametrize('sub', ['missing', '.'])
def test_select_runtime_absolute_path_missing_or_a_directory(tmp_path, sub):
    with pytest.raises(ValidationError, match='does not exist or is not executable'):
        oci_cli.select_runtime(os.path.normpath(str(tmp_path / sub)), mode='unified')


def test_select_runtime_absolute_path_to_crun_on_hybrid(tmp_path):
    path = tmp_path / 'crun'
    path.write_text('#!/bin/sh\n')
    path.chmod(0o755)
    with pytest.raises(ValidationError, match='runtime: runc'):
        oci_cli.select_runtime(str(path), mode='hybrid')


@pytest.mark.parametrize('requested', ['docker', 'RUNC', 'runc ', './runc', 'bin/runc', 'youki'])
def test_select_runtime_unknown(monkeypatch, requested):
    install(monkeypatch, 'crun', 'runc')
    with pytest.raises(ValidationError) as info:
        oci_cli.select_runtime(requested, mode='unified')
    assert 'unknown runtime %r' % requested in info.value.msg


# -- OCIRuntime -------------------------------------------------------------------------------------

def test_global_args():
    assert OCIRuntime('runc', '/r', '/state').global_args() == ['--root', '/state']
    assert OCIRuntime('runc', '/r', '/state', log_path='/l').global_args() == [
        '--root', '/state', '--log', '/l', '--log-format', 'json']
    assert OCIRuntime('runc', '/r', '/state', log_path='/l').global_args('/other') == [
        '--root', '/state', '--log', '/other', '--log-format', 'json']


def test_run_passes_root_log_and_args(fake):
    fake.mode('ok')
    proc = fake.runtime().run(['start', 'abc'])
    assert proc.returncode == 0
    assert proc.stdout == b'ok\n'
    assert fake.argv() == ['--root', fake.state_root, '--log', fake.log, '--log-format', 'json', 'start', 'abc']


def test_run_without_log(fake):
    fake.mode('ok')
    fake.runtime(log=False).run(['start', 'abc'])
    assert fake.argv() == ['--root', fake.state_root, 'start', 'abc']


def test_run_error_text_comes_from_the_json_log(fake):
    fake.mode('fail-log')
    with pytest.raises(RuntimeCommandError) as info:
        fake.runtime().run(['create', '--bundle', '/b', 'abc'])
    msg = info.value.msg
    assert msg.startswith('runc create failed: ')
    assert 'exec: "nope": executable file not found in $PATH' in msg
    assert 'just a warning' not in msg
    assert 'stderr words' not in msg  # the log says it better
    details = info.value.details
    assert details['rc'] == 1
    assert details['stderr'] == 'stderr words'
    assert details['runtime_log'] == fake.log
    assert details['argv'][0] == fake.path
    assert details['argv'][-4:] == ['create', '--bundle', '/b', 'abc']


def test_run_error_ignores_older_log_entries(fake):
    with open(fake.log, 'w') as handle:
        handle.write(json.dumps({'level': 'error', 'msg': 'an old failure'}) + '\n')
    fake.mode('fail-log')
    with pytest.raises(RuntimeCommandError) as info:
        fake.runtime().run(['start', 'abc'])
    assert 'an old failure' not in info.value.msg
    assert 'executable file not found' in info.value.msg
    assert info.value.msg.count('executable file not found') == 1


def test_run_error_keeps_plain_log_lines(fake):
    fake.mode('fail-plain-log')
    with pytest.raises(RuntimeCommandError, match='runc delete failed: not json at all'):
        fake.runtime().run(['delete', 'abc'])


def test_run_error_falls_back_to_stderr(fake):
    fake.mode('fail-stderr')
    with pytest.raises(RuntimeCommandError) as info:
        fake.runtime().run(['kill', 'abc', '15'])
    assert info.value.msg == 'runc kill failed: only on stderr'
    assert info.value.details['rc'] == 2


@pytest.mark.parametrize('log', [True, False])
def test_run_error_with_nothing_to_say(fake, log):
    fake.mode('fail-silent')
    with pytest.raises(RuntimeCommandError) as info:
        fake.runtime(log=log).run(['pause', 'abc'])
    assert info.value.msg == 'runc pause failed: exit code 3'


def test_run_unchecked_returns_the_failure(fake):
    fake.mode('fail-silent')
    proc = fake.runtime().run(['state', 'abc'], check=False)
    assert proc.returncode == 3


def test_run_timeout(fake):
    fake.mode('sleep')
    started = time.monotonic()
    with pytest.raises(RuntimeCommandError) as info:
        fake.runtime().run(['start', 'abc'], timeout=0.5)
    assert time.monotonic() - started < 5
    assert 'runc start did not finish within 0.5s' in info.value.msg


def test_run_program_missing(tmp_path):
    runtime = OCIRuntime('runc', str(tmp_path / 'missing'), str(tmp_path / 'state'))
    with pytest.raises(RuntimeCommandError, match='cannot run .*missing'):
        runtime.run(['start', 'abc'])


def test_run_stdin_is_dev_null(fake, tmp_path):
    fake.mode('fd0')
    fake.runtime().run(['list'])
    assert (tmp_path / 'bin' / 'fd0').read_text().strip() == '/dev/null'


@pytest.mark.parametrize('mode, expected', [('ok', True), ('fail-silent', False)])
def test_kill(fake, mode, expected):
    fake.mode(mode)
    assert fake.runtime().kill('abc', 15) is expected
    assert fake.argv()[-3:] == ['kill', 'abc', '15']
    fake.runtime().kill('abc', 9, all_processes=True)
    assert fake.argv()[-4:] == ['kill', '--all', 'abc', '9']


def test_update_sends_resources_on_stdin(fake):
    fake.mode('stdin')
    resources = {'memory': {'limit': 1 << 20}, 'pids': {'limit': -1}}
    fake.runtime().update('abc', resources)
    assert json.loads(fake.stdin().decode()) == resources
    assert fake.argv()[-4:] == ['update', '--resources', '-', 'abc']


def test_delete_only_what_the_runtime_knows(fake):
    fake.mode('ok')
    runtime = fake.runtime()
    assert runtime.knows('abc') is False
    assert runtime.delete('abc') is False
    assert not fake.called()
    os.makedirs(os.path.join(fake.state_root, 'abc'))
    assert runtime.knows('abc') is True
    assert runtime.delete('abc') is True
    assert fake.argv()[-3:] == ['delete', '--force', 'abc']
    assert runtime.delete('abc', force=False) is True
    assert fake.argv()[-2:] == ['delete', 'abc']


@pytest.mark.parametrize('method, args, expected', [
    ('start', ('abc',), ['start', 'abc']),
    ('pause', ('abc',), ['pause', 'abc']),
    ('resume', ('abc',), ['resume', 'abc']),
])
def test_simple_commands(fake, method, args, expected):
    fake.mode('ok')
    getattr(fake.runtime(), method)(*args)
    assert fake.argv() == ['--root', fake.state_root, '--log', fake.log, '--log-format', 'json'] + expected
    fake.mode('fail-log')
    with pytest.raises(RuntimeCommandError, match='runc %s failed' % expected[0]):
        getattr(fake.runtime(), method)(*args)
