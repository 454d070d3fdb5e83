# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a task imports: the idempotent path loads only what it uses (Ansible compiles every imported
module_utils file from source on every task, so each one costs every task on every host)."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest

from conftest import COLLECTIONS
from netfixtures import free_port, netenv  # pylint: disable=unused-import  # the fixture

PREFIX = 'ansible_collections.runcible.oci.plugins.module_utils.'
# Run a task in a new Python, as a module runs; print the collection's modules it imported.
PROBE = '''
import json, sys
sys.path.insert(0, %r)
from ansible_collections.runcible.oci.plugins.module_utils import %s as task
result = task.%s(json.loads(sys.argv[1]))
print(json.dumps({"changed": result.get("changed"), "modules": sorted(
    m[len(%r):] for m in sys.modules if m.startswith(%r)),
    "pyroute2": sorted(m for m in sys.modules if m.split(".")[0] == "pyroute2")}))
'''
# Never on an idempotent path: the network stage (links, namespaces, ports, firewall), images, layers,
# checkpoints, execs, conmon, the runtime's command line, spec building, the engine. (The normaliser of a
# given ``network`` and the registry it reads names in are light and may load.)
HEAVY = ('_runtime.engine', '_runtime.network', '_runtime.bridges', '_runtime.rtnl', '_runtime.netns',
         '_runtime.ports', '_runtime.etc_files', '_runtime.image_store', '_runtime.image_sources', '_runtime.layers',
         '_runtime.untar', '_runtime.checkpoint', '_runtime.checkpoint_archive', '_runtime.execute',
         '_runtime.exec_loop', '_runtime.conmon', '_runtime.spec', '_runtime.oci_cli', '_runtime.rootfs',
         '_runtime.libc', '_runtime.secrets', '_container_options.images', '_container_options.placement')
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def imported(task, function, params):
    code = PROBE % (COLLECTIONS, task, function, PREFIX, PREFIX)
    proc = subprocess.run([sys.executable, '-c', code, json.dumps(params)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout.decode())


@pytest.mark.parametrize('network', ['bridge', 'none'])
def test_an_idempotent_container_task_imports_no_stage_it_does_not_use(env, network):
    params = dict(name='test-imports', rootfs=env.rootfs, command=['sh', '-c', LOOP], memory='64m', network=network,
                  env={'A': '1'}, root=env.root, run_root=env.run_root)
    assert env.run(**params)['changed']
    found = imported('_container', 'run', params)
    assert found['changed'] is False
    heavy = sorted(set(found['modules']) & set(HEAVY))
    assert not heavy, 'the idempotent path imported %s' % ', '.join(heavy)
    assert not found['pyroute2'], 'the idempotent path imported pyroute2'
    # What it may import: the store and status, the option table and the bindings of the options given
    # (cgroups for the live read-back of memory).
    assert '_runtime.cgroups' in found['modules'] and '_container_options.resources' in found['modules']


def test_an_idempotent_task_on_several_networks_with_ipv6_imports_no_stage_nor_pyroute2(netenv):
    """``networks`` (two networks, one dual-stack, pinned IPv6 address, an IPv6 published port) read back idempotent
    in a fresh process: the option layer reads the registry only; no network stage, no pyroute2."""
    env = netenv.env
    first = netenv.network(name='test-icost6', dns=False, ipv6=True)['network']
    second = netenv.network(name='test-icost', dns=False)['network']
    address6 = str(ipaddress.ip_network(first['ipv6_subnet']).network_address + 7)
    params = dict(name='test-imports-networks', rootfs=env.rootfs, command=['sh', '-c', LOOP], stop_timeout=0,
                  networks=[{'name': first['name'], 'ipv6_address': address6}, {'name': second['name']}],
                  published_ports=['[::]:%d:80' % free_port()], root=env.root, run_root=env.run_root)
    created = env.run(**params)
    assert created['changed'] and created['container']['networks'][0]['ipv6_address'] == address6
    found = imported('_container', 'run', params)
    assert found['changed'] is False
    heavy = sorted(set(found['modules']) & set(HEAVY) - {'_runtime.ports'})  # (ports: the published_ports parser)
    assert not heavy, 'the idempotent path imported %s' % ', '.join(heavy)
    assert not found['pyroute2'], 'the idempotent path imported pyroute2'


@pytest.mark.parametrize('network', ['none', 'host'])
def test_creating_and_starting_a_container_without_a_bridge_never_imports_pyroute2(env, network):
    params = dict(name='test-imports-%s' % network, rootfs=env.rootfs, command=['sh', '-c', LOOP], network=network,
                  root=env.root, run_root=env.run_root, stop_timeout=0)
    found = imported('_container', 'run', params)
    assert found['changed'] is True and '_runtime.engine' in found['modules']
    assert not found['pyroute2'], 'network: %s imported %s' % (network, ', '.join(found['pyroute2']))
    env.ids.add(env.run(**params)['container']['id'])  # idempotent now; removed with the test's store
    stopped = imported('_container', 'run', dict(params, state='absent'))
    assert stopped['changed'] is True and not stopped['pyroute2'], 'removal imported pyroute2'


def test_a_bridge_imports_pyroute2_on_create_only(env):
    """The probe sees pyroute2 where it is used: creating a bridged container; its removal needs no netlink."""
    params = dict(name='test-imports-br', rootfs=env.rootfs, command=['sh', '-c', LOOP], root=env.root,
                  run_root=env.run_root, stop_timeout=0)
    created = imported('_container', 'run', params)
    env.ids.add(env.run(**params)['container']['id'])
    assert created['changed'] is True and 'pyroute2.iproute.linux' in created['pyroute2']
    removed = imported('_container', 'run', dict(params, state='absent'))
    assert removed['changed'] is True and not removed['pyroute2']


def test_container_info_of_one_container_imports_no_stage(env):
    env.run(name='test-info-imports', rootfs=env.rootfs, command=['sh', '-c', LOOP], network='none')
    found = imported('_info', 'run', {'name': 'test-info-imports', 'root': env.root, 'run_root': env.run_root})
    heavy = sorted(set(found['modules']) & set(HEAVY + ('_runtime.cgroups', '_container_options')))
    assert not heavy, 'container_info imported %s' % ', '.join(heavy)


def test_a_task_compiles_the_module_utils_once_per_node(env, tmp_path):
    """Through Ansible: the first task fills the node's bytecode cache, the next ones load from it."""
    cache = str(tmp_path / 'bytecode')
    task = {'runcible.oci.container_info': {'name': 'test-no-such-container'}}
    play = {'environment': {'RUNCIBLE_BYTECODE_CACHE': cache}}
    [first] = env.playbook([dict(task)], play_extra=play)
    assert first['exists'] is False
    stored = {name: os.stat(os.path.join(cache, name)) for name in os.listdir(cache)}
    assert PREFIX + '_info' in {name.rsplit('.', 3)[0] for name in stored}
    assert all(info.st_uid == 0 and info.st_mode & 0o777 == 0o600 for info in stored.values())
    [second] = env.playbook([dict(task)], play_extra=play)
    assert second['exists'] is False
    again = {name: os.stat(os.path.join(cache, name)) for name in os.listdir(cache)}
    assert sorted(again) == sorted(stored)
    assert all(again[name].st_ino == stored[name].st_ino for name in stored), 'entries were compiled again'
