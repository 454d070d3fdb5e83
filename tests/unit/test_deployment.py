# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment's pure parts: order and cycles, the bounded parallel runner, entries checked against the
container module's argument_spec, and the Compose mapping of every supported key (bad input naming the
service and the key)."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _deployment
from ansible_collections.runcible.oci.plugins.module_utils import _deployment_graph as graph
from ansible_collections.runcible.oci.plugins.module_utils._compose import from_compose
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._task import with_defaults


# -- order -----------------------------------------------------------------------------------------

@pytest.mark.parametrize('names, depends_on, message', [
    (['a', 'b'], {'a': ['b'], 'b': ['a']}, 'depends_on has a cycle: a -> b -> a'),
    (['a', 'b', 'c'], {'a': ['c'], 'b': ['a'], 'c': ['b']}, 'depends_on has a cycle: a -> c -> b -> a'),
    (['a'], {'a': ['a']}, 'a depends on itself'),
    (['a', 'b'], {'a': ['x']}, 'a depends on x, which is not a container of the deployment (known: a, b)'),
    (['a', 'b'], {'a': ['b', 'b']}, 'a names b more than once'),
])
def test_bad_graphs_are_refused_with_what_is_wrong(names, depends_on, message):
    with pytest.raises(ValidationError) as caught:
        graph.check_graph(names, depends_on)
    assert message in caught.value.msg


def test_a_diamond_is_no_cycle():
    graph.check_graph(['a', 'b', 'c', 'd'], {'b': ['a'], 'c': ['a'], 'd': ['b', 'c']})


def test_every_cycle_is_named_once():
    cycles = graph.find_cycles(['a', 'b', 'c', 'd'], {'a': ['b'], 'b': ['a'], 'c': ['d'], 'd': ['c']})
    assert cycles == [['a', 'b', 'a'], ['c', 'd', 'c']]


def _recording(fail=(), delay=0.0):
    order, lock = [], threading.Lock()
    running = {'now': 0, 'most': 0}

    def work(name):
        with lock:
            running['now'] += 1
            running['most'] = max(running['most'], running['now'])
        time.sleep(delay)
        with lock:
            running['now'] -= 1
            order.append(name)
        if name in fail:
            raise RuncibleError('%s broke' % name)
        return {'name': name}
    return work, order, running


@pytest.mark.parametrize('workers', [1, 3, 8])
def test_each_runs_after_what_it_depends_on(workers):
    names = ['d', 'c', 'b', 'a', 'e']
    before = {'d': ['b', 'c'], 'c': ['a'], 'b': ['a'], 'e': []}
    work, order, _running = _recording(delay=0.01)
    outcomes = graph.run_ordered(names, before, work, workers)
    assert all(status == graph.OK for status, _value in outcomes.values())
    for name, wanted in before.items():
        assert all(order.index(other) < order.index(name) for other in wanted), order
    if workers == 1:
        assert order == ['a', 'c', 'b', 'd', 'e']  # one at a time: the first declared among the ready ones


def test_workers_bound_the_parallel_work():
    names = ['n%d' % index for index in range(12)]
    work, _order, running = _recording(delay=0.05)
    start = time.monotonic()
    graph.run_ordered(names, {}, work, 4)
    assert running['most'] == 4 and time.monotonic() - start < 12 * 0.05


def test_a_failure_skips_what_comes_after_it_and_nothing_else():
    names = ['a', 'b', 'c', 'd', 'e']
    before = {'b': ['a'], 'c': ['b'], 'e': ['d']}
    work, order, _running = _recording(fail=('a',))
    outcomes = graph.run_ordered(names, before, work, 4)
    assert outcomes['a'][0] == graph.FAILED and graph.failure_text(outcomes['a'][1]) == 'a broke'
    assert outcomes['b'] == (graph.SKIPPED, 'not run: it comes after a failed')
    assert outcomes['c'] == (graph.SKIPPED, 'not run: it comes after b was skipped')
    assert outcomes['d'][0] == outcomes['e'][0] == graph.OK
    assert sorted(order) == ['a', 'd', 'e']


def test_a_bug_in_one_entry_is_its_failure_with_its_type():
    def work(name):
        raise KeyError(name)
    outcomes = graph.run_ordered(['a'], {}, work, 2)
    assert outcomes['a'][0] == graph.FAILED and graph.failure_text(outcomes['a'][1]) == "KeyError: 'a'"


def test_reverse_is_dependants_first():
    assert graph.reverse(['a', 'b', 'c'], {'b': ['a'], 'c': ['a', 'b']}) == {'a': ['b', 'c'], 'b': ['c'], 'c': []}


def test_the_volume_lock_is_exclusive_between_threads_and_reentrant_within_one(tmp_path):
    from ansible_collections.runcible.oci.plugins.module_utils._runtime import volumes
    root = str(tmp_path)
    inside, most = [0], [0]

    def hold():
        with volumes.locked(root):
            with volumes.locked(root):  # re-entrant in its thread
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                time.sleep(0.02)
                inside[0] -= 1

    threads = [threading.Thread(target=hold) for _index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1


# -- entries ---------------------------------------------------------------------------------------

def _task(tmp_path, **params):
    params.setdefault('name', 'set')
    params.setdefault('root', str(tmp_path / 'root'))
    params.setdefault('run_root', str(tmp_path / 'run'))
    return _deployment.Task(with_defaults(_deployment.argument_spec(), params))


def test_entries_get_defaults_the_set_label_and_the_stores(tmp_path):
    task = _task(tmp_path, defaults={'rootfs': '/srv/r', 'labels': {'team': 'a', 'tier': 'x'}, 'memory': '64m'},
                 containers=[{'name': 'a', 'labels': {'tier': 'y'}, 'memory': '32m', 'pids_limit': '10'},
                             {'name': 'b', 'depends_on': ['a'], 'state': 'stopped'}])
    a, b = task.entries['a'], task.entries['b']
    assert a.params['labels'] == {'team': 'a', 'tier': 'y', 'io.runcible.deploy': 'set'}
    assert a.params['memory'] == '32m' and a.params['pids_limit'] == 10  # typed as the container module types it
    assert a.params['root'] == str(tmp_path / 'root') and a.params['state'] == 'started'
    assert b.depends_on == ['a'] and b.params['state'] == 'stopped' and b.params['rootfs'] == '/srv/r'
    assert 'depends_on' not in b.params


@pytest.mark.parametrize('state, own, wanted', [
    ('started', None, 'started'), ('started', 'stopped', 'stopped'), ('created', None, 'created'),
    ('created', 'started', 'started'), ('stopped', 'started', 'stopped'), ('absent', 'started', 'absent'),
    ('restarted', None, 'restarted'), ('restarted', 'stopped', 'stopped'),
])
def test_the_set_state_and_the_entry_state(tmp_path, state, own, wanted):
    entry = {'name': 'a', 'rootfs': '/srv/r'}
    if own:
        entry['state'] = own
    assert _task(tmp_path, state=state, containers=[entry]).entries['a'].params['state'] == wanted


@pytest.mark.parametrize('params, message', [
    ({'containers': [{'name': 'a', 'memroy': '1g'}]}, 'containers[0] (a): unknown option memroy (did you mean memory?)'),
    ({'containers': [{'name': 'a', 'pids_limit': 'many'}]}, "containers[0] (a): argument 'pids_limit' is of type"),
    ({'containers': [{'name': 'a', 'root': '/x'}]}, "containers[0] (a): root is the deployment's"),
    ({'containers': [{'memory': '1g'}]}, 'containers[0]: missing required arguments: name'),
    ({'containers': ['a']}, 'containers[0]: must be a dictionary'),
    ({'containers': [{'name': 'a'}, {'name': 'a'}]}, 'containers: a is listed more than once'),
    ({'containers': [{'name': 'a', 'labels': {'io.runcible.deploy': 'other'}}]}, 'is the label of the deployment'),
    ({'defaults': {'name': 'x'}}, 'defaults: name is not a default'),
    ({'networks': [{'name': 'n', 'state': 'absent'}]}, "networks[0]: state is the deployment's"),
    ({'volumes': [{'name': 'v', 'driver': 'nfs'}]}, 'volumes[0]: value of driver must be one of'),
    ({'secrets': {'b': {'s': 'v'}}, 'containers': [{'name': 'a'}]}, 'secrets: b is not a container'),
    ({'parallel': 0}, 'parallel: 0 must be 1 or more'),
    ({'compose_file': '/x/compose.yaml'}, 'compose_file is read on the controller'),
])
def test_bad_entries_fail_before_anything_runs(tmp_path, params, message):
    with pytest.raises(ValidationError) as caught:
        _task(tmp_path, **params)
    assert message in caught.value.msg


def test_secrets_go_to_their_container(tmp_path):
    task = _task(tmp_path, containers=[{'name': 'a'}, {'name': 'b'}],
                 secrets={'a': {'token': 'x'}, '*': {'common': 'y'}})
    assert task.entries['a'].params['secrets'] == {'common': 'y', 'token': 'x'}
    assert task.entries['b'].params['secrets'] == {'common': 'y'}


# -- compose ---------------------------------------------------------------------------------------

FULL = {
    'name': 'shop',
    'version': '3.9',
    'x-common': {'anything': 1},
    'services': {
        'db': {
            'image': 'postgres:16',
            'command': 'postgres -c fsync=off',
            'entrypoint': ['/entry.sh'],
            'environment': ['A=1', 'B=two=2'],
            'env_file': ['db.env', {'path': '/abs/opt.env', 'required': False}],
            'volumes': ['data:/var/lib/db', '/srv/conf:/etc/db:ro', './init:/init:ro,z',
                        {'type': 'tmpfs', 'target': '/scratch', 'tmpfs': {'size': '64m', 'mode': 0o1777}},
                        {'type': 'volume', 'source': 'data', 'target': '/backup', 'read_only': True},
                        {'type': 'bind', 'source': './logs', 'target': '/logs', 'bind': {'propagation': 'rslave'}},
                        '/anonymous'],
            'tmpfs': ['/run:size=8m', '/tmp'],
            'networks': {'back': {'ipv4_address': '10.89.30.10'}},
            'restart': 'unless-stopped',
            'healthcheck': {'test': ['CMD', 'true'], 'interval': '5s'},
            'labels': {'tier': 'db'},
            'user': 999,
            'working_dir': '/var/lib/db',
            'cap_add': ['NET_ADMIN'],
            'cap_drop': ['ALL'],
            'ulimits': {'nofile': {'soft': 1024, 'hard': 2048}, 'nproc': 512},
            'stop_grace_period': '1m30s',
            'stop_signal': 'SIGINT',
            'mem_limit': '256m',
            'cpus': 0.5,
            'pids_limit': 100,
            'shm_size': '128m',
            'sysctls': ['net.core.somaxconn=1024'],
            'security_opt': ['no-new-privileges:true', 'seccomp=unconfined'],
            'pull_policy': 'if_not_present',
            'x-note': 'ignored',
        },
        'web': {
            'image': 'oci:/srv/layout:v1',
            'environment': {'DEBUG': True, 'PORT': 8080, 'EMPTY': ''},
            'ports': ['8080:80', '127.0.0.1:8443:443/tcp',
                      {'target': 53, 'published': '5353', 'host_ip': '127.0.0.1', 'protocol': 'udp'}],
            'depends_on': {'db': {'condition': 'service_healthy'},
                           'cache': {'condition': 'service_started', 'required': False}},
            'labels': ['tier=web', 'public'],
            'container_name': 'shop-frontend',
            'networks': ['back'],
        },
        'worker': {'image': 'docker://registry.example.com/w:1', 'depends_on': ['db', 'web'], 'network_mode': 'none'},
        'tool': {'image': 'busybox'},
    },
    'networks': {'back': {'internal': True, 'ipam': {'config': [{'subnet': '10.89.30.0/24', 'gateway': '10.89.30.1'}]}},
                 'outside': {'external': True, 'name': 'corp'}},
    'volumes': {'data': {'labels': {'keep': 'yes'}}, 'shared': {'external': True}},
}


@pytest.fixture
def compose():
    return from_compose(FULL, 'fallback', '/srv/shop')


def test_compose_names_and_objects(compose):
    assert compose.project == 'shop'
    assert [entry['name'] for entry in compose.containers] == ['shop-db', 'shop-frontend', 'shop-worker', 'shop-tool']
    assert compose.networks == [{'name': 'shop_back', 'internal': True, 'subnet': '10.89.30.0/24',
                                 'gateway': '10.89.30.1'}, {'name': 'shop_default'}]
    volume_names = [volume['name'] for volume in compose.volumes]
    assert volume_names[0] == 'shop_data' and compose.volumes[0]['labels'] == {'keep': 'yes'}
    assert volume_names[1].startswith('shop-db-') and len(volume_names) == 2  # the anonymous one


def test_compose_service_mapping(compose):
    db = compose.containers[0]
    assert db['image'] == 'docker://postgres:16'
    assert db['command'] == 'postgres -c fsync=off' and db['entrypoint'] == ['/entry.sh']
    assert db['env'] == {'A': '1', 'B': 'two=2'}
    assert db['env_file'] == ['/srv/shop/db.env']  # the optional one is not on this host
    assert db['mounts'] == [
        {'type': 'volume', 'source': 'shop_data', 'target': '/var/lib/db', 'options': []},
        {'type': 'bind', 'source': '/srv/conf', 'target': '/etc/db', 'options': ['ro']},
        {'type': 'bind', 'source': '/srv/shop/init', 'target': '/init', 'options': ['ro', 'z']},
        {'type': 'volume', 'source': 'shop_data', 'target': '/backup', 'options': ['ro']},
        {'type': 'bind', 'source': '/srv/shop/logs', 'target': '/logs', 'options': ['rslave']},
        {'type': 'volume', 'source': compose.volumes[1]['name'], 'target': '/anonymous', 'options': []}]
    assert db['tmpfs'] == {'/scratch': 'size=64m,mode=1777', '/run': 'size=8m', '/tmp': ''}
    assert db['network'] == 'shop_back' and db['ip_address'] == '10.89.30.10'
    assert db['labels'] == {'tier': 'db'} and db['restart_policy'] == 'unless-stopped'
    assert db['user'] == '999' and db['workdir'] == '/var/lib/db'
    assert db['cap_add'] == ['NET_ADMIN'] and db['cap_drop'] == ['ALL']
    assert db['ulimits'] == {'nofile': {'soft': 1024, 'hard': 2048}, 'nproc': 512}
    assert db['stop_timeout'] == 90 and db['stop_signal'] == 'SIGINT'
    assert db['memory'] == '256m' and db['cpus'] == 0.5 and db['pids_limit'] == 100 and db['shm_size'] == '128m'
    assert db['sysctls'] == {'net.core.somaxconn': '1024'}
    assert db['no_new_privileges'] is True and db['seccomp_profile'] == 'unconfined'
    assert db['pull'] == 'missing'
    assert 'depends_on' not in db
    web = compose.containers[1]
    assert web['image'] == 'oci:/srv/layout:v1'
    assert web['env'] == {'DEBUG': 'true', 'PORT': '8080', 'EMPTY': ''}
    assert web['published_ports'] == ['8080:80', '127.0.0.1:8443:443/tcp', '127.0.0.1:5353:53/udp']
    assert web['depends_on'] == ['shop-db']  # cache is not required and not there
    assert web['labels'] == {'tier': 'web', 'public': ''}
    assert web['network'] == 'shop_back'
    worker, tool = compose.containers[2], compose.containers[3]
    assert worker['depends_on'] == ['shop-db', 'shop-frontend'] and worker['network'] == 'none'
    assert tool['image'] == 'docker://busybox' and tool['network'] == 'shop_default'


def test_compose_warns_for_what_it_does_not_enforce(compose):
    text = ' '.join(compose.warnings)
    assert 'restart' not in text  # restart policies are enforced: no warning
    assert 'healthcheck' not in text and 'service_healthy' not in text  # health checks run: no warning


def test_compose_entries_pass_the_container_argument_spec(tmp_path):
    """What the mapping makes is checked like any entry (the container module's types)."""
    definition = {'services': {'a': {'image': 'busybox', 'ulimits': {'nofile': 1024}, 'stop_grace_period': '2s'},
                               'b': {'image': 'busybox', 'depends_on': ['a'], 'ports': ['8080:80']}}}
    task = _task(tmp_path, name='proj', definition=definition)
    assert list(task.entries) == ['proj-a', 'proj-b']
    assert task.entries['proj-b'].depends_on == ['proj-a'] and task.entries['proj-a'].params['stop_timeout'] == 2
    assert [network['name'] for network in task.networks] == ['proj_default']
    assert task.entries['proj-a'].params['labels'] == {'io.runcible.deploy': 'proj'}


@pytest.mark.parametrize('service, message', [
    ({'image': 'a', 'build': '.'}, "compose service s: key 'build' is not supported (build the image first"),
    ({'image': 'a', 'bogus': 1}, "compose service s: key 'bogus' is not supported; supported: cap_add"),
    ({'command': 'x'}, 'compose service s: image: a service needs an image'),
    ({'image': 'a', 'environment': ['HOME']}, 'compose service s: environment: HOME has no value'),
    ({'image': 'a', 'ports': ['80']}, "compose service s: ports: '80' publishes no host port"),
    ({'image': 'a', 'ports': [{'target': 80}]}, 'compose service s: ports: '),
    ({'image': 'a', 'volumes': ['nosuch:/data']}, 'compose service s: volumes: volume nosuch is not declared'),
    ({'image': 'a', 'volumes': ['./x:/data']}, "compose service s: volumes: './x' is relative: give project_dir"),
    ({'image': 'a', 'volumes': [{'type': 'npipe', 'target': '/x'}]}, "volumes: type 'npipe' is not supported"),
    ({'image': 'a', 'volumes': [{'type': 'bind', 'target': '/x', 'source': '/y', 'bind': {'x': 1}}]},
     "compose service s volumes bind: key 'x' is not supported"),
    ({'image': 'a', 'networks': ['n', 'nosuch']}, 'compose service s: networks: nosuch is not a network'),
    ({'image': 'a', 'networks': {'n': {'priority': 1}}}, "compose service s networks n: key 'priority' is not"),
    ({'image': 'a', 'network_mode': 'service:x'}, "compose service s: network_mode: 'service:x' is not supported"),
    ({'image': 'a', 'depends_on': ['nosuch']}, 'compose service s: depends_on: nosuch is not a service'),
    ({'image': 'a', 'depends_on': {'t': {'condition': 'service_completed_successfully'}}},
     'condition service_completed_successfully is not supported yet'),
    ({'image': 'a', 'restart': 'sometimes'}, "compose service s: restart: 'sometimes' is not no, always"),
    ({'image': 'a', 'stop_grace_period': 'soon'}, "compose service s stop_grace_period: 'soon' is not a duration"),
    ({'image': 'a', 'security_opt': ['label:type:x']}, "compose service s: security_opt: 'label:type:x'"),
    ({'image': 'a', 'pull_policy': 'build'}, "compose service s: pull_policy 'build' is not supported"),
    ({'image': 'a', 'env_file': '~/x.env'}, 'compose service s: env_file: '),
    ('just a string', 'compose service s: must be a mapping of keys'),
])
def test_bad_compose_input_names_the_service_and_the_key(service, message):
    definition = {'services': {'s': service, 't': {'image': 'b'}}, 'networks': {'n': None}}
    with pytest.raises(ValidationError) as caught:
        from_compose(definition, 'p', None)
    assert message in caught.value.msg, caught.value.msg


@pytest.mark.parametrize('definition, message', [
    (['services'], 'the compose document must be a mapping'),
    ({'services': {}}, 'compose: services must be a mapping of at least one service'),
    ({'services': {'a': {'image': 'x'}}, 'secrets': {}}, "compose: top-level key 'secrets' is not supported"),
    ({'services': {'a': {'image': 'x'}}, 'networks': {'n': {'driver': 'overlay'}}},
     "compose network n: driver 'overlay' is not supported"),
    ({'services': {'a': {'image': 'x'}}, 'networks': {'n': {'ipam': {'config': [{'ip_range': 'x'}]}}}},
     "compose network n ipam config: key 'ip_range' is not supported"),
    ({'services': {'a': {'image': 'x'}}, 'volumes': {'v': {'driver': 'nfs'}}},
     "compose volume v: driver 'nfs' is not supported"),
])
def test_bad_compose_documents(definition, message):
    with pytest.raises(ValidationError) as caught:
        from_compose(definition, 'p', None)
    assert message in caught.value.msg, caught.value.msg


@pytest.mark.parametrize('restart, expected', [
    ('always', {'restart_policy': 'always'}), ('on-failure:3', {'restart_policy': 'on-failure', 'restart_retries': 3}),
    ('on-failure', {'restart_policy': 'on-failure'}), ('no', {})])
def test_compose_restart_becomes_the_restart_policy(restart, expected):
    compose = from_compose({'services': {'s': {'image': 'a', 'restart': restart}}}, 'p', '/srv/p')
    entry = compose.containers[0]
    assert dict((key, entry[key]) for key in ('restart_policy', 'restart_retries') if key in entry) == expected


def test_compose_services_are_known_by_their_service_name_and_aliases():
    compose = from_compose({'services': {
        'db': {'image': 'a', 'networks': {'back': {'aliases': ['database', 'db']}}},
        'web': {'image': 'a'}, 'solo': {'image': 'a', 'network_mode': 'none'}},
        'networks': {'back': {}}}, 'p', '/srv/p')
    entries = dict((entry['name'], entry) for entry in compose.containers)
    assert entries['p-db']['aliases'] == ['db', 'database'] and entries['p-web']['aliases'] == ['web']
    assert 'aliases' not in entries['p-solo']


def test_compose_service_healthy_waits_for_the_healthcheck_of_the_service():
    definition = {'services': {
        'db': {'image': 'a', 'healthcheck': {'test': ['CMD', 'pg_isready'], 'interval': '2s', 'retries': 5}},
        'web': {'image': 'a', 'depends_on': {'db': {'condition': 'service_healthy'}}}}}
    entries = dict((entry['name'], entry) for entry in from_compose(definition, 'p', '/srv/p').containers)
    assert entries['p-db']['state'] == 'healthy' and entries['p-db']['healthcheck'] == {
        'test': ['CMD', 'pg_isready'], 'interval': '2s', 'retries': 5}
    assert 'state' not in entries['p-web'] and entries['p-web']['depends_on'] == ['p-db']
    del definition['services']['db']['healthcheck']
    with pytest.raises(ValidationError, match='compose service db: others depend on it with condition service_healthy'):
        from_compose(definition, 'p', '/srv/p')


def test_compose_services_on_several_networks_and_ipv6_networks():
    definition = {
        'services': {
            'api': {'image': 'a', 'networks': {'front': {'aliases': ['www']},
                                               'back': {'ipv4_address': '10.89.31.5'}}},
            'db': {'image': 'b', 'networks': {'back': {'ipv6_address': 'fd12:3456:789a::5'}}},
            'one': {'image': 'c', 'networks': ['front']},
        },
        'networks': {'front': None,
                     'back': {'enable_ipv6': True, 'ipam': {'config': [{'subnet': '10.89.31.0/24'},
                                                                       {'subnet': 'fd12:3456:789a::/64'}]}}},
    }
    compose = from_compose(definition, 'app', '/srv/app')
    entries = dict((entry['name'], entry) for entry in compose.containers)
    assert entries['app-api']['networks'] == [
        {'name': 'app_front', 'aliases': ['api', 'www']},
        {'name': 'app_back', 'aliases': ['api'], 'ip_address': '10.89.31.5'}]
    assert 'network' not in entries['app-api'] and 'aliases' not in entries['app-api']
    assert entries['app-db']['networks'] == [{'name': 'app_back', 'aliases': ['db'], 'ipv6_address': 'fd12:3456:789a::5'}]
    # One network without an IPv6 address: the shorthand, as before (records made by earlier versions stay equal).
    assert entries['app-one']['network'] == 'app_front' and entries['app-one']['aliases'] == ['one']
    assert 'networks' not in entries['app-one']
    back = [network for network in compose.networks if network['name'] == 'app_back'][0]
    assert back == {'name': 'app_back', 'ipv6': True, 'subnet': '10.89.31.0/24', 'ipv6_subnet': 'fd12:3456:789a::/64'}
    for body, message in [({'ipam': {'config': [{'subnet': 'fd00::/64'}]}}, 'an IPv6 ipam subnet needs enable_ipv6'),
                          ({'enable_ipv6': True, 'ipam': {'config': [{'subnet': 'fd00::/64', 'gateway': 'fd00::9'}]}},
                           'takes no gateway'),
                          ({'ipam': {'config': [{'subnet': '10.1.0.0/24'}, {'subnet': '10.2.0.0/24'}]}},
                           'one IPv4 subnet')]:
        with pytest.raises(ValidationError, match=message):
            from_compose({'services': {'s': {'image': 'a'}}, 'networks': {'n': body}}, 'app', '/srv/app')
