# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container secrets on the real stack: delivered as files and variables, never shown or stored in clear."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _exec
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
PASSWORD = 'Pa55-w0rd-for-the-db'
TOKEN = 'tok-7c1a9e0f-only-here'
NEW_PASSWORD = 'an0ther-Pa55-w0rd'


def secrets(password=PASSWORD):
    return {'db_password': password, 'api_token': {'value': TOKEN, 'type': 'env', 'target': 'API_TOKEN'}}


def exec_out(env, name, command, user=None):
    params = {'container': name, 'argv': ['sh', '-c', command], 'root': env.root, 'run_root': env.run_root}
    if user:
        params['user'] = user
    result = _exec.run(params)
    assert result['rc'] == 0, result
    return result['stdout']


def files_holding(directory, needles):
    """Every file under ``directory`` (links not followed) whose bytes hold one of ``needles``."""
    found = []
    for base, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, 'rb') as handle:
                data = handle.read()
            found += ['%s holds %s' % (path, needle) for needle in needles if needle.encode() in data]
    return found


def test_secrets_four_ways_delivered_and_never_shown(env):
    args = {'name': 'test-sec', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'user': 'app',
            'secrets': secrets()}
    results = env.four_ways(args)
    check, apply, again, check_again = results
    assert apply['actions'] == ['created', 'started'] and again['actions'] == [] and check_again['actions'] == []
    output = results[0]['_output'] + json.dumps(results)
    assert PASSWORD not in output and TOKEN not in output, 'no value in results, diffs or the output'
    entry = apply['container']['config']['secrets']['db_password']
    assert entry['type'] == 'file' and entry['target'] == '/run/secrets/db_password' and entry['mode'] == 0o400
    assert entry['digest'].startswith('hmac-sha256:')
    # In the container: a 0400 file owned by its user, and a variable.
    uid = apply['container']['config']['user'].split(':')[0]
    assert exec_out(env, 'test-sec', 'cat /run/secrets/db_password') == PASSWORD
    assert exec_out(env, 'test-sec', 'stat -c "%a %u" /run/secrets/db_password') == '400 %s' % uid
    assert exec_out(env, 'test-sec', 'echo $API_TOKEN') == TOKEN
    assert exec_out(env, 'test-sec', 'cat /proc/1/environ | tr "\\0" "\\n" | grep ^API_TOKEN=') == 'API_TOKEN=' + TOKEN
    assert exec_out(env, 'test-sec', 'echo x > /run/secrets/db_password 2>&1 || echo refused') .endswith('refused')
    # Nothing in clear under root: the record, the bundle (its config.json is a link to the run_root), logs.
    assert not files_holding(env.root, [PASSWORD, TOKEN])
    record = env.engine.store.load('test-sec')
    assert PASSWORD not in json.dumps(record.to_dict()) and TOKEN not in json.dumps(record.to_dict())
    info = env.playbook([{'runcible.oci.container_info': {'name': 'test-sec'}}])[0]
    assert PASSWORD not in json.dumps(info) and TOKEN not in json.dumps(info)


def test_a_changed_secret_recreates_and_the_diff_shows_no_value(env):
    args = {'name': 'test-sec2', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'secrets': secrets()}
    first = env.run(**args)
    changed = env.four_ways(dict(args, secrets=secrets(NEW_PASSWORD)))
    assert changed[1]['actions'] == ['recreated', 'started']
    diff = changed[1]['diff']
    assert diff['before']['secrets']['db_password']['digest'] != diff['after']['secrets']['db_password']['digest']
    assert diff['before']['secrets']['api_token'] == diff['after']['secrets']['api_token']
    assert NEW_PASSWORD not in json.dumps(changed) and PASSWORD not in json.dumps(changed)
    assert changed[1]['container']['id'] != first['container']['id']
    assert exec_out(env, 'test-sec2', 'cat /run/secrets/db_password') == NEW_PASSWORD


def test_values_live_only_until_reboot(env):
    """The values are kept on the tmpfs only: once it is emptied (a reboot), starting needs them again."""
    args = {'name': 'test-sec3', 'rootfs': env.rootfs, 'command': ['sh', '-c', LOOP], 'secrets': secrets()}
    container = env.run(**args)['container']
    env.run(name='test-sec3', state='stopped')
    shutil.rmtree(os.path.join(env.run_root, 'containers', container['id']))  # what a reboot does to run_root
    with pytest.raises(RuncibleError, match='needs the values of its secrets api_token, db_password'):
        env.run(name='test-sec3', state='started')
    assert env.inspect('test-sec3')['status'] == 'stopped'
    started = env.run(**args)
    assert started['actions'] == ['started'] and started['container']['id'] == container['id']
    assert exec_out(env, 'test-sec3', 'cat /run/secrets/db_password; echo; echo $API_TOKEN') == PASSWORD + '\n' + TOKEN


@pytest.mark.parametrize('bad, message', [
    ({'../x': 'v'}, 'not a secret name'),
    ({'a': {'value': 'v', 'type': 'socket'}}, 'file or env'),
    ({'a': {'value': 'v', 'type': 'env', 'target': 'NOT-A-NAME'}}, 'not an environment variable name'),
    ({'a': {'value': 'v', 'target': '/run/secrets/../../etc/passwd'}}, 'not a file path'),
    ({'a': {'vale': 'v'}}, 'unknown keys vale'),
    ({'a': None}, 'needs a value'),
])
def test_bad_secrets_fail_clearly_and_change_nothing(env, bad, message):
    with pytest.raises(RuncibleError, match=message):
        env.run(name='test-sec4', rootfs=env.rootfs, command=['true'], secrets=bad)
    assert env.inspect('test-sec4') is None


def test_exec_env_is_plain_stdin_and_secrets_are_no_log(env):
    """exec env no longer censors output; stdin and secrets never show, not even at -vvv."""
    env.run(name='test-sec5', rootfs=env.rootfs, command=['sh', '-c', LOOP])
    stdin_text = 'stdin-secret-' + TOKEN
    results = env.playbook([
        {'name': 'env', 'runcible.oci.container_exec': {'container': 'test-sec5', 'argv': ['sh', '-c', 'echo one $WORD three'],
                                                        'env': {'WORD': 'two'}}},
        {'name': 'stdin and secrets', 'runcible.oci.container_exec': {
            'container': 'test-sec5', 'argv': ['sh', '-c', 'read line; test "$line" = "%s" && test "$API" = "%s" '
                                                           '&& echo matched' % (stdin_text, TOKEN)],
            'stdin': stdin_text, 'secrets': {'API': TOKEN}}},
    ], extra_args=['-vvv'])
    assert results[0]['stdout'] == 'one two three', 'an env value no longer censors the output'
    assert results[1]['stdout'] == 'matched' and results[1]['rc'] == 0
    output = results[0]['_output']
    assert stdin_text not in output and TOKEN not in output, 'stdin and secrets are no_log'
