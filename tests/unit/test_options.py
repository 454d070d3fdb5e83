# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_container_options: the option table, its agreement with the module's documentation, and comparisons."""

from __future__ import annotations

import ast
import os

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import DEFAULT_TYPE_VALIDATORS

from ansible_collections.runcible.oci.plugins.module_utils import _container
from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options
from ansible_collections.runcible.oci.plugins.module_utils._container_options import base
from ansible_collections.runcible.oci.plugins.module_utils._runtime import cgroups
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTEXT = options.Context('web', '/var/lib/runcible')


def _assigned_string(path, name):
    """The string assigned to ``name`` anywhere in the Python file ``path`` (module or class level)."""
    with open(path, 'r', encoding='utf-8') as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError('%s assigns no %s' % (path, name))


def documented_options():
    """The container module's options: its DOCUMENTATION plus the runcible.oci.common fragment."""
    doc = yaml.safe_load(_assigned_string(os.path.join(REPO, 'plugins', 'modules', 'container.py'), 'DOCUMENTATION'))
    options = dict(doc['options'])
    for fragment in doc.get('extends_documentation_fragment', []):
        if fragment.startswith('runcible.oci.'):
            path = os.path.join(REPO, 'plugins', 'doc_fragments', fragment.split('.')[-1] + '.py')
            fragment_doc = yaml.safe_load(_assigned_string(path, 'DOCUMENTATION'))
            for name, entry in fragment_doc.get('options', {}).items():
                assert name not in options, '%s is documented twice' % name
                options[name] = entry
    return options


DOCUMENTED = documented_options()
ARGUMENT_SPEC = _container.argument_spec()


# -- the table --------------------------------------------------------------------------------------

def test_option_names_are_unique_and_indexed():
    names = [option.name for option in options.OPTIONS]
    assert len(names) == len(set(names))
    assert sorted(options.OPTIONS_BY_NAME) == sorted(names)


def test_argument_spec_keys_are_the_options():
    assert list(options.argument_spec()) == [option.name for option in options.OPTIONS]


def test_argument_spec_has_no_defaults():
    # None means "not given": a default would make every option compared on every task.
    for name, entry in options.argument_spec().items():
        assert 'default' not in entry, name
        assert 'required' not in entry, name


@pytest.mark.parametrize('option', options.OPTIONS, ids=lambda option: option.name)
def test_option_declaration(option):
    assert option.type in DEFAULT_TYPE_VALIDATORS
    if option.elements is not None:
        assert option.type == 'list'
        assert option.elements in DEFAULT_TYPE_VALIDATORS
    assert option.comparison in base.COMPARISONS
    assert option.update in base.UPDATES
    if option.choices is not None and option.default is not None:
        assert option.default_value(CONTEXT) in option.choices
    if option.spec is not None:
        assert callable(option.spec)


@pytest.mark.parametrize('option', [o for o in options.OPTIONS if o.default is not None], ids=lambda o: o.name)
def test_defaults_are_already_normalised(option):
    default = option.default_value(CONTEXT)
    if option.normalise is not None:
        assert option.normalise(default, CONTEXT) == default
    assert type(option.default_value(CONTEXT)) is type(default)


def test_default_values_are_copies():
    env = options.OPTIONS_BY_NAME['env'].default_value(CONTEXT)
    env['X'] = '1'
    mounts = options.OPTIONS_BY_NAME['mounts'].default_value(CONTEXT)
    mounts.append('x')
    assert options.OPTIONS_BY_NAME['env'].default_value(CONTEXT) == {}
    assert options.OPTIONS_BY_NAME['mounts'].default_value(CONTEXT) == []


@pytest.mark.parametrize('name, expected', [
    ('web', 'web'),
    ('my_app', 'my-app'),
    ('web_', 'web'),
    ('a.', 'a'),
    ('web.1', 'web.1'),
    ('0', '0'),
    ('a' * 128, 'a' * 63),
    ('a.b_c', 'a.b-c'),
    pytest.param('a._b', None),
    pytest.param('a_.b', None),
])
def test_default_hostname_is_a_valid_hostname(name, expected):
    context = options.Context(name, '/var/lib/runcible')
    hostname = options.OPTIONS_BY_NAME['hostname'].default_value(context)
    assert options.OPTIONS_BY_NAME['hostname'].normalise(hostname, context) == hostname
    if expected is not None:
        assert hostname == expected


def test_only_how_it_is_stopped_restarted_and_checked_are_record_updates():
    record_updates = [o.name for o in options.OPTIONS if o.update == 'record']
    assert record_updates == ['stop_timeout', 'restart_policy', 'restart_retries', 'healthcheck', 'health_on_failure']


def test_argument_spec_validates_a_typical_task():
    validator = ArgumentSpecValidator(ARGUMENT_SPEC)
    result = validator.validate({'name': 'web', 'rootfs': '/srv/rootfs', 'command': 'sleep 10', 'memory': '64m',
                                 'cpus': '0.5', 'pids_limit': '10', 'env': {'A': 1}, 'mounts': ['/a:/b:ro'],
                                 'stop_signal': 'TERM', 'comparisons': {'env': 'allow_more_present'}})
    assert result.error_messages == []
    params = result.validated_parameters
    assert params['cpus'] == 0.5
    assert params['pids_limit'] == 10
    assert params['state'] == 'started'
    assert params['recreate'] is False
    assert params['memory'] == '64m'
    assert params['hostname'] is None


@pytest.mark.parametrize('params', [{'name': 'web', 'state': 'running'}, {'name': 'web', 'published_ports': {'a': 1}},
                                    {'name': 'web', 'rootfs_mode': 'copy'}, {'state': 'started'}])
def test_argument_spec_rejects(params):
    assert ArgumentSpecValidator(ARGUMENT_SPEC).validate(params).error_messages


# -- the module's DOCUMENTATION agrees with the argument_spec ---------------------------------------

def test_documented_option_names():
    assert sorted(DOCUMENTED) == sorted(ARGUMENT_SPEC)


@pytest.mark.parametrize('name', sorted(ARGUMENT_SPEC))
def test_documented_option_matches_argument_spec(name):
    doc = DOCUMENTED.get(name)
    assert doc is not None, '%s is not documented' % name
    spec = ARGUMENT_SPEC[name]
    assert doc.get('type', 'str') == spec.get('type', 'str')
    assert doc.get('elements') == spec.get('elements')
    assert doc.get('choices') == spec.get('choices')
    assert doc.get('default') == spec.get('default')
    assert bool(doc.get('required', False)) == bool(spec.get('required', False))
    if spec.get('no_log'):
        assert 'no_log' in ' '.join(doc['description']), '%s is no_log: its documentation must say so' % name
    assert doc.get('description'), '%s has no description' % name


def test_module_argument_spec_extras():
    assert ARGUMENT_SPEC['name'] == {'type': 'str', 'required': True}
    assert ARGUMENT_SPEC['state']['choices'] == list(_container.STATES)
    assert ARGUMENT_SPEC['state']['default'] == 'started'
    assert ARGUMENT_SPEC['root']['default'] == '/var/lib/runcible'
    assert ARGUMENT_SPEC['run_root']['default'] == '/run/runcible'


# -- normalisers reached through normalise_given ----------------------------------------------------

@pytest.mark.parametrize('params, expected', [
    ({'memory': '64m'}, {'memory': 64 << 20}),
    ({'cpus': 0.5, 'pids_limit': 0}, {'cpus': 0.5, 'pids_limit': 0}),
    ({'cpus': '2'}, {'cpus': 2.0}),
    ({'stop_signal': 'term', 'stop_timeout': 0}, {'stop_signal': 15, 'stop_timeout': 0}),
    ({'command': 'sleep 10', 'workdir': '/srv/'}, {'command': ['sleep', '10'], 'workdir': '/srv'}),
    ({'hostname': 'box.example.com'}, {'hostname': 'box.example.com'}),
    ({'env': {'A': 1}, 'labels': {'b': True}}, {'env': {'A': '1'}, 'labels': {'b': 'true'}}),
    ({'user': '1000'}, {'user': '1000:0', 'user_groups': []}),
    ({'read_only': False, 'network': 'host', 'rootfs_mode': 'direct'},  # the shorthand: networks recorded as []
     {'read_only': False, 'network': 'host', 'rootfs_mode': 'direct', 'networks': []}),
    ({'memory': None, 'env': None}, {}),
    ({'log_driver': 'journald', 'log_size_max': '10m'}, {'log_driver': 'journald', 'log_size_max': 10 << 20}),
])
def test_normalise_given(params, expected):
    assert options.normalise(params, CONTEXT) == expected


@pytest.mark.parametrize('params, fragment', [
    ({'memory': 'lots'}, 'memory:'),
    ({'cpus': 'two'}, 'cpus:'),
    ({'cpus': -0.5}, 'cpus:'),
    ({'pids_limit': -1}, 'pids_limit:'),
    ({'pids_limit': True}, 'pids_limit:'),
    ({'stop_timeout': -1}, 'stop_timeout:'),
    ({'stop_timeout': 1.5}, 'stop_timeout:'),
    ({'log_size_max': '-1m'}, 'log_size_max:'),
    ({'stop_signal': 'SIGNOPE'}, 'stop_signal:'),
    ({'workdir': 'srv'}, 'workdir:'),
    ({'hostname': 'bad_host'}, 'hostname:'),
    ({'hostname': '-x'}, 'hostname:'),
    ({'hostname': 'a' * 64}, 'hostname:'),
    ({'hostname': 'a..b'}, 'hostname:'),
    ({'command': ''}, 'command:'),
    ({'env': {'A=B': '1'}}, 'env:'),
    ({'mounts': ['/nonexistent-runcible-source:/x']}, 'does not exist on the host'),
    ({'rootfs': 'relative/path'}, 'rootfs:'),
    ({'rootfs': '/nonexistent-runcible-rootfs'}, 'does not exist'),
    ({'user': 'nobody'}, 'user:'),
])
def test_normalise_given_rejects(params, fragment):
    with pytest.raises(ValidationError) as info:
        options.normalise(params, CONTEXT)
    assert fragment in info.value.msg


def test_hostname_longer_than_the_kernel_allows_is_rejected():
    with pytest.raises(ValidationError):
        options.normalise({'hostname': 'a' * 63 + '.' + 'b' * 10}, CONTEXT)


def test_hostname_with_trailing_newline_is_rejected():
    with pytest.raises(ValidationError):
        options.normalise({'hostname': 'web\n'}, CONTEXT)


@pytest.mark.parametrize('value', ['nan', 'inf', float('inf')])
def test_cpus_not_finite_is_rejected(value):
    with pytest.raises(ValidationError):
        options.normalise({'cpus': value}, CONTEXT)


def test_cpus_below_the_kernel_minimum_quota_is_rejected():
    value = 0.001
    assert int(round(value * cgroups.CPU_PERIOD)) < 1000
    with pytest.raises(ValidationError):
        options.normalise({'cpus': value}, CONTEXT)


# -- complete_config --------------------------------------------------------------------------------

def test_complete_config_fills_defaults():
    given = options.normalise({'command': 'sleep 1', 'memory': '1g'}, CONTEXT)
    config = options.complete(given, CONTEXT)
    assert sorted(config) == sorted(list(options.OPTIONS_BY_NAME) + ['user_groups'])  # the user's groups, not an option
    assert config['memory'] == 1 << 30
    assert config['command'] == ['sleep', '1']
    assert config['hostname'] == 'web'
    assert config['env'] == {}
    assert config['user'] == '0:0'
    assert config['stop_signal'] == 15
    assert config['stop_timeout'] == 10
    assert config['network'] == 'runcible'  # network: bridge, the default network
    assert config['ip_address'] is None
    assert config['published_ports'] == []
    assert config['rootfs_mode'] == 'overlay'
    assert config['rootfs'] is None
    assert config['runtime'] is None


# -- comparisons ------------------------------------------------------------------------------------

MOUNT_A = {'source': '/a', 'target': '/a', 'type': 'bind', 'options': ['rbind', 'rw']}
MOUNT_B = {'source': '/b', 'target': '/b', 'type': 'bind', 'options': ['rbind', 'ro']}


@pytest.mark.parametrize('wanted, actual, strict, allow_more', [
    ({'a': '1'}, {'a': '1'}, True, True),
    ({'a': '1'}, {'a': '1', 'b': '2'}, False, True),
    ({'a': '1'}, {'a': '2', 'b': '2'}, False, False),
    ({'a': '1', 'c': '3'}, {'a': '1'}, False, False),
    ({}, {'a': '1'}, False, True),
    ({}, {}, True, True),
    ([1], [1, 2], False, True),
    ([1, 3], [1, 2], False, False),
    ([2, 1], [1, 2], False, True),
    ([], [1], False, True),
    ([1, 2], [1], False, False),
    ([MOUNT_A], [MOUNT_A, MOUNT_B], False, True),
    ([MOUNT_A, MOUNT_B], [MOUNT_A], False, False),
    (5, 5, True, True),
    (5, 6, False, False),
    ('x', 'x', True, True),
    ('x', 'y', False, False),
    (0.5, 0.5, True, True),
    ({'a': 1}, [('a', 1)], False, False),
    (['a'], {'a': 1}, False, False),
    (None, None, True, True),
])
def test_values_match(wanted, actual, strict, allow_more):
    assert options.values_match(wanted, actual, 'strict') is strict
    assert options.values_match(wanted, actual, 'allow_more_present') is allow_more
    assert options.values_match(wanted, actual, 'ignore') is True


def test_comparison_modes_defaults():
    for comparisons in (None, {}):
        modes = options.comparison_modes(comparisons)
        assert modes == dict((o.name, o.comparison) for o in options.OPTIONS)
        assert set(modes.values()) == {'strict'}


@pytest.mark.parametrize('comparisons, expected', [
    ({'*': 'ignore'}, dict((o.name, 'ignore') for o in options.OPTIONS)),
    ({'*': 'ignore', 'env': 'strict'}, dict((o.name, 'strict' if o.name == 'env' else 'ignore') for o in options.OPTIONS)),
    ({'env': 'allow_more_present', 'memory': 'ignore'},
     dict((o.name, {'env': 'allow_more_present', 'memory': 'ignore'}.get(o.name, 'strict')) for o in options.OPTIONS)),
])
def test_comparison_modes(comparisons, expected):
    assert options.comparison_modes(comparisons) == expected


@pytest.mark.parametrize('comparisons, fragment', [
    ({'bogus': 'strict'}, "unknown option 'bogus'"),
    ({'name': 'strict'}, "unknown option 'name'"),
    ({'env': 'loose'}, "'loose' for env is not one of strict, ignore, allow_more_present"),
    ({'*': 'loose'}, "'loose' for *"),
    ({'*': None}, 'None for *'),
])
def test_comparison_modes_rejects(comparisons, fragment):
    with pytest.raises(ValidationError) as info:
        options.comparison_modes(comparisons)
    assert info.value.msg.startswith('comparisons: ')
    assert fragment in info.value.msg


# -- differences ------------------------------------------------------------------------------------

def actual_config(**params):
    params.setdefault('command', 'sleep 10')
    given = options.normalise(params, CONTEXT)
    return options.complete(given, CONTEXT)


def diff(params, actual, comparisons=None):
    given = options.normalise(params, CONTEXT)
    return [(d.name, d.before, d.after, d.update)
            for d in options.differences(given, actual, options.comparison_modes(comparisons))]


@pytest.mark.parametrize('params', [
    {'memory': '64m'},
    {'memory': 67108864},
    {'memory': '65536k'},
    {'memory': '64MiB'},
    {'stop_signal': 'TERM'},
    {'stop_signal': 'SIGTERM'},
    {'stop_signal': '15'},
    {'stop_signal': 15},
    {'command': ['sleep', '10']},
    {'command': 'sleep  10'},
    {'user': '0'},
    {'user': '0:0'},
    {'workdir': '/'},
    {'cpus': 0},
    {'hostname': 'web'},
    {'env': {}},
    {'mounts': []},
    {},
])
def test_equal_normalised_values_give_no_difference(params):
    assert diff(params, actual_config(memory=67108864)) == []


def test_changed_value_gives_a_difference():
    actual = actual_config(memory='64m')
    assert diff({'memory': '128m'}, actual) == [('memory', 64 << 20, 128 << 20, 'live')]


def test_stop_timeout_change_is_a_record_update():
    assert diff({'stop_timeout': 5}, actual_config()) == [('stop_timeout', 10, 5, 'record')]


def test_stop_signal_change():
    assert diff({'stop_signal': 'KILL'}, actual_config()) == [('stop_signal', 15, 9, 'recreate')]


def test_only_given_options_are_compared():
    actual = actual_config(memory='1g', env={'A': '1'}, labels={'x': 'y'}, pids_limit=5)
    assert diff({'memory': '1g'}, actual) == []
    assert diff({'pids_limit': 6}, actual) == [('pids_limit', 5, 6, 'live')]


def test_differences_in_table_order():
    actual = actual_config()
    result = diff({'labels': {'a': 'b'}, 'stop_timeout': 3, 'memory': '1m', 'env': {'A': '1'}}, actual)
    assert [name for name, _b, _a, _u in result] == ['env', 'memory', 'stop_timeout', 'labels']


@pytest.mark.parametrize('comparisons, expected', [
    (None, [('env', {'A': '1', 'B': '2'}, {'A': '1'}, 'recreate')]),
    ({'env': 'strict'}, [('env', {'A': '1', 'B': '2'}, {'A': '1'}, 'recreate')]),
    ({'env': 'allow_more_present'}, []),
    ({'*': 'allow_more_present'}, []),
    ({'env': 'ignore'}, []),
    ({'*': 'ignore'}, []),
])
def test_env_comparisons(comparisons, expected):
    actual = actual_config(env={'A': '1', 'B': '2'})
    assert diff({'env': {'A': '1'}}, actual, comparisons) == expected


def test_allow_more_present_still_sees_a_changed_value():
    actual = actual_config(env={'A': '1', 'B': '2'})
    assert diff({'env': {'A': '9'}}, actual, {'env': 'allow_more_present'}) == [
        ('env', {'A': '1', 'B': '2'}, {'A': '9'}, 'recreate')]


def test_ignore_one_option_but_not_another():
    actual = actual_config(memory='64m', pids_limit=5)
    assert diff({'memory': '1g', 'pids_limit': 9}, actual, {'memory': 'ignore'}) == [('pids_limit', 5, 9, 'live')]


def test_mounts_compare_order_independent(tmp_path):
    for sub in ('a', 'b'):
        (tmp_path / sub).mkdir()
    first = ['%s:/a' % (tmp_path / 'a'), '%s:/b:ro' % (tmp_path / 'b')]
    actual = actual_config(mounts=first)
    assert diff({'mounts': list(reversed(first))}, actual) == []
    assert diff({'mounts': [{'source': str(tmp_path / 'b'), 'target': '/b', 'options': 'ro'}]}, actual,
                {'mounts': 'allow_more_present'}) == []
    changed = diff({'mounts': ['%s:/a:ro' % (tmp_path / 'a'), '%s:/b:ro' % (tmp_path / 'b')]}, actual)
    assert [name for name, _b, _a, _u in changed] == ['mounts']


def test_missing_key_in_an_old_record_compares_with_the_default():
    actual = actual_config()
    del actual['pids_limit']
    assert diff({'pids_limit': 0}, actual) == []
    assert diff({'pids_limit': 3}, actual) == [('pids_limit', 0, 3, 'live')]
