# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runcible.oci.containers inventory plugin, on a store of records written by the tests.

A "running" record names this very test process as its container and conmon, so the live status
(read from /proc, as for a real container) is running; a "stopped" one is stopped.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.data import InventoryData
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.plugins.loader import init_plugin_loader, inventory_loader

from ansible_collections.runcible.oci.plugins.module_utils._runtime.host import current_boot_id, read_proc_stat
from ansible_collections.runcible.oci.plugins.module_utils._runtime.store import Record, Store

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(sys.modules[Store.__module__].__file__), *['..'] * 6))
TEMPLATE = "{{ lookup('pipe', 'touch /tmp/runcible-inventory-test-pwned') }}"


@pytest.fixture(scope='module')
def plugins():
    """Ansible's plugin loader finding runcible.oci (see test_connection.py); the plugin module itself."""
    plain = dict((name, module) for name, module in sys.modules.items() if name.split('.')[0] == 'ansible_collections')
    for name in plain:
        del sys.modules[name]
    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([COLLECTIONS])
    from ansible_collections.runcible.oci.plugins.inventory import containers
    yield containers
    for name in [name for name in sys.modules if name.split('.')[0] == 'ansible_collections']:
        del sys.modules[name]
    sys.modules.update(plain)


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / 'root'), str(tmp_path / 'run'))


def add(store, name, state='running', labels=None, exit_code=None):
    own_start = read_proc_stat(os.getpid())[1]
    record = {'id': ('%02x' % len(store.names())) * 32, 'name': name, 'created_at': '2026-12-01T10:00:00.000000Z',
              'config': {'rootfs': '/srv/rootfs', 'rootfs_mode': 'overlay', 'labels': labels or {}},
              'runtime': {'name': 'runc', 'path': '/usr/sbin/runc'}, 'state': state, 'exit_code': exit_code}
    if state != 'stopped':
        record.update(pid=os.getpid(), pid_start=own_start, conmon_pid=os.getpid(), conmon_start=own_start,
                      boot_id=current_boot_id(), started_at='2026-12-01T10:00:01.000000Z')
    record = Record.from_dict(record)
    store.save(record)
    return record


@pytest.fixture
def populated(store):
    add(store, 'web-1', labels={'app': 'shop', 'tier': 'front'})
    add(store, 'web-2', labels={'app': 'shop', 'tier': 'front', 'canary': 'yes'})
    add(store, 'db', labels={'app': 'shop', 'tier': 'back'})
    add(store, 'batch', state='stopped', labels={'app': 'reports'}, exit_code=3)
    add(store, 'evil', labels={'note': TEMPLATE})
    return store


def inventory(plugins, tmp_path, store, filename='containers.oci.yml', **config):
    """ansible-inventory's view of a config file for the plugin: -> InventoryManager."""
    text = ['plugin: runcible.oci.containers', 'root: %s' % store.root, 'run_root: %s' % store.run_root]
    for key, value in config.items():
        text.append('%s: %s' % (key, json.dumps(value)))
    path = tmp_path / filename
    path.write_text('\n'.join(text) + '\n')
    return InventoryManager(loader=DataLoader(), sources=[str(path)])


def hosts_of(manager, group):
    return sorted(host.name for host in manager.groups[group].get_hosts()) if group in manager.groups else None


# -- selectors and patterns -------------------------------------------------------------------------

@pytest.mark.parametrize('text, labels, matches', [
    ('tier=front', {'tier': 'front'}, True),
    ('tier=front', {'tier': 'back'}, False),
    ('tier=front', {}, False),
    ('tier!=front', {'tier': 'back'}, True),
    ('tier!=front', {}, True),
    ('tier!=front', {'tier': 'front'}, False),
    ('canary', {'canary': ''}, True),
    ('canary', {}, False),
    ('!canary', {}, True),
    ('!canary', {'canary': 'yes'}, False),
    ('url=http://x/?a=b', {'url': 'http://x/?a=b'}, True),
    ('empty=', {'empty': ''}, True),
])
def test_label_selector(plugins, text, labels, matches):
    assert plugins.LabelSelector(text).matches(labels) is matches


@pytest.mark.parametrize('text', ['', '  ', '=value', '!=value', '!', None, 3])
def test_bad_label_selector(plugins, text):
    with pytest.raises(AnsibleParserError, match='label_selectors'):
        plugins.LabelSelector(text)


@pytest.mark.parametrize('name, patterns, matches', [
    ('web-1', [], True),
    ('web-1', ['web-*'], True),
    ('db', ['web-*'], False),
    ('db', ['web-*', 'd?'], True),
    ('Web-1', ['web-*'], False),
    ('a1', ['[ab]*'], True),
])
def test_name_patterns(plugins, name, patterns, matches):
    assert plugins.name_matches(name, patterns) is matches


def test_list_containers_running_only_by_default(plugins, populated):
    found, warnings = plugins.list_containers(plugins.Engine(populated.root, populated.run_root))
    assert [name for name, _vars in found] == ['db', 'evil', 'web-1', 'web-2']
    assert warnings == []


def test_host_variables(plugins, populated):
    found, _warnings = plugins.list_containers(plugins.Engine(populated.root, populated.run_root), include_stopped=True)
    variables = dict(found)
    web = variables['web-1']
    assert web == {
        'ansible_connection': 'runcible.oci.oci',
        'ansible_runcible_root': populated.root,
        'ansible_runcible_run_root': populated.run_root,
        'runcible_id': '00' * 32,
        'runcible_status': 'running',
        'runcible_labels': {'app': 'shop', 'tier': 'front'},
        'runcible_pid': os.getpid(),
        'runcible_exit_code': None,
        'runcible_runtime': 'runc',
        'runcible_rootfs': os.path.join(populated.root, 'containers', 'web-1', 'bundle', 'rootfs'),
        'runcible_network': None,
        'runcible_ip_address': None,
        'runcible_created_at': '2026-12-01T10:00:00.000000Z',
        'runcible_started_at': '2026-12-01T10:00:01.000000Z',
    }
    assert variables['batch']['runcible_status'] == 'stopped'
    assert variables['batch']['runcible_exit_code'] == 3
    assert variables['batch']['runcible_pid'] is None


def test_address_on_a_bridge_network(plugins, store):
    record = add(store, 'web', labels={})
    record['config']['network'] = 'frontend'
    record['network'] = {'name': 'frontend', 'ip_address': '10.89.3.7'}
    store.save(record)
    found, _warnings = plugins.list_containers(plugins.Engine(store.root, store.run_root))
    variables = dict(found)['web']
    assert (variables['runcible_network'], variables['runcible_ip_address']) == ('frontend', '10.89.3.7')


def test_corrupt_record_is_skipped_with_a_warning(plugins, populated):
    with open(populated.paths('db').record, 'w') as handle:
        handle.write('{not json')
    found, warnings = plugins.list_containers(plugins.Engine(populated.root, populated.run_root))
    assert 'db' not in dict(found)
    assert len(warnings) == 1 and warnings[0].startswith('skipped container db: the record of container db is corrupt')


# -- the plugin through Ansible's inventory manager --------------------------------------------------

def test_verify_file(plugins, tmp_path):
    module = plugins.InventoryModule()
    for name, accepted in [('containers.oci.yml', True), ('x.oci.yaml', True), ('oci.yml', True),
                           ('containers.yml', False), ('x.oci.json', False), ('missing.oci.yml', False)]:
        path = tmp_path / name
        if name != 'missing.oci.yml':
            path.write_text('plugin: runcible.oci.containers\n')
        assert module.verify_file(str(path)) is accepted, name


def test_groups_and_variables(plugins, tmp_path, populated):
    manager = inventory(plugins, tmp_path, populated)
    assert hosts_of(manager, 'running') == ['db', 'evil', 'web-1', 'web-2']
    assert hosts_of(manager, 'stopped') == []
    web = manager.get_host('web-2').get_vars()
    assert web['ansible_connection'] == 'runcible.oci.oci'
    assert web['runcible_labels'] == {'app': 'shop', 'tier': 'front', 'canary': 'yes'}
    assert web['runcible_status'] == 'running'


def test_include_stopped(plugins, tmp_path, populated):
    manager = inventory(plugins, tmp_path, populated, include_stopped=True)
    assert hosts_of(manager, 'stopped') == ['batch']
    assert 'batch' not in hosts_of(manager, 'running')


def test_empty_store_still_has_the_status_groups(plugins, tmp_path, store):
    manager = inventory(plugins, tmp_path, store)
    assert hosts_of(manager, 'running') == [] and hosts_of(manager, 'stopped') == []


def test_filters(plugins, tmp_path, populated):
    manager = inventory(plugins, tmp_path, populated, include_stopped=True, name_patterns=['web-*', 'b*'],
                        label_selectors=['app=shop', '!canary'])
    assert sorted(host.name for host in manager.get_hosts()) == ['web-1']


def test_constructed_options(plugins, tmp_path, populated):
    manager = inventory(plugins, tmp_path, populated, include_stopped=True,
                        compose={'app_name': "runcible_labels.app | default('none')"},
                        groups={'failed': "runcible_status == 'stopped' and runcible_exit_code != 0"},
                        keyed_groups=[{'key': 'runcible_labels.tier', 'prefix': 'tier', 'default_value': 'none'}])
    assert hosts_of(manager, 'failed') == ['batch']
    assert hosts_of(manager, 'tier_front') == ['web-1', 'web-2']
    assert hosts_of(manager, 'tier_back') == ['db']
    assert manager.get_host('batch').get_vars()['app_name'] == 'reports'


def parse(tmp_path, text, name='x.oci.yml'):
    """The plugin's own parse() of a config file (errors are raised, not turned into warnings)."""
    path = tmp_path / name
    path.write_text(text)
    module = inventory_loader.get('runcible.oci.containers')
    data = InventoryData()
    module.parse(data, DataLoader(), str(path))
    return data


def test_strict_makes_bad_expressions_fatal(plugins, tmp_path, populated):
    config = 'plugin: runcible.oci.containers\nroot: %s\nrun_root: %s\ncompose:\n  x: no_such_var.attr\n' % (
        populated.root, populated.run_root)
    data = parse(tmp_path, config)
    assert 'x' not in data.get_host('db').get_vars()
    with pytest.raises(AnsibleError, match='Could not set x for host .*no_such_var'):
        parse(tmp_path, config + 'strict: true\n')


def test_labels_are_never_templated(plugins, tmp_path, populated):
    marker = '/tmp/runcible-inventory-test-pwned'
    if os.path.exists(marker):
        os.unlink(marker)
    manager = inventory(plugins, tmp_path, populated, compose={'note': 'runcible_labels.note | default("")'},
                        keyed_groups=[{'key': 'runcible_labels.note', 'prefix': 'note'}])
    evil = manager.get_host('evil').get_vars()
    assert evil['runcible_labels']['note'] == TEMPLATE
    assert evil['note'] == TEMPLATE
    from ansible.template import Templar, trust_as_template
    templar = Templar(loader=DataLoader(), variables=evil)
    assert templar.template(trust_as_template('{{ runcible_labels.note }}')) == TEMPLATE
    assert templar.template(trust_as_template('{{ note }}')) == TEMPLATE
    assert not os.path.exists(marker), 'a label value was templated'


def test_unreadable_store(plugins, tmp_path, populated, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode: False if path.endswith('/containers') else real_access(path, mode))
    with pytest.raises(AnsibleParserError, match='cannot read the containers of .*run as root'):
        parse(tmp_path, 'plugin: runcible.oci.containers\nroot: %s\n' % populated.root)


def test_a_config_for_another_plugin_is_refused(plugins, tmp_path):
    with pytest.raises(AnsibleParserError, match='Incorrect plugin name'):
        parse(tmp_path, 'plugin: community.docker.docker_containers\n')
