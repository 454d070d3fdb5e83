# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The workload options' normalisers and spec mappers: tmpfs, env_file, umask, groups, init, CPU quota, devices."""

from __future__ import annotations

import os

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options
from ansible_collections.runcible.oci.plugins.module_utils._container_options import process, resources, storage
from ansible_collections.runcible.oci.plugins.module_utils._runtime import parsers
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError

CONTEXT = options.Context('web', '/nonexistent-root')


@pytest.mark.parametrize('text, expected', [
    ('', ['nodev', 'noexec', 'nosuid', 'rw']),
    ('size=64m,mode=755', ['mode=0755', 'nodev', 'noexec', 'nosuid', 'rw', 'size=65536k']),
    ('exec,suid,ro', ['exec', 'nodev', 'ro', 'suid']),
    (['size=1000', 'uid=5'], ['nodev', 'noexec', 'nosuid', 'rw', 'size=1k', 'uid=5']),
])
def test_tmpfs_options_are_canonical(text, expected):
    # 1000 bytes is below the 4k minimum: only through the list form, checked below
    if text == ['size=1000', 'uid=5']:
        with pytest.raises(ValidationError, match='too small'):
            storage.tmpfs_options(text, 'tmpfs /t')
        return
    assert storage.tmpfs_options(text, 'tmpfs /t') == expected


@pytest.mark.parametrize('value, message', [
    ({'/proc': ''}, 'cannot be a tmpfs'), ({'/dev/x': ''}, 'cannot be a tmpfs'), ({'rel': ''}, 'absolute'),
    ({'/t': 'mode=8'}, 'octal'), ({'/t': 'uid=x'}, 'must be a number'), ({'/t': 'foo'}, 'unknown tmpfs option'),
    ({'/t': 'foo=1'}, 'unknown tmpfs option'), (['/t'], 'dictionary'),
])
def test_bad_tmpfs_is_refused(value, message):
    with pytest.raises(ValidationError, match=message):
        storage.tmpfs(value, CONTEXT)


def test_a_tmpfs_goes_before_the_mounts_below_it():
    spec = {'mounts': [{'destination': '/proc'}, {'destination': '/run/secrets/a', 'type': 'bind'},
                       {'destination': '/srv'}]}
    storage.map_tmpfs(spec, {'/run': ['rw'], '/zz': ['rw']}, {})
    assert [mount['destination'] for mount in spec['mounts']] == ['/proc', '/run', '/run/secrets/a', '/srv', '/zz']


def test_env_file_is_read_as_docker_reads_it(tmp_path, monkeypatch):
    path = tmp_path / 'app.env'
    path.write_text('\ufeff# c\n\n  A=1\nB="two words" \nC=x=y\nFROM_ENV\nNOT_SET\n')
    monkeypatch.setenv('FROM_ENV', 'host value')
    monkeypatch.delenv('NOT_SET', raising=False)
    assert process.env_file(str(path), CONTEXT) == {'A': '1', 'B': '"two words" ', 'C': 'x=y', 'FROM_ENV': 'host value'}
    assert process.env_file([], CONTEXT) == {}


@pytest.mark.parametrize('content, message', [('A B=1\n', 'not a variable name'), ('=1\n', 'not a variable name'),
                                              (b'\xff\xfe=1', 'not UTF-8')])
def test_bad_env_files_are_refused(tmp_path, content, message):
    path = tmp_path / 'bad.env'
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ValidationError, match=message):
        process.env_file([str(path)], CONTEXT)


def test_env_merges_image_then_files_then_task():
    spec = {'hostname': 'web', 'process': {}}
    process.map_env(spec, {'B': 'task'}, {'image_config': {'env': {'A': 'image', 'B': 'image', 'C': 'image'}},
                                          'env_file': {'B': 'file', 'C': 'file'}})
    env = dict(item.split('=', 1) for item in spec['process']['env'])
    assert (env['A'], env['B'], env['C']) == ('image', 'task', 'file')


@pytest.mark.parametrize('value, expected', [('0022', 0o22), ('027', 0o27), ('0o77', 0o77), (18, 18), ('0', 0)])
def test_umask(value, expected):
    assert process.umask(value, CONTEXT) == expected


@pytest.mark.parametrize('value', ['0999', 'rwx', '01777', 512, -1])
def test_bad_umask(value):
    with pytest.raises(ValidationError, match='octal mask'):
        process.umask(value, CONTEXT)


def test_group_add_and_user_groups_reach_the_spec_once_each():
    spec = {'process': {'user': {'uid': 1000, 'gid': 50}}}
    process.map_group_add(spec, ['29', '50', '29'], {'user_groups': [44, 29]})
    assert spec['process']['user']['additionalGids'] == [29, 44]  # no duplicate, not the primary group


def test_supplementary_groups_come_from_the_roots_group_file(tmp_path):
    etc = tmp_path / 'etc'
    etc.mkdir()
    (etc / 'passwd').write_text('root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n')
    (etc / 'group').write_text('staff:x:50:app,bob\nvideo:x:44: app \nother:x:9:bob\nbad:x:zz:app\n')
    assert parsers.supplementary_gids('1000:1000', str(tmp_path)) == [44, 50]
    assert parsers.supplementary_gids('0:0', str(tmp_path)) == []
    assert parsers.supplementary_gids('4242:0', str(tmp_path)) == []  # a uid without a name has no listed groups
    assert parsers.resolve_group('video', str(tmp_path)) == '44'
    assert parsers.resolve_group('0100', str(tmp_path)) == '100'
    with pytest.raises(ValidationError, match="group 'nope'"):
        parsers.resolve_group('nope', str(tmp_path))


def test_a_link_out_of_the_root_is_not_read_for_groups(tmp_path):
    outside = tmp_path / 'host-group'
    outside.write_text('wheel:x:10:app\n')
    root = tmp_path / 'root'
    (root / 'etc').mkdir(parents=True)
    (root / 'etc' / 'passwd').write_text('app:x:1000:1000::/:/bin/sh\n')
    os.symlink(str(outside), str(root / 'etc' / 'group'))  # absolute: resolved inside the root, where it is missing
    assert parsers.supplementary_gids('1000:1000', str(root)) == []


def test_init_goes_before_the_command(monkeypatch):
    monkeypatch.setattr(process, 'host_init', lambda: '/usr/bin/catatonit')
    spec = {'mounts': [], 'process': {'args': ['sh', '-c', 'x']}}
    process.map_init(spec, True, {})
    assert spec['process']['args'] == ['/run/runcible-init', '--', 'sh', '-c', 'x']
    assert spec['mounts'] == [{'destination': '/run/runcible-init', 'type': 'bind', 'source': '/usr/bin/catatonit',
                               'options': ['bind', 'ro', 'nosuid', 'nodev']}]
    monkeypatch.setattr(process, 'host_init', lambda: None)
    with pytest.raises(ValidationError, match='catatonit'):
        process.init(True, CONTEXT)
    assert process.init(False, CONTEXT) is False


def test_cpu_quota_survives_the_cpus_unset_in_the_update_document():
    config = dict((option.name, option.default_value(CONTEXT)) for option in options.OPTIONS
                  if not callable(getattr(option.default, 'path', None)))
    config.update(cpus=0.0, cpu_quota=30000, cpu_period=50000)
    document = options.update_resources(config)
    assert document['cpu']['quota'] == 30000 and document['cpu']['period'] == 50000
    config.update(cpu_quota=0, cpu_period=0)
    assert options.update_resources(config)['cpu']['quota'] == -1  # no limit: taken away


def test_cpus_excludes_a_quota():
    with pytest.raises(ValidationError, match='exclude each other'):
        options.normalise({'cpus': 0.5, 'cpu_quota': 20000}, CONTEXT)
    assert options.normalise({'cpus': 0.5, 'cpu_quota': 0}, CONTEXT)['cpus'] == 0.5


def test_device_limits(monkeypatch):
    device = [os.path.join('/dev', name) for name in ('loop0', 'vda', 'sda') if os.path.exists('/dev/' + name)]
    if not device:
        pytest.skip('no block device here')
    path = device[0]
    assert resources.device_read_bps(['%s:1m' % path, {'path': path, 'rate': '2m'}], CONTEXT) == ['%s:2097152' % path]
    assert resources.device_write_iops(['%s:30' % path], CONTEXT) == ['%s:30' % path]
    spec = {'linux': {'resources': {}}}
    resources.map_device_write_iops(spec, ['%s:30' % path], {})
    rdev = os.stat(path).st_rdev
    assert spec['linux']['resources']['blockIO']['throttleWriteIOPSDevice'] == [
        {'major': os.major(rdev), 'minor': os.minor(rdev), 'rate': 30}]
    for bad, message in ((['/dev/null:1'], 'not a block device'), (['%s:x' % path], 'operations'),
                         (['x'], 'DEVICE:RATE')):
        with pytest.raises(ValidationError, match=message):
            resources.device_read_iops(bad, CONTEXT)
