# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/spec.py and _container_options.build_spec: the OCI config.json made from a container's options."""

from __future__ import annotations

import json
import resource

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options
from ansible_collections.runcible.oci.plugins.module_utils._container_options import process
from ansible_collections.runcible.oci.plugins.module_utils._runtime import spec as oci_spec

CID = 'c0ffee' * 10 + 'abcd'
CGROUPS = '/runcible/runcible-' + CID


def build(params, name='web'):
    """config.json for ``params`` (raw, as a task gives them), the way the task layer builds it."""
    params = dict(params)
    params.setdefault('command', ['sleep', '10'])
    params.setdefault('cgroup_manager', 'cgroupfs')
    context = options.Context(name, '/var/lib/runcible')
    config = options.complete(options.normalise(params, context), context)
    return options.build_spec(config, CID)


def namespace_types(spec):
    return [ns['type'] for ns in spec['linux']['namespaces']]


def mount_at(spec, destination):
    found = [m for m in spec['mounts'] if m['destination'] == destination]
    assert len(found) == 1, 'expected exactly one mount at %s, got %r' % (destination, found)
    return found[0]


# -- the base spec ----------------------------------------------------------------------------------

def test_base_spec_shape():
    spec = build({'command': 'httpd -f -p 8080'})
    json.dumps(spec)  # serialisable as config.json
    assert spec['ociVersion'] == oci_spec.OCI_VERSION
    assert spec['ociVersion'].startswith('1.0.')
    process = spec['process']
    assert process['args'] == ['httpd', '-f', '-p', '8080']
    assert process['cwd'] == '/'
    assert process['user'] == {'uid': 0, 'gid': 0}
    assert process['terminal'] is False
    assert process['noNewPrivileges'] is True
    assert sorted(process['capabilities']['bounding']) == sorted(oci_spec.DEFAULT_CAPABILITIES)
    assert process['capabilities']['effective'] == oci_spec.DEFAULT_CAPABILITIES
    assert process['capabilities']['permitted'] == oci_spec.DEFAULT_CAPABILITIES
    assert spec['root'] == {'path': 'rootfs', 'readonly': False}
    assert spec['hostname'] == 'web'
    assert spec['annotations']['io.runcible.container.id'] == CID
    linux = spec['linux']
    assert linux['cgroupsPath'] == CGROUPS
    assert linux['resources']['devices'] == [{'allow': False, 'access': 'rwm'}]
    assert set(namespace_types(spec)) == {'pid', 'ipc', 'uts', 'mount', 'network'}
    assert len(namespace_types(spec)) == len(set(namespace_types(spec)))
    assert '/proc/kcore' in linux['maskedPaths']
    assert '/proc/sys' in linux['readonlyPaths']
    for destination in ('/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup'):
        mount_at(spec, destination)
    assert mount_at(spec, '/proc')['type'] == 'proc'
    assert 'ro' in mount_at(spec, '/sys/fs/cgroup')['options']


def test_base_spec_hostname_is_a_short_id():
    spec = oci_spec.base_spec(CID, '/abs/rootfs', CGROUPS)
    assert spec['hostname'] == CID[:12]
    assert spec['root']['path'] == '/abs/rootfs'
    assert 'network' not in namespace_types(spec)  # map_network adds it


def test_specs_share_no_mutable_state():
    first = build({})
    first['process']['capabilities']['bounding'].append('CAP_SYS_ADMIN')
    first['linux']['maskedPaths'].clear()
    first['process']['rlimits'][0]['hard'] = 1
    second = build({})
    assert 'CAP_SYS_ADMIN' not in second['process']['capabilities']['bounding']
    assert 'CAP_SYS_ADMIN' not in oci_spec.DEFAULT_CAPABILITIES
    assert second['linux']['maskedPaths'] == oci_spec.MASKED_PATHS
    assert second['process']['rlimits'][0]['hard'] != 1


def test_build_spec_does_not_change_the_config():
    context = options.Context('web', '/var/lib/runcible')
    config = options.complete(options.normalise({'command': 'sleep 1', 'env': {'A': '1'}}, context), context)
    before = json.dumps(config, sort_keys=True)
    options.build_spec(config, CID)
    assert json.dumps(config, sort_keys=True) == before


# -- rlimits ----------------------------------------------------------------------------------------

def test_rlimits_never_above_the_hosts_hard_limit():
    rlimits = build({})['process']['rlimits']
    assert sorted(r['type'] for r in rlimits) == sorted(oci_spec.WANTED_RLIMITS)
    for rlimit in rlimits:
        _soft, hard = resource.getrlimit(getattr(resource, rlimit['type']))
        assert 0 < rlimit['soft'] <= rlimit['hard']
        if hard != resource.RLIM_INFINITY:
            assert rlimit['hard'] <= hard
        assert rlimit['hard'] <= oci_spec.WANTED_RLIMITS[rlimit['type']]


@pytest.mark.parametrize('host_hard, expected', [
    (1024, 1024),
    (resource.RLIM_INFINITY, None),   # None: the wanted value
    (1 << 40, None),
])
def test_rlimits_follow_the_host(monkeypatch, host_hard, expected):
    monkeypatch.setattr(oci_spec.resource, 'getrlimit', lambda which: (64, host_hard))
    for rlimit in oci_spec.host_rlimits():
        value = oci_spec.WANTED_RLIMITS[rlimit['type']] if expected is None else expected
        assert rlimit['soft'] == value
        assert rlimit['hard'] == value


# -- network ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('params', [{}, {'network': 'none'}])
def test_network_none_has_its_own_namespace_and_sysfs(params):
    spec = build(params)
    assert namespace_types(spec).count('network') == 1
    sys_mount = mount_at(spec, '/sys')
    assert sys_mount['type'] == 'sysfs'
    assert sys_mount['source'] == 'sysfs'
    assert 'ro' in sys_mount['options']


def test_network_host_shares_the_host_namespace_and_binds_sys_read_only():
    spec = build({'network': 'host'})
    assert 'network' not in namespace_types(spec)
    sys_mount = mount_at(spec, '/sys')
    assert sys_mount['type'] == 'bind'
    assert sys_mount['source'] == '/sys'
    assert 'ro' in sys_mount['options']
    assert 'rbind' in sys_mount['options']
    assert not [m for m in spec['mounts'] if m['type'] == 'sysfs']


# -- user -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('user, uid, gid', [('1000', 1000, 0), ('1000:1000', 1000, 1000), ('65534:65534', 65534, 65534)])
def test_non_root_user_drops_effective_and_permitted_caps(user, uid, gid):
    spec = build({'user': user})
    process = spec['process']
    assert process['user'] == {'uid': uid, 'gid': gid}
    assert process['capabilities']['effective'] == []
    assert process['capabilities']['permitted'] == []
    assert sorted(process['capabilities']['bounding']) == sorted(oci_spec.DEFAULT_CAPABILITIES)


@pytest.mark.parametrize('user, gid', [('0', 0), ('0:0', 0), ('0:100', 100)])
def test_root_user_keeps_caps(user, gid):
    process = build({'user': user})['process']
    assert process['user'] == {'uid': 0, 'gid': gid}
    assert process['capabilities']['effective'] == oci_spec.DEFAULT_CAPABILITIES
    assert process['capabilities']['permitted'] == oci_spec.DEFAULT_CAPABILITIES


def test_user_by_name_from_rootfs(tmp_path):
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'etc' / 'passwd').write_text('root:x:0:0::/root:/bin/sh\nwww:x:33:34::/:/bin/sh\n')
    spec = build({'user': 'www', 'rootfs': str(tmp_path)})
    assert spec['process']['user'] == {'uid': 33, 'gid': 34}


# -- mounts -----------------------------------------------------------------------------------------

def test_mounts_become_bind_mounts_with_their_options(tmp_path):
    data, conf = tmp_path / 'data', tmp_path / 'conf'
    data.mkdir()
    conf.mkdir()
    spec = build({'mounts': ['%s:/srv/data' % data,
                             {'source': str(conf), 'target': '/etc/app', 'options': ['ro', 'nosuid']}]})
    assert mount_at(spec, '/srv/data') == {'destination': '/srv/data', 'type': 'bind', 'source': str(data),
                                           'options': ['rbind', 'rw']}
    assert mount_at(spec, '/etc/app') == {'destination': '/etc/app', 'type': 'bind', 'source': str(conf),
                                          'options': ['nosuid', 'rbind', 'ro']}
    destinations = [m['destination'] for m in spec['mounts']]
    # user mounts come after the base mounts (so /dev, /proc... never hide them), sorted by target
    assert destinations[-2:] == ['/etc/app', '/srv/data']


def test_no_mounts_means_only_base_mounts():
    spec = build({'network': 'none'})
    assert not [m for m in spec['mounts'] if m['type'] == 'bind']


# -- resources --------------------------------------------------------------------------------------

DEFAULT_PIDS = {'pids': {'limit': 2048}}  # podman's default for a new container


@pytest.mark.parametrize('params, expected', [
    ({'memory': '64m'}, dict(DEFAULT_PIDS, memory={'limit': 64 << 20})),
    ({'memory': 1073741824}, dict(DEFAULT_PIDS, memory={'limit': 1 << 30})),
    ({'cpus': 0.5}, dict(DEFAULT_PIDS, cpu={'quota': 50000, 'period': 100000})),
    ({'cpus': '1.5'}, dict(DEFAULT_PIDS, cpu={'quota': 150000, 'period': 100000})),
    ({'cpus': 2}, dict(DEFAULT_PIDS, cpu={'quota': 200000, 'period': 100000})),
    ({'cpus': 0.333333}, dict(DEFAULT_PIDS, cpu={'quota': 33333, 'period': 100000})),
    ({'pids_limit': 100}, {'pids': {'limit': 100}}),
    ({'memory': '512k', 'cpus': 0.25, 'pids_limit': 7},
     {'memory': {'limit': 512 << 10}, 'cpu': {'quota': 25000, 'period': 100000}, 'pids': {'limit': 7}}),
    ({}, DEFAULT_PIDS),
    ({'memory': 0, 'cpus': 0, 'pids_limit': 0}, {}),
])
def test_resources(params, expected):
    resources = build(params)['linux']['resources']
    assert resources.pop('devices') == [{'allow': False, 'access': 'rwm'}]
    assert resources == expected


UNSET = {'memory': {'limit': -1, 'reservation': -1}, 'cpu': {'quota': -1, 'period': 100000}, 'pids': {'limit': -1}}


@pytest.mark.parametrize('config, expected', [
    ({'memory': 0, 'cpus': 0.0, 'pids_limit': 0}, UNSET),
    ({}, UNSET),
    ({'memory': 64 << 20, 'cpus': 0.5, 'pids_limit': 10},
     {'memory': {'limit': 64 << 20, 'reservation': -1}, 'cpu': {'quota': 50000, 'period': 100000},
      'pids': {'limit': 10}}),
    ({'memory': 64 << 20, 'cpus': 0.0, 'pids_limit': 0, 'cpu_shares': 512, 'cpuset_cpus': '0', 'memory_swap': -1},
     {'memory': {'limit': 64 << 20, 'reservation': -1, 'swap': -1},
      'cpu': {'quota': -1, 'period': 100000, 'shares': 512, 'cpus': '0'}, 'pids': {'limit': -1}}),
    ({'blkio_weight': 300, 'memory_reservation': 1 << 20},
     dict(UNSET, memory={'limit': -1, 'reservation': 1 << 20}, blockIO={'weight': 300})),
])
def test_resources_for_update(config, expected):
    assert options.update_resources(config) == expected


# -- env, labels, read_only, workdir, hostname ------------------------------------------------------

def env_of(spec):
    return dict(item.split('=', 1) for item in spec['process']['env'])


def test_env_defaults():
    spec = build({})
    assert env_of(spec) == {'PATH': process.DEFAULT_PATH, 'HOSTNAME': 'web', 'container': 'runcible'}
    assert spec['process']['env'] == sorted(spec['process']['env'])


def test_env_user_values_win():
    spec = build({'env': {'PATH': '/opt/bin', 'FOO': 'bar', 'container': 'mine', 'EMPTY': None, 'N': 3}})
    assert env_of(spec) == {'PATH': '/opt/bin', 'HOSTNAME': 'web', 'container': 'mine', 'FOO': 'bar', 'EMPTY': '',
                            'N': '3'}
    names = [item.split('=', 1)[0] for item in spec['process']['env']]
    assert len(names) == len(set(names))


def test_env_value_with_equals_sign():
    assert env_of(build({'env': {'OPTS': 'a=b=c'}}))['OPTS'] == 'a=b=c'


def test_env_hostname_follows_the_hostname_option():
    spec = build({'hostname': 'box.example.com'})
    assert spec['hostname'] == 'box.example.com'
    assert env_of(spec)['HOSTNAME'] == 'box.example.com'
    assert env_of(build({'hostname': 'box', 'env': {'HOSTNAME': 'other'}}))['HOSTNAME'] == 'other'


@pytest.mark.parametrize('name, hostname', [('web', 'web'), ('my_app', 'my-app'), ('a' * 100, 'a' * 63)])
def test_default_hostname_from_name(name, hostname):
    spec = build({}, name=name)
    assert spec['hostname'] == hostname
    assert env_of(spec)['HOSTNAME'] == hostname


def test_labels_become_annotations():
    spec = build({'labels': {'app': 'web', 'tier': 1}})
    assert spec['annotations'] == {'io.runcible.container.id': CID, 'io.runcible.label.app': 'web',
                                   'io.runcible.label.tier': '1'}


@pytest.mark.parametrize('read_only', [True, False])
def test_read_only(read_only):
    assert build({'read_only': read_only})['root']['readonly'] is read_only


def test_workdir():
    assert build({'workdir': '/srv/app/'})['process']['cwd'] == '/srv/app'


def test_direct_rootfs_uses_the_absolute_path():
    assert build({'rootfs_mode': 'direct', 'rootfs': '/srv'})['root']['path'] == '/srv'


def test_a_record_made_before_an_option_existed_maps_its_absence():
    """A recreate of an old container merges the given options into its record: cap_drop must still apply
    although the record has no cap_add (whose mapper writes the capabilities)."""
    context = options.Context('web', '/var/lib/runcible')
    config = options.complete(options.normalise({'command': ['sleep', '1'], 'cgroup_manager': 'cgroupfs'}, context),
                              context)
    for name in ('cap_add', 'cap_drop', 'privileged', 'seccomp_profile', 'apparmor_profile', 'label', 'devices',
                 'cgroupns', 'no_new_privileges'):
        del config[name]
    old = options.build_spec(config, CID)
    assert 'seccomp' not in old['linux'] and old['process']['noNewPrivileges'] is True  # what such a record had
    assert sorted(old['process']['capabilities']['bounding']) == sorted(oci_spec.DEFAULT_CAPABILITIES)
    config['cap_drop'] = ['ALL']
    dropped = options.build_spec(config, CID)
    assert dropped['process']['capabilities']['bounding'] == [] and 'seccomp' not in dropped['linux']
