# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_container.run(): the paths that need no OCI runtime (validation, check mode, record-only changes).

The runtime and conmon are looked up but never run here: find_program is replaced so that the
tests do not depend on what is installed, and every task uses a fresh root / run_root.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _container
from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options
from ansible_collections.runcible.oci.plugins.module_utils._runtime import engine, oci_cli
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.store import Record, Store

CID = '5a' * 32
RUNC = '/usr/sbin/runc'
CONMON = '/usr/bin/conmon'


@pytest.fixture
def tools(monkeypatch):
    """The programs find_program finds; tests remove entries to make them missing."""
    found = {'runc': RUNC, 'conmon': CONMON}

    def find_program(name, package=None):
        return found.get(name)

    monkeypatch.setattr(oci_cli, 'find_program', find_program)
    monkeypatch.setattr(engine, 'find_program', find_program)
    monkeypatch.setattr(oci_cli, 'cgroup_mode', lambda cgroup_root='/sys/fs/cgroup': 'unified')
    return found


@pytest.fixture
def rootfs(tmp_path):
    etc = tmp_path / 'rootfs' / 'etc'
    etc.mkdir(parents=True)
    (etc / 'passwd').write_text('root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n')
    (etc / 'group').write_text('root:x:0:\nstaff:x:50:\n')
    return str(tmp_path / 'rootfs')


@pytest.fixture
def dirs(tmp_path):
    return {'root': str(tmp_path / 'root'), 'run_root': str(tmp_path / 'run')}


def snapshot(*roots):
    """{path: content} of every file under ``roots`` (plus directories as None)."""
    result = {}
    for top in roots:
        for current, subdirs, files in os.walk(top):
            result[current] = None
            for name in files:
                path = os.path.join(current, name)
                with open(path, 'rb') as handle:
                    result[path] = handle.read()
    return result


# -- bad input: ValidationError, and nothing written ------------------------------------------------

BEFORE_LOCK = [
    ('bad name', {'name': 'a/b'}, 'invalid container name'),
    ('dotdot name', {'name': 'a..b'}, 'invalid container name'),
    ('empty name', {'name': ''}, 'invalid container name'),
    ('long name', {'name': 'a' * 129}, 'invalid container name'),
    ('bad state', {'state': 'running'}, "state: 'running' is not one of"),
]
UNDER_LOCK = [
    ('no rootfs, no command', {}, 'container web does not exist; creating it needs rootfs and command'),
    ('no command', {'rootfs': '@rootfs'}, 'creating it needs command'),
    ('no rootfs', {'command': 'sleep 1'}, 'creating it needs rootfs'),
    ('missing rootfs', {'rootfs': '/nonexistent/runcible/rootfs', 'command': 'sleep 1'}, 'does not exist'),
    ('relative rootfs', {'rootfs': 'rootfs', 'command': 'sleep 1'}, 'must be the absolute path'),
    ('bad memory', {'rootfs': '@rootfs', 'command': 'sleep 1', 'memory': 'lots'}, 'memory:'),
    ('unknown user', {'rootfs': '@rootfs', 'command': 'sleep 1', 'user': 'nobody'}, 'user:'),
    ('bad comparisons', {'rootfs': '@rootfs', 'command': 'sleep 1', 'comparisons': {'memroy': 'ignore'}},
     "unknown option 'memroy'"),
    ('empty command', {'rootfs': '@rootfs', 'command': ''}, 'command: must not be empty'),
]


def _invalid_cases():
    for label, params, fragment in BEFORE_LOCK:
        for check_mode in (True, False):
            yield pytest.param(params, fragment, check_mode, id='%s-check=%s' % (label, check_mode))
    for label, params, fragment in UNDER_LOCK:
        yield pytest.param(params, fragment, True, id='%s-check=True' % label)
        yield pytest.param(params, fragment, False, id='%s-check=False' % label)


@pytest.mark.parametrize('params, fragment, check_mode', list(_invalid_cases()))
def test_invalid_task_writes_nothing(tools, rootfs, dirs, tree, params, fragment, check_mode):
    params = dict((key, rootfs if value == '@rootfs' else value) for key, value in params.items())
    task = dict({'name': 'web'}, **dirs)
    task.update(params)
    with pytest.raises(ValidationError) as info:
        _container.run(task, check_mode=check_mode)
    assert fragment in info.value.msg
    assert tree(dirs['root']) is None
    assert tree(dirs['run_root']) is None


# -- check mode of a create -------------------------------------------------------------------------

@pytest.mark.parametrize('state, actions, status', [
    ('started', ['created', 'started'], 'running'),
    ('created', ['created'], 'created'),
    ('stopped', ['created'], 'stopped'),
    ('paused', ['created', 'started', 'paused'], 'paused'),
])
def test_check_mode_create_writes_nothing(tools, rootfs, dirs, tree, state, actions, status):
    result = _container.run(dict(dirs, name='web', state=state, rootfs=rootfs + '/', command='httpd -f -p 80',
                                 memory='64m', user='app:staff', env={'A': 1}), check_mode=True)
    assert tree(dirs['root']) is None
    assert tree(dirs['run_root']) is None
    assert result['changed'] is True
    assert result['actions'] == actions
    container = result['container']
    assert container['id'] is None
    assert container['name'] == 'web'
    assert container['status'] == status
    assert container['pid'] == 0
    assert container['conmon_pid'] == 0
    config = container['config']
    assert config['rootfs'] == rootfs
    assert config['command'] == ['httpd', '-f', '-p', '80']
    assert config['memory'] == 64 << 20
    assert config['user'] == '1000:50'
    assert config['env'] == {'A': '1'}
    assert config['runtime'] == RUNC
    assert config['hostname'] == 'web'
    assert config['stop_signal'] == 15
    assert sorted(config) == sorted(list(options.OPTIONS_BY_NAME) + ['user_groups'])
    assert config['user_groups'] == []  # the test root lists app in no group
    assert result['diff']['before'] == {'status': 'absent'}
    assert result['diff']['after']['status'] == status
    assert result['diff']['after']['memory'] == 64 << 20
    assert 'warnings' not in result


@pytest.mark.parametrize('check_mode', [True, False])
def test_absent_container_that_does_not_exist(tools, dirs, tree, check_mode):
    result = _container.run(dict(dirs, name='web', state='absent'), check_mode=check_mode)
    assert result['changed'] is False
    assert result['actions'] == []
    assert result['container'] == {}
    assert result['diff'] == {'before': {}, 'after': {}}
    if check_mode:
        assert tree(dirs['root']) is None
    assert tree(dirs['run_root']) is None


@pytest.mark.parametrize('missing, fragment', [('runc', 'no working OCI runtime found'),
                                               ('conmon', 'install the Debian package "conmon"')])
def test_check_mode_create_fails_without_runtime_or_conmon(tools, rootfs, dirs, tree, missing, fragment):
    del tools[missing]
    with pytest.raises(ValidationError) as info:
        _container.run(dict(dirs, name='web', rootfs=rootfs, command='sleep 1'), check_mode=True)
    assert fragment in info.value.msg
    assert tree(dirs['root']) is None


def test_check_mode_create_with_unknown_runtime(tools, rootfs, dirs, tree):
    with pytest.raises(ValidationError, match="unknown runtime 'docker'"):
        _container.run(dict(dirs, name='web', rootfs=rootfs, command='sleep 1', runtime='docker'), check_mode=True)
    assert tree(dirs['root']) is None


def test_check_mode_create_warns_when_crun_is_skipped(tools, rootfs, dirs, monkeypatch):
    tools['crun'] = '/usr/bin/crun'
    monkeypatch.setattr(oci_cli, 'cgroup_mode', lambda cgroup_root='/sys/fs/cgroup': 'hybrid')
    result = _container.run(dict(dirs, name='web', rootfs=rootfs, command='sleep 1'), check_mode=True)
    assert result['container']['config']['runtime'] == RUNC
    assert len(result['warnings']) == 1
    assert 'crun' in result['warnings'][0]


# -- an existing (stopped) container: comparisons, check mode, record-only updates -----------------

@pytest.fixture
def existing(tools, rootfs, dirs):
    """A stopped container 'web' in the store, as Engine.create records it; -> (store, record)."""
    store = Store(dirs['root'], dirs['run_root'])
    context = options.Context('web', dirs['root'])
    given = options.normalise({'rootfs': rootfs, 'command': 'sleep 100', 'memory': '64m',
                               'env': {'A': '1', 'B': '2'}}, context)
    config = options.complete(given, context)
    config['runtime'] = RUNC
    record = Record(id=CID, name='web', created_at='2026-01-01T00:00:00.000000Z', config=config,
                    runtime={'name': 'runc', 'path': RUNC}, conmon=CONMON, state='stopped', exit_code=0,
                    finished_at='2026-01-01T00:01:00.000000Z', started_at='2026-01-01T00:00:01.000000Z')
    store.save(record)
    with store.lock('web'):
        pass
    return store, store.load('web')


def run_on(dirs, check_mode=True, **params):
    return _container.run(dict(dirs, name='web', **params), check_mode=check_mode)


@pytest.mark.parametrize('params', [
    {},
    {'memory': '64m'},
    {'memory': 67108864, 'command': ['sleep', '100']},
    {'env': {'A': '1', 'B': '2'}},
    {'env': {'A': '1'}, 'comparisons': {'env': 'allow_more_present'}},
    {'memory': '1g', 'comparisons': {'memory': 'ignore'}},
    {'memory': '1g', 'command': 'true', 'comparisons': {'*': 'ignore'}},
    {'rootfs': '@rootfs/'},
    {'user': 'root'},
    {'stop_signal': 'SIGTERM', 'stop_timeout': 10},
])
@pytest.mark.parametrize('state', ['stopped', 'created'])
@pytest.mark.parametrize('check_mode', [True, False])
def test_unchanged_container(existing, rootfs, dirs, params, state, check_mode):
    params = dict((key, value.replace('@rootfs', rootfs) if isinstance(value, str) else value)
                  for key, value in params.items())
    before = snapshot(dirs['root'])
    result = run_on(dirs, check_mode=check_mode, state=state, **params)
    assert result['changed'] is False
    assert result['actions'] == []
    assert result['diff'] == {'before': {}, 'after': {}}
    container = result['container']
    assert container['id'] == CID
    assert container['status'] == 'stopped'
    assert container['exit_code'] == 0
    assert container['config'] == existing[1]['config']
    assert snapshot(dirs['root']) == before
    assert not os.path.exists(dirs['run_root'])


@pytest.mark.parametrize('params, state, actions, status', [
    ({'hostname': 'other'}, 'stopped', ['recreated'], 'stopped'),
    ({'hostname': 'other'}, 'started', ['recreated', 'started'], 'running'),
    ({'hostname': 'other'}, 'paused', ['recreated', 'started', 'paused'], 'paused'),
    ({'hostname': 'other'}, 'created', ['recreated'], 'created'),
    ({'memory': '128m'}, 'stopped', ['updated'], 'stopped'),
    ({'memory': '128m', 'pids_limit': 9}, 'started', ['updated', 'started'], 'running'),
    ({'recreate': True}, 'stopped', ['recreated'], 'stopped'),
    ({'env': {'A': '1'}}, 'stopped', ['recreated'], 'stopped'),
    ({}, 'started', ['started'], 'running'),
    ({}, 'paused', ['started', 'paused'], 'paused'),
    ({}, 'absent', ['removed'], None),
    ({'stop_timeout': 3}, 'stopped', ['updated'], 'stopped'),
    ({'stop_timeout': 3}, 'started', ['updated', 'started'], 'running'),
])
def test_check_mode_change_writes_nothing(existing, dirs, params, state, actions, status):
    before = snapshot(dirs['root'])
    result = run_on(dirs, state=state, **params)
    assert snapshot(dirs['root']) == before
    assert not os.path.exists(dirs['run_root'])
    assert result['changed'] is True
    assert result['actions'] == actions
    if status is None:
        assert result['container'] == {}
    else:
        assert result['container']['status'] == status
        assert result['container']['id'] == CID
    if params == {'recreate': True} and status == 'stopped':
        # nothing differs but the identity: the status alone is no diff
        assert result['diff'] == {'before': {}, 'after': {}}
    else:
        assert result['diff']['before']['status'] == 'stopped'
        assert result['diff']['after']['status'] == (status or 'absent')


def test_check_mode_diff_of_a_changed_option(existing, dirs):
    result = run_on(dirs, state='stopped', memory='128m', stop_timeout=3)
    assert result['diff'] == {'before': {'memory': 64 << 20, 'stop_timeout': 10, 'status': 'stopped'},
                              'after': {'memory': 128 << 20, 'stop_timeout': 3, 'status': 'stopped'}}
    assert result['container']['config']['memory'] == 128 << 20
    assert result['container']['config']['stop_timeout'] == 3


def test_stop_timeout_change_only_updates_the_record(existing, dirs):
    store, record = existing
    result = run_on(dirs, check_mode=False, state='stopped', stop_timeout=3, memory='64m')
    assert result['changed'] is True
    assert result['actions'] == ['updated']
    assert result['diff'] == {'before': {'stop_timeout': 10, 'status': 'stopped'},
                              'after': {'stop_timeout': 3, 'status': 'stopped'}}
    saved = store.load('web')
    assert saved['id'] == CID
    assert saved['config'] == dict(record['config'], stop_timeout=3)
    assert saved['state'] == 'stopped'
    assert result['container']['config']['stop_timeout'] == 3
    assert not os.path.exists(dirs['run_root'])
    again = run_on(dirs, check_mode=False, state='stopped', stop_timeout=3)
    assert again['changed'] is False


def test_absent_removes_a_stopped_container(existing, dirs, tree):
    store, _record = existing
    result = run_on(dirs, check_mode=False, state='absent')
    assert result['changed'] is True
    assert result['actions'] == ['removed']
    assert result['container'] == {}
    assert result['diff'] == {'before': {'status': 'stopped'}, 'after': {'status': 'absent'}}
    assert store.names() == []
    assert tree(os.path.join(dirs['root'], 'containers')) == []
    assert not os.path.exists(store.paths('web').lock)
    again = run_on(dirs, check_mode=False, state='absent')
    assert again['changed'] is False


def test_view_of_an_existing_container(existing, dirs):
    store, record = existing
    container = run_on(dirs, state='stopped')['container']
    paths = store.paths('web', CID)
    assert container == {
        'id': CID, 'name': 'web', 'status': 'stopped', 'pid': 0, 'conmon_pid': 0, 'exit_code': 0, 'restart_count': 0, 'health': None,
        'created_at': record['created_at'], 'started_at': record['started_at'], 'finished_at': record['finished_at'],
        'bundle': paths.bundle, 'rootfs': paths.rootfs_mount, 'log_path': paths.log, 'runtime': 'runc',
        'ip_address': None, 'networks': [], 'config': record['config']}


def test_existing_container_with_bad_option(existing, dirs):
    before = snapshot(dirs['root'])
    with pytest.raises(ValidationError, match='memory:'):
        run_on(dirs, check_mode=False, memory='lots')
    assert snapshot(dirs['root']) == before
