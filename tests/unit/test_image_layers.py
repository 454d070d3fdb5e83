# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe layer unpacking: hostile members are refused and nothing is written outside the layer dir."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from oci_build import (dir_member, device_member, fifo_member, file_member, hardlink_member, sha256,  # noqa: E402
                       symlink_member, tar_bytes)

from ansible_collections.runcible.oci.plugins.module_utils._runtime import layers  # noqa: E402

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='overlay whiteouts (mknod), owners and trusted.* xattrs '
                                                          'need root')


@pytest.fixture
def box(tmp_path):
    """A layer dir and, beside it, an ``outside`` dir with a secret that no layer may touch."""
    dest = tmp_path / 'layer'
    dest.mkdir()
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'secret').write_text('host secret\n')
    return dest, outside


def unpack(dest, members, **kwargs):
    tar = tar_bytes(members)
    blob = gzip.compress(tar, mtime=0)
    return layers.unpack_blob(io.BytesIO(blob), str(dest), expected_digest=sha256(blob), expected_size=len(blob),
                              expected_diff_id=sha256(tar), **kwargs)


def snapshot(path):
    """Every entry under ``path`` with its type, size and link count: to prove nothing changed."""
    result = {}
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(directory, name)
            info = os.lstat(full)
            result[os.path.relpath(full, path)] = (stat.S_IFMT(info.st_mode), info.st_size, info.st_nlink,
                                                   info.st_mtime_ns)
    return result


HOSTILE = {
    'dot-dot member': [file_member('../outside/pwned', b'x')],
    'nested dot-dot member': [dir_member('a'), file_member('a/../../outside/pwned', b'x')],
    'absolute member': [file_member('/tmp/pwned-by-layer', b'x')],
    'absolute symlink, then a write through it': [
        symlink_member('link', '{outside}'), file_member('link/pwned', b'x')],
    'relative symlink, then a write through it': [
        symlink_member('link', '../outside'), file_member('link/pwned', b'x')],
    'symlink, then a directory through it': [symlink_member('link', '{outside}'), dir_member('link/sub')],
    'symlink parent deeper': [dir_member('a'), symlink_member('a/b', '/'), file_member('a/b/etc/pwned', b'x')],
    'hard link to an absolute host file': [hardlink_member('stolen', '{outside}/secret')],
    'hard link with ..': [hardlink_member('stolen', '../outside/secret')],
    'hard link through a symlink': [symlink_member('link', '{outside}'), hardlink_member('stolen', 'link/secret')],
    'hard link to a file not in the layer': [hardlink_member('stolen', 'etc/shadow')],
    'whiteout of ..': [dir_member('a'), file_member('a/.wh...')],
    'whiteout of .': [file_member('.wh..')],
    'empty whiteout': [file_member('.wh.')],
    'member below a whiteout': [file_member('.wh.x/y', b'x')],
    'whiteout through a symlink': [symlink_member('link', '{outside}'), file_member('link/.wh.secret')],
    'opaque marker through a symlink': [symlink_member('link', '{outside}'), file_member('link/.wh..wh..opq')],
}


@needs_root
@pytest.mark.parametrize('case', sorted(HOSTILE))
def test_hostile_layers_are_refused(box, case):
    dest, outside = box
    before = snapshot(str(outside))
    members = []
    for info, data in HOSTILE[case]:
        info.name = info.name.replace('{outside}', str(outside))
        info.linkname = info.linkname.replace('{outside}', str(outside))
        members.append((info, data))
    with pytest.raises(layers.LayerError) as caught:
        unpack(dest, members)
    assert 'refusing' in caught.value.msg or 'not in this layer' in caught.value.msg, caught.value.msg
    assert snapshot(str(outside)) == before
    assert os.stat(str(outside / 'secret')).st_nlink == 1
    assert not os.path.exists('/tmp/pwned-by-layer')
    assert not _has_opaque(str(outside))


def _has_opaque(path):
    try:
        os.getxattr(path, 'trusted.overlay.opaque')
        return True
    except OSError:
        return False


@needs_root
def test_a_later_file_replaces_a_symlink_instead_of_writing_through_it(box):
    dest, outside = box
    unpack(dest, [symlink_member('f', str(outside / 'secret')), file_member('f', b'layer data')])
    assert (outside / 'secret').read_text() == 'host secret\n'
    assert not os.path.islink(str(dest / 'f')) and (dest / 'f').read_bytes() == b'layer data'


@needs_root
def test_whiteouts_become_overlay_whiteouts(box):
    dest, _outside = box
    result = unpack(dest, [dir_member('etc'), file_member('etc/.wh.motd'), dir_member('opt'),
                           file_member('opt/.wh..wh..opq'), file_member('opt/kept', b'k'),
                           file_member('.wh..wh.plnk')])
    info = os.lstat(str(dest / 'etc' / 'motd'))
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(0, 0)
    assert os.getxattr(str(dest / 'opt'), 'trusted.overlay.opaque') == b'y'
    assert (dest / 'opt' / 'kept').read_bytes() == b'k'
    assert not os.path.exists(str(dest / '.wh..wh.plnk'))
    assert result['skipped'] == {'aufs metadata': 1}


@needs_root
def test_owners_modes_mtimes_and_xattrs_are_kept(box):
    dest, _outside = box
    unpack(dest, [dir_member('d', mode=0o750, uid=33, gid=44, mtime=1600000000),
                  file_member('d/suid', b'#!/bin/sh\n', mode=0o4755, uid=0, gid=0, mtime=1600000001),
                  file_member('d/owned', b'o', mode=0o640, uid=1234, gid=5678, mtime=1600000002,
                              xattrs={'user.note': 'kept', 'trusted.overlay.redirect': '/etc',
                                      'security.selinux': 'system_u:object_r:etc_t:s0'}),
                  symlink_member('d/link', '/nowhere', mtime=1600000003),
                  hardlink_member('d/hard', 'd/owned'), fifo_member('d/fifo')])
    directory = os.lstat(str(dest / 'd'))
    assert (stat.S_IMODE(directory.st_mode), directory.st_uid, directory.st_gid) == (0o750, 33, 44)
    assert directory.st_mtime == 1600000000  # set after its entries were written
    assert stat.S_IMODE(os.lstat(str(dest / 'd' / 'suid')).st_mode) == 0o4755
    owned = os.lstat(str(dest / 'd' / 'owned'))
    assert (owned.st_uid, owned.st_gid, stat.S_IMODE(owned.st_mode), owned.st_mtime) == (1234, 5678, 0o640, 1600000002)
    assert os.getxattr(str(dest / 'd' / 'owned'), 'user.note') == b'kept'
    assert 'trusted.overlay.redirect' not in os.listxattr(str(dest / 'd' / 'owned'))
    assert 'security.selinux' not in os.listxattr(str(dest / 'd' / 'owned')) or \
        os.getxattr(str(dest / 'd' / 'owned'), 'security.selinux') != b'system_u:object_r:etc_t:s0'
    assert os.readlink(str(dest / 'd' / 'link')) == '/nowhere'
    assert os.lstat(str(dest / 'd' / 'link')).st_mtime == 1600000003
    assert os.lstat(str(dest / 'd' / 'hard')).st_ino == owned.st_ino
    assert stat.S_ISFIFO(os.lstat(str(dest / 'd' / 'fifo')).st_mode)


@needs_root
def test_device_nodes_only_as_root(box, tmp_path):
    dest, _outside = box
    result = unpack(dest, [device_member('null', 1, 3)], as_root=False)
    assert not os.path.lexists(str(dest / 'null')) and result['skipped'] == {'device node': 1}
    other = tmp_path / 'as-root'
    other.mkdir()
    unpack(other, [device_member('null', 1, 3)], as_root=True)
    assert os.lstat(str(other / 'null')).st_rdev == os.makedev(1, 3)


@needs_root
def test_directory_replaced_by_file_and_back(box):
    dest, _outside = box
    unpack(dest, [dir_member('x'), file_member('x/inner', b'i'), file_member('x', b'now a file'),
                  file_member('y', b'file'), dir_member('y'), file_member('y/z', b'z')])
    assert (dest / 'x').read_bytes() == b'now a file'
    assert (dest / 'y' / 'z').read_bytes() == b'z'


@needs_root
def test_tar_bomb_is_bounded(box):
    dest, _outside = box
    with pytest.raises(layers.LayerError, match='larger than the limit'):
        unpack(dest, [file_member('big', b'\0' * (2 << 20))], limits=layers.Limits(max_bytes=1 << 20))
    with pytest.raises(layers.LayerError, match='more than 3 members'):
        unpack(dest, [file_member('f%d' % index, b'') for index in range(5)], limits=layers.Limits(max_entries=3))


@needs_root
def test_digests_are_verified(box):
    dest, _outside = box
    tar = tar_bytes([file_member('a', b'a')])
    blob = gzip.compress(tar, mtime=0)
    with pytest.raises(layers.LayerError, match='blob digest mismatch'):
        layers.unpack_blob(io.BytesIO(blob), str(dest), expected_digest=sha256(b'other'), expected_size=len(blob))
    with pytest.raises(layers.LayerError, match='diff_id mismatch'):
        layers.unpack_blob(io.BytesIO(blob), str(dest), expected_digest=sha256(blob), expected_diff_id=sha256(b'x'))
    with pytest.raises(layers.LayerError, match='larger than'):
        layers.unpack_blob(io.BytesIO(blob), str(dest), expected_digest=sha256(blob), expected_size=len(blob) - 1)
    with pytest.raises(layers.LayerError, match='not a valid'):
        layers.unpack_blob(io.BytesIO(blob[:len(blob) // 2]), str(dest))


@needs_root
@pytest.mark.parametrize('compression', ['none', 'gzip', 'zstd'])
def test_compressions(tmp_path, compression):
    tar = tar_bytes([dir_member('etc'), file_member('etc/hostname', b'box\n')])
    if compression == 'gzip':
        blob = gzip.compress(tar)
    elif compression == 'zstd':
        zstd = shutil.which('zstd')
        if not zstd:
            pytest.skip('the zstd program is not installed (make setup installs it)')
        blob = subprocess.run([zstd, '-q', '-c'], input=tar, stdout=subprocess.PIPE, check=True).stdout
    else:
        blob = tar
    dest = tmp_path / 'layer'
    dest.mkdir()
    result = layers.unpack_blob(io.BytesIO(blob), str(dest), expected_digest=sha256(blob), expected_size=len(blob),
                                expected_diff_id=sha256(tar), zstd_path=shutil.which('zstd'))
    assert result['compression'] == compression
    assert (dest / 'etc' / 'hostname').read_bytes() == b'box\n'


def test_member_parts():
    assert layers.member_parts('./usr//bin/./sh') == ['usr', 'bin', 'sh']
    assert layers.member_parts('./') == []
    for bad in ('/etc/passwd', '../x', 'a/../../b', ''):
        with pytest.raises(layers.LayerError):
            layers.member_parts(bad)


def _sparse_tar(tmp_path, tar_format, apparent=301 << 20):
    """A tar made by GNU tar of one sparse file of ``apparent`` bytes: a few KiB of tar."""
    source = tmp_path / ('sparse-src-' + tar_format)
    source.mkdir()
    with open(str(source / 'sparse'), 'wb') as handle:
        handle.write(b'head')
        handle.seek(apparent - 4)
        handle.write(b'tail')
    tar = subprocess.run(['tar', '--sparse', '--format=' + tar_format, '-C', str(source), '-cf', '-', 'sparse'],
                         stdout=subprocess.PIPE, check=True).stdout
    assert len(tar) < 64 << 10, len(tar)
    return tar


@needs_root
@pytest.mark.parametrize('tar_format', ['gnu', 'posix'])
def test_a_sparse_member_counts_at_its_expanded_size(box, tmp_path, tar_format):
    """A few KiB of tar with a 301 MiB sparse member is refused under a 1 MiB limit, before a byte is written."""
    if not shutil.which('tar'):
        pytest.skip('GNU tar is not installed here')
    dest, _outside = box
    tar = _sparse_tar(tmp_path, tar_format)
    blob = gzip.compress(tar, mtime=0)
    with pytest.raises(layers.LayerError, match='larger than the limit') as caught:
        layers.unpack_blob(io.BytesIO(blob), str(dest), expected_digest=sha256(blob), expected_size=len(blob),
                           expected_diff_id=sha256(tar), limits=layers.Limits(max_bytes=1 << 20))
    assert 'sparse' in caught.value.msg
    assert os.listdir(str(dest)) == []


@needs_root
def test_a_sparse_member_within_the_limit_stays_sparse(box, tmp_path):
    if not shutil.which('tar'):
        pytest.skip('GNU tar is not installed here')
    dest, _outside = box
    tar = _sparse_tar(tmp_path, 'posix', apparent=64 << 20)
    result = layers.unpack_blob(io.BytesIO(tar), str(dest), expected_diff_id=sha256(tar))
    written = os.stat(str(dest / 'sparse'))
    assert written.st_size == 64 << 20 and result['bytes'] == 64 << 20
    assert written.st_blocks * 512 <= 4 << 20, 'holes stay holes (only the 1 MiB chunks with data are written)'
    with open(str(dest / 'sparse'), 'rb') as handle:
        assert handle.read(4) == b'head'
        handle.seek((64 << 20) - 4)
        assert handle.read() == b'tail'


def test_check_mode_unpacker_writes_nothing_and_sees_the_same_attacks(tmp_path):
    """dry_run: the model alone refuses what the filesystem walk would (members below symlinks, hard links)."""
    import tarfile
    from ansible_collections.runcible.oci.plugins.module_utils._runtime import untar
    for members in ([symlink_member('link', '/etc'), file_member('link/passwd', b'x')],
                    [symlink_member('link', '/etc'), file_member('./link//passwd', b'x')],
                    [file_member('f', b'x'), file_member('f/g', b'x')],
                    [hardlink_member('stolen', 'etc/shadow')]):
        archive = tarfile.open(fileobj=io.BytesIO(tar_bytes(members)), mode='r|')
        with pytest.raises(untar.UnpackError, match='refusing'):
            untar.Unpacker(str(tmp_path / 'never'), layers.LayerPolicy(), dry_run=True).unpack(archive)
    assert not os.path.exists(str(tmp_path / 'never'))
