# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""runcible.oci.volume and volume_info on this host: four ways through ansible-playbook and the Python API, real
tmpfs and bind mounts made and removed (no mount left), a volume in use refused, data that outlives a container.

The container that uses a volume is a real one (runc, conmon) that bind-mounts the volume's mountpoint; the
container module does not take ``{type: volume}`` mounts yet, so the test then adds that entry to the container's
record config, under the container's lock, through the Store API (``Store.load``/``Store.save``): the record
format the container module will write.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _exec, _volume
from ansible_collections.runcible.oci.plugins.module_utils._runtime import volumes
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


def api(env, check_mode=False, **params):
    params.setdefault('root', env.root)
    return _volume.run(params, check_mode=check_mode)


def mounted_at(path):
    """How many mounts /proc/self/mountinfo shows at ``path`` (and their file system types)."""
    with open('/proc/self/mountinfo') as handle:
        fields = [line.split(' - ')[1].split()[0] for line in handle if line.split()[4] == path]
    return fields


def test_tmpfs_volume_four_ways_mounted_and_unmounted_by_playbook(env):
    args = {'name': 'test-scratch', 'labels': {'app': 'web'}, 'options': {'type': 'tmpfs', 'o': 'size=8m,mode=1777'}}
    created = env.four_ways(args, module='runcible.oci.volume')
    data = os.path.join(env.root, 'volumes', 'test-scratch', '_data')
    assert created[0]['diff'] == {'before': {'state': 'absent'},
                                  'after': {'state': 'present', 'name': 'test-scratch', 'driver': 'local',
                                            'labels': {'app': 'web'},
                                            'options': {'type': 'tmpfs', 'o': 'size=8m,mode=1777'}}}
    assert created[0]['volume']['created'] is None and created[1]['actions'] == ['created']
    volume = created[1]['volume']
    assert volume['mountpoint'] == data and volume['mounted'] is True and volume['users'] == []
    assert [r['volume'] for r in created[2:]] == [volume, volume]
    assert mounted_at(data) == ['tmpfs']
    assert oct(os.stat(data).st_mode & 0o7777) == '0o1777'
    # The same options in another order are the same volume.
    same = env.playbook([{'runcible.oci.volume': dict(args, options={'type': 'tmpfs', 'o': 'mode=1777,size=8m'})}])
    assert same[0]['changed'] is False
    # ensure_mounted is idempotent: still one mount.
    assert volumes.ensure_mounted(env.root, 'test-scratch') == data and mounted_at(data) == ['tmpfs']
    # Unmounted behind our back (as by a reboot): ensure_mounted and the module mount it again.
    subprocess.run(['umount', data], check=True)
    assert mounted_at(data) == []
    assert volumes.ensure_mounted(env.root, 'test-scratch') == data and mounted_at(data) == ['tmpfs']
    subprocess.run(['umount', data], check=True)
    repaired = env.four_ways(args, module='runcible.oci.volume')
    assert repaired[0]['actions'] == ['mounted'] and repaired[0]['diff'] == {'before': {'mounted': False},
                                                                             'after': {'mounted': True}}
    assert mounted_at(data) == ['tmpfs']
    with open(os.path.join(data, 'file'), 'w') as handle:
        handle.write('x')
    removed = env.four_ways(dict(args, state='absent'), module='runcible.oci.volume')
    assert removed[1]['actions'] == ['removed'] and removed[1]['volume'] == {}
    assert removed[0]['diff']['after'] == {'state': 'absent'} and removed[0]['diff']['before']['state'] == 'present'
    assert mounted_at(data) == [] and not os.path.exists(os.path.dirname(data))
    info = env.playbook([{'runcible.oci.volume_info': {'name': 'test-scratch'}}])[0]
    assert info['exists'] is False and info['volumes'] == []


def test_plain_volume_four_ways_through_the_python_api(env):
    args = {'name': 'test-plain', 'labels': {'tier': 1}}
    results = [api(env, check_mode=True, **args), api(env, **args), api(env, **args), api(env, check_mode=True, **args)]
    assert [r['changed'] for r in results] == [True, True, False, False]
    assert not os.path.exists(os.path.join(env.root, 'volumes', 'test-plain')) or results[1]['changed']
    assert results[1]['volume']['labels'] == {'tier': '1'} and results[1]['volume']['options'] == {}
    assert results[1]['volume']['mounted'] is False
    assert results[2]['diff'] == {'before': {}, 'after': {}}
    with pytest.raises(ValidationError, match='exists with other options .*recreate: true'):
        api(env, name='test-plain', options={'type': 'tmpfs'})
    info = _volume.info({'root': env.root, 'labels': {'tier': None}})
    assert [v['name'] for v in info['volumes']] == ['test-plain'] and 'exists' not in info
    gone = dict(args, state='absent')
    results = [api(env, check_mode=True, **gone), api(env, **gone), api(env, **gone), api(env, check_mode=True, **gone)]
    assert [r['changed'] for r in results] == [True, True, False, False]
    assert volumes.get(env.root, 'test-plain') is None


def test_check_mode_creates_nothing_at_all(env):
    result = env.playbook([{'runcible.oci.volume': {'name': 'test-none', 'options': {'type': 'tmpfs'}},
                            'check_mode': True}])[0]
    assert result['changed'] is True and not os.path.exists(env.root), 'no root, no lock file, no mount'


def test_bad_input_fails_cleanly_and_leaves_nothing(env):
    tasks = [
        {'name': 'bad option', 'runcible.oci.volume': {'name': 'test-bad', 'options': {'type': 'tmpfs', 'o': 'exec=1'}},
         'ignore_errors': True},
        {'name': 'bad name', 'runcible.oci.volume': {'name': '../test-bad'}, 'ignore_errors': True},
        # The kernel refuses this mount (a uid above 32 bits, which the option check lets through): what was made
        # (the volume's directories) is removed again.
        {'name': 'mount fails', 'runcible.oci.volume': {'name': 'test-bad', 'options': {
            'type': 'tmpfs', 'o': 'uid=99999999999'}}, 'ignore_errors': True},
    ]
    results = env.playbook(tasks)
    assert [r['_status'] for r in results] == ['failed'] * 3
    assert 'not an allowed mount option' in results[0]['msg'] and 'invalid volume name' in results[1]['msg']
    assert 'cannot mount the tmpfs volume' in results[2]['msg'], results[2]['msg']
    assert all('Traceback' not in r['msg'] for r in results)
    assert os.listdir(os.path.join(env.root, 'volumes')) == []
    assert not any('test-bad' in point for point in env.mounts())


def use_volume(env, container, volume):
    """Add ``{type: volume, source: volume}`` to the record config of ``container`` (the future record format)."""
    store = env.engine.store
    with store.lock(container):
        record = store.load(container)
        mounts = list(record['config'].get('mounts') or [])
        mounts.append({'type': 'volume', 'source': volume, 'target': '/data', 'options': ['rw']})
        record['config']['mounts'] = mounts
        store.save(record)


def test_a_volume_in_use_is_not_removed_and_its_data_outlives_the_container(env):
    made = env.playbook([{'runcible.oci.volume': {'name': 'test-shared'}}])[0]
    data = made['volume']['mountpoint']
    env.run(name='test-vol-user', rootfs=env.rootfs, command=['sh', '-c', 'echo kept > /data/note; ' + LOOP],
            network='none', stop_timeout=1, mounts=['%s:/data' % data])
    out = _exec.run({'container': 'test-vol-user', 'command': ['cat', '/data/note'], 'root': env.root,
                     'run_root': env.run_root}, check_mode=False)
    assert out['stdout'].strip() == 'kept'
    use_volume(env, 'test-vol-user', 'test-shared')
    assert volumes.users(env.root, 'test-shared') == ['test-vol-user']
    tasks = [{'name': 'check', 'runcible.oci.volume': {'name': 'test-shared', 'state': 'absent'}, 'check_mode': True,
              'ignore_errors': True},
             {'name': 'apply', 'runcible.oci.volume': {'name': 'test-shared', 'state': 'absent'}, 'ignore_errors': True},
             {'name': 'recreate', 'runcible.oci.volume': {'name': 'test-shared', 'labels': {'a': 'b'},
                                                          'recreate': True}, 'ignore_errors': True},
             {'name': 'info', 'runcible.oci.volume_info': {'name': 'test-shared'}}]
    results = env.playbook(tasks)
    assert [r['_status'] for r in results] == ['failed', 'failed', 'failed', 'ok']
    for result in results[:2]:
        assert result['msg'] == ('volume test-shared cannot be removed: container test-vol-user uses it; '
                                 'remove it first'), result['msg']
    assert 'cannot be recreated: container test-vol-user uses it' in results[2]['msg']
    assert results[3]['exists'] is True and results[3]['volumes'][0]['users'] == ['test-vol-user']
    with pytest.raises(ValidationError, match='test-vol-user'):
        volumes.remove(env.root, 'test-shared')
    with open(os.path.join(data, 'note')) as handle:
        assert handle.read() == 'kept\n'
    # The container goes; the volume and its data stay; then the volume can go.
    assert env.run(name='test-vol-user', state='absent')['changed'] is True
    with open(os.path.join(data, 'note')) as handle:
        assert handle.read() == 'kept\n'
    assert api(env, name='test-shared', state='absent')['actions'] == ['removed']
    assert not os.path.exists(os.path.dirname(data))


def test_bind_volume_keeps_the_host_directory_on_removal(env):
    host_dir = os.path.join(env.base, 'host-dir')
    os.makedirs(host_dir)
    with open(os.path.join(host_dir, 'index.html'), 'w') as handle:
        handle.write('hello')
    args = {'name': 'test-site', 'options': {'type': 'none', 'device': host_dir, 'o': 'bind,ro'}}
    env.four_ways(args, module='runcible.oci.volume')
    data = volumes.mountpoint(env.root, 'test-site')
    assert os.listdir(data) == ['index.html'] and len(mounted_at(data)) == 1
    with pytest.raises(OSError):
        open(os.path.join(data, 'new'), 'w').close()  # read-only bind
    env.four_ways(dict(args, state='absent'), module='runcible.oci.volume')
    assert mounted_at(data) == [] and os.listdir(host_dir) == ['index.html']


def test_a_busy_mount_fails_the_removal_and_stays(env):
    api(env, name='test-busy', options={'type': 'tmpfs'})
    data = volumes.mountpoint(env.root, 'test-busy')
    handle = open(os.path.join(data, 'open'), 'w')
    try:
        with pytest.raises(RuncibleError, match='is busy: a process on the host uses it'):
            api(env, name='test-busy', state='absent')
        assert mounted_at(data) == ['tmpfs'] and volumes.get(env.root, 'test-busy') is not None
    finally:
        handle.close()
    assert api(env, name='test-busy', state='absent')['actions'] == ['removed']
    assert mounted_at(data) == []
