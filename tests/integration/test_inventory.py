# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runcible.oci.containers inventory plugin with ansible-inventory and ansible on real containers."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import BIN, COLLECTIONS

PWNED = '/tmp/runcible-inventory-integration-pwned'
TEMPLATE = "{{ lookup('pipe', 'touch %s') }}" % PWNED


def start(env, name, labels, state='started'):
    result = env.run(name=name, rootfs=env.rootfs, command=['sleep', '3600'], stop_signal='SIGKILL', network='none',
                     labels=labels, state=state)
    assert result['container']['status'] == ('running' if state == 'started' else state), result


def write_source(env, **config):
    path = os.path.join(env.base, 'containers.oci.yml')
    lines = ['plugin: runcible.oci.containers', 'root: %s' % env.root, 'run_root: %s' % env.run_root]
    lines += ['%s: %s' % (key, json.dumps(value)) for key, value in config.items()]
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    return path


def plain(value):
    """ansible-inventory's JSON without its ``{"__ansible_unsafe": value}`` wrappers (values that are never templated)."""
    if isinstance(value, dict):
        if list(value) == ['__ansible_unsafe']:
            return value['__ansible_unsafe']
        return dict((key, plain(item)) for key, item in value.items())
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def ansible(*argv):
    environ = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', ANSIBLE_INVENTORY_UNPARSED_FAILED='1',
                   ANSIBLE_DEPRECATION_WARNINGS='0')
    proc = subprocess.run([os.path.join(BIN, argv[0])] + list(argv[1:]), env=environ, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, check=False)
    stdout, stderr = proc.stdout.decode('utf-8', 'replace'), proc.stderr.decode('utf-8', 'replace')
    assert proc.returncode == 0, stdout + stderr
    return stdout, stderr


def test_ansible_inventory_list_of_real_containers(env):
    start(env, 'test-inv-web1', {'app': 'shop', 'tier': 'front'})
    start(env, 'test-inv-web2', {'app': 'shop', 'tier': 'front', 'note': TEMPLATE})
    start(env, 'test-inv-db', {'app': 'shop', 'tier': 'back'})
    start(env, 'test-inv-old', {'app': 'shop', 'tier': 'front'}, state='stopped')
    if os.path.exists(PWNED):
        os.unlink(PWNED)
    source = write_source(env, include_stopped=True, keyed_groups=[{'key': 'runcible_labels.tier', 'prefix': 'tier'}],
                          compose={'note': "runcible_labels.note | default('')"})
    stdout, stderr = ansible('ansible-inventory', '-i', source, '--list', '--export')
    raw = json.loads(stdout)
    listing = plain(raw)
    assert sorted(listing['running']['hosts']) == ['test-inv-db', 'test-inv-web1', 'test-inv-web2'], stderr
    assert listing['stopped']['hosts'] == ['test-inv-old']
    assert sorted(listing['tier_front']['hosts']) == ['test-inv-old', 'test-inv-web1', 'test-inv-web2']
    assert listing['tier_back']['hosts'] == ['test-inv-db']
    hostvars = listing['_meta']['hostvars']
    record, live = env.engine.inspect('test-inv-web1')
    web1 = hostvars['test-inv-web1']
    assert web1['ansible_connection'] == 'runcible.oci.oci'
    assert web1['ansible_runcible_root'] == env.root and web1['ansible_runcible_run_root'] == env.run_root
    assert web1['runcible_id'] == record['id'] and web1['runcible_pid'] == live['pid']
    assert web1['runcible_status'] == 'running'
    assert web1['runcible_network'] == 'none' and web1['runcible_ip_address'] is None
    assert hostvars['test-inv-web2']['runcible_labels']['note'] == TEMPLATE
    assert hostvars['test-inv-web2']['note'] == TEMPLATE
    assert raw['_meta']['hostvars']['test-inv-web2']['runcible_labels']['note'] == {'__ansible_unsafe': TEMPLATE}
    assert hostvars['test-inv-old']['runcible_status'] == 'stopped'
    assert not os.path.exists(PWNED), 'a label value was templated'

    # Only running ones by default, and the filters.
    source = write_source(env, name_patterns=['test-inv-web*'], label_selectors=['tier=front', '!note'])
    stdout, _stderr = ansible('ansible-inventory', '-i', source, '--list')
    assert json.loads(stdout)['running']['hosts'] == ['test-inv-web1']


def test_inventory_and_connection_together(env):
    start(env, 'test-inv-a', {'role': 'a'})
    start(env, 'test-inv-b', {'role': '{{ 7 * 6 }}'})
    if os.path.exists(PWNED):
        os.unlink(PWNED)
    source = write_source(env)
    # busybox has no Python: raw is the module that runs there.
    stdout, stderr = ansible('ansible', '-i', source, 'running', '-m', 'ansible.builtin.raw', '-a', 'hostname')
    assert 'test-inv-a | CHANGED | rc=0 >>\ntest-inv-a' in stdout, stdout + stderr
    assert 'test-inv-b | CHANGED | rc=0 >>\ntest-inv-b' in stdout, stdout + stderr
    stdout, stderr = ansible('ansible', '-i', source, 'test-inv-b', '-m', 'ansible.builtin.debug',
                             '-a', 'msg={{ runcible_labels.role }}')
    assert '"msg": "{{ 7 * 6 }}"' in stdout, stdout + stderr
