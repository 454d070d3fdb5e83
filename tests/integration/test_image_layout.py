# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers from OCI images (layouts and archives built here from the busybox rootfs), on the real
runc + conmon + overlayfs: entrypoint, env and workdir from the image, whiteouts, shared layers,
a tag moving to new content, removal of images in use, hostile layers and tampered blobs."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from oci_build import (LayoutBuilder, dir_member, file_member, hardlink_member, symlink_member)  # noqa: E402

from ansible_collections.runcible.oci.plugins.module_utils import _image  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.image_refs import hex_of  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.image_store import ImageStore  # noqa: E402
from conftest import read_log, wait_for  # noqa: E402

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
ENTRY = b'''#!/bin/sh
echo "args=$*"
echo "pwd=$(pwd)"
echo "uid=$(id -u):$(id -g)"
echo "greeting=$GREETING from_image=$FROM_IMAGE task=$TASK_VAR"
echo "opt=$(ls /opt | tr '\\n' ' ')"
echo "optdir=$(ls /opt/dir | tr '\\n' ' ')"
exec "$@"
'''


class BuiltImage(object):
    """A layout with a busybox base layer, a data layer and an app layer with whiteouts."""

    def __init__(self, path, rootfs):
        self.layout = LayoutBuilder(path)
        self.base = self.layout.layer_from_dir(rootfs)
        self.data = self.layout.layer([dir_member('opt'), file_member('opt/old.txt', b'old\n'), dir_member('opt/dir'),
                                       file_member('opt/dir/a', b'a'), file_member('opt/dir/b', b'b'),
                                       dir_member('srv', mode=0o777)])
        self.app = self.layout.layer([
            dir_member('app'), file_member('app/entry.sh', ENTRY, mode=0o755),
            dir_member('opt'), file_member('opt/.wh.old.txt'), file_member('opt/new.txt', b'new\n'),
            dir_member('opt/dir'), file_member('opt/dir/.wh..wh..opq'), file_member('opt/dir/c', b'c')])
        self.config = {'Entrypoint': ['/app/entry.sh'], 'Cmd': ['sh', '-c', LOOP],
                       'Env': ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello', 'FROM_IMAGE=yes'],
                       'WorkingDir': '/app', 'User': 'app', 'Labels': {'org.example.tier': 'test'},
                       'ExposedPorts': {'8080/tcp': {}}}
        self.v1 = self.layout.image([self.base, self.data, self.app], self.config, tag='v1')
        self.ref = 'oci:%s:v1' % path

    def new_content(self):
        """The tag v1 moves to new content: another app layer."""
        extra = self.layout.layer([dir_member('app'), file_member('app/VERSION', b'2\n')])
        self.v2 = self.layout.image([self.base, self.data, self.app, extra], self.config, tag='v1')
        return self.v2


@pytest.fixture
def image(env):
    return BuiltImage(os.path.join(env.base, 'layout'), env.rootfs)


def _lines(env, name, count):
    info = env.inspect(name)
    assert wait_for(lambda: len(read_log(info['log_path'])) >= count), read_log(info['log_path'])
    return read_log(info['log_path'])


def test_container_runs_the_image_entrypoint_with_its_env_and_workdir(env, image):
    result = env.run(name='img-run', image=image.ref, network='none', stop_timeout=2,
                     env={'TASK_VAR': 'mine', 'GREETING': 'task wins'})
    assert result['actions'] == ['created', 'started']
    config = result['container']['config']
    assert config['image'] == '%s@%s' % (image.ref, image.v1)
    assert config['entrypoint'] == ['/app/entry.sh'] and config['command'] == ['sh', '-c', LOOP]
    assert config['workdir'] == '/app' and config['user'] == '1000:1000' and config['rootfs'] is None
    assert config['env'] == {'TASK_VAR': 'mine', 'GREETING': 'task wins'}, 'only the task env is recorded'
    assert config['image_config']['exposed_ports'] == ['8080/tcp']
    lines = _lines(env, 'img-run', 6)
    assert lines[:6] == ['args=sh -c %s' % LOOP, 'pwd=/app', 'uid=1000:1000',
                         'greeting=task wins from_image=yes task=mine',
                         # whiteouts: old.txt is gone, opt/dir is opaque (only the top layer's c)
                         'opt=dir new.txt ', 'optdir=c '], lines
    with open(result['container']['bundle'] + '/config.json') as handle:
        spec = json.load(handle)
    assert spec['annotations']['io.runcible.label.org.example.tier'] == 'test'
    # Idempotent: same content, nothing to do; the same options given explicitly change nothing either.
    again = env.run(name='img-run', image=image.ref, network='none', stop_timeout=2,
                    env={'TASK_VAR': 'mine', 'GREETING': 'task wins'}, workdir='/app', user='app',
                    entrypoint='/app/entry.sh')
    assert again['actions'] == [] and again['container']['pid'] == result['container']['pid']
    # A command of the task's own keeps the image's entrypoint.
    other = env.run(name='img-cmd', image=image.ref, network='none', command=['echo', 'own'], user='nobody')
    assert other['container']['config']['user'] == '65534:65534'
    assert wait_for(lambda: 'args=echo own' in read_log(other['container']['log_path']))


def test_two_containers_share_the_unpacked_layers_and_keep_their_writes(env, image):
    store = ImageStore(env.root)
    pids = {}
    for name in ('img-a', 'img-b'):
        script = 'echo %s > /srv/written-by; %s' % (name, LOOP)
        result = env.run(name=name, image=image.ref, network='none', user='0:0', command=['sh', '-c', script])
        pids[name] = result['container']['pid']
        if name == 'img-a':
            layer_times = dict((entry, os.stat(store.path('layers', entry)).st_mtime_ns)
                               for entry in os.listdir(store.path('layers')))
    assert wait_for(lambda: all(os.path.exists('/proc/%d/root/srv/written-by' % pid) for pid in pids.values()))
    # Unpacked once: the second container found every layer there and touched none.
    assert dict((entry, os.stat(store.path('layers', entry)).st_mtime_ns)
                for entry in os.listdir(store.path('layers'))) == layer_times
    assert sorted(layer_times) == sorted(hex_of(layer.diff_id) for layer in (image.base, image.data, image.app))
    # Same inode: both see the busybox binary of the one shared base layer.
    shared = os.stat(os.path.join(store.layer_diff(image.base.diff_id), 'bin', 'busybox')).st_ino
    for pid in pids.values():
        assert os.stat('/proc/%d/root/bin/busybox' % pid).st_ino == shared
    # Separate writes: each container sees its own, the layers none.
    for name, pid in pids.items():
        with open('/proc/%d/root/srv/written-by' % pid) as handle:
            assert handle.read().strip() == name
        assert os.path.isfile(os.path.join(env.root, 'containers', name, 'upper', 'srv', 'written-by'))
    for layer in (image.base, image.data, image.app):
        assert not os.path.exists(os.path.join(store.layer_diff(layer.diff_id), 'srv', 'written-by'))


def test_new_content_under_the_tag_recreates_four_ways(env, image):
    args = {'name': 'img-tag', 'image': image.ref, 'network': 'none', 'stop_timeout': 1, 'pull': 'always'}
    first = env.playbook([{'runcible.oci.container': args}])[0]
    assert first['container']['config']['image'].endswith(image.v1)
    v2 = image.new_content()
    # pull: missing keeps what is local: no change.
    missing = env.four_ways(dict(args, pull='missing'), expect=(False, False, False, False))
    assert missing[1]['container']['id'] == first['container']['id']
    results = env.four_ways(args)
    check, apply, again = results[0], results[1], results[2]
    for result in (check, apply):
        assert result['actions'] == ['recreated', 'started']
        assert result['diff']['before']['image'] == '%s@%s' % (image.ref, image.v1)
        assert result['diff']['after']['image'] == '%s@%s' % (image.ref, v2)
    assert apply['container']['id'] != first['container']['id']
    assert again['container']['id'] == apply['container']['id']
    # The old image lost its tag and its container: pruned, with the layer only it had... none here,
    # v2 has every layer of v1 plus one.
    index = ImageStore(env.root).load_index()
    assert sorted(index['images']) == [v2] and index['tags'] == {image.ref: v2}
    pid = apply['container']['pid']
    assert wait_for(lambda: os.path.exists('/proc/%d/root/app/VERSION' % pid))


def test_image_module_four_ways_and_image_info(env, image):
    results = env.four_ways({'name': image.ref}, module='runcible.oci.image')
    check, apply = results[0], results[1]
    for result in (check, apply):
        assert result['actions'] == ['imported']
        assert result['image']['digest'] == image.v1
        assert result['diff'] == {'before': {'digest': None, 'references': []},
                                  'after': {'digest': image.v1, 'references': [image.ref]}}
    assert apply['image']['size'] > 1000000 and len(apply['image']['layers']) == 3
    assert apply['image']['config']['entrypoint'] == ['/app/entry.sh']
    # force asks the source again: same content, no change.
    env.four_ways({'name': image.ref, 'force': True}, module='runcible.oci.image', expect=(False,) * 4)
    info = env.playbook([{'runcible.oci.image_info': {}}, {'runcible.oci.image_info': {'name': [image.ref, 'sha256:' + 'f' * 64]}}])
    assert [i['digest'] for i in info[0]['images']] == [image.v1] == [i['digest'] for i in info[1]['images']]
    assert info[0]['changed'] is False

    container = env.four_ways({'name': 'img-four', 'image': image.ref, 'network': 'none', 'stop_timeout': 1})
    assert container[0]['container']['config']['image'] == '%s@%s' % (image.ref, image.v1)
    assert container[1]['container']['status'] == 'running'
    assert env.playbook([{'runcible.oci.image_info': {'name': [image.ref]}}])[0]['images'][0]['containers'] == ['img-four']

    # In use: removing fails clearly, and removes nothing.
    failed = env.playbook([{'runcible.oci.image': {'name': image.ref, 'state': 'absent'}, 'ignore_errors': True}])[0]
    assert failed['_status'] == 'failed' and 'used by container img-four' in failed['msg']
    assert image.v1 in ImageStore(env.root).load_index()['images']
    env.playbook([{'runcible.oci.container': {'name': 'img-four', 'state': 'absent'}}])
    removed = env.four_ways({'name': image.ref, 'state': 'absent'}, module='runcible.oci.image')
    assert removed[1]['actions'][0] == 'removed' and removed[1]['image'] == {}
    assert removed[1]['diff'] == {'before': {'digest': image.v1, 'references': [image.ref]},
                                  'after': {'digest': None, 'references': []}}
    store = ImageStore(env.root)
    assert os.listdir(store.path('layers')) == [] and store.load_index()['images'] == {}


def test_force_removal_keeps_the_layers_of_running_containers(env, image):
    result = env.run(name='img-force', image=image.ref, network='none', stop_timeout=1)
    with pytest.raises(RuncibleError, match='used by container img-force'):
        _image.run({'name': image.ref, 'state': 'absent', 'root': env.root})
    removed = _image.run({'name': image.ref, 'state': 'absent', 'force': True, 'root': env.root})
    assert removed['actions'][0] == 'removed' and 'kept the layers' in removed['actions'][1]
    store = ImageStore(env.root)
    assert store.load_index()['images'] == {} and len(os.listdir(store.path('layers'))) == 3
    # It still stops and starts: its layers are kept while it exists.
    env.run(name='img-force', state='stopped')
    restarted = env.run(name='img-force', state='started')
    assert restarted['container']['pid'] not in (0, result['container']['pid'])
    env.run(name='img-force', state='absent')
    assert sorted(store.collect()['layers']) == sorted(layer.diff_id for layer in (image.base, image.data, image.app))


def test_oci_archive(env, image):
    archive = image.layout.archive(os.path.join(env.base, 'image.tar'))
    ref = 'oci-archive:%s:v1' % archive
    result = env.run(name='img-archive', image=ref, network='none', command=['true'], state='stopped')
    assert result['container']['config']['image'] == '%s@%s' % (ref, image.v1)
    # Same content as the layout: the same image, and its layers were already... unpacked once.
    env.run(name='img-layout', image=image.ref, network='none', command=['true'], state='stopped')
    assert ImageStore(env.root).load_index()['tags'] == {ref: image.v1, image.ref: image.v1}


HOSTILE = {
    'dot-dot': [file_member('../../escape', b'x')],
    'absolute symlink then write through it': [symlink_member('etc-link', '{outside}'),
                                               file_member('etc-link/escape', b'x')],
    'hard link to a host file': [hardlink_member('stolen', '{outside}/secret')],
    'whiteout escaping its dir': [dir_member('a'), file_member('a/.wh...')],
}


@pytest.mark.parametrize('case', sorted(HOSTILE))
def test_hostile_layer_fails_the_task_and_nothing_escapes(env, case):
    outside = os.path.join(env.base, 'outside')
    os.makedirs(outside)
    with open(os.path.join(outside, 'secret'), 'w') as handle:
        handle.write('secret\n')
    layout = LayoutBuilder(os.path.join(env.base, 'hostile'))
    base = layout.layer_from_dir(env.rootfs)
    members = []
    for info, data in HOSTILE[case]:
        info.name = info.name.replace('{outside}', outside)
        info.linkname = info.linkname.replace('{outside}', outside)
        members.append((info, data))
    evil = layout.layer(members)
    layout.image([base, evil], {'Cmd': ['true']}, tag='evil')
    before = sorted(set(os.listdir(env.base)) - set(['root'])) + sorted(os.listdir(outside))
    with pytest.raises(RuncibleError, match='refusing the layer'):
        env.run(name='img-evil', image='oci:%s:evil' % layout.path, network='none')
    assert sorted(set(os.listdir(env.base)) - set(['root'])) + sorted(os.listdir(outside)) == before
    assert os.stat(os.path.join(outside, 'secret')).st_nlink == 1
    assert not os.path.exists(os.path.join(os.path.dirname(env.base), 'escape'))
    store = ImageStore(env.root)
    assert os.listdir(store.path('layers')) == [hex_of(base.diff_id)], 'only the good layer was kept'
    assert os.listdir(store.path('tmp')) == [] and store.load_index()['images'] == {}
    assert env.inspect('img-evil') is None


def test_tampered_layer_blob_is_refused(env, image):
    path = image.layout.blob_path(image.app.descriptor['digest'])
    with open(path, 'r+b') as handle:
        data = bytearray(handle.read())
        data[-20] ^= 0xff
        handle.seek(0)
        handle.write(bytes(data))
    with pytest.raises(RuncibleError, match='mismatch|not a valid'):
        env.run(name='img-tampered', image=image.ref, network='none')
    failed = env.playbook([{'runcible.oci.image': {'name': image.ref}, 'ignore_errors': True}])[0]
    assert failed['_status'] == 'failed' and ('mismatch' in failed['msg'] or 'not a valid' in failed['msg'])
    store = ImageStore(env.root)
    assert store.load_index()['images'] == {} and not store.has_layer(image.app.diff_id)
    assert env.inspect('img-tampered') is None


def test_checkpoint_of_a_container_from_an_image_travels_and_continues(env, image):
    """Export a container made from an image, remove it, import it: its count goes on (layers from the store)."""
    from ansible_collections.runcible.oci.plugins.module_utils import _checkpoint

    counter = "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"
    # As root: CRIU needs CAP_SYS_RESOURCE to dump a process of another uid, which some hosts' root lacks.
    created = env.run(name='test-imgck', image=image.ref, entrypoint=['sh', '-c', counter], user='0:0')
    log = created['container']['log_path']
    assert wait_for(lambda: len([l for l in read_log(log) if l.isdigit()]) >= 5), read_log(log)
    archive = os.path.join(env.base, 'img.tar.zst')
    stores = {'root': env.root, 'run_root': env.run_root}
    _checkpoint.run(dict(stores, name='test-imgck', export=archive))
    dumped = [int(l) for l in read_log(log) if l.isdigit()]
    env.run(name='test-imgck', state='absent')
    imported = _checkpoint.run(dict(stores, name='test-imgck2', state='restored', **{'import': archive}))
    new_log = imported['container']['log_path']
    assert wait_for(lambda: len([l for l in read_log(new_log) if l.isdigit()]) >= len(dumped) + 3)
    after = [int(l) for l in read_log(new_log) if l.isdigit()][len(dumped):]
    assert after[0] == dumped[-1] + 1, (dumped[-3:], after[:3])
    env.run(name="test-imgck2", state="absent")
