# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""container_exec's pure parts: argv, env, user, the process spec, paths inside the container, cgroups."""

from __future__ import annotations

import json
import os
import signal

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _exec, _info
from ansible_collections.runcible.oci.plugins.module_utils._runtime import exec_loop, execute
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.parsers import resolve_user

CAPS = ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETUID']
BASE = {
    'terminal': False,
    'consoleSize': {'height': 24, 'width': 80},
    'user': {'uid': 0, 'gid': 0, 'additionalGids': [10]},
    'args': ['sh', '-c', 'loop'],
    'env': ['PATH=/usr/bin:/bin', 'HOSTNAME=web', 'container=runcible', 'MODE=production'],
    'cwd': '/srv',
    'capabilities': {'bounding': list(CAPS), 'effective': list(CAPS), 'permitted': list(CAPS),
                     'ambient': ['CAP_KILL']},
    'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 20000, 'hard': 20000}],
    'noNewPrivileges': True,
    'apparmorProfile': 'runcible-default',
}


# -- argv -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('params, expected', [
    ({'argv': ['echo', 'a b']}, ['echo', 'a b']),
    ({'argv': ['echo', 5]}, ['echo', '5']),
    ({'command': 'echo hello'}, ['echo', 'hello']),
    ({'command': "echo 'a  b' \"c d\" e\\ f"}, ['echo', 'a  b', 'c d', 'e f']),
    ({'command': 'sh -c "echo $HOME; ls | wc -l"'}, ['sh', '-c', 'echo $HOME; ls | wc -l']),
    ({'command': 'echo a > file'}, ['echo', 'a', '>', 'file']),
    ({'argv': ['']}, ['']),
])
def test_task_argv(params, expected):
    assert _exec.task_argv(params) == expected


@pytest.mark.parametrize('params, message', [
    ({}, 'one of argv or command is required'),
    ({'argv': ['a'], 'command': 'a'}, 'mutually exclusive'),
    ({'argv': []}, 'must not be empty'),
    ({'command': ''}, 'must not be empty'),
    ({'command': '   '}, 'must not be empty'),
    ({'command': "echo 'unbalanced"}, 'cannot split'),
])
def test_task_argv_rejects(params, message):
    with pytest.raises(ValidationError, match=message):
        _exec.task_argv(params)


# -- env ---------------------------------------------------------------------------------------------

def test_task_env_makes_strings():
    assert _exec.task_env({'A': 1, 'B': True, 'C': None, 'D': 'x=y', 'E': 1.5}) == \
        {'A': '1', 'B': 'true', 'C': '', 'D': 'x=y', 'E': '1.5'}
    assert _exec.task_env(None) == {}


@pytest.mark.parametrize('env, message', [
    ({'A=B': '1'}, 'invalid variable name'),
    ({'': '1'}, 'invalid variable name'),
    ({'A': 'nul\0byte'}, 'NUL byte'),
    (['A=1'], 'expected a dictionary'),
])
def test_task_env_rejects(env, message):
    with pytest.raises(ValidationError, match=message):
        _exec.task_env(env)


def test_bad_secrets_are_named_as_secrets_and_never_shown():
    with pytest.raises(ValidationError) as raised:
        _exec.task_env('TOKEN=hunter2-value', 'secrets')
    assert str(raised.value) == 'secrets: expected a dictionary, got a str'
    with pytest.raises(ValidationError, match="secrets: invalid variable name 'A=B'"):
        _exec.task_env({'A=B': 'hunter2-value'}, 'secrets')


def test_merge_env_keeps_order_and_overrides():
    assert execute.merge_env(BASE['env'], {'MODE': 'debug', 'NEW': 'v=w', 'PATH': '/opt/bin'}) == [
        'PATH=/opt/bin', 'HOSTNAME=web', 'container=runcible', 'MODE=debug', 'NEW=v=w']
    assert execute.merge_env(['A=1=2', 'EMPTY='], None) == ['A=1=2', 'EMPTY=']
    assert execute.merge_env(None, {'A': '1'}) == ['A=1']


# -- the process spec ------------------------------------------------------------------------------------

def test_build_process_keeps_the_containers_security_settings():
    base = json.loads(json.dumps(BASE))
    process = execute.build_process(base, ['id'], env={'X': '1'})
    assert base == BASE, 'the container spec is not modified'
    assert process['args'] == ['id']
    assert process['env'][-1] == 'X=1' and 'MODE=production' in process['env']
    assert process['cwd'] == '/srv' and process['user'] == BASE['user']
    assert process['terminal'] is False and 'consoleSize' not in process
    for key in ('capabilities', 'rlimits', 'noNewPrivileges', 'apparmorProfile'):
        assert process[key] == BASE[key], key


def test_build_process_non_root_user_loses_capabilities():
    process = execute.build_process(BASE, ['id'], user='1000:1000', cwd='/tmp')
    assert process['user'] == {'uid': 1000, 'gid': 1000}, 'the container user\'s extra groups are not inherited'
    assert process['cwd'] == '/tmp'
    caps = process['capabilities']
    assert caps['bounding'] == CAPS and caps['effective'] == [] and caps['permitted'] == []
    assert 'ambient' not in caps


def test_build_process_root_user_gets_the_bounding_set():
    base = dict(BASE, user={'uid': 1000, 'gid': 1000},
                capabilities={'bounding': list(CAPS), 'effective': [], 'permitted': []})
    process = execute.build_process(base, ['id'], user='0:0')
    assert process['capabilities']['effective'] == CAPS and process['capabilities']['permitted'] == CAPS
    kept = execute.build_process(base, ['id'])
    assert kept['capabilities']['effective'] == [] and kept['user'] == {'uid': 1000, 'gid': 1000}


def test_build_process_without_cwd_defaults_to_root():
    assert execute.build_process({'args': ['x']}, ['id'])['cwd'] == '/'


# -- user ------------------------------------------------------------------------------------------------

@pytest.fixture
def container_root(tmp_path):
    etc = tmp_path / 'etc'
    etc.mkdir()
    (etc / 'passwd').write_text('root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n')
    (etc / 'group').write_text('root:x:0:\nwheel:x:10:app\napp:x:1001:\n')
    return str(tmp_path)


@pytest.mark.parametrize('user, expected', [
    ('app', '1000:1001'),
    ('app:wheel', '1000:10'),
    ('1000', '1000:1001'),
    ('1000:0', '1000:0'),
    ('4242', '4242:0'),
    ('root', '0:0'),
])
def test_user_is_resolved_in_the_container(container_root, user, expected):
    assert resolve_user(user, container_root) == expected


@pytest.mark.parametrize('user, message', [('nobody', 'not in the root filesystem'), ('app:nogroup', 'group')])
def test_unknown_user_fails(container_root, user, message):
    with pytest.raises(ValidationError, match=message):
        resolve_user(user, container_root)


@pytest.mark.timeout(20)
def test_exec_user_is_never_resolved_in_a_host_file(lookup_mode, container_root, tmp_path):
    """/etc/passwd -> a host file: the container has no such file, whatever the host has there."""
    host = tmp_path.parent / (tmp_path.name + '-host-passwd')
    host.write_text('hostonly:x:4321:4321::/host-only-home:/bin/sh\napp:x:4321:4321::/:/bin/sh\n')
    os.unlink(os.path.join(container_root, 'etc', 'passwd'))
    os.symlink(str(host), os.path.join(container_root, 'etc', 'passwd'))
    with pytest.raises(ValidationError, match="'hostonly' is not in the root filesystem's /etc/passwd"):
        resolve_user('hostonly', container_root)
    with pytest.raises(ValidationError, match="'app' is not in"):
        resolve_user('app', container_root)
    assert resolve_user('4321', container_root) == '4321:0'
    os.unlink(os.path.join(container_root, 'etc', 'passwd'))
    os.mkfifo(os.path.join(container_root, 'etc', 'passwd'))
    with pytest.raises(ValidationError, match='a FIFO, not a regular file'):
        resolve_user('app', container_root)


# -- options that need no container ---------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [(None, None), (1, 1.0), ('2.5', 2.5), (0.1, 0.1)])
def test_task_timeout(value, expected):
    assert _exec.task_timeout(value) == expected


@pytest.mark.parametrize('value', [0, -1, 'soon'])
def test_task_timeout_rejects(value):
    with pytest.raises(ValidationError, match='timeout'):
        _exec.task_timeout(value)


def test_container_path_is_kept_as_given():
    assert _exec.container_path('/tmp/link/../x', 'creates') == '/tmp/link/../x'
    assert _exec.container_path(None, 'creates') is None
    with pytest.raises(ValidationError, match='not an absolute path'):
        _exec.container_path('relative/x', 'creates')


@pytest.mark.parametrize('params, message', [
    ({'container': 'bad/name', 'argv': ['true']}, 'invalid container name'),
    ({'container': 'web', 'argv': ['true'], 'detach': True, 'stdin': 'x'}, 'detach cannot be combined'),
    ({'container': 'web', 'argv': ['true'], 'detach': True, 'timeout': 5}, 'detach cannot be combined'),
    ({'container': 'web', 'argv': ['true'], 'chdir': 'tmp'}, 'not an absolute path'),
    ({'container': 'web', 'argv': ['true'], 'removes': 'x'}, 'not an absolute path'),
])
def test_bad_input_fails_before_looking_at_the_container(store_dirs, tree, params, message):
    root, run_root = store_dirs
    with pytest.raises(ValidationError, match=message):
        _exec.run(dict(params, root=root, run_root=run_root))
    assert tree(root) is None and tree(run_root) is None


def test_exec_into_an_absent_container(store_dirs, tree):
    root, run_root = store_dirs
    params = {'container': 'web', 'argv': ['true'], 'root': root, 'run_root': run_root}
    with pytest.raises(Exception, match='cannot exec in container web: it is absent'):
        _exec.run(params)
    checked = _exec.run(params, check_mode=True)
    assert checked['changed'] and checked['container_status'] == 'absent'
    assert tree(root) is None and tree(run_root) is None


def test_argument_spec_secrets_and_stdin_are_no_log_env_is_plain():
    spec = _exec.argument_spec()
    assert spec['secrets']['no_log'] is True and spec['stdin']['no_log'] is True
    assert not spec['env'].get('no_log'), 'env is plain configuration (a no_log env censored output)'
    assert spec['strip_empty_ends']['default'] is True and spec['detach']['default'] is False


# -- paths inside the container ------------------------------------------------------------------------

@pytest.fixture
def fake_root(tmp_path):
    """A directory standing for a container's root: symlinks point at absolute in-container paths."""
    root = tmp_path / 'root'
    (root / 'data' / 'deep').mkdir(parents=True)
    (root / 'data' / 'deep' / 'file.pid').write_text('1')
    (root / 'data' / '.hidden.pid').write_text('1')
    (root / 'tmp').mkdir()
    os.symlink('/data', str(root / 'tmp' / 'abs'))
    os.symlink('../data/deep', str(root / 'tmp' / 'rel'))
    os.symlink('/../../../data', str(root / 'tmp' / 'escape'))
    os.symlink('/tmp/loop2', str(root / 'tmp' / 'loop1'))
    os.symlink('/tmp/loop1', str(root / 'tmp' / 'loop2'))
    os.symlink('/nowhere', str(root / 'tmp' / 'dangling'))
    os.symlink(str(tmp_path / 'outside'), str(root / 'tmp' / 'host-path'))
    (tmp_path / 'outside').write_text('on the host only')
    return str(root)


@pytest.mark.parametrize('path, exists', [
    ('/data/deep/file.pid', True),
    ('/tmp/abs/deep/file.pid', True),
    ('/tmp/rel/file.pid', True),
    ('/tmp/abs/../data/deep', True),
    ('/tmp/abs/../tmp', True),
    ('/tmp/escape/deep', True),
    ('/../../data', True),
    ('/tmp/dangling', False),
    ('/tmp/host-path', False),
    ('/tmp/host-path/..', False),
    ('/tmp/abs/', True),
    ('/data/deep/file.pid/', False),
    ('/tmp/*', True),
    ('/tmp/host-*', False),
    ('/tmp/dang*', False),
    ('/data/deep/nothing', False),
    ('/data/deep/file.pid/x', False),
    ('/', True),
    ('/data/deep/*.pid', True),
    ('/tmp/abs/deep/file.*', True),
    ('/data/*.pid', False),
    ('/data/.*.pid', True),
    ('/data/deep/[fg]ile.pid', True),
    ('/data/deep/?.pid', False),
    ('/nowhere/*.pid', False),
])
def test_path_exists_in_root(lookup_mode, fake_root, path, exists):
    assert execute.path_exists_in_root(fake_root, path) is exists


def test_resolve_in_root_stays_inside(lookup_mode, fake_root):
    assert execute.resolve_in_root(fake_root, '/tmp/escape/deep') == os.path.join(fake_root, 'data', 'deep')
    assert execute.resolve_in_root(fake_root, '/../..') == fake_root
    assert execute.resolve_in_root(fake_root, '/tmp/host-path').startswith(fake_root + '/')


def test_symlink_loops_fail(lookup_mode, fake_root):
    with pytest.raises(ValidationError, match='symbolic links'):
        execute.path_exists_in_root(fake_root, '/tmp/loop1/x')
    with pytest.raises(ValidationError, match='symbolic links'):
        execute.path_exists_in_root(fake_root, '/tmp/loop1/*.pid')
    with pytest.raises(ValidationError, match='symbolic links'):
        execute.resolve_in_root(fake_root, '/tmp/loop2')


@pytest.mark.timeout(20)
def test_a_fifo_exists_and_is_never_opened(lookup_mode, fake_root):
    os.mkfifo(os.path.join(fake_root, 'data', 'fifo'))
    os.symlink('/data/fifo', os.path.join(fake_root, 'tmp', 'fifo-link'))
    assert execute.path_exists_in_root(fake_root, '/tmp/fifo-link')
    assert execute.path_exists_in_root(fake_root, '/data/fi*')


def test_glob_only_in_the_last_component(fake_root):
    with pytest.raises(ValidationError, match='last path component'):
        execute.path_exists_in_root(fake_root, '/data/*/file.pid')


# -- cgroups and exit codes -------------------------------------------------------------------------------

V1_HYBRID = """9:name=systemd:/runcible/runcible-abc
6:freezer:/runcible/runcible-abc
4:memory:/runcible/runcible-abc
1:cpu,cpuacct:/runcible/runcible-abc
0::/runcible/runcible-abc
"""
V2 = "0::/runcible/runcible-abc\n"


def test_exec_cgroup_on_v1_uses_the_freezer(tmp_path):
    (tmp_path / 'freezer' / 'runcible' / 'runcible-abc').mkdir(parents=True)
    (tmp_path / 'freezer' / 'runcible' / 'runcible-abc' / 'freezer.state').write_text('THAWED\n')
    cgroup = execute.ExecCgroup.from_proc_cgroup(V1_HYBRID, 'runcible-exec-1', str(tmp_path))
    assert cgroup.freezer_v1 and cgroup.runtime_arg == 'freezer:runcible-exec-1'
    assert cgroup.dir == str(tmp_path / 'freezer' / 'runcible' / 'runcible-abc' / 'runcible-exec-1')


def test_exec_cgroup_on_v2_uses_the_unified_hierarchy(tmp_path):
    (tmp_path / 'cgroup.controllers').write_text('memory pids\n')
    (tmp_path / 'runcible' / 'runcible-abc').mkdir(parents=True)
    (tmp_path / 'runcible' / 'runcible-abc' / 'cgroup.procs').write_text('')
    cgroup = execute.ExecCgroup.from_proc_cgroup(V2, 'runcible-exec-1', str(tmp_path))
    assert not cgroup.freezer_v1 and cgroup.runtime_arg == 'runcible-exec-1'
    assert cgroup.dir == str(tmp_path / 'runcible' / 'runcible-abc' / 'runcible-exec-1')


def test_no_exec_cgroup_without_a_freezer_or_v2(tmp_path):
    assert execute.ExecCgroup.from_proc_cgroup(V1_HYBRID, 'x', str(tmp_path)) is None
    assert execute.ExecCgroup.from_proc_cgroup(V2, 'x', str(tmp_path)) is None
    assert execute.ExecCgroup.from_proc_cgroup('', 'x', str(tmp_path)) is None


@pytest.mark.parametrize('status, expected', [(0, 0), (3 << 8, 3), (255 << 8, 255), (signal.SIGKILL, 137),
                                              (signal.SIGTERM, 143)])
def test_exit_code(status, expected):
    assert exec_loop.exit_code(status) == expected


# -- container_info's names ---------------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    (None, (None, False)),
    ('web', (['web'], True)),
    (['web'], (['web'], True)),
    (['web', 'db', 'web'], (['web', 'db'], False)),
    ([], ([], False)),
])
def test_info_names(value, expected):
    assert _info.task_names(value) == expected


@pytest.mark.parametrize('value', ['../x', ['ok', 'bad/name'], [1], 5, {'a': 1}])
def test_info_names_rejects(value):
    with pytest.raises(ValidationError):
        _info.task_names(value)


def test_info_of_an_empty_store_writes_nothing(store_dirs, tree):
    root, run_root = store_dirs
    assert _info.run({'root': root, 'run_root': run_root}) == {'changed': False, 'containers': []}
    assert _info.run({'root': root, 'run_root': run_root, 'name': 'web', 'logs_tail': 5}) == \
        {'changed': False, 'containers': [], 'exists': False}
    assert tree(root) is None and tree(run_root) is None
