# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CRIU discovery and checkpoint helpers, without a container (archives: test_checkpoint_archive.py)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import checkpoint
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError


def _fake_criu(tmp_path, name, rc, output):
    path = tmp_path / name
    path.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "Version: 9.9"; exit 0; fi\n'
                    'echo "%s"\nexit %d\n' % (output, rc))
    path.chmod(0o755)
    return str(path)


def test_find_criu_reports_the_check_output_and_what_to_install(tmp_path):
    bad = _fake_criu(tmp_path, 'criu-old', 1, 'Error (criu/vdso.c:627): vdso: Unexpected rt vDSO area bounds')
    with pytest.raises(RuncibleError) as caught:
        checkpoint.find_criu(search=[bad])
    message = caught.value.msg
    assert 'Unexpected rt vDSO area bounds' in message and bad in message
    assert 'criu check' in message and 'source package' in message
    assert caught.value.details['criu_check']


def test_find_criu_missing_names_the_package():
    with pytest.raises(RuncibleError, match='install the Debian package "criu"'):
        checkpoint.find_criu(search=['/nonexistent/criu'])


def test_find_criu_takes_the_first_that_passes_and_caches_it(tmp_path):
    bad = _fake_criu(tmp_path, 'criu-bad', 1, 'nope')
    good = _fake_criu(tmp_path, 'criu-good', 0, 'Looks good.')
    cache = tmp_path / 'cache'
    assert checkpoint.find_criu(str(cache), search=[bad, good]) == good
    assert good in json.loads((cache / 'criu-check.json').read_text())
    # Cached: the same binary (size, mtime) on the same boot is not checked again. Make its check fail
    # without changing size or mtime: the cached answer still stands.
    before = os.stat(good)
    text = open(good).read()
    with open(good, 'w') as handle:
        handle.write(text.replace('exit 0\n', 'exit 3\n', 1).replace('exit 0\n', 'exit 1\n'))
    os.utime(good, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(good).st_size == before.st_size
    assert checkpoint.find_criu(str(cache), search=[good]) == good
    with pytest.raises(RuncibleError):
        checkpoint.find_criu(None, search=[good])


@pytest.mark.parametrize('cap_eff, user, fails', [
    ('000001fffeffffff', '1000:1000', True),   # no CAP_SYS_RESOURCE (bit 24), another uid
    ('000001fffeffffff', '0:0', False),
    ('000001ffffffffff', '1000:1000', False),
])
def test_dump_needs_cap_sys_resource_for_other_uids(tmp_path, cap_eff, user, fails):
    status = tmp_path / 'status'
    status.write_text('Name:\tx\nCapEff:\t%s\n' % cap_eff)
    record = {'name': 'web', 'config': {'user': user}}
    if fails:
        with pytest.raises(ValidationError, match='CAP_SYS_RESOURCE'):
            checkpoint.check_dump_capabilities(record, str(status))
    else:
        checkpoint.check_dump_capabilities(record, str(status))


def test_pin_criu_cgroup_root_names_a_config_file_in_the_bundle(tmp_path):
    """runc gives CRIU no cgroup root on cgroup v2: a CRIU config file (org.criu.config) must map it."""
    bundle = tmp_path / 'bundle'
    bundle.mkdir()
    config_json = bundle / 'config.json'
    config_json.write_text(json.dumps({'ociVersion': '1.0.2', 'annotations': {'io.runcible.container.id': 'new'}}))

    class Paths(object):
        pass
    paths = Paths()
    paths.bundle, paths.config_json = str(bundle), str(config_json)
    checkpoint.pin_criu_cgroup_root(paths, '/machine.slice/runcible-new.scope')
    spec = json.loads(config_json.read_text())
    conf = str(bundle / 'criu-runc.conf')
    assert spec['annotations'] == {'io.runcible.container.id': 'new', 'org.criu.config': conf}
    assert open(conf).read() == 'cgroup-root /machine.slice/runcible-new.scope\n'
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600 and stat.S_IMODE(os.stat(str(config_json)).st_mode) == 0o600
    checkpoint.pin_criu_cgroup_root(paths, '/x.slice/runcible-new.scope')
    assert open(conf).read() == 'cgroup-root /x.slice/runcible-new.scope\n'


def test_a_restore_gets_the_containers_own_lsm_labels_never_the_images():
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.checkpoint import lsm_restore_args
    label = {'process': 'system_u:system_r:svirt_t:s0:c1,c2', 'mount': 'system_u:object_r:svirt_image_t:s0:c1,c2'}
    assert lsm_restore_args({'label': label, 'apparmor_profile': 'unconfined'}) == [
        '--lsm-profile', 'selinux:system_u:system_r:svirt_t:s0:c1,c2',
        '--lsm-mount-context', 'system_u:object_r:svirt_image_t:s0:c1,c2']
    assert lsm_restore_args({'label': 'disable', 'apparmor_profile': 'runcible-default'}) == [
        '--lsm-profile', 'apparmor:runcible-default']
    assert lsm_restore_args({'label': 'disable', 'apparmor_profile': 'unconfined'}) == []
    assert lsm_restore_args({}) == []
    assert lsm_restore_args({'privileged': True, 'label': label, 'apparmor_profile': 'runcible-default'}) == []
