# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filling a new image volume from the image: links copied as links, never followed; only dirs, files, links."""

from __future__ import annotations

import os

from ansible_collections.runcible.oci.plugins.module_utils._runtime.copy_up import copy_up


def test_copy_keeps_owners_modes_and_links_and_skips_special_files(tmp_path):
    root = tmp_path / 'root'
    data = root / 'srv' / 'data'
    (data / 'sub').mkdir(parents=True)
    (data / 'file').write_text('x')
    os.chown(str(data / 'file'), 1000, 1001)
    os.chmod(str(data / 'file'), 0o4751)  # after the chown, which clears set-uid
    os.symlink('/etc/shadow', str(data / 'link'))
    os.mkfifo(str(data / 'fifo'))
    os.chmod(str(data / 'sub'), 0o700)
    target = tmp_path / 'volume'
    target.mkdir()
    assert copy_up(str(root), '/srv/data', str(target)) is True
    assert sorted(os.listdir(str(target))) == ['file', 'link', 'sub']
    info = os.stat(str(target / 'file'))
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (1000, 1001, 0o4751)
    assert os.readlink(str(target / 'link')) == '/etc/shadow'
    assert os.stat(str(target / 'sub')).st_mode & 0o777 == 0o700
    # Not empty any more: never copied over.
    assert copy_up(str(root), '/srv/data', str(target)) is False


def test_a_link_out_of_the_root_resolves_inside_it(tmp_path):
    host = tmp_path / 'host-secrets'
    host.mkdir()
    (host / 'key').write_text('host secret')
    root = tmp_path / 'root'
    (root / 'inside').mkdir(parents=True)
    (root / 'inside' / 'ok').write_text('container file')
    os.symlink('../../../../' + str(host).lstrip('/'), str(root / 'evil'))  # ../ stops at the root
    os.symlink(str(host), str(root / 'evil-abs'))  # an absolute target starts again at the root
    target = tmp_path / 'volume'
    target.mkdir()
    assert copy_up(str(root), '/evil', str(target)) is False  # not in the root: nothing there
    assert copy_up(str(root), '/evil-abs', str(target)) is False
    assert os.listdir(str(target)) == []


def test_nothing_at_the_path_or_a_file_there_copies_nothing(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    (root / 'file').write_text('x')
    target = tmp_path / 'volume'
    target.mkdir()
    assert copy_up(str(root), '/missing', str(target)) is False
    assert copy_up(str(root), '/file', str(target)) is False


def test_hard_links_stay_links_and_holes_stay_holes(tmp_path):
    """An image author's 100 links to one file, or a sparse 1 GiB file, take no more room in the volume."""
    data = tmp_path / 'root' / 'data'
    data.mkdir(parents=True)
    (data / 'big').write_bytes(b'x' * 4096)
    for index in range(100):
        os.link(str(data / 'big'), str(data / ('link%d' % index)))
    with open(str(data / 'sparse'), 'wb') as handle:
        handle.seek(1 << 30)
        handle.write(b'end')
    target = tmp_path / 'volume'
    target.mkdir()
    assert copy_up(str(tmp_path / 'root'), '/data', str(target)) is True
    assert os.stat(str(target / 'link99')).st_ino == os.stat(str(target / 'big')).st_ino
    assert os.stat(str(target / 'big')).st_nlink == 101
    sparse = os.stat(str(target / 'sparse'))
    assert sparse.st_size == (1 << 30) + 3 and sparse.st_blocks * 512 < (1 << 20)
    with open(str(target / 'sparse'), 'rb') as handle:
        handle.seek(1 << 30)
        assert handle.read() == b'end'


def test_empty_dir_removes_links_without_following_them(tmp_path):
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.copy_up import empty_dir
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'keep').write_text('x')
    volume = tmp_path / 'volume'
    (volume / 'sub' / 'deeper').mkdir(parents=True)
    os.symlink(str(outside), str(volume / 'link'))
    os.symlink(str(outside), str(volume / 'sub' / 'link'))
    (volume / 'sub' / 'deeper' / 'f').write_text('y')
    empty_dir(str(volume))
    assert os.listdir(str(volume)) == [] and (outside / 'keep').exists()


def test_z_relabel_is_refused_for_a_volume_that_binds_a_host_directory(tmp_path, monkeypatch):
    """A bind volume of /usr mounted name:/x:Z would give the host's /usr the container's label."""
    import pytest
    from ansible_collections.runcible.oci.plugins.module_utils._runtime import volumes
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.engine import Engine
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError
    engine = Engine(str(tmp_path / 'root'), str(tmp_path / 'run'))
    records = {'bound': {'options': {'type': 'none', 'device': '/usr', 'o': 'bind'}},
               'disk': {'options': {'type': 'ext4', 'device': '/dev/sdz'}},
               'memory': {'options': {'type': 'tmpfs'}}, 'plain': {'options': {}}}
    monkeypatch.setattr(volumes, 'get', lambda root, name: records.get(name))
    for name in ('bound', 'disk'):
        with pytest.raises(ValidationError, match='relabel that yourself'):
            engine._check_relabel_volume(name)
    for name in ('memory', 'plain', 'missing'):
        engine._check_relabel_volume(name)
