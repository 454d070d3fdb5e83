# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""container_copy's parts without a container: its input, the writing helpers of inroot, and the task's
``_into``/``_out`` against a root directory with hostile links (both lookups: openat2 and the walk).

The real containers (running, stopped, the races) are in tests/integration/test_copy.py.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _copy
from ansible_collections.runcible.oci.plugins.module_utils._runtime import inroot
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._task import with_defaults

HOST_BYTES = b'host file\n'


@pytest.mark.parametrize('value, expected', [
    ('0644', 0o644), ('644', 0o644), ('2755', 0o2755), (' 0600 ', 0o600), (0o640, 0o640), (420, 0o644), (None, None),
])
def test_mode(value, expected):
    assert _copy.parse_mode(value) == expected


@pytest.mark.parametrize('value', ['u+rw', '0999', '', '17777', True, -1, 0o10000, 'rw-r--r--'])
def test_mode_refused(value):
    with pytest.raises(ValidationError, match='mode:'):
        _copy.parse_mode(value)


@pytest.mark.parametrize('value, expected', [
    ('/etc/app.conf', '/etc/app.conf'), ('//etc/./app.conf', '/etc/app.conf'), ('/devices', '/devices'),
    ('/procfile', '/procfile'), ('/x', '/x'),
])
def test_container_path(value, expected):
    assert _copy.container_path(value, 'dest') == expected


@pytest.mark.parametrize('value, message', [
    ('etc/app.conf', 'not an absolute path'), ('/etc/../proc/x', 'holds ".."'), ('/etc/', 'names a directory'),
    ('/', 'names a directory'), ('/etc/.', 'names a directory'), ('/proc/sys/kernel/x', 'under /proc'),
    ('/sys/x', 'under /sys'), ('/dev/shm/x', 'under /dev'), ('/dev', 'under /dev'), ('/a\0b', 'NUL'),
])
def test_container_path_refused(value, message):
    with pytest.raises(ValidationError, match=message):
        _copy.container_path(value, 'dest')


def test_host_ids_by_name_and_number():
    assert _copy.host_ids('root', 'root') == (0, 0)
    assert _copy.host_ids('1234', None) == (1234, None)
    assert _copy.host_ids(None, '99') == (None, 99)
    with pytest.raises(ValidationError, match="owner: 'no-such-user-here'"):
        _copy.host_ids('no-such-user-here', None)
    with pytest.raises(ValidationError, match="group: 'no-such-group-here'"):
        _copy.host_ids(None, 'no-such-group-here')


@pytest.fixture
def world(tmp_path):
    """A container root ``tmp/root`` with a user database and links planted to the host's ``tmp/host``.

    -> (root, host_dir, host_file). Nothing may ever be written under host_dir.
    """
    root = tmp_path / 'root'
    host_dir = tmp_path / 'host'
    host_dir.mkdir()
    host_file = host_dir / 'file'
    host_file.write_bytes(HOST_BYTES)
    os.chmod(str(host_file), 0o644)
    for directory in ('etc', 'srv', 'proc', 'tmp'):
        (root / directory).mkdir(parents=True)
    (root / 'etc' / 'passwd').write_text('root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n')
    (root / 'etc' / 'group').write_text('root:x:0:\nweb:x:2000:\n')
    links = {
        'etc/abs-dir': '/../../../..' + str(host_dir),
        'etc/rel-dir': '../../../../../../..' + str(host_dir),
        'etc/abs-file': '/../../../..' + str(host_file),
        'etc/rel-file': '../../../../../../..' + str(host_file),
        'etc/inside': '/srv',
        'etc/proc-link': '/proc',
    }
    for name, target in links.items():
        os.symlink(target, str(root / name))
    os.mkfifo(str(root / 'tmp' / 'fifo'))
    return str(root), str(host_dir), str(host_file)


def untouched(host_dir, host_file):
    with open(host_file, 'rb') as handle:
        assert handle.read() == HOST_BYTES
    assert os.listdir(host_dir) == ['file']
    assert stat.S_IMODE(os.stat(host_file).st_mode) == 0o644


def task(tmp_path, check_mode=False, **params):
    params.setdefault('container', 'test-copy')
    params.setdefault('root', str(tmp_path / 'store'))
    params.setdefault('run_root', str(tmp_path / 'run'))
    return _copy.CopyTask(with_defaults(_copy.argument_spec(), params), check_mode=check_mode)


def into(tmp_path, root, check_mode=False, **params):
    root_fd = inroot.open_root(root)
    try:
        return task(tmp_path, check_mode, **params)._into(root_fd)
    finally:
        os.close(root_fd)


def test_container_ids_read_inside_the_root(world):
    root = world[0]
    assert _copy.container_ids('app', 'web', root) == (1000, 2000)
    assert _copy.container_ids('7', '8', root) == (7, 8)
    with pytest.raises(ValidationError, match="^owner: 'nobody' is not in"):
        _copy.container_ids('nobody', None, root)
    with pytest.raises(ValidationError, match="^group: group 'staff' is not in"):
        _copy.container_ids('app', 'staff', root)


# -- the task's into, on a root directory ---------------------------------------------------------------

def test_into_four_ways_and_attributes(lookup_mode, tmp_path, world):
    root, host_dir, host_file = world
    args = dict(content='a=1\n', dest='/srv/app.conf', owner='app', group='web', mode='0640')
    results = [into(tmp_path, root, True, **args), into(tmp_path, root, **args), into(tmp_path, root, **args),
               into(tmp_path, root, True, **args)]
    assert [r['changed'] for r in results] == [True, True, False, False]
    path = os.path.join(root, 'srv', 'app.conf')
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1000, 2000, 0o640)
    assert results[1]['checksum'] == hashlib.sha256(b'a=1\n').hexdigest()
    assert results[0]['diff'][0]['before'] == {'state': 'absent'} and len(results[0]['diff']) == 1
    assert not [name for name in os.listdir(os.path.join(root, 'srv')) if name.startswith('.runcible-')]
    # Mode alone: changed in place (same inode), diff of the attributes only.
    changed = into(tmp_path, root, **{**args, 'mode': '0600'})
    assert changed['changed'] and os.stat(path).st_ino == info.st_ino
    assert changed['diff'][0]['before']['mode'] == '0640' and changed['diff'][0]['after']['mode'] == '0600'
    untouched(host_dir, host_file)


def test_into_from_src_shows_the_text_diff_and_keeps_attributes(lookup_mode, tmp_path, world):
    root = world[0]
    src = tmp_path / 'src.conf'
    src.write_text('one\n')
    target = os.path.join(root, 'srv', 'x.conf')
    with open(target, 'w') as handle:
        handle.write('zero\n')
    os.chown(target, 5, 6)
    os.chmod(target, 0o604)
    result = into(tmp_path, root, src=str(src), dest='/srv/x.conf')
    assert result['diff'][1]['before'] == 'zero\n' and result['diff'][1]['after'] == 'one\n'
    info = os.stat(target)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (5, 6, 0o604)
    src.write_bytes(b'\0binary')
    assert len(into(tmp_path, root, src=str(src), dest='/srv/x.conf')['diff']) == 1  # no text of binary files


@pytest.mark.parametrize('dest', ['/etc/abs-dir/file', '/etc/rel-dir/file', '/etc/abs-dir/new'])
def test_links_out_of_the_root_as_parent_lead_inside(lookup_mode, tmp_path, world, dest):
    root, host_dir, host_file = world
    with pytest.raises(RuncibleError, match='does not exist in container'):
        into(tmp_path, root, content='pwned', dest=dest)
    with pytest.raises(RuncibleError, match='exists and is not a directory'):
        into(tmp_path, root, content='pwned', dest=dest, parents=True)
    untouched(host_dir, host_file)
    os.makedirs(root + host_dir)
    assert into(tmp_path, root, content='pwned', dest=dest)['changed'] is True
    with open(root + host_dir + '/' + os.path.basename(dest)) as handle:
        assert handle.read() == 'pwned'
    untouched(host_dir, host_file)


@pytest.mark.parametrize('dest', ['/etc/abs-file', '/etc/rel-file'])
def test_a_link_as_dest_is_replaced_or_followed_inside(lookup_mode, tmp_path, world, dest):
    root, host_dir, host_file = world
    with pytest.raises(RuncibleError, match='does not exist in container'):
        into(tmp_path, root, content='pwned', dest=dest, follow=True)
    os.makedirs(root + host_dir)
    followed = into(tmp_path, root, content='inside', dest=dest, follow=True)
    assert followed['dest'] == host_file
    assert os.path.islink(root + dest)
    with open(root + host_file) as handle:
        assert handle.read() == 'inside'
    replaced = into(tmp_path, root, content='pwned', dest=dest)
    assert replaced['diff'][0]['before'] == {'state': 'link'}
    assert not os.path.islink(root + dest)
    untouched(host_dir, host_file)


def test_system_trees_through_links_and_kinds_refused(lookup_mode, tmp_path, world):
    root, host_dir, host_file = world
    with pytest.raises(RuncibleError, match='leads under /proc'):
        into(tmp_path, root, content='x', dest='/etc/proc-link/x')
    with pytest.raises(RuncibleError, match='a FIFO, not a regular file'):
        into(tmp_path, root, content='x', dest='/tmp/fifo')
    with pytest.raises(RuncibleError, match='a directory, not a regular file'):
        into(tmp_path, root, content='x', dest='/srv')
    # follow: true makes a link to a directory the directory, refused as well; follow: false replaces the link.
    with pytest.raises(RuncibleError, match='a directory, not a regular file'):
        into(tmp_path, root, content='x', dest='/etc/inside', follow=True)
    assert into(tmp_path, root, content='x', dest='/etc/inside')['diff'][0]['before'] == {'state': 'link'}
    assert os.path.isfile(root + '/etc/inside') and os.path.isdir(root + '/srv')
    untouched(host_dir, host_file)


def test_parents_made_inside_with_their_mode(lookup_mode, tmp_path, world):
    root = world[0]
    old = os.umask(0o077)
    try:
        check = into(tmp_path, root, True, content='x', dest='/etc/inside/a/b/f', parents=True)
        assert check['created_dirs'] == ['/etc/inside/a', '/etc/inside/a/b'] and not os.path.exists(root + '/srv/a')
        made = into(tmp_path, root, content='x', dest='/etc/inside/a/b/f', parents=True)
    finally:
        os.umask(old)
    assert made['created_dirs'] == ['/etc/inside/a', '/etc/inside/a/b']
    assert stat.S_IMODE(os.stat(root + '/srv/a/b').st_mode) == 0o755
    assert os.path.isfile(root + '/srv/a/b/f')


# -- out, on a root directory -----------------------------------------------------------------------------

def test_out_least_mode_idempotent_and_links_inside(lookup_mode, tmp_path, world):
    root, host_dir, host_file = world
    with open(root + '/srv/data', 'wb') as handle:
        handle.write(b'data\n')
    dest = str(tmp_path / 'fetched' / 'data')
    root_fd = inroot.open_root(root)
    try:
        with pytest.raises(RuncibleError, match='directory .* does not exist on the managed node'):
            task(tmp_path, direction='out', src='/srv/data', dest=dest)._out(root_fd)
        first = task(tmp_path, direction='out', src='/etc/inside/data', dest=dest, parents=True)._out(root_fd)
        again = task(tmp_path, direction='out', src='/etc/inside/data', dest=dest, parents=True)._out(root_fd)
        with pytest.raises(RuncibleError, match='src: /etc/abs-file does not exist in container'):
            task(tmp_path, direction='out', src='/etc/abs-file', dest=dest)._out(root_fd)
        with pytest.raises(RuncibleError, match='cannot be read.*not a regular file'):
            task(tmp_path, direction='out', src='/tmp/fifo', dest=dest)._out(root_fd)
    finally:
        os.close(root_fd)
    assert (first['changed'], again['changed']) == (True, False)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(dest)).st_mode) == 0o700
    untouched(host_dir, host_file)


def test_out_content_is_refused(tmp_path):
    with pytest.raises(ValidationError, match='content: only with direction=into'):
        task(tmp_path, direction='out', content='x', dest='/tmp/x')
    with pytest.raises(ValidationError, match='mutually exclusive'):
        task(tmp_path, src='/a', content='x', dest='/x')
    with pytest.raises(ValidationError, match='one of src or content'):
        task(tmp_path, dest='/x')


# -- inroot's writing helpers ------------------------------------------------------------------------------

def test_replace_file_abandoned_leaves_the_old_file_and_no_temporary(tmp_path):
    (tmp_path / 'f').write_bytes(b'old')
    dir_fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)

    def failing():
        yield b'new'
        raise RuncibleError('stop')

    try:
        with pytest.raises(RuncibleError):
            inroot.replace_file(dir_fd, 'f', failing(), 0, 0, 0o644)
        inroot.replace_file(dir_fd, 'g', [b'x' * 5, b'y'], 12, 34, 0o4750)
    finally:
        os.close(dir_fd)
    assert (tmp_path / 'f').read_bytes() == b'old'
    info = os.stat(str(tmp_path / 'g'))
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (12, 34, 0o4750)  # set-id kept: mode after chown
    assert sorted(os.listdir(str(tmp_path))) == ['f', 'g']


def test_at_helpers_never_follow_a_link_nor_open_a_fifo(tmp_path):
    target = tmp_path / 'target'
    target.write_bytes(b't')
    os.chmod(str(target), 0o644)
    os.symlink(str(target), str(tmp_path / 'link'))
    os.mkfifo(str(tmp_path / 'fifo'))
    dir_fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name, code in (('link', errno.ELOOP), ('fifo', errno.EINVAL)):
            with pytest.raises(OSError) as caught:
                inroot.open_regular_at(dir_fd, name)
            assert caught.value.errno == code
        with pytest.raises(OSError):
            inroot.set_attributes_at(dir_fd, 'link', 1, 1, 0o777)
        assert stat.S_ISLNK(inroot.entry_at(dir_fd, 'link').st_mode) and inroot.entry_at(dir_fd, 'none') is None
    finally:
        os.close(dir_fd)
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == 0o644 and os.stat(str(target)).st_uid == 0


def test_make_dirs_refuses_dot_dot_and_relative_paths(tmp_path):
    for path in ('/a/../b', 'a/b'):
        with pytest.raises(OSError):
            inroot.make_dirs(str(tmp_path), path)
