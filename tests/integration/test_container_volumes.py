# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes in containers on the real runc: named volumes in mounts (made on first use, kept), tmpfs mounts,
an image's declared Volumes (filled from the image, kept across recreates, removed only when asked), and a
hostile image whose volume path is a link out of its root."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from oci_build import LayoutBuilder, dir_member, file_member, symlink_member  # noqa: E402

from ansible_collections.runcible.oci.plugins.module_utils import _exec  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime import volumes  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError  # noqa: E402

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"
NAME = 'test-vols'


def run_in(env, script, name=NAME):
    result = _exec.run({'container': name, 'command': ['sh', '-c', script], 'root': env.root,
                        'run_root': env.run_root}, check_mode=False)
    return result['stdout'] + result['stderr']


def args(store, **params):
    base = {'name': NAME, 'rootfs': store.rootfs, 'command': ['sh', '-c', LOOP], 'network': 'none', 'stop_timeout': 1}
    base.update(params)
    return base


def test_a_named_volume_four_ways_outlives_recreate_and_removal(env):
    results = env.four_ways(args(env, mounts=['test-data:/data', {'type': 'tmpfs', 'target': '/cache',
                                                                  'options': 'size=4m'}]))
    mounts = results[1]['container']['config']['mounts']
    assert [(m['type'], m['source'], m['target']) for m in mounts] == [
        ('tmpfs', 'tmpfs', '/cache'), ('volume', 'test-data', '/data')]
    assert not os.path.exists(os.path.join(env.root, 'volumes', 'test-data')) or results[1]['changed']
    assert volumes.get(env.root, 'test-data') is not None  # made on first use, by the apply (not the check)
    assert volumes.users(env.root, 'test-data') == [NAME]
    run_in(env, 'echo kept > /data/file && echo gone > /cache/file')
    # A recreate (another env) keeps the volume's data; the tmpfs is new.
    mounts = ['test-data:/data', {'type': 'tmpfs', 'target': '/cache', 'options': 'size=4m'}]
    changed = env.run(**args(env, env={'X': '1'}, mounts=mounts))
    assert changed['actions'] == ['recreated', 'started']
    assert run_in(env, 'cat /data/file; ls /cache').split() == ['kept']
    # Removing the container keeps a named volume, even with keep_volumes false; a new container sees the data.
    removed = env.run(name=NAME, state='absent', keep_volumes=False)
    assert 'removed_volumes' not in removed and volumes.get(env.root, 'test-data') is not None
    env.run(**args(env, mounts=['test-data:/srv:ro']))
    assert run_in(env, 'cat /srv/file; touch /srv/x 2>&1').split('\n')[0] == 'kept'
    with pytest.raises(RuncibleError, match='used by container test-vols'):
        volumes.remove(env.root, 'test-data')
    env.run(name=NAME, state='absent')
    assert volumes.remove(env.root, 'test-data') is True


def test_bad_volume_mounts_are_refused_and_nothing_is_made(env):
    for mounts, message in ((['../x:/data'], 'nor a volume name'),
                            ([{'type': 'volume', 'source': 'a/b', 'target': '/d'}], 'nor a volume name'),
                            ([{'type': 'nfs', 'source': 'x', 'target': '/d'}], 'not one of'),
                            ([{'type': 'tmpfs', 'source': '/etc', 'target': '/d'}], 'no source'),
                            ([{'type': 'tmpfs', 'target': '/d', 'options': 'size=x'}], 'size')):
        with pytest.raises(RuncibleError, match=message):
            env.run(**args(env, mounts=mounts))
    assert env.inspect(NAME) is None
    assert volumes.list_volumes(env.root) == []


class VolumeImage(object):
    """A layout whose image declares /var/lib/app (with content), /evil (a link out of the root) and /proc."""

    def __init__(self, path, rootfs, seed=b'seed\n'):
        self.layout = LayoutBuilder(path)
        base = self.layout.layer_from_dir(rootfs)
        data = self.layout.layer([dir_member('var'), dir_member('var/lib'), dir_member('var/lib/app', mode=0o750,
                                                                                       uid=1000, gid=1000),
                                  file_member('var/lib/app/seed.txt', seed, mode=0o640, uid=1000, gid=1000),
                                  dir_member('var/lib/app/sub'), symlink_member('var/lib/app/passwd', '/etc/passwd'),
                                  symlink_member('evil', '../../../../../etc')])
        self.config = {'Cmd': ['sh', '-c', LOOP], 'Env': ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
                       'Volumes': {'/var/lib/app': {}, '/evil': {}, '/proc/x': {}, '/': {}}}
        self.layers = [base, data]

    def tag(self, tag, **config):
        self.layout.image(self.layers, dict(self.config, **config), tag=tag)
        return 'oci:%s:%s' % (self.layout.path, tag)


def test_image_volumes_filled_from_the_image_kept_across_recreate_and_removed_only_when_asked(env, tmp_path):
    image = VolumeImage(str(tmp_path / 'layout'), env.rootfs)
    first = image.tag('v1')
    params = {'name': NAME, 'image': first, 'network': 'none', 'stop_timeout': 1}
    results = env.four_ways(params)
    config = results[1]['container']['config']
    assert [volume['target'] for volume in config['image_volumes']] == ['/evil', '/var/lib/app']
    names = dict((volume['target'], volume['source']) for volume in config['image_volumes'])
    assert names['/var/lib/app'] == volumes.anonymous_name(NAME, '/var/lib/app')
    data = volumes.mountpoint(env.root, names['/var/lib/app'])
    info = os.stat(os.path.join(data, 'seed.txt'))
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (1000, 1000, 0o640)
    assert os.readlink(os.path.join(data, 'passwd')) == '/etc/passwd'  # copied as a link, not followed
    assert (os.stat(data).st_uid, os.stat(data).st_mode & 0o777) == (1000, 0o750)
    # The image's link out of its root was resolved inside it: the container's /etc, never the host's.
    evil = volumes.mountpoint(env.root, names['/evil'])
    with open(os.path.join(evil, 'passwd')) as handle, open(os.path.join(env.rootfs, 'etc/passwd')) as expected:
        assert handle.read() == expected.read()
    assert run_in(env, 'cat /var/lib/app/seed.txt; echo more > /var/lib/app/new').strip() == 'seed'
    # A new image (other content at the path) recreates the container; the volume keeps its data.
    second = VolumeImage(str(tmp_path / 'layout2'), env.rootfs, seed=b'other\n').tag('v2')
    changed = env.run(**dict(params, image=second))
    assert changed['actions'] == ['recreated', 'started']
    assert run_in(env, 'cat /var/lib/app/seed.txt /var/lib/app/new').split() == ['seed', 'more']
    # A mount of the task at the path takes its place (no image volume there).
    covered = env.run(**dict(params, image=second, mounts=[{'type': 'tmpfs', 'target': '/var/lib/app'}]))
    assert [volume['target'] for volume in covered['container']['config']['image_volumes']] == ['/evil']
    # absent keeps them by default; absent with keep_volumes false removes them (check mode: says which).
    env.run(**dict(params, image=second))
    checked = env.run(check_mode=True, name=NAME, state='absent', keep_volumes=False)
    assert checked['removed_volumes'] == sorted(names.values()) and volumes.get(env.root, names['/evil'])
    env.run(name=NAME, state='absent')
    assert sorted(volume['name'] for volume in volumes.list_volumes(env.root)) == sorted(names.values())
    env.run(**dict(params, image=second))
    assert run_in(env, 'cat /var/lib/app/new').strip() == 'more'  # the same name gets its data back
    # A copy that did not finish (the marker is there) is redone from an empty volume at the next start.
    env.run(**dict(params, image=second, state='stopped'))
    data = volumes.mountpoint(env.root, names['/var/lib/app'])
    os.unlink(os.path.join(data, 'seed.txt'))
    with open(os.path.join(data, 'half'), 'w') as handle:
        handle.write('half a copy')
    open(os.path.join(env.root, 'volumes', names['/var/lib/app'], '.filling'), 'w').close()
    env.run(**dict(params, image=second))
    assert sorted(os.listdir(data)) == ['passwd', 'seed.txt', 'sub']
    assert not os.path.exists(os.path.join(env.root, 'volumes', names['/var/lib/app'], '.filling'))
    # A named volume the user labelled like the container's is its own: never removed with the container.
    volumes.create(env.root, 'test-mine', labels={'io.runcible.container': NAME, 'io.runcible.path': '/x'})
    removed = env.run(name=NAME, state='absent', keep_volumes=False)
    assert removed['removed_volumes'] == sorted(names.values())
    assert removed['actions'] == ['removed', 'volumes removed']
    assert [volume['name'] for volume in volumes.list_volumes(env.root)] == ['test-mine']
    volumes.remove(env.root, 'test-mine')


def test_image_volumes_of_a_container_removed_before_can_still_be_removed(env, tmp_path):
    image = VolumeImage(str(tmp_path / 'layout'), env.rootfs).tag('v1')
    env.run(name=NAME, image=image, network='none', stop_timeout=1)
    env.run(name=NAME, state='absent')  # volumes kept
    assert len(volumes.list_volumes(env.root)) == 2
    checked = env.run(check_mode=True, name=NAME, state='absent', keep_volumes=False)
    assert checked['changed'] is True and len(checked['removed_volumes']) == 2
    assert len(volumes.list_volumes(env.root)) == 2
    removed = env.run(name=NAME, state='absent', keep_volumes=False)
    assert removed['actions'] == ['volumes removed'] and volumes.list_volumes(env.root) == []
    assert env.run(name=NAME, state='absent', keep_volumes=False)['changed'] is False
