# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""container_copy on real containers: into a running and a stopped one, four ways; out of one; attacks.

The attacks are performed for real: a process of the container plants symlinks that lead out of its
root (absolute, with ``..``, relative), swaps a directory for such a link while copies run, and every
test asserts that the host's file or directory it aims at is untouched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _copy, _exec
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
NAME = 'test-copy'


def container(env, state='started', name=NAME):
    result = env.run(name=name, rootfs=env.rootfs, command=['sh', '-c', LOOP], network='none', stop_timeout=1,
                     state=state)
    assert result['container']['status'] == {'started': 'running'}.get(state, state), result
    return result['container']


def sh(env, script, name=NAME):
    result = _exec.run({'container': name, 'argv': ['sh', '-c', script], 'root': env.root, 'run_root': env.run_root})
    assert result['rc'] == 0, result
    return result['stdout']


def copy(env, check_mode=False, **params):
    params.setdefault('container', NAME)
    params.setdefault('root', env.root)
    params.setdefault('run_root', env.run_root)
    return _copy.run(params, check_mode=check_mode)


def upper(env, path, name=NAME):
    """The file as the container's overlay upper dir holds it (what a stopped container's write left)."""
    record = env.engine.store.load(name)
    return os.path.join(env.engine.store.paths(name, record['id']).upper, path.lstrip('/'))


def host_bait(env):
    """A host directory with a file a hostile container would like to overwrite: -> (dir, file, its bytes)."""
    bait_dir = os.path.join(env.base, 'host-bait')
    os.makedirs(bait_dir, exist_ok=True)
    bait = os.path.join(bait_dir, 'secret')
    with open(bait, 'wb') as handle:
        handle.write(b'host secret\n')
    return bait_dir, bait, b'host secret\n'


def assert_untouched(bait_dir, bait, original):
    with open(bait, 'rb') as handle:
        assert handle.read() == original
    assert sorted(os.listdir(bait_dir)) == ['secret'], os.listdir(bait_dir)
    assert stat.S_IMODE(os.stat(bait).st_mode) == 0o644 and os.stat(bait).st_uid == 0


# -- into, four ways -----------------------------------------------------------------------------------

def test_content_into_a_running_container_four_ways_owner_by_name_and_secret_kept_out(env):
    container(env)
    args = {'container': NAME, 'content': 'token=s3cr3t-value\n', 'dest': '/etc/app.token', 'owner': 'app',
            'group': 'nogroup', 'mode': '0640'}
    results = env.four_ways(args, module='runcible.oci.container_copy')
    digest = hashlib.sha256(b'token=s3cr3t-value\n').hexdigest()
    for result in results:
        assert (result['dest'], result['checksum'], result['size'], result['uid'], result['gid'], result['mode']) == (
            '/etc/app.token', digest, 19, 1000, 65534, '0640'), result
        assert 's3cr3t-value' not in repr({k: v for k, v in result.items() if k != '_output'})
        assert 's3cr3t-value' not in result['_output']
    check_diff = results[0]['diff']
    assert check_diff[0]['before'] == {'state': 'absent'}
    assert check_diff[0]['after']['state'] == 'file' and len(check_diff) == 1  # no text of a content
    assert sh(env, 'stat -c "%u %g %a %s" /etc/app.token; cat /etc/app.token') == '1000 65534 640 19\ntoken=s3cr3t-value'
    # Only the mode changes: changed, the same bytes (written in place, not again).
    inode = sh(env, 'stat -c %i /etc/app.token')
    changed = copy(env, **{**args, 'mode': '0600'})
    assert changed['changed'] is True and changed['mode'] == '0600'
    assert sh(env, 'stat -c "%i %a" /etc/app.token') == inode + ' 600'
    assert copy(env, **{**args, 'mode': 0o600})['changed'] is False  # a number is the mode it means
    # Another owner, by number; then other content: a new file, owner and mode kept when not given.
    assert copy(env, **{**args, 'mode': '0600', 'owner': '0'})['uid'] == 0
    again = copy(env, container=NAME, content='other\n', dest='/etc/app.token')
    assert (again['changed'], again['uid'], again['gid'], again['mode']) == (True, 0, 65534, '0600')
    assert sh(env, 'cat /etc/app.token; ls -a /etc | grep -c runcible || true') == 'other\n0'


def test_src_into_a_stopped_container_four_ways_with_parents_and_a_text_diff(env):
    container(env, state='stopped')
    src = os.path.join(env.base, 'app.conf')
    with open(src, 'w') as handle:
        handle.write('listen 8080\n')
    args = {'container': NAME, 'src': src, 'dest': '/srv/conf/app.conf', 'parents': True}
    results = env.four_ways(args, module='runcible.oci.container_copy')
    assert results[0]['created_dirs'] == results[1]['created_dirs'] == ['/srv', '/srv/conf']
    assert 'created_dirs' not in results[2] and 'created_dirs' not in results[3]
    assert [r['container_status'] for r in results] == ['stopped'] * 4
    assert results[1]['diff'][1] == {'before_header': '/srv/conf/app.conf in container %s' % NAME,
                                     'after_header': '/srv/conf/app.conf in container %s' % NAME,
                                     'before': '', 'after': 'listen 8080\n'}
    assert results[1]['mode'] == '0644' and results[1]['uid'] == 0
    assert not env.mounts(), 'the overlay mounted for the task is still mounted'
    with open(upper(env, '/srv/conf/app.conf')) as handle:
        assert handle.read() == 'listen 8080\n'
    assert stat.S_IMODE(os.stat(upper(env, '/srv/conf')).st_mode) == 0o755
    # The container sees it once started; a change of the source shows its text in the diff.
    container(env)
    assert sh(env, 'cat /srv/conf/app.conf') == 'listen 8080'
    with open(src, 'w') as handle:
        handle.write('listen 9090\n')
    changed = copy(env, **args)
    assert changed['changed'] is True and changed['diff'][1]['before'] == 'listen 8080\n'
    assert sh(env, 'cat /srv/conf/app.conf') == 'listen 9090'


def test_created_and_paused_containers_are_seen_through_their_process(env):
    container(env, state='created')
    first = copy(env, content='created\n', dest='/etc/state')
    assert (first['changed'], first['container_status']) == (True, 'created')
    container(env, state='paused')
    again = copy(env, content='paused\n', dest='/etc/state')
    assert (again['changed'], again['container_status']) == (True, 'paused')
    assert copy(env, content='paused\n', dest='/etc/state')['changed'] is False
    container(env)
    assert sh(env, 'cat /etc/state') == 'paused'


def test_volumes_are_seen_as_the_running_container_sees_them(env):
    volume = os.path.join(env.base, 'volume')
    os.makedirs(volume)
    read_only = os.path.join(env.base, 'read-only')
    os.makedirs(read_only)
    bound_file = os.path.join(env.base, 'bound.conf')
    with open(bound_file, 'w') as handle:
        handle.write('bound\n')
    env.run(name=NAME, rootfs=env.rootfs, command=['sh', '-c', LOOP], network='none', stop_timeout=1,
            mounts=[volume + ':/data', read_only + ':/ro:ro', bound_file + ':/etc/bound.conf'])
    # Into the volume: the host's directory behind it receives the file.
    assert copy(env, content='in volume\n', dest='/data/file', mode='0600')['changed'] is True
    with open(os.path.join(volume, 'file')) as handle:
        assert handle.read() == 'in volume\n'
    with pytest.raises(RuncibleError, match='Read-only file system'):
        copy(env, content='x', dest='/ro/file')
    assert os.listdir(read_only) == []
    # A file bind-mounted into the container cannot be replaced (its mount point), and stays as it was.
    with pytest.raises(RuncibleError, match='mount point'):
        copy(env, content='x', dest='/etc/bound.conf')
    with open(bound_file) as handle:
        assert handle.read() == 'bound\n'
    # Out of the volume too.
    fetched = os.path.join(env.base, 'fetched')
    assert copy(env, direction='out', src='/data/file', dest=fetched)['checksum'] == hashlib.sha256(
        b'in volume\n').hexdigest()
    # Stopped, its mounts are not there: a path in one is refused (it would land below, hidden at the next start).
    env.run(name=NAME, state='stopped')
    for params in ({'content': 'x', 'dest': '/data/other'}, {'content': 'x', 'dest': '/etc/bound.conf'},
                   {'direction': 'out', 'src': '/data/file', 'dest': fetched + '2'}):
        with pytest.raises(RuncibleError, match='exists only while it runs'):
            copy(env, **params)
    assert not os.path.exists(os.path.join(volume, 'other')) and not os.path.exists(fetched + '2')
    assert not env.mounts()


def test_a_stopped_direct_root_filesystem_is_written_in_place(env):
    own_rootfs = os.path.join(env.base, 'rootfs')
    shutil.copytree(env.rootfs, own_rootfs, symlinks=True)
    env.run(name=NAME, rootfs=own_rootfs, rootfs_mode='direct', command=['sh', '-c', LOOP], network='none',
            state='stopped')
    bait_dir, bait, original = host_bait(env)
    os.symlink('/../../../..' + bait, os.path.join(own_rootfs, 'etc', 'abs-file'))
    assert copy(env, content='direct\n', dest='/etc/direct.conf', owner='app')['changed'] is True
    assert copy(env, content='direct\n', dest='/etc/direct.conf', owner='app')['changed'] is False
    assert copy(env, content='pwned\n', dest='/etc/abs-file')['changed'] is True
    info = os.stat(os.path.join(own_rootfs, 'etc', 'direct.conf'))
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (1000, 0o644)
    assert not os.path.islink(os.path.join(own_rootfs, 'etc', 'abs-file'))
    assert_untouched(bait_dir, bait, original)
    assert not env.mounts()


def test_missing_parent_directory_without_parents_and_a_missing_container(env):
    container(env)
    with pytest.raises(RuncibleError, match='directory /nowhere does not exist.*parents: true'):
        copy(env, content='x', dest='/nowhere/file')
    assert copy(env, check_mode=True, container='test-absent', content='x', dest='/x')['changed'] is True
    with pytest.raises(RuncibleError, match='does not exist; create it first'):
        copy(env, container='test-absent', content='x', dest='/x')


def test_fetch_out_of_a_running_container_four_ways_least_mode(env):
    container(env)
    sh(env, 'echo "log line" > /var/app.log; ln -s /var/app.log /etc/log-link')
    dest = os.path.join(env.base, 'fetched', 'app.log')
    args = {'container': NAME, 'direction': 'out', 'src': '/etc/log-link', 'dest': dest, 'parents': True}
    results = env.four_ways(args, module='runcible.oci.container_copy')
    assert results[1]['checksum'] == hashlib.sha256(b'log line\n').hexdigest()
    with open(dest, 'rb') as handle:
        assert handle.read() == b'log line\n'
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(dest)).st_mode) == 0o700
    assert results[1]['diff'][1]['after'] == 'log line\n'
    sh(env, 'echo more >> /var/app.log')
    assert copy(env, **args)['changed'] is True
    with open(dest, 'rb') as handle:
        assert handle.read() == b'log line\nmore\n'
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600


def test_fetch_out_of_a_stopped_container(env):
    container(env)
    sh(env, 'echo kept > /root/data')
    env.run(name=NAME, state='stopped')
    dest = os.path.join(env.base, 'data')
    first = copy(env, direction='out', src='/root/data', dest=dest, mode='0640')
    assert (first['changed'], first['container_status']) == (True, 'stopped')
    assert copy(env, direction='out', src='/root/data', dest=dest, mode='0640')['changed'] is False
    with open(dest) as handle:
        assert handle.read() == 'kept\n'
    assert not env.mounts()


# -- attacks -------------------------------------------------------------------------------------------

def test_symlinks_out_of_the_root_as_dest_parent_never_write_on_the_host(env):
    container(env)
    bait_dir, bait, original = host_bait(env)
    climb = '/../../../../../../..'
    sh(env, 'ln -s %s%s /etc/abs-dir; ln -s ../../../../../..%s /etc/rel-dir' % (climb, bait_dir, bait_dir))
    for link in ('/etc/abs-dir', '/etc/rel-dir'):
        # Resolved inside the container: the host's directory is not there, so the directory is missing.
        with pytest.raises(RuncibleError, match='does not exist in container'):
            copy(env, content='pwned\n', dest=link + '/secret')
        assert_untouched(bait_dir, bait, original)
        # parents: true replaces nothing (as mkdir -p): a link leading nowhere stays and the task fails.
        with pytest.raises(RuncibleError, match='exists and is not a directory'):
            copy(env, content='pwned\n', dest=link + '/secret', parents=True)
        assert_untouched(bait_dir, bait, original)
    # Where the container has that directory, both links lead to it: the file lands inside the container.
    sh(env, 'mkdir -p %s' % bait_dir)
    assert copy(env, content='pwned\n', dest='/etc/abs-dir/secret')['changed'] is True
    assert sh(env, 'cat %s/secret' % bait_dir) == 'pwned'
    assert copy(env, content='pwned\n', dest='/etc/rel-dir/secret')['changed'] is False  # the same file
    assert_untouched(bait_dir, bait, original)


def test_symlink_as_dest_itself_is_replaced_or_followed_inside_the_root(env):
    container(env)
    bait_dir, bait, original = host_bait(env)
    sh(env, 'ln -s /../../../../..%s /etc/abs-file; ln -s ../../../../../..%s /etc/rel-file' % (bait, bait))
    for link in ('/etc/abs-file', '/etc/rel-file'):
        # follow: false replaces the link by the file; follow: true leads to a directory missing in the container.
        with pytest.raises(RuncibleError, match='does not exist in container'):
            copy(env, content='pwned\n', dest=link, follow=True)
        assert_untouched(bait_dir, bait, original)
        replaced = copy(env, content='pwned\n', dest=link)
        assert replaced['changed'] is True
        assert sh(env, 'test -f %s && ! test -L %s && cat %s' % (link, link, link)) == 'pwned'
        assert_untouched(bait_dir, bait, original)
    # Followed where it leads inside the container.
    sh(env, 'mkdir -p %s; ln -s %s/secret /etc/inside-link' % (bait_dir, bait_dir))
    followed = copy(env, content='inside\n', dest='/etc/inside-link', follow=True)
    assert followed['dest'] == bait_dir + '/secret'
    assert sh(env, 'cat %s/secret; test -L /etc/inside-link && echo link' % bait_dir) == 'inside\nlink'
    assert_untouched(bait_dir, bait, original)


def test_a_parent_swapped_for_a_link_while_copies_run_never_writes_on_the_host(env):
    container(env)
    bait_dir, bait, original = host_bait(env)
    # The container swaps /data/sub for a link to the host directory as fast as it can, while copies run.
    sh(env, 'mkdir -p /data/sub /data/real')
    swapper = ('while true; do mv /data/sub /data/real/sub 2>/dev/null; ln -s /../../../../..%s /data/sub; '
               'rm -f /data/sub; mv /data/real/sub /data/sub 2>/dev/null; done' % bait_dir)
    swapping = _exec.run({'container': NAME, 'argv': ['sh', '-c', swapper], 'detach': True, 'root': env.root,
                          'run_root': env.run_root})
    outcomes = set()
    for index in range(60):
        try:
            copy(env, content='pwned %d\n' % index, dest='/data/sub/secret')
            outcomes.add('written')
        except RuncibleError as exc:
            outcomes.add(exc.msg.split(':')[0])
        assert_untouched(bait_dir, bait, original)
    assert 'written' in outcomes, outcomes
    # Swapped between two tasks: the second write lands inside the container.
    os.kill(swapping['pid'], signal.SIGKILL)
    sh(env, 'sleep 0.2; rm -rf /data/sub; ln -s /../../../../..%s /data/sub; mkdir -p %s' % (bait_dir, bait_dir))
    assert copy(env, content='pwned\n', dest='/data/sub/secret')['changed'] is True
    assert sh(env, 'cat %s/secret' % bait_dir) == 'pwned'
    assert_untouched(bait_dir, bait, original)


def test_links_planted_before_a_stop_stay_inside_the_stopped_root(env):
    container(env)
    bait_dir, bait, original = host_bait(env)
    sh(env, 'ln -s /../../../../..%s /etc/abs-dir; ln -s /../../../../..%s /etc/abs-file' % (bait_dir, bait))
    env.run(name=NAME, state='stopped')
    with pytest.raises(RuncibleError, match='does not exist in container'):
        copy(env, content='pwned\n', dest='/etc/abs-dir/secret')
    assert copy(env, content='pwned\n', dest='/etc/abs-file')['changed'] is True
    with pytest.raises(RuncibleError, match='exists and is not a directory'):
        copy(env, content='pwned\n', dest='/etc/abs-dir/secret', parents=True)
    assert copy(env, content='pwned\n', dest=bait_dir + '/secret', parents=True)['changed'] is True
    assert copy(env, content='pwned\n', dest='/etc/abs-dir/secret')['changed'] is False  # the same file
    assert_untouched(bait_dir, bait, original)
    assert os.path.isfile(upper(env, '/etc/abs-file')) and not os.path.islink(upper(env, '/etc/abs-file'))
    assert os.path.isfile(upper(env, bait_dir + '/secret'))
    # Out: the link leads inside too, to the container's file, never the host's.
    fetched = os.path.join(env.base, 'out')
    assert copy(env, direction='out', src='/etc/abs-dir/secret', dest=fetched)['changed'] is True
    with open(fetched, 'rb') as handle:
        assert handle.read() == b'pwned\n'
    assert not env.mounts()


def test_system_trees_are_refused_also_through_links(env):
    container(env)
    for dest in ('/proc/sys/kernel/hostname', '/sys/kernel/x', '/dev/x', '/etc/../proc/x', '/etc/'):
        with pytest.raises(RuncibleError):
            copy(env, content='x', dest=dest)
    sh(env, 'ln -s /proc/sys/kernel /etc/kernel-link; ln -s /dev/shm /etc/shm-link')
    for dest in ('/etc/kernel-link/hostname', '/etc/shm-link/x'):
        with pytest.raises(RuncibleError, match='leads under /(proc|dev)'):
            copy(env, content='x', dest=dest)
    with pytest.raises(RuncibleError, match='src: /proc/self/environ is under /proc'):
        copy(env, direction='out', src='/proc/self/environ', dest=os.path.join(env.base, 'environ'))
    with pytest.raises(RuncibleError, match='src: /etc/kernel-link/hostname leads under /proc'):
        copy(env, direction='out', src='/etc/kernel-link/hostname', dest=os.path.join(env.base, 'hostname'))
    assert not os.path.exists(os.path.join(env.base, 'environ')) and not os.path.exists(os.path.join(env.base, 'hostname'))
