# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/volumes.py and the volume tasks: names, the local driver's options, records written atomically,
symbolic links planted in the volumes directory (the attacks performed), users, removal.

mount(2) and umount2(2) are stood in for by a recorder here: tests/integration/test_volumes.py mounts for real.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _volume
from ansible_collections.runcible.oci.plugins.module_utils._runtime import libc, volume_options, volumes
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.record import Record
from ansible_collections.runcible.oci.plugins.module_utils._runtime.store import Store

CID = 'c' * 64


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / 'root')


@pytest.fixture
def mounts(monkeypatch):
    """mount(2)/umount2(2) recorded, never made; volumes.is_mounted answers from the record of calls."""
    calls = []
    monkeypatch.setattr(libc, 'mount', lambda *args: calls.append(('mount',) + args))
    monkeypatch.setattr(libc, 'umount2', lambda *args: calls.append(('umount2',) + args))
    monkeypatch.setattr(volumes, '_mount_points', lambda: [])
    return calls


def tree(path):
    """Every path under ``path`` (relative), sorted."""
    found = []
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            found.append(os.path.relpath(os.path.join(directory, name), path))
    return sorted(found)


# -- names ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['a', 'test-data', 'A.b_c-1', '0', 'x' * 128, 'f' * 64])
def test_good_names(name):
    assert volumes.validate_volume_name(name) == name


@pytest.mark.parametrize('name', ['', '-a', '.a', '_a', 'a/b', '..', 'a b', 'x' * 129, 'é', 'a\n', None, 3,
                                  '../etc', 'a:b'])
def test_bad_names_say_what_is_allowed(name):
    with pytest.raises(ValidationError, match=r'invalid volume name .*1 to 128 characters from \[a-zA-Z0-9_.-\], '
                                              r'starting with a letter or digit'):
        volumes.validate_volume_name(name)


def test_every_entry_point_checks_the_name(root, mounts):
    for call in (lambda: volumes.get(root, '../x'), lambda: volumes.create(root, '../x'),
                 lambda: volumes.remove(root, '../x'), lambda: volumes.mountpoint(root, '../x'),
                 lambda: volumes.ensure_mounted(root, '../x')):
        with pytest.raises(ValidationError, match='invalid volume name'):
            call()
    assert not os.path.exists(root)


# -- options -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('given, normalised', [
    (None, {}),
    ({}, {}),
    ({'type': '', 'device': None}, {}),
    ({'type': 'tmpfs'}, {'type': 'tmpfs'}),
    ({'type': 'tmpfs', 'device': 'tmpfs', 'o': ' size=64m , mode=1777,,nosuid'},
     {'type': 'tmpfs', 'device': 'tmpfs', 'o': 'size=64m,mode=1777,nosuid'}),
    ({'type': 'tmpfs', 'o': 'size=50%,nr_inodes=10k,uid=1000,gid=1000,ro,noexec,nodev'},
     {'type': 'tmpfs', 'o': 'size=50%,nr_inodes=10k,uid=1000,gid=1000,ro,noexec,nodev'}),
    ({'type': 'none', 'device': '/tmp', 'o': 'bind,ro'}, {'type': 'none', 'device': '/tmp', 'o': 'bind,ro'}),
    ({'type': 'none', 'device': '/tmp', 'o': 'rbind'}, {'type': 'none', 'device': '/tmp', 'o': 'rbind'}),
])
def test_good_options_are_normalised(given, normalised):
    assert volume_options.normalise_options(given) == normalised


@pytest.mark.parametrize('given, message', [
    ('size=1m', 'expected a dictionary of type, device and o'),
    ({'type': 'tmpfs', 'size': '1m'}, 'unknown size; the local driver takes type, device and o'),
    ({'o': 'size=1m'}, 'type is required'),
    ({'type': 'tmpfs', 'o': 'size=1m,exec=1'}, "'exec=1' is not an allowed mount option; allowed: .*bind.*nosuid"),
    ({'type': 'tmpfs', 'o': 'suidx'}, "'suidx' is not an allowed mount option"),
    ({'type': 'tmpfs', 'o': 'context=system_u:object_r:x'}, 'is not an allowed mount option'),
    ({'type': 'tmpfs', 'o': 'size=lots'}, 'has a bad value'),
    ({'type': 'tmpfs', 'o': 'mode=999'}, 'octal permissions'),
    ({'type': 'tmpfs', 'o': 'uid=root'}, 'numeric user id'),
    ({'type': 'tmpfs', 'o': 'ro,rw'}, 'ro and rw contradict each other'),
    ({'type': 'tmpfs', 'o': 'size=1m,size=2m'}, 'size is given twice'),
    ({'type': 'tmpfs', 'o': 'bind'}, 'bind needs type none'),
    ({'type': 'tmpfs', 'device': '/dev/sda'}, 'a tmpfs volume has no device'),
    ({'type': 'tmpfs', 'o': 7}, 'options.o: expected a string'),
    ({'type': 'proc'}, "'proc' is not a file system a volume can have"),
    ({'type': 'cgroup2'}, 'is not a file system a volume can have'),
    ({'type': 'ext4;rm'}, 'is not a file system a volume can have'),
    ({'type': 'none', 'device': '/tmp'}, 'type none is a bind mount: give o=bind'),
    ({'type': 'none', 'o': 'bind'}, 'options.device is required for a none volume'),
    ({'type': 'none', 'device': 'tmp', 'o': 'bind'}, 'is not an absolute path'),
    ({'type': 'none', 'device': '/no/such/dir', 'o': 'bind'}, '/no/such/dir does not exist'),
    ({'type': 'none', 'device': '/etc/hostname', 'o': 'bind'}, 'is not a directory'),
    ({'type': 'ext4'}, 'options.device is required for a ext4 volume'),
    ({'type': 'ext4', 'device': '/etc/hostname'}, 'is not a block device .*losetup'),
    ({'type': 'ext4', 'device': '/dev/null', 'o': 'size=1m'}, 'size is an option of tmpfs, not of ext4'),
    ({'type': 'nfs', 'device': 'server:/export'}, 'network file systems are not supported'),
])
def test_bad_options_are_refused_with_what_is_allowed(given, message):
    with pytest.raises(ValidationError, match=message):
        volume_options.normalise_options(given)


def test_options_compare_by_their_words_in_any_order():
    first = volume_options.normalise_options({'type': 'tmpfs', 'o': 'size=64m,mode=1777'})
    assert volume_options.same_options(first, volume_options.normalise_options({'type': 'tmpfs', 'o': 'mode=1777, size=64m'}))
    assert not volume_options.same_options(first, volume_options.normalise_options({'type': 'tmpfs', 'o': 'size=65m,mode=1777'}))
    assert not volume_options.same_options(first, {})


def test_labels_become_strings_and_filters_allow_any_value():
    assert volumes.normalise_labels({'a': 1, 'b': True, 'c': None}) == {'a': '1', 'b': 'true', 'c': ''}
    assert volumes.label_filter({'a': 1, 'b': None}) == {'a': '1', 'b': None}
    with pytest.raises(ValidationError, match='labels: expected a dictionary'):
        volumes.normalise_labels(['a'])


# -- records -------------------------------------------------------------------------------------------------------

def test_a_plain_volume_is_a_directory_with_its_record(root, mounts):
    record = volumes.create(root, 'test-plain', {'app': 'db'}, None)
    base = os.path.join(root, 'volumes', 'test-plain')
    assert record == {'version': 1, 'name': 'test-plain', 'driver': 'local', 'labels': {'app': 'db'}, 'options': {},
                      'created': record['created'], 'mountpoint': os.path.join(base, '_data')}
    assert volumes.mountpoint(root, 'test-plain') == os.path.join(base, '_data')
    assert tree(os.path.join(root, 'volumes')) == ['test-plain', 'test-plain/_data', 'test-plain/volume.json']
    with open(os.path.join(base, 'volume.json')) as handle:
        assert json.load(handle) == record
    assert stat.S_IMODE(os.stat(os.path.join(base, 'volume.json')).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o700
    assert volumes.get(root, 'test-plain') == record and volumes.get(root, 'test-other') is None
    assert mounts == [], 'a plain volume mounts nothing'
    assert volumes.ensure_mounted(root, 'test-plain') == os.path.join(base, '_data') and mounts == []
    with pytest.raises(ValidationError, match='volume test-plain exists already'):
        volumes.create(root, 'test-plain')


def test_the_record_is_replaced_atomically(root, mounts, monkeypatch):
    volumes.create(root, 'test-atomic', {'v': '1'})
    base = os.path.join(root, 'volumes', 'test-atomic')
    with open(os.path.join(base, 'volume.json'), 'rb') as handle:
        before = handle.read()
    seen = []
    real_fsync = os.fsync

    def failing_fsync(fd):
        seen.append(sorted(os.listdir(base)))
        raise OSError(5, 'Input/output error')

    monkeypatch.setattr(os, 'fsync', failing_fsync)
    with volumes._dirs(root, 'test-atomic', data=False) as (_base, volume_fd, _data):
        with pytest.raises(OSError, match='Input/output error'):
            volumes._write_record(volume_fd, {'name': 'test-atomic', 'labels': {'v': '2'}})
    monkeypatch.setattr(os, 'fsync', real_fsync)
    # The temp file existed beside the record while it was written, made exclusively, 0600; it is gone.
    assert seen and any(name.startswith('.volume.json.tmp-') for name in seen[0])
    with open(os.path.join(base, 'volume.json'), 'rb') as handle:
        assert handle.read() == before
    assert sorted(os.listdir(base)) == ['_data', 'volume.json']


def test_a_leftover_of_a_killed_create_is_cleared(root, mounts):
    os.makedirs(os.path.join(root, 'volumes', 'test-left', '_data'))
    with open(os.path.join(root, 'volumes', 'test-left', '_data', 'junk'), 'w') as handle:
        handle.write('x')
    assert volumes.get(root, 'test-left') is None
    volumes.create(root, 'test-left')
    assert os.listdir(volumes.mountpoint(root, 'test-left')) == []


def test_list_filters_by_labels_and_skips_what_is_not_a_volume(root, mounts):
    volumes.create(root, 'test-a', {'app': 'db', 'tier': '1'})
    volumes.create(root, 'test-b', {'app': 'web'})
    volumes.create(root, 'test-c')
    os.makedirs(os.path.join(root, 'volumes', '.removing-x-1'))
    os.makedirs(os.path.join(root, 'volumes', 'test-norecord'))
    os.symlink('/etc', os.path.join(root, 'volumes', 'test-link'))

    def names(labels=None):
        return [record['name'] for record in volumes.list_volumes(root, labels)]

    assert names() == ['test-a', 'test-b', 'test-c']
    assert names({'app': None}) == ['test-a', 'test-b']
    assert names({'app': 'db'}) == ['test-a']
    assert names({'app': 'db', 'tier': 2}) == []
    assert volumes.list_volumes(os.path.join(root, 'nothing')) == []


# -- symbolic links planted in the volumes directory: the attacks ---------------------------------------------------

def test_a_link_at_the_volume_directory_is_never_followed(root, tmp_path, mounts):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'precious').write_text('keep')
    os.makedirs(os.path.join(root, 'volumes'))
    os.symlink(str(outside), os.path.join(root, 'volumes', 'test-evil'))
    for call in (lambda: volumes.create(root, 'test-evil', options={'type': 'tmpfs'}),
                 lambda: volumes.get(root, 'test-evil'), lambda: volumes.remove(root, 'test-evil'),
                 lambda: volumes.ensure_mounted(root, 'test-evil')):
        with pytest.raises(RuncibleError, match='is not a directory .*symbolic link.*refusing'):
            call()
    assert tree(str(outside)) == ['precious'] and (outside / 'precious').read_text() == 'keep'
    assert mounts == [], 'nothing was mounted anywhere'
    assert os.path.islink(os.path.join(root, 'volumes', 'test-evil')), 'the link is left for the admin to see'


def test_a_link_at_data_is_never_followed(root, tmp_path, mounts):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'precious').write_text('keep')
    volumes.create(root, 'test-evil', options={'type': 'tmpfs', 'o': 'size=1m'})
    assert [call[0] for call in mounts] == ['mount']
    assert mounts[0][1:4] == ('tmpfs', mounts[0][2], 'tmpfs') and mounts[0][2].startswith('/proc/self/fd/')
    del mounts[:]
    data = volumes.mountpoint(root, 'test-evil')
    os.rmdir(data)
    os.symlink(str(outside), data)  # a tmpfs volume after a reboot: its _data swapped for a link
    with pytest.raises(RuncibleError, match='_data is not a directory .*symbolic link'):
        volumes.ensure_mounted(root, 'test-evil')
    assert mounts == [], 'nothing was mounted on the link or its target'
    assert volumes.remove(root, 'test-evil') is True
    assert tree(str(outside)) == ['precious'] and (outside / 'precious').read_text() == 'keep'
    assert os.listdir(os.path.join(root, 'volumes')) == []


def test_a_link_at_the_volumes_directory_is_never_followed(root, tmp_path, mounts):
    outside = tmp_path / 'outside'
    outside.mkdir()
    os.makedirs(root)
    os.symlink(str(outside), os.path.join(root, 'volumes'))
    with pytest.raises(RuncibleError, match='volumes is not a directory'):
        volumes.create(root, 'test-a')
    assert tree(str(outside)) == []


def test_a_link_in_place_of_the_record_is_not_read(root, mounts, tmp_path):
    volumes.create(root, 'test-rec')
    secret = tmp_path / 'secret.json'
    secret.write_text(json.dumps({'name': 'stolen'}))
    record = os.path.join(root, 'volumes', 'test-rec', 'volume.json')
    os.unlink(record)
    os.symlink(str(secret), record)
    with pytest.raises(RuncibleError, match='cannot read'):
        volumes.get(root, 'test-rec')


# -- users and removal ---------------------------------------------------------------------------------------------

def save_container(root, name, mounts):
    store = Store(root, '/run/runcible-unit-not-used')
    store.save(Record(name=name, id=CID, created_at='2026-01-01T00:00:00.000000Z',
                      config={'mounts': mounts} if mounts is not None else {}))


def test_users_are_the_containers_whose_config_mounts_the_volume(root, mounts):
    volumes.create(root, 'test-used')
    save_container(root, 'web', [{'type': 'volume', 'source': 'test-used', 'target': '/data'}])
    save_container(root, 'db', [{'type': 'bind', 'source': '/srv', 'target': '/srv'},
                                {'type': 'volume', 'source': 'test-used', 'target': '/x', 'options': ['ro']}])
    save_container(root, 'other', [{'type': 'volume', 'source': 'test-other', 'target': '/data'}])
    save_container(root, 'old', None)  # a record without mounts
    save_container(root, 'odd', ['/srv:/srv'])  # entries that are not dicts
    os.makedirs(os.path.join(root, 'containers', 'broken'))
    with open(os.path.join(root, 'containers', 'broken', 'record.json'), 'w') as handle:
        handle.write('{not json')
    assert volumes.users(root, 'test-used') == ['db', 'web']
    assert volumes.users(root, 'test-none') == []
    with pytest.raises(ValidationError, match='volume test-used is used by containers db, web: remove them first'):
        volumes.remove(root, 'test-used')
    assert volumes.get(root, 'test-used') is not None
    with pytest.raises(ValidationError, match='cannot be removed: containers db, web use it; remove them first'):
        _volume.run({'name': 'test-used', 'state': 'absent', 'root': root}, check_mode=True)
    assert _volume.info({'name': 'test-used', 'root': root})['volumes'][0]['users'] == ['db', 'web']


def test_removal_unmounts_first_and_a_busy_mount_is_not_detached(root, monkeypatch, mounts):
    volumes.create(root, 'test-busy', options={'type': 'tmpfs'})
    data = os.path.realpath(volumes.mountpoint(root, 'test-busy'))
    monkeypatch.setattr(volumes, '_mount_points', lambda: [data])

    def busy(target, flags):
        mounts.append(('umount2', target, flags))
        raise OSError(16, 'Device or resource busy')

    monkeypatch.setattr(libc, 'umount2', busy)
    with pytest.raises(RuncibleError, match='is busy: a process on the host uses it .*fuser -vm'):
        volumes.remove(root, 'test-busy')
    assert [call[2] for call in mounts if call[0] == 'umount2'] == [volumes.UMOUNT_NOFOLLOW], 'never MNT_DETACH'
    assert volumes.get(root, 'test-busy') is not None and os.path.isdir(data)


def test_nothing_is_deleted_while_a_mount_stays_below(root, monkeypatch, mounts):
    volumes.create(root, 'test-sub')
    data = os.path.realpath(volumes.mountpoint(root, 'test-sub'))
    monkeypatch.setattr(volumes, '_mount_points', lambda: [data + '/inner'])
    with pytest.raises(RuncibleError, match='still has mounts below it .*nothing was deleted'):
        volumes.remove(root, 'test-sub')
    assert volumes.get(root, 'test-sub') is not None


def test_a_failed_mount_leaves_nothing_behind(root, monkeypatch):
    def refuse(*args):
        raise OSError(22, 'Invalid argument')

    monkeypatch.setattr(libc, 'mount', refuse)
    monkeypatch.setattr(volumes, '_mount_points', lambda: [])
    with pytest.raises(RuncibleError, match=r'cannot mount the tmpfs volume at .*test-bad/_data .*Invalid argument'):
        volumes.create(root, 'test-bad', options={'type': 'tmpfs', 'o': 'size=1m'})
    assert os.listdir(os.path.join(root, 'volumes')) == []


def test_the_volumes_lock_is_reentrant_in_a_thread(root, mounts):
    with volumes.locked(root):
        with volumes.locked(root):
            volumes.create(root, 'test-lock')
        assert volumes.remove(root, 'test-lock') is True
    assert volumes._held.depth == {}
    assert os.path.exists(os.path.join(root, 'locks', '.volumes.lock'))


# -- the task ------------------------------------------------------------------------------------------------------

def test_task_check_mode_writes_nothing_and_differences_fail_without_recreate(root, mounts):
    checked = _volume.run({'name': 'test-t', 'labels': {'a': 1}, 'root': root}, check_mode=True)
    assert checked['changed'] is True and checked['actions'] == ['created'] and not os.path.exists(root)
    assert checked['diff'] == {'before': {'state': 'absent'},
                               'after': {'state': 'present', 'name': 'test-t', 'driver': 'local',
                                         'labels': {'a': '1'}, 'options': {}}}
    made = _volume.run({'name': 'test-t', 'labels': {'a': 1}, 'root': root})
    assert made['changed'] is True and made['volume']['labels'] == {'a': '1'} and made['volume']['users'] == []
    assert _volume.run({'name': 'test-t', 'labels': {'a': '1'}, 'root': root})['changed'] is False
    assert _volume.run({'name': 'test-t', 'root': root})['changed'] is False, 'labels not given: not compared'
    with pytest.raises(ValidationError, match='exists with other labels .*recreate: true'):
        _volume.run({'name': 'test-t', 'labels': {'a': 2}, 'root': root})
    with pytest.raises(ValidationError, match='exists with other options'):
        _volume.run({'name': 'test-t', 'options': {'type': 'tmpfs'}, 'root': root}, check_mode=True)
    with open(os.path.join(volumes.mountpoint(root, 'test-t'), 'file'), 'w') as handle:
        handle.write('data')
    redone = _volume.run({'name': 'test-t', 'labels': {'a': 2}, 'recreate': True, 'root': root})
    assert redone['actions'] == ['recreated']
    assert redone['diff'] == {'before': {'labels': {'a': '1'}}, 'after': {'labels': {'a': '2'}}}
    assert os.listdir(volumes.mountpoint(root, 'test-t')) == [], 'recreate deletes the data'
    with pytest.raises(ValidationError, match='driver'):
        _volume.run({'name': 'test-t', 'driver': 'nfs', 'root': root})
