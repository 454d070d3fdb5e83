# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Images from a real registry: Debian's docker-registry on 127.0.0.1 (a free port), the test image
pushed to it with skopeo, then pulled by runcible.oci.image and runcible.oci.container."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from oci_build import LayoutBuilder, dir_member, file_member  # noqa: E402

from ansible_collections.runcible.oci.plugins.module_utils._runtime.image_store import ImageStore  # noqa: E402
from conftest import read_log, wait_for  # noqa: E402

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
REGISTRY_CONFIG = '''version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: runcible-tests
'''


def _program(name):
    return shutil.which(name, path=os.environ.get('PATH', '') + ':/usr/sbin:/usr/bin:/sbin:/bin')


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.fixture(scope='module')
def registry():
    """docker-registry serving on 127.0.0.1:<free port>, its data and config in a temp dir; stopped after."""
    missing = [name for name in ('docker-registry', 'skopeo') if not _program(name)]
    if missing:
        pytest.fail('%s not installed: run make setup (it installs the Debian packages docker-registry and skopeo)'
                    % ' and '.join(missing))
    base = tempfile.mkdtemp(prefix='rcr-', dir='/tmp')
    proc = None
    try:
        for _attempt in range(5):
            port = _free_port()
            config = os.path.join(base, 'config.yml')
            with open(config, 'w') as handle:
                handle.write(REGISTRY_CONFIG.format(data=os.path.join(base, 'data'), port=port))
            log = open(os.path.join(base, 'registry.log'), 'wb')
            proc = subprocess.Popen([_program('docker-registry'), 'serve', config], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            if wait_for(lambda: proc.poll() is not None or _answers(port), timeout=15) and proc.poll() is None:
                break
            proc.wait(timeout=5) if proc.poll() is not None else None
            proc = None
        if proc is None:
            with open(os.path.join(base, 'registry.log'), 'rb') as handle:
                pytest.fail('docker-registry did not start: %s' % handle.read().decode('utf-8', 'replace')[-2000:])
        yield {'port': port, 'host': '127.0.0.1:%d' % port, 'base': base}
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)


def _answers(port):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/v2/' % port, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def push(layout_path, tag, destination):
    subprocess.run([_program('skopeo'), 'copy', '--quiet', '--dest-tls-verify=false', 'oci:%s:%s' % (layout_path, tag),
                    destination], check=True, stdin=subprocess.DEVNULL, timeout=120)


def build(env, version):
    layout = LayoutBuilder(os.path.join(env.base, 'layout-%s' % version))
    base = layout.layer_from_dir(env.rootfs)
    app = layout.layer([dir_member('app'), file_member('app/VERSION', ('%s\n' % version).encode())])
    digest = layout.image([base, app], {'Entrypoint': ['sh', '-c'], 'Cmd': ['cat /app/VERSION; ' + LOOP],
                                        'Env': ['VERSION=%s' % version], 'WorkingDir': '/app'}, tag='build')
    return layout, digest


def test_pull_from_a_registry(env, registry):
    # A repository path component is [a-z0-9] runs joined by separators, never ending in one: letters
    # and digits of the test's own directory name only (mkdtemp names may end in "_").
    unique = ''.join(char for char in os.path.basename(env.base).lower() if char.isalnum() and char.isascii())
    repo = 'docker://%s/runcible/test-%s' % (registry['host'], unique)
    reference = repo + ':v1'
    layout, v1 = build(env, 'one')
    push(layout.path, 'build', reference)

    # runcible.oci.image four ways; skopeo copies into a dir: layout, so the digest is the registry's.
    pulled = env.four_ways({'name': reference, 'tls_verify': False}, module='runcible.oci.image')
    for result in pulled[:2]:
        assert result['actions'] == ['pulled'] and result['image']['digest'] == v1
    assert pulled[1]['image']['references'] == [reference]
    assert pulled[1]['image']['config']['env'] == {'VERSION': 'one'}
    # Without tls_verify: false skopeo refuses plain HTTP, with its own message.
    failed = env.playbook([{'runcible.oci.image': {'name': reference, 'force': True}, 'ignore_errors': True}])[0]
    assert failed['_status'] == 'failed' and 'skopeo inspect failed' in failed['msg'], failed['msg']

    # A container from it, four ways (the image is local: pull: missing asks no registry).
    args = {'name': 'reg-app', 'image': reference, 'network': 'none', 'stop_timeout': 1}
    created = env.four_ways(args)
    assert created[1]['container']['config']['image'] == '%s@%s' % (reference, v1)
    assert wait_for(lambda: 'one' in read_log(created[1]['container']['log_path']))

    # New content under the same tag; the container follows it with pull: always.
    layout2, v2 = build(env, 'two')
    push(layout2.path, 'build', reference)
    results = env.four_ways(dict(args, pull='always', tls_verify=False))
    for result in results[:2]:
        assert result['actions'] == ['recreated', 'started']
        assert result['diff']['before']['image'] == '%s@%s' % (reference, v1)
        assert result['diff']['after']['image'] == '%s@%s' % (reference, v2)
    assert wait_for(lambda: 'two' in read_log(results[1]['container']['log_path']))
    store = ImageStore(env.root)
    index = store.load_index()
    assert index['tags'] == {reference: v2} and sorted(index['images']) == [v2], 'v1 lost its tag and container'
    # The busybox base layer is the same in both (unpacked once); v1's own layer went with v1.
    assert len(os.listdir(store.path('layers'))) == 2

    # image module with force sees the tag already current.
    env.four_ways({'name': reference, 'tls_verify': False, 'force': True}, module='runcible.oci.image',
                  expect=(False,) * 4)
    # By digest (pinned) and by a tag that does not exist.
    pinned = env.playbook([{'runcible.oci.image': {'name': '%s@%s' % (repo, v1), 'tls_verify': False}}])[0]
    assert pinned['actions'] == ['pulled'] and pinned['image']['digest'] == v1
    missing = env.playbook([{'runcible.oci.image': {'name': repo + ':nope', 'tls_verify': False},
                             'ignore_errors': True}])[0]
    assert missing['_status'] == 'failed' and 'manifest unknown' in missing['msg']


def test_skopeo_missing_is_explained(env, monkeypatch):
    monkeypatch.setenv('PATH', '/nonexistent')
    from ansible_collections.runcible.oci.plugins.module_utils import _image
    from ansible_collections.runcible.oci.plugins.module_utils._runtime import host
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError
    monkeypatch.setattr(host.shutil, 'which', lambda *args, **kwargs: None)
    with pytest.raises(ValidationError, match='install the Debian package "skopeo"'):
        _image.run({'name': 'docker://127.0.0.1:1/none:v1', 'root': env.root, 'tls_verify': False})
    with pytest.raises(ValidationError, match='install the Debian package "skopeo"'):
        env.run(name='no-skopeo', image='docker://127.0.0.1:1/none:v1', network='none')
