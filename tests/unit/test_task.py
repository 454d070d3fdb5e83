# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_task: the one way every module declares the common options and runs its task.

    every plugins/modules/*.py main() is one run_task(Task, argument_spec(), ...) call (read from its AST)
    root and run_root are declared once (common_argument_spec), and documented once (doc fragment)
    each module's DOCUMENTATION agrees with the argument_spec its run_task call gets
    with_defaults(): what the Python API run() / info() helpers and run_task hand a task
    run_task(): warnings, diff mode, check mode, failed results, RuncibleError, MissingLibraryError,
    driven through a real AnsibleModule
"""

from __future__ import annotations

import ast
import glob
import importlib.util
import json
import os

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.runcible.oci.plugins.module_utils import _checkpoint, _exec, _task
from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import MissingLibraryError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(REPO, 'plugins', 'module_utils')
MODULE_UTILS_PACKAGE = 'ansible_collections.runcible.oci.plugins.module_utils'
MODULE_FILES = sorted(glob.glob(os.path.join(REPO, 'plugins', 'modules', '*.py')))
MODULES = [os.path.basename(path)[:-3] for path in MODULE_FILES]
# The modules without the common options (and why): networks are the host's, not a store's.
WITHOUT_COMMON_OPTIONS = {'network', 'network_info'}


def _parse(path):
    with open(path, 'r', encoding='utf-8') as handle:
        return ast.parse(handle.read(), path)


def _assigned_string(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError('no %s assigned' % name)


def _is_doc_assignment(node):
    names = ('DOCUMENTATION', 'EXAMPLES', 'RETURN')
    return isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in names for t in node.targets)


def _main_call(tree):
    """The single call main() makes."""
    mains = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == 'main']
    assert len(mains) == 1, 'one main() at module level'
    body = mains[0].body
    assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Call), \
        'main() is exactly one call, run_task(...)'
    return body[0].value


def _imported_module_utils(tree):
    """{local name: module_utils module} of the module's ``from ...module_utils import x`` lines."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == MODULE_UTILS_PACKAGE:
            for alias in node.names:
                found[alias.asname or alias.name] = importlib.import_module('%s.%s' % (MODULE_UTILS_PACKAGE, alias.name))
    return found


def _evaluate(node, names):
    """``_exec.ExecTask`` / ``_exec.argument_spec()`` / ``_exec.MUTUALLY_EXCLUSIVE`` of a main()'s call, for real."""
    if isinstance(node, ast.Call):
        assert not node.args and not node.keywords, ast.dump(node)
        return _evaluate(node.func, names)()
    assert isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name), ast.dump(node)
    return getattr(names[node.value.id], node.attr)


def run_task_call(name):
    """-> (task class, argument_spec, AnsibleModule options) that module ``name`` passes to run_task."""
    tree = _parse(os.path.join(REPO, 'plugins', 'modules', name + '.py'))
    call = _main_call(tree)
    names = _imported_module_utils(tree)
    task_class, spec_node = call.args
    module_options = dict((keyword.arg, _evaluate(keyword.value, names)) for keyword in call.keywords)
    return _evaluate(task_class, names), _evaluate(spec_node, names), module_options


def documented_options(name):
    """Module ``name``'s options as ansible-doc shows them: its fragments', then its own (which win)."""
    doc = yaml.safe_load(_assigned_string(_parse(os.path.join(REPO, 'plugins', 'modules', name + '.py')),
                                          'DOCUMENTATION'))
    documented = {}
    for fragment in doc.get('extends_documentation_fragment', []):
        if fragment.startswith('runcible.oci.'):
            path = os.path.join(REPO, 'plugins', 'doc_fragments', fragment.split('.')[-1] + '.py')
            for option, entry in yaml.safe_load(_assigned_string(_parse(path), 'DOCUMENTATION'))['options'].items():
                documented[option] = dict(entry)
    for option, entry in doc['options'].items():
        documented[option] = dict(documented.get(option, {}), **entry)
    return doc, documented


def load_module(name):
    """plugins/modules/``name``.py as a fresh Python module (by path: it runs as Ansible would run it)."""
    spec = importlib.util.spec_from_file_location('runcible_module_under_test_' + name,
                                                  os.path.join(REPO, 'plugins', 'modules', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- every module runs through run_task ------------------------------------------------------------

def test_the_seven_modules_are_found():
    assert set(MODULES) >= {'container', 'container_checkpoint', 'container_exec', 'container_info', 'image',
                            'image_info', 'network'}


@pytest.mark.parametrize('name', MODULES)
def test_main_is_one_run_task_call(name):
    tree = _parse(os.path.join(REPO, 'plugins', 'modules', name + '.py'))
    call = _main_call(tree)
    assert isinstance(call.func, ast.Name) and call.func.id == 'run_task'
    assert any(isinstance(node, ast.ImportFrom) and node.module == MODULE_UTILS_PACKAGE + '._task'
               and [alias.name for alias in node.names] == ['run_task'] for node in tree.body)
    # Nothing else of the wiring is written in a module: no AnsibleModule, no exit_json or fail_json of its own.
    code = ast.unparse(ast.Module(body=[node for node in tree.body if not _is_doc_assignment(node)], type_ignores=[]))
    for word in ('AnsibleModule', 'exit_json', 'fail_json', 'RuncibleError', 'traceback', 'warn', 'check_mode'):
        assert word not in code, '%s: %s is run_task\'s job' % (name, word)
    last = tree.body[-1]
    assert isinstance(last, ast.If) and ast.unparse(last) == "if __name__ == '__main__':\n    main()"


@pytest.mark.parametrize('name', MODULES)
def test_run_task_gets_a_task_and_a_spec(name):
    task_class, spec, module_options = run_task_call(name)
    assert isinstance(task_class, type) and callable(getattr(task_class, 'run', None))
    assert isinstance(spec, dict) and spec
    assert set(module_options) <= {'mutually_exclusive', 'required_one_of', 'required_together', 'required_if',
                                   'required_by'}


# -- the common options: declared once, documented once -----------------------------------------------

def _store_option_declarations():
    """(file, option) of every argument_spec entry named root or run_root under module_utils."""
    found = []
    for path in sorted(glob.glob(os.path.join(MODULE_UTILS, '**', '*.py'), recursive=True)):
        for node in ast.walk(_parse(path)):
            entries = []
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict':
                entries = [(keyword.arg, keyword.value) for keyword in node.keywords]
            elif isinstance(node, ast.Dict):
                entries = [(key.value, value) for key, value in zip(node.keys, node.values)
                           if isinstance(key, ast.Constant)]
            for option, value in entries:
                if option in ('root', 'run_root') and _is_spec_entry(value):
                    found.append((os.path.relpath(path, MODULE_UTILS), option))
    return found


def _is_spec_entry(node):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict':
        return any(keyword.arg == 'type' for keyword in node.keywords)
    if isinstance(node, ast.Dict):
        return any(isinstance(key, ast.Constant) and key.value == 'type' for key in node.keys)
    return False


def test_root_and_run_root_are_declared_once():
    assert sorted(_store_option_declarations()) == [('_task.py', 'root'), ('_task.py', 'run_root')]


def test_no_task_module_names_the_store_defaults():
    for path in glob.glob(os.path.join(MODULE_UTILS, '_*.py')):
        if os.path.basename(path) == '_task.py':
            continue
        with open(path, 'r', encoding='utf-8') as handle:
            source = handle.read()
        for word in ('DEFAULT_ROOT', 'DEFAULT_RUN_ROOT', '/var/lib/runcible', '/run/runcible'):
            assert word not in source, '%s retypes a default of the common options (%s)' % (path, word)


def test_common_argument_spec_is_the_doc_fragment():
    _doc, documented = documented_options('container_info')
    fragment = yaml.safe_load(_assigned_string(_parse(os.path.join(REPO, 'plugins', 'doc_fragments', 'common.py')),
                                               'DOCUMENTATION'))['options']
    spec = _task.common_argument_spec()
    assert sorted(spec) == sorted(fragment) == ['root', 'run_root', 'runtime']
    for name, entry in spec.items():
        assert entry.get('type') == fragment[name]['type']
        assert entry.get('default') == fragment[name].get('default')


def test_runtime_is_the_same_entry_in_the_option_table():
    # container's runtime is an option of the table too (compared with the container's): one entry, two roles.
    assert options.OPTIONS_BY_NAME['runtime'].argument_spec() == _task.common_argument_spec()['runtime']


def test_common_argument_spec_is_a_fresh_dict():
    first = _task.common_argument_spec()
    first['root']['default'] = '/elsewhere'
    assert _task.common_argument_spec()['root']['default'] == '/var/lib/runcible'


@pytest.mark.parametrize('name', MODULES)
def test_common_options_in_every_store_module(name):
    doc, _documented = documented_options(name)
    _task_class, spec, _options = run_task_call(name)
    common = _task.common_argument_spec()
    extends = 'runcible.oci.common' in doc.get('extends_documentation_fragment', [])
    if name in WITHOUT_COMMON_OPTIONS:
        assert not extends and not set(common) & set(spec)
    else:
        assert extends
        for option, entry in common.items():
            assert spec[option] == entry, '%s: %s differs from common_argument_spec()' % (name, option)


@pytest.mark.parametrize('name', MODULES)
def test_documentation_matches_the_argument_spec(name):
    _doc, documented = documented_options(name)
    _task_class, spec, _options = run_task_call(name)
    assert sorted(documented) == sorted(spec)
    for option, entry in spec.items():
        doc = documented[option]
        assert doc.get('type', 'str') == entry.get('type', 'str'), option
        assert doc.get('elements') == entry.get('elements'), option
        assert doc.get('choices') == entry.get('choices'), option
        assert doc.get('default') == entry.get('default'), option
        assert bool(doc.get('required')) == bool(entry.get('required')), option
        assert sorted(doc.get('aliases') or []) == sorted(entry.get('aliases') or []), option
        assert doc.get('description'), option


# -- with_defaults ----------------------------------------------------------------------------------

SPEC = {
    'name': {'type': 'str', 'required': True, 'aliases': ['container']},
    'state': {'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
    'root': {'type': 'path', 'default': '/var/lib/x'},
    'flag': {'type': 'bool', 'default': True},
    'items': {'type': 'list', 'default': ['a']},
    'command': {'type': 'str'},
}


def test_with_defaults_fills_every_option():
    assert _task.with_defaults(SPEC, {'name': 'web'}) == \
        {'name': 'web', 'state': 'present', 'root': '/var/lib/x', 'flag': True, 'items': ['a'], 'command': None}


def test_with_defaults_keeps_given_values_and_unknown_keys():
    given = {'name': 'web', 'state': 'absent', 'flag': False, 'command': '', 'extra': 1}
    full = _task.with_defaults(SPEC, given)
    assert (full['state'], full['flag'], full['command'], full['extra']) == ('absent', False, '', 1)
    assert given == {'name': 'web', 'state': 'absent', 'flag': False, 'command': '', 'extra': 1}, 'input unchanged'


def test_with_defaults_none_and_empty_mean_not_given():
    # A module's ``root: null`` reaches the task as '' (Ansible's path type): the default store, as always.
    full = _task.with_defaults(SPEC, {'name': 'web', 'state': None, 'root': '', 'flag': None})
    assert (full['state'], full['root'], full['flag']) == ('present', '/var/lib/x', True)
    # An empty string stays what it is for an option without a default (command: '' is an error of its own).
    assert _task.with_defaults(SPEC, {'name': 'web', 'command': ''})['command'] == ''


def test_with_defaults_copies_mutable_defaults():
    first = _task.with_defaults(SPEC, {'name': 'web'})
    first['items'].append('b')
    assert _task.with_defaults(SPEC, {'name': 'web'})['items'] == ['a']
    assert SPEC['items']['default'] == ['a']


def test_with_defaults_renames_aliases():
    assert _task.with_defaults(SPEC, {'container': 'web'})['name'] == 'web'
    assert 'container' not in _task.with_defaults(SPEC, {'container': 'web'})
    # AnsibleModule's params hold both the alias and the option, with the same value.
    assert _task.with_defaults(SPEC, {'container': 'web', 'name': 'web'})['name'] == 'web'
    assert _task.with_defaults(SPEC, {'container': 'web', 'name': None})['name'] == 'web'
    with pytest.raises(ValidationError, match='name and its alias container are both given'):
        _task.with_defaults(SPEC, {'container': 'web', 'name': 'db'})


def test_checkpoint_import_alias_reaches_import_archive(store_dirs, tree):
    root, run_root = store_dirs
    full = _task.with_defaults(_checkpoint.argument_spec(), {'name': 'web', 'import': '/srv/web.tar'})
    assert full['import_archive'] == '/srv/web.tar' and 'import' not in full
    # Through the Python API: the archive is seen as an import (which needs state restored).
    with pytest.raises(ValidationError, match='import needs state: restored'):
        _checkpoint.run({'name': 'web', 'import': '/srv/web.tar', 'root': root, 'run_root': run_root})
    assert tree(root) is None and tree(run_root) is None


# -- container_exec: name is an alias of container (issue 22) -----------------------------------------

def test_exec_accepts_name_for_container(store_dirs, tree):
    assert _exec.argument_spec()['container']['aliases'] == ['name']
    root, run_root = store_dirs
    checked = _exec.run({'name': 'web', 'argv': ['true'], 'root': root, 'run_root': run_root}, check_mode=True)
    assert checked['container_status'] == 'absent' and 'container web is absent' in checked['msg']
    with pytest.raises(RuncibleError, match='cannot exec in container web: it is absent'):
        _exec.run({'name': 'web', 'argv': ['true'], 'root': root, 'run_root': run_root})
    with pytest.raises(ValidationError, match='container and its alias name'):
        _exec.run({'name': 'web', 'container': 'db', 'argv': ['true'], 'root': root, 'run_root': run_root})
    assert tree(root) is None and tree(run_root) is None


def test_exec_module_accepts_name_for_container(store_dirs, tree, capsys):
    root, run_root = store_dirs
    args = {'name': 'web', 'argv': ['true'], 'root': root, 'run_root': run_root}
    output, code = run_module('container_exec', capsys, args)
    assert code == 1 and output['failed'] is True
    assert output['msg'].startswith('cannot exec in container web: it is absent')
    assert output['container_status'] == 'absent' and output['cmd'] == ['true']
    assert 'exception' not in output
    output, code = run_module('container_exec', capsys, dict(args, _ansible_check_mode=True))
    assert code == 0 and output['changed'] is True and output['container_status'] == 'absent'
    assert tree(root) is None and tree(run_root) is None


# -- run_task, through a real AnsibleModule ----------------------------------------------------------

def run_module(name, capsys, args):
    """Run module ``name``'s main() with the task arguments ``args``; -> (its JSON result, exit code)."""
    main = load_module(name).main
    return _run(main, capsys, args)


def _run(main, capsys, args):
    capsys.readouterr()
    with patch_module_args(args), pytest.raises(SystemExit) as exited:
        main()
    return json.loads(capsys.readouterr().out), exited.value.code


class FakeTask(object):
    """A task that returns (or raises) what the test put in ``params['result']`` and records what it got."""

    seen = []

    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode

    def run(self):
        FakeTask.seen.append((dict(self.params), self.check_mode))
        outcome = FakeTask.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return json.loads(json.dumps(outcome))


FAKE_SPEC = {
    'name': {'type': 'str', 'required': True, 'aliases': ['container']},
    'result': {'type': 'raw'},
    'root': {'type': 'path', 'default': '/var/lib/runcible'},
}


def run_fake(capsys, outcome, **args):
    FakeTask.outcome = outcome
    FakeTask.seen = []
    output, code = _run(lambda: _task.run_task(FakeTask, dict(FAKE_SPEC)), capsys, dict({'name': 'web'}, **args))
    return output, code


def test_run_task_completes_params_and_passes_check_mode(capsys):
    output, code = run_fake(capsys, {'changed': False, 'value': 1}, container='web', root='')
    assert code == 0 and output['value'] == 1 and output['changed'] is False
    params, check_mode = FakeTask.seen[0]
    assert params == {'name': 'web', 'result': None, 'root': '/var/lib/runcible'} and check_mode is False
    run_fake(capsys, {'changed': True}, _ansible_check_mode=True)
    assert FakeTask.seen[0][1] is True


def test_run_task_warnings_become_ansible_warnings(capsys, monkeypatch):
    # Recorded at module.warn(): where Ansible then puts them depends on its version, and on whether this
    # process has loaded controller code (another test may have).
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda module, warning, **kwargs: warned.append(warning))
    output, code = run_fake(capsys, {'changed': False, 'warnings': ['first', 'second']})
    assert code == 0 and warned == ['first', 'second']
    assert 'warnings' not in output or all('first' not in json.dumps(item) for item in output['warnings'])


def test_run_task_returns_diff_in_diff_mode_only(capsys):
    result = {'changed': True, 'diff': {'before': {'status': 'absent'}, 'after': {'status': 'running'}}}
    output, _code = run_fake(capsys, result)
    assert 'diff' not in output
    output, _code = run_fake(capsys, result, _ansible_diff=True)
    assert output['diff'] == result['diff']


def test_run_task_failed_result_fails_with_everything_kept(capsys):
    # container_exec: the command ran and exited 3; rc, stdout and stderr are the answer.
    result = {'changed': True, 'failed': True, 'msg': 'non-zero return code', 'rc': 3, 'stdout': 'out',
              'stderr': 'err', 'cmd': ['false']}
    output, code = run_fake(capsys, result)
    assert code == 1 and output['failed'] is True
    for key in ('msg', 'rc', 'stdout', 'stderr', 'cmd', 'changed'):
        assert output[key] == result[key], key


def test_run_task_not_failed_result_has_no_failed_key(capsys):
    output, code = run_fake(capsys, {'changed': True, 'failed': False, 'rc': 0})
    assert code == 0 and output['rc'] == 0 and not output.get('failed')


def test_run_task_runcible_error_fails_with_its_details_and_no_traceback(capsys):
    output, code = run_fake(capsys, RuncibleError('runc failed: it said so', stderr='it said so', rc=1))
    assert code == 1 and output['failed'] is True
    assert (output['msg'], output['stderr'], output['rc']) == ('runc failed: it said so', 'it said so', 1)
    assert 'exception' not in output


def test_run_task_missing_library_fails_with_missing_required_lib(capsys):
    error = MissingLibraryError('systemd-python', 'to read the logs of a container with log_driver journald',
                                'Traceback (most recent call last):\nImportError: No module named systemd\n')
    output, code = run_fake(capsys, error)
    assert code == 1 and output['failed'] is True
    assert output['msg'].startswith('Failed to import the required Python library (systemd-python)')
    assert 'to read the logs of a container with log_driver journald' in output['msg']


def test_run_task_lets_a_bug_through(capsys):
    # Not a RuncibleError: a bug, reported by Ansible with its traceback (MODULE FAILURE), not dressed up.
    FakeTask.outcome = KeyError('oops')
    with patch_module_args({'name': 'web'}), pytest.raises(KeyError):
        _task.run_task(FakeTask, dict(FAKE_SPEC))


def test_run_task_hands_module_options_to_ansible(capsys):
    spec = dict(FAKE_SPEC, other={'type': 'str'})
    FakeTask.outcome = {'changed': False}
    with patch_module_args({'name': 'web', 'result': 'x', 'other': 'y'}), pytest.raises(SystemExit):
        _task.run_task(FakeTask, spec, mutually_exclusive=[('result', 'other')])
    output = json.loads(capsys.readouterr().out)
    assert output['failed'] is True and 'mutually exclusive' in output['msg']
