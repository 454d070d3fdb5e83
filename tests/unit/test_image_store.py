# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references, the local image store (import, tags, removal, garbage collection, parallel pulls)
and what an image gives a container's config."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from oci_build import LayoutBuilder, dir_member, file_member  # noqa: E402

from ansible_collections.runcible.oci.plugins.module_utils import _image  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._container_options import images as image_options  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime import image_refs, image_sources, image_store  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.layers import LayerError  # noqa: E402

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='unpacking layers (whiteouts, owners) needs root')
DIGEST = 'sha256:' + 'a' * 64


@pytest.mark.parametrize('text, canonical', [
    ('oci:/srv/layout', 'oci:/srv/layout'),
    ('oci:/srv/layout/:v1', 'oci:/srv/layout:v1'),
    ('oci:/srv/a:b/layout', 'oci:/srv/a:b/layout'),
    ('oci-archive:/srv/app.tar:1.0', 'oci-archive:/srv/app.tar:1.0'),
    ('docker://busybox', 'docker://docker.io/library/busybox:latest'),
    ('docker://busybox:1.36', 'docker://docker.io/library/busybox:1.36'),
    ('docker://index.docker.io/team/app', 'docker://docker.io/team/app:latest'),
    ('docker://127.0.0.1:5000/test/bb:v1', 'docker://127.0.0.1:5000/test/bb:v1'),
    ('docker://localhost/app@' + DIGEST, 'docker://localhost/app@' + DIGEST),
    ('docker://quay.io/org/app:2@' + DIGEST, 'docker://quay.io/org/app:2@' + DIGEST),
    (DIGEST, DIGEST),
])
def test_parse_reference(text, canonical):
    assert image_refs.parse_reference(text).canonical == canonical


@pytest.mark.parametrize('text', ['busybox', 'oci:relative/path', 'docker://UPPER/case', 'docker://app@sha256:12',
                                  'docker://app:-bad', 'sha512:' + 'a' * 128, '', 'dir:/x'])
def test_parse_reference_refuses(text):
    with pytest.raises(ValidationError):
        image_refs.parse_reference(text)


def test_normalised_image_value_and_comparison():
    ref = image_refs.parse_reference('oci:/srv/layout:v1')
    value = image_refs.join_normalised(ref, DIGEST)
    assert value == 'oci:/srv/layout:v1@' + DIGEST
    assert image_options.split_normalised(value) == ('oci:/srv/layout:v1', DIGEST)
    pinned = image_refs.parse_reference('docker://localhost/app@' + DIGEST)
    assert image_refs.join_normalised(pinned, DIGEST) == 'docker://localhost/app@' + DIGEST
    assert image_options.same_image('oci:/other:x@' + DIGEST, value)
    assert not image_options.same_image('oci:/srv/layout:v1@sha256:' + 'b' * 64, value)
    assert not image_options.same_image(value, None)


def test_config_defaults():
    defaults = image_sources.config_defaults({'config': {
        'Entrypoint': ['/entry'], 'Cmd': 'run', 'Env': ['A=1', 'B=x=y', 'EMPTY='], 'WorkingDir': 'srv',
        'User': 'app', 'Labels': {'tier': 'web'}, 'ExposedPorts': {'80/tcp': {}, '53/udp': {}},
        'StopSignal': 'SIGQUIT',
        'Volumes': {'/data': {}, 'var/lib/x/': {}, '/a/../b': {}, '/': {}, '/proc/x': {}, '/dev': {}, 42: {}}}})
    assert defaults == {'entrypoint': ['/entry'], 'cmd': ['run'], 'env': {'A': '1', 'B': 'x=y', 'EMPTY': ''},
                        'workdir': '/srv', 'user': 'app', 'labels': {'tier': 'web'},
                        'exposed_ports': ['53/udp', '80/tcp'], 'stop_signal': 'SIGQUIT',
                        'volumes': ['/b', '/data', '/var/lib/x']}  # the root, /proc, /dev and non-paths left out
    assert image_sources.config_defaults({})['workdir'] == '/'


# -- the store ------------------------------------------------------------------------------------

@pytest.fixture
def layout(tmp_path):
    builder = LayoutBuilder(str(tmp_path / 'layout'))
    base = builder.layer([dir_member('etc'), file_member('etc/passwd', b'root:x:0:0::/root:/bin/sh\n'
                                                                       b'app:x:1000:1001::/home/app:/bin/sh\n'),
                          file_member('etc/group', b'root:x:0:\napp:x:1001:\n'), dir_member('opt'),
                          file_member('opt/old', b'old'), file_member('motd', b'hi')])
    top = builder.layer([file_member('.wh.motd'), dir_member('app'), file_member('app/run', b'#!/bin/sh\n', 0o755)])
    builder.base, builder.top = base, top
    builder.v1 = builder.image([base, top], {'Entrypoint': ['/app/run'], 'Cmd': ['serve'], 'Env': ['A=1'],
                                             'WorkingDir': '/app', 'User': 'app', 'StopSignal': 'SIGINT'}, tag='v1')
    return builder


def pull(root, text, **kwargs):
    store = image_store.ImageStore(root, **kwargs)
    reference = image_refs.parse_reference(text)
    return store, store.pull(image_sources.resolve(reference, store))


@needs_root
def test_import_from_a_layout_and_again(tmp_path, layout):
    root = str(tmp_path / 'root')
    store, (record, previous, pulled) = pull(root, 'oci:%s:v1' % layout.path)
    assert pulled and previous is None and record['digest'] == layout.v1
    index = store.load_index()
    assert index['tags'] == {'oci:%s:v1' % layout.path: layout.v1}
    for layer in (layout.base, layout.top):
        assert store.has_layer(layer.diff_id)
    assert os.listdir(store.path('tmp')) == []
    # passwd and group as the layers show them, for user names
    assert os.path.isfile(os.path.join(store.userdb(layout.v1), 'etc', 'passwd'))
    # The same again: nothing is unpacked or written.
    layer_dir = store.layer_dir(layout.base.diff_id)
    mtime = os.stat(layer_dir).st_mtime_ns
    _store, (_record, previous, pulled) = pull(root, 'oci:%s:v1' % layout.path)
    assert not pulled and previous is None and os.stat(layer_dir).st_mtime_ns == mtime
    view = store.view(layout.v1)
    assert view['references'] == ['oci:%s:v1' % layout.path]
    assert view['config']['entrypoint'] == ['/app/run'] and view['layers'][0]['diff_id'] == layout.base.diff_id


@needs_root
def test_oci_archive(tmp_path, layout):
    archive = layout.archive(str(tmp_path / 'image.tar'))
    store, (record, _previous, pulled) = pull(str(tmp_path / 'root'), 'oci-archive:%s:v1' % archive)
    assert pulled and record['digest'] == layout.v1


@needs_root
def test_layers_are_shared_between_images(tmp_path, layout):
    other = layout.image([layout.base], {'Cmd': ['sh']}, tag='base-only')
    root = str(tmp_path / 'root')
    store, _result = pull(root, 'oci:%s:v1' % layout.path)
    inode = os.stat(store.layer_diff(layout.base.diff_id)).st_ino
    pull(root, 'oci:%s:base-only' % layout.path)
    assert os.stat(store.layer_diff(layout.base.diff_id)).st_ino == inode
    assert sorted(os.listdir(store.path('layers'))) == sorted(
        image_refs.hex_of(layer.diff_id) for layer in (layout.base, layout.top))
    # Removing one image keeps the layer the other still has.
    plan, collected = store.remove(image_refs.parse_reference('oci:%s:v1' % layout.path))
    assert plan['remove_image'] and collected['layers'] == [layout.top.diff_id]
    assert store.has_layer(layout.base.diff_id) and other in store.load_index()['images']


@needs_root
@pytest.mark.parametrize('what', ['layer', 'config', 'manifest'])
def test_a_blob_whose_digest_does_not_match_is_refused(tmp_path, layout, what):
    if what == 'layer':
        path = layout.blob_path(layout.top.descriptor['digest'])
    else:
        manifest = json.load(open(layout.blob_path(layout.v1)))
        path = layout.blob_path(manifest['config']['digest']) if what == 'config' else layout.blob_path(layout.v1)
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 1  # same size, other content
    with open(path, 'wb') as handle:
        handle.write(bytes(data))
    root = str(tmp_path / 'root')
    with pytest.raises((LayerError, ValidationError), match='mismatch|not a valid'):
        pull(root, 'oci:%s:v1' % layout.path)
    store = image_store.ImageStore(root)
    assert store.load_index()['images'] == {}
    assert not store.has_layer(layout.top.diff_id)
    assert not os.path.isdir(store.path('tmp')) or os.listdir(store.path('tmp')) == []


@needs_root
def test_tag_moves_and_the_old_image_is_pruned(tmp_path, layout):
    root = str(tmp_path / 'root')
    store, _result = pull(root, 'oci:%s:v1' % layout.path)
    newer = layout.layer([file_member('app/version', b'2')])
    v2 = layout.image([layout.base, newer], {'Cmd': ['sh']}, tag='v1')
    _store, (record, previous, pulled) = pull(root, 'oci:%s:v1' % layout.path)
    assert pulled and previous == layout.v1 and record['digest'] == v2
    removed = store.prune_dangling([previous])
    assert layout.v1 not in store.load_index()['images']
    assert removed['layers'] == [layout.top.diff_id]
    assert store.has_layer(layout.base.diff_id) and store.has_layer(newer.diff_id)


def _fake_container(root, name, normalised, layer_hexes):
    directory = os.path.join(root, 'containers', name)
    os.makedirs(directory)
    with open(os.path.join(directory, 'record.json'), 'w') as handle:
        json.dump({'name': name, 'config': {'image': normalised, 'image_config': {'layers': layer_hexes}}}, handle)
    return directory


@needs_root
def test_removing_an_image_a_container_uses(tmp_path, layout):
    root = str(tmp_path / 'root')
    store, _result = pull(root, 'oci:%s:v1' % layout.path)
    hexes = [image_refs.hex_of(layer.diff_id) for layer in (layout.base, layout.top)]
    container = _fake_container(root, 'web', 'oci:%s:v1@%s' % (layout.path, layout.v1), hexes)
    reference = image_refs.parse_reference('oci:%s:v1' % layout.path)
    with pytest.raises(ValidationError, match='used by container web'):
        store.remove(reference)
    assert layout.v1 in store.load_index()['images']
    plan, collected = store.remove(reference, force=True)
    assert plan['remove_image'] and plan['containers'] == ['web']
    assert collected['layers'] == [] and all(store.has_layer(h) for h in hexes)
    os.remove(os.path.join(container, 'record.json'))
    os.rmdir(container)
    assert sorted(store.collect()['layers']) == sorted('sha256:' + h for h in hexes)
    assert os.listdir(store.path('layers')) == [] and os.listdir(store.path('blobs', 'sha256')) == []


def _pull_in_child(args):
    root, text = args
    try:
        _store, (record, _previous, _pulled) = pull(root, text)
        return record['digest']
    except Exception as exc:  # pylint: disable=broad-except
        return 'error: %r' % exc


@needs_root
def test_parallel_pulls_of_the_same_image(tmp_path, layout):
    root = str(tmp_path / 'root')
    text = 'oci:%s:v1' % layout.path
    with multiprocessing.get_context('fork').Pool(6) as pool:
        results = pool.map(_pull_in_child, [(root, text)] * 12)
    assert results == [layout.v1] * 12
    store = image_store.ImageStore(root)
    assert sorted(os.listdir(store.path('layers'))) == sorted(
        image_refs.hex_of(layer.diff_id) for layer in (layout.base, layout.top))
    assert os.listdir(store.path('tmp')) == []
    assert list(store.load_index()['images']) == [layout.v1]


@needs_root
def test_find_in_layers_honours_whiteouts(tmp_path, layout):
    root = str(tmp_path / 'root')
    store, _result = pull(root, 'oci:%s:v1' % layout.path)
    lowers = [store.layer_diff(layout.top.diff_id), store.layer_diff(layout.base.diff_id)]
    assert image_store.find_in_layers(lowers, ['motd']) is None
    assert image_store.find_in_layers(lowers, ['opt', 'old']) == os.path.join(lowers[1], 'opt', 'old')
    opaque = layout.layer([dir_member('opt'), file_member('opt/.wh..wh..opq'), file_member('opt/new', b'n')])
    image = layout.image([layout.base, opaque], tag='opaque')
    pull(root, 'oci:%s:opaque' % layout.path)
    lowers = [store.layer_diff(opaque.diff_id), store.layer_diff(layout.base.diff_id)]
    assert image_store.find_in_layers(lowers, ['opt', 'old']) is None
    assert image_store.find_in_layers(lowers, ['opt', 'new']) is not None
    assert image in store.load_index()['images']


# -- what an image gives a container ------------------------------------------------------------------

@needs_root
def test_container_config_from_the_image(tmp_path, layout):
    root = str(tmp_path / 'root')
    container_images = image_options.ContainerImages(root)
    context = options.Context('web', root, images=container_images)
    with container_images.session(apply=True):
        given = options.normalise({'image': 'oci:%s:v1' % layout.path, 'env': {'B': '2'}}, context)
        config = options.complete(given, context)
        container_images.complete(config, given)
    assert given['image'] == 'oci:%s:v1@%s' % (layout.path, layout.v1)
    assert config['entrypoint'] == ['/app/run'] and config['command'] == ['serve']
    assert config['workdir'] == '/app' and config['user'] == '1000:1001' and config['stop_signal'] == 2
    assert config['env'] == {'B': '2'} and config['image_config']['env'] == {'A': '1'}
    assert config['rootfs'] is None
    spec = options.build_spec(config, 'f' * 64)
    assert spec['process']['args'] == ['/app/run', 'serve']
    assert 'A=1' in spec['process']['env'] and 'B=2' in spec['process']['env']
    assert spec['annotations']['io.runcible.image'] == given['image']

    # An entrypoint of the task's own drops the image's Cmd (as docker does); a command keeps the entrypoint.
    for extra, argv in (({'entrypoint': '/bin/sh -c'}, ['/bin/sh', '-c']),
                        ({'command': ['status']}, ['/app/run', 'status']),
                        ({'entrypoint': [], 'command': 'echo hi'}, ['echo', 'hi'])):
        given = options.normalise(dict(extra, image='oci:%s:v1' % layout.path), context)
        config = container_images.complete(options.complete(given, context), given)
        assert config['entrypoint'] + config['command'] == argv, extra

    # Recreated onto new content: what came from the old image follows the new one, what the task set stays.
    v2 = layout.image([layout.base], {'Cmd': ['sh'], 'WorkingDir': '/srv'}, tag='v1')
    previous = dict(config)
    previous.update(workdir='/app', user='0:0')  # workdir from the image, user set by the task
    previous['image_config'] = dict(container_images.image_config('x@' + layout.v1))
    container_images = image_options.ContainerImages(root, pull='always')
    context = options.Context('web', root, images=container_images)
    with container_images.session(apply=True):
        given = options.normalise({'image': 'oci:%s:v1' % layout.path}, context)
        config = dict(previous)
        config.update(given)
        container_images.complete(config, given, previous=previous)
    assert image_options.split_normalised(config['image'])[1] == v2
    assert config['workdir'] == '/srv' and config['user'] == '0:0'
    # The old image lost its tag and no container uses it: pruned when the session ended.
    assert layout.v1 not in image_store.ImageStore(root).load_index()['images']


def test_image_and_rootfs_are_exclusive(tmp_path):
    from ansible_collections.runcible.oci.plugins.module_utils._container_options import groups
    with pytest.raises(ValidationError, match='mutually exclusive'):
        groups.images({'image': 'x', 'rootfs': '/'}, options.Context('web', str(tmp_path)), False)
    with pytest.raises(ValidationError, match='direct'):
        groups.images({'rootfs_mode': 'direct'}, options.Context('web', str(tmp_path), {'image': 'oci:/x@' + DIGEST}),
                      False)


def test_pull_never_needs_a_local_image(tmp_path):
    container_images = image_options.ContainerImages(str(tmp_path), pull='never')
    with pytest.raises(ValidationError, match='pull is never'):
        container_images.normalise('docker://busybox')


@needs_root
def test_check_mode_reads_the_source_and_writes_nothing(tmp_path, layout):
    root = str(tmp_path / 'root')
    result = _image.run({'name': 'oci:%s:v1' % layout.path, 'root': root}, check_mode=True)
    assert result['changed'] and result['actions'] == ['imported']
    assert result['image']['digest'] == layout.v1 and result['diff']['after']['digest'] == layout.v1
    assert not os.path.exists(root)
    result = _image.run({'name': 'oci:%s:v1' % layout.path, 'root': root})
    assert result['changed'] and result['image']['size'] > 0
    assert not _image.run({'name': 'oci:%s:v1' % layout.path, 'root': root})['changed']
    listed = _image.info({'root': root})['images']
    assert [image['digest'] for image in listed] == [layout.v1]
    assert _image.info({'root': root, 'name': ['oci:/nowhere:x']})['images'] == []


@needs_root
def test_deleted_layers_are_restored_by_a_pull(tmp_path, layout):
    root = str(tmp_path / 'root')
    _image.run({'name': 'oci:%s:v1' % layout.path, 'root': root})
    store = image_store.ImageStore(root)
    shutil.rmtree(store.layer_dir(layout.top.diff_id))
    with pytest.raises(RuncibleError, match='missing from the image store'):
        image_store.lower_dirs(root, {'image': 'x', 'image_config': {'layers': [image_refs.hex_of(layout.top.diff_id)]}})
    result = _image.run({'name': 'oci:%s:v1' % layout.path, 'root': root}, check_mode=True)
    assert result['actions'] == ['imported', 'restored 1 deleted layer'] and not store.has_layer(layout.top.diff_id)
    result = _image.run({'name': 'oci:%s:v1' % layout.path, 'root': root})
    assert result['changed'] and store.has_layer(layout.top.diff_id)
    assert not _image.run({'name': 'oci:%s:v1' % layout.path, 'root': root})['changed']


def test_too_many_layers_for_one_overlay_mount(tmp_path):
    hexes = ['%064x' % index for index in range(60)]
    for layer in hexes:
        os.makedirs(os.path.join(str(tmp_path), 'images', 'layers', layer, 'diff'))
    with pytest.raises(RuncibleError, match='60 layers, too many for one overlay mount'):
        image_store.lower_dirs(str(tmp_path), {'image': 'x', 'image_config': {'layers': hexes}})
    assert len(image_store.lower_dirs(str(tmp_path), {'image': 'x', 'image_config': {'layers': hexes[:10]}})) == 10
