# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""runcible.oci.deployment on the real runc + conmon: four ways, dependency order proved by start and stop
times, overlapping stops, prune of the set's own only, partial failure and convergence, and a Compose file of
three services (a volume, a published port, a dependency) whose services reach each other."""

from __future__ import annotations

import datetime
import os
import secrets
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from oci_build import LayoutBuilder  # noqa: E402

from ansible_collections.runcible.oci.plugins.module_utils import _deployment, _exec  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError  # noqa: E402
from conftest import wait_for  # noqa: E402
from netfixtures import free_port, http_get  # noqa: E402
from netfixtures import netenv, restore_default_network  # noqa: E402,F401  # pylint: disable=unused-import

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
DEAF = "trap '' TERM; while true; do sleep 0.05; done"  # ignores SIGTERM: stopped by SIGKILL after stop_timeout


def _moment(text):
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%S.%fZ')


def _deploy(env, check_mode=False, **params):
    params.setdefault('root', env.root)
    params.setdefault('run_root', env.run_root)
    result = _deployment.run(params, check_mode=check_mode)
    for item in result['containers'].values():
        env.seen(item)
    return result


def _defaults(env, **extra):
    return dict(dict(rootfs=env.rootfs, command=['sh', '-c', LOOP], network='none', stop_timeout=2), **extra)


def test_four_ways_through_ansible_playbook_with_order_and_diff(env):
    args = {'name': 'test-dep4', 'defaults': _defaults(env),
            'containers': [{'name': 'test-dep4-db', 'memory': '64m'},
                           {'name': 'test-dep4-app', 'depends_on': ['test-dep4-db']},
                           {'name': 'test-dep4-web', 'depends_on': ['test-dep4-app'], 'env': {'A': 1}}]}
    check, apply, again, check_again = env.four_ways(args, module='runcible.oci.deployment')
    names = ['test-dep4-db', 'test-dep4-app', 'test-dep4-web']
    for result in (check, apply):
        assert list(result['containers']) == names
        assert [result['containers'][name]['actions'] for name in names] == [['created', 'started']] * 3
        # One diff per changed container, headed by its name, showing the options its entry gave.
        assert [diff['before_header'] for diff in result['diff']] == ['container %s' % name for name in names]
        assert result['diff'][0]['before'] == {'status': 'absent'}
        assert result['diff'][0]['after']['memory'] == 67108864 and result['diff'][0]['after']['status'] == 'running'
        assert 'pids_limit' not in result['diff'][0]['after']  # a default, not what the entry gave
    assert check['containers']['test-dep4-db']['container']['id'] is None
    for result in (again, check_again):
        assert result['diff'] == [] and all(not item['changed'] for item in result['containers'].values())
    for name in names:
        info = env.inspect(name)
        assert info['status'] == 'running' and info['config']['labels']['io.runcible.deploy'] == 'test-dep4'
    assert env.inspect('test-dep4-web')['config']['env'] == {'A': '1'}
    assert _moment(env.inspect('test-dep4-app')['started_at']) > _moment(env.inspect('test-dep4-db')['started_at'])


def test_twenty_containers_start_in_dependency_order_and_stop_in_reverse(env):
    # Four waves of five; each container depends on every container of the wave before it.
    waves = [['test-dep20-%d-%d' % (wave, index) for index in range(5)] for wave in range(4)]
    containers = []
    for number, wave in enumerate(waves):
        for name in wave:
            containers.append({'name': name, 'depends_on': waves[number - 1] if number else []})
    args = {'name': 'test-dep20', 'defaults': _defaults(env), 'containers': containers, 'parallel': 8}
    [result] = env.playbook([{'runcible.oci.deployment': dict(args)}])
    assert result['changed'] and len(result['containers']) == 20
    started = dict((name, _moment(item['container']['started_at'])) for name, item in result['containers'].items())
    for number in range(1, 4):
        assert min(started[name] for name in waves[number]) > max(started[name] for name in waves[number - 1]), started
    # Within a wave they overlap: five started by eight workers take far less than five serial starts.
    [stopped] = env.playbook([{'runcible.oci.deployment': dict(args, state='stopped')}])
    assert all(item['actions'] == ['stopped'] for item in stopped['containers'].values())
    finished = dict((name, _moment(item['container']['finished_at'])) for name, item in stopped['containers'].items())
    for number in range(1, 4):
        # Dependants first: every container of a wave ended before any of the wave it depends on.
        assert max(finished[name] for name in waves[number]) < min(finished[name] for name in waves[number - 1]), finished


def test_stops_with_long_grace_periods_overlap(env):
    containers = [{'name': 'test-depstop-%d' % index} for index in range(12)]
    params = dict(name='test-depstop', defaults=_defaults(env, command=['sh', '-c', DEAF], stop_timeout=2),
                  containers=containers, parallel=2)
    _deploy(env, **params)
    start = time.monotonic()
    result = _deploy(env, **dict(params, state='stopped'))
    elapsed = time.monotonic() - start
    assert all(item['container']['status'] == 'stopped' for item in result['containers'].values())
    # Serially 12 x 2 s; two at a time 12 s. Overlapping: one grace period and the kills.
    assert elapsed < 6, elapsed


def test_prune_removes_only_the_sets_own(env):
    defaults = _defaults(env)
    _deploy(env, name='test-prune', defaults=defaults,
            containers=[{'name': 'test-prune-a'}, {'name': 'test-prune-b'}, {'name': 'test-prune-c'}])
    # Not the set's: a hand-made container with a similar name, another set's, one with the label key only.
    env.run(name='test-prune-d', **defaults)
    _deploy(env, name='test-prune2', defaults=defaults, containers=[{'name': 'test-prune2-a'}])
    env.run(name='test-prune-e', labels={'io.runcible.deploy': 'test-prune-other'}, **defaults)
    shrunk = dict(name='test-prune', defaults=defaults, containers=[{'name': 'test-prune-a'}])
    without = _deploy(env, **shrunk)
    assert not without['changed'] and without['removed'] == []
    assert 'test-prune-b, test-prune-c carry the label io.runcible.deploy=test-prune' in ' '.join(without['warnings'])
    planned = _deploy(env, check_mode=True, prune=True, **shrunk)
    assert planned['changed'] and planned['removed'] == ['test-prune-b', 'test-prune-c']
    assert env.inspect('test-prune-b')['status'] == 'running'
    pruned = _deploy(env, prune=True, **shrunk)
    assert pruned['removed'] == ['test-prune-b', 'test-prune-c']
    assert pruned['containers']['test-prune-b']['actions'] == ['removed']
    assert env.inspect('test-prune-b') is None and env.inspect('test-prune-c') is None
    for name in ('test-prune-a', 'test-prune-d', 'test-prune2-a', 'test-prune-e'):
        assert env.inspect(name)['status'] == 'running', name
    assert not _deploy(env, prune=True, **shrunk)['changed']
    # state absent takes every container of the set, and only those.
    gone = _deploy(env, name='test-prune', state='absent', containers=[])
    assert gone['removed'] == ['test-prune-a'] and env.inspect('test-prune-a') is None
    assert env.inspect('test-prune-d') and env.inspect('test-prune2-a') and env.inspect('test-prune-e')


def test_a_failing_entry_leaves_the_others_right_and_a_rerun_converges(env):
    defaults = _defaults(env)
    containers = [{'name': 'test-depfail-ok1'},
                  {'name': 'test-depfail-bad', 'command': ['/no/such/program']},
                  {'name': 'test-depfail-after', 'depends_on': ['test-depfail-bad']},
                  {'name': 'test-depfail-ok2', 'depends_on': ['test-depfail-ok1']}]
    args = {'name': 'test-depfail', 'defaults': defaults, 'containers': containers}
    [failed] = env.playbook([{'runcible.oci.deployment': dict(args), 'ignore_errors': True}])
    assert failed['_status'] == 'failed'
    assert failed['failed_containers'] == ['test-depfail-bad']
    assert failed['skipped_containers'] == ['test-depfail-after']
    assert 'test-depfail-bad:' in failed['msg'] and 'no/such/program' in failed['msg']
    assert 'test-depfail-after (not run: it comes after test-depfail-bad failed)' in failed['msg']
    assert failed['containers']['test-depfail-after']['skipped']
    assert failed['containers']['test-depfail-ok2']['actions'] == ['created', 'started']
    for name in ('test-depfail-ok1', 'test-depfail-ok2'):
        assert env.inspect(name)['status'] == 'running'
    assert env.inspect('test-depfail-after') is None
    containers[1]['command'] = ['sh', '-c', LOOP]
    [fixed] = env.playbook([{'runcible.oci.deployment': dict(args, containers=containers)}])
    assert fixed['containers']['test-depfail-ok1']['actions'] == []
    assert fixed['containers']['test-depfail-after']['actions'] == ['created', 'started']
    assert env.inspect('test-depfail-bad')['status'] == 'running'
    [again] = env.playbook([{'runcible.oci.deployment': dict(args, containers=containers)}])
    assert not again['changed']


def test_bad_input_changes_nothing(env):
    defaults = _defaults(env)
    with pytest.raises(ValidationError, match=r'containers\[1\] \(test-badin-b\): unknown option memroy \(did you mean '
                                              r'memory\?\)'):
        _deploy(env, name='test-badin', defaults=defaults,
                containers=[{'name': 'test-badin-a'}, {'name': 'test-badin-b', 'memroy': '1g'}])
    with pytest.raises(ValidationError, match='depends_on has a cycle: test-badin-a -> test-badin-b -> test-badin-a'):
        _deploy(env, name='test-badin', defaults=defaults,
                containers=[{'name': 'test-badin-a', 'depends_on': ['test-badin-b']},
                            {'name': 'test-badin-b', 'depends_on': ['test-badin-a']}])
    with pytest.raises(ValidationError, match='test-badin-a depends on test-badin-x, which is not a container'):
        _deploy(env, name='test-badin', defaults=defaults,
                containers=[{'name': 'test-badin-a', 'depends_on': ['test-badin-x']}])
    [failed] = env.playbook([{'runcible.oci.deployment': {'name': 'test-badin', 'defaults': defaults, 'containers': [
        {'name': 'test-badin-a', 'pids_limit': 'many'}]}, 'ignore_errors': True}])
    assert failed['_status'] == 'failed' and "pids_limit" in failed['msg'] and 'Traceback' not in failed['_output']
    assert env.engine.store.names() == []


def test_the_deploy_role_is_one_deployment_task(env):
    defaults = _defaults(env)
    tasks = [{'ansible.builtin.include_role': {'name': 'runcible.oci.deploy'}, 'vars': {
        'runcible_deploy_name': 'test-role', 'runcible_deploy_root': env.root, 'runcible_deploy_run_root': env.run_root,
        'runcible_deploy_defaults': defaults,
        'runcible_deploy_containers': [{'name': 'test-role-a'}, {'name': 'test-role-b', 'depends_on': ['test-role-a']}]}},
        {'ansible.builtin.debug': {'var': 'runcible_deploy_removed'}}]
    results = env.playbook(tasks)
    deployment = [result for result in results if 'containers' in result][0]
    assert deployment['containers']['test-role-b']['actions'] == ['created', 'started']
    assert results[-1]['runcible_deploy_removed'] == []


@pytest.fixture
def image(env):
    layout = LayoutBuilder(os.path.join(env.base, 'layout'))
    config = {'Cmd': ['sh', '-c', LOOP], 'Env': ['PATH=/usr/sbin:/usr/bin:/sbin:/bin']}
    layout.image([layout.layer_from_dir(env.rootfs)], config, tag='v1')
    return 'oci:%s:v1' % layout.path


DB = "trap 'exit 0' TERM; echo db-data > /data/marker; mkdir -p /www; cp /data/marker /www/index.html; " \
     "httpd -f -p 8000 -h /www & wait"
WEB = "trap 'exit 0' TERM; mkdir -p /www; echo web-page > /www/index.html; httpd -f -p 80 -h /www & wait"


def test_a_compose_file_of_three_services_runs_and_they_reach_each_other(netenv, image):
    env = netenv.env
    project = 'test-c%s' % secrets.token_hex(3)
    port = free_port()
    compose = os.path.join(env.base, 'compose.yaml')
    with open(compose, 'w') as handle:
        handle.write('''
name: %(project)s
services:
  db:
    image: %(image)s
    command: ["sh", "-c", "%(db)s"]
    volumes:
      - data:/data
    networks: [back]
    restart: "no"
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O - http://127.0.0.1:8000/ | grep -q db-data"]
      interval: 200ms
      retries: 20
  web:
    image: %(image)s
    command: ["sh", "-c", "%(web)s"]
    ports:
      - "127.0.0.1:%(port)d:80"
    networks: [back]
    depends_on:
      db:
        condition: service_healthy
  client:
    image: %(image)s
    networks: [back]
    depends_on: [web]
    environment:
      ROLE: client
networks:
  back: {}
volumes:
  data: {}
''' % {'project': project, 'image': image, 'db': DB, 'web': WEB, 'port': port})
    netenv.networks.append('%s_back' % project)
    args = {'name': project, 'compose_file': compose}
    [result] = env.playbook([{'runcible.oci.deployment': dict(args), 'diff': True}])
    names = ['%s-db' % project, '%s-web' % project, '%s-client' % project]
    assert list(result['containers']) == names
    assert result['networks']['%s_back' % project]['actions'] == ['created']
    assert result['volumes']['%s_data' % project]['actions'] == ['created']
    started = [_moment(result['containers'][name]['container']['started_at']) for name in names]
    assert started[0] < started[1] < started[2]
    # web waited for db's health check to pass (service_healthy): db was healthy before web started.
    db_health = result['containers'][names[0]]['container']['health']
    assert db_health['status'] == 'healthy' and _moment(db_health['log'][-1]['end']) <= started[1]
    address = dict((name, result['containers'][name]['container']['ip_address']) for name in names)
    assert all(address.values()), address
    # The published port, on the host's loopback; the volume's data on the host.
    assert wait_for(lambda: _get('127.0.0.1', port), timeout=10) and b'web-page' in _get('127.0.0.1', port)
    marker = os.path.join(env.root, 'volumes', '%s_data' % project, '_data', 'marker')
    assert wait_for(lambda: os.path.exists(marker)) and open(marker).read() == 'db-data\n'
    # Services reach each other on their network, by address and by service name (the network's aardvark-dns).
    assert b'web-page' in _wget(env, names[2], address[names[1]], 80)
    assert b'db-data' in _wget(env, names[1], address[names[0]], 8000)
    assert b'web-page' in _wget(env, names[2], 'web', 80)
    assert b'db-data' in _wget(env, names[1], 'db', 8000)
    assert env.inspect(names[2])['config']['env'] == {'ROLE': 'client'}
    [again] = env.playbook([{'runcible.oci.deployment': dict(args)}])
    assert not again['changed'], [(name, item['actions']) for name, item in again['containers'].items()]
    [gone] = env.playbook([{'runcible.oci.deployment': dict(args, state='absent', keep_volumes=False)}])
    assert gone['networks']['%s_back' % project]['actions'] == ['removed']
    assert gone['volumes']['%s_data' % project]['actions'] == ['removed']
    assert env.engine.store.names() == []


def test_compose_services_on_two_networks_one_dual_stack_four_ways(netenv, image):
    """A service on two networks reaches a service of each (by name, and over IPv6 on the dual-stack one); a service
    on one network does not resolve the other's services. Check mode plans the containers of networks it would make."""
    env = netenv.env
    project = 'test-n%s' % secrets.token_hex(3)
    compose = os.path.join(env.base, 'compose.yaml')
    with open(compose, 'w') as handle:
        handle.write('''
name: %(project)s
services:
  web:
    image: %(image)s
    command: ["sh", "-c", "%(web)s"]
    networks: [back]
  gateway:
    image: %(image)s
    networks:
      front:
        aliases: [gw]
      back: {}
  outsider:
    image: %(image)s
    networks: [front]
networks:
  front: {}
  back:
    enable_ipv6: true
''' % {'project': project, 'image': image, 'web': WEB})
    netenv.networks.extend(['%s_front' % project, '%s_back' % project])
    args = {'name': project, 'compose_file': compose}
    results = env.four_ways(args, module='runcible.oci.deployment')
    applied = results[1]['containers']
    gateway = applied['%s-gateway' % project]['container']
    assert [(item['name'], item['interface']) for item in gateway['networks']] == [
        ('%s_front' % project, 'eth0'), ('%s_back' % project, 'eth1')]
    web6 = applied['%s-web' % project]['container']['networks'][0]['ipv6_address']
    assert web6 and gateway['networks'][1]['ipv6_address'] and gateway['networks'][0]['ipv6_address'] is None
    assert b'web-page' in _wget(env, '%s-gateway' % project, 'web', 80)
    assert b'web-page' in _wget(env, '%s-gateway' % project, '[%s]' % web6, 80)
    outsider = _exec.run(dict(container='%s-outsider' % project, root=env.root, run_root=env.run_root, timeout=20,
                              argv=['sh', '-c', 'busybox timeout 4 busybox nslookup -type=a web; '
                                                'busybox timeout 4 busybox nslookup -type=a gw']))
    assert 'Name:\tgw' in outsider['stdout'] and 'Name:\tweb' not in outsider['stdout'], outsider
    [gone] = env.playbook([{'runcible.oci.deployment': dict(args, state='absent')}])
    assert sorted(item['actions'][0] for item in gone['networks'].values()) == ['removed', 'removed']
    assert env.engine.store.names() == []


def _get(address, port):
    try:
        return http_get(address, port, timeout=1.0)
    except OSError:
        return None


def _wget(env, container, address, port):
    def fetch():
        result = _exec.run(dict(container=container, argv=['wget', '-q', '-O', '-', 'http://%s:%d/' % (address, port)],
                                root=env.root, run_root=env.run_root, timeout=10))
        return result['stdout'].encode() if result['rc'] == 0 else None
    return wait_for(fetch, timeout=10) or b''
