# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checkpoint archives without a container: the format round trip, integrity, and hostile archives."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import checkpoint_archive as archives
from ansible_collections.runcible.oci.plugins.module_utils._runtime import untar
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.host import find_program

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='whiteouts (mknod), owners and trusted.* xattrs need root')
KEY = 'a key of thirty-two characters!!'
CHECKPOINT_ID = 'c0ffee' * 5 + '00'


def manifest(**changes):
    document = {'format': archives.ARCHIVE_FORMAT, 'version': archives.ARCHIVE_VERSION,
                'checkpoint_id': CHECKPOINT_ID, 'name': 'x', 'id': 'ab' * 32, 'config': {'rootfs': '/r'},
                'runtime': 'runc'}
    document.update(changes)
    return document


def _upper(tmp_path):
    upper = tmp_path / 'upper'
    (upper / 'etc').mkdir(parents=True)
    (upper / 'etc' / 'motd').write_text('hello\n')
    (upper / 'opaque').mkdir()
    os.setxattr(str(upper / 'opaque'), 'trusted.overlay.opaque', b'y')
    os.mknod(str(upper / 'etc' / 'gone'), stat.S_IFCHR | 0o600, os.makedev(0, 0))
    os.symlink('/etc/motd', str(upper / 'link'))
    os.link(str(upper / 'etc' / 'motd'), str(upper / 'hard'))
    os.chown(str(upper / 'etc' / 'motd'), 1000, 1000)
    os.mkfifo(str(upper / 'fifo'))
    return upper


def export(tmp_path, compress='none', key=None, name='a.tar', upper=True):
    images = tmp_path / 'images'
    images.mkdir(exist_ok=True)
    (images / 'pages-1.img').write_bytes(b'\x01' * 5000)
    config = tmp_path / 'config.json'
    config.write_text('{}')
    path = str(tmp_path / name)
    archives.write_archive(path, compress, manifest(), str(config), str(images),
                           str(_upper(tmp_path)) if upper else None, None, key=key)
    return path


@needs_root
@pytest.mark.parametrize('compress', ['zstd', 'gzip', 'none'])
def test_archive_round_trip_keeps_whiteouts_xattrs_links_owners(tmp_path, compress):
    if compress == 'zstd' and not find_program('zstd'):
        pytest.skip('the zstd program is not installed here')
    archive = export(tmp_path, compress)
    assert archives.file_compression(archive) == compress
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o600, 'it holds env values and process memory'
    checked, integrity = archives.read_archive(archive)
    assert checked['checkpoint_id'] == CHECKPOINT_ID and integrity == 'unsigned'
    out = tmp_path / 'out'
    out.mkdir()
    assert archives.read_archive(archive, str(out))[0] == checked
    assert (out / 'images' / 'pages-1.img').read_bytes() == b'\x01' * 5000
    assert (out / 'upper' / 'etc' / 'motd').read_text() == 'hello\n'
    assert os.stat(str(out / 'upper' / 'etc' / 'motd')).st_uid == 1000
    gone = os.lstat(str(out / 'upper' / 'etc' / 'gone'))
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    assert os.getxattr(str(out / 'upper' / 'opaque'), 'trusted.overlay.opaque') == b'y'
    assert os.readlink(str(out / 'upper' / 'link')) == '/etc/motd'
    assert os.stat(str(out / 'upper' / 'hard')).st_ino == os.stat(str(out / 'upper' / 'etc' / 'motd')).st_ino
    assert stat.S_ISFIFO(os.lstat(str(out / 'upper' / 'fifo')).st_mode)
    assert sorted(os.listdir(str(tmp_path))) == sorted(['a.tar', 'config.json', 'images', 'out', 'upper'])


def test_write_archive_into_a_missing_directory_fails_clearly(tmp_path):
    with pytest.raises(ValidationError, match='does not exist'):
        archives.write_archive(str(tmp_path / 'no' / 'a.tar'), 'none', {}, '/dev/null', str(tmp_path), None, None)


@needs_root
def test_export_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path):
    """Item 3: the destination (or a predictable temp name) planted as a symlink to a host file."""
    victim = tmp_path / 'victim'
    victim.write_text('host file\n')
    os.symlink(str(victim), str(tmp_path / 'a.tar'))
    for pid in range(os.getpid() - 5, os.getpid() + 5):  # the old predictable temp names
        os.symlink(str(victim), str(tmp_path / ('.a.tar.tmp-%d' % pid)))
    archive = export(tmp_path)
    assert victim.read_text() == 'host file\n'
    assert not os.path.islink(archive) and stat.S_IMODE(os.stat(archive).st_mode) == 0o600
    assert archives.read_archive(archive)[1] == 'unsigned'


@needs_root
def test_export_never_follows_a_symlink_of_the_upper_dir(tmp_path):
    """A process in the container plants upper/etc/shadow -> a host file: the archive holds the link, not the file."""
    secret = tmp_path / 'host-secret'
    secret.write_text('root:$6$secret\n')
    upper = _upper(tmp_path)
    os.symlink(str(secret), str(upper / 'etc' / 'shadow'))
    images = tmp_path / 'images'
    images.mkdir()
    path = str(tmp_path / 'b.tar')
    archives.write_archive(path, 'none', manifest(), _config(tmp_path), str(images), str(upper), None)
    with tarfile.open(path) as tar:
        member = tar.getmember('upper/etc/shadow')
        assert member.issym() and member.linkname == str(secret)
        assert b'$6$secret' not in open(path, 'rb').read()


def _config(tmp_path):
    config = tmp_path / 'config.json'
    config.write_text('{}')
    return str(config)


# -- integrity ----------------------------------------------------------------------------------------

@needs_root
def test_integrity_verified_with_the_key(tmp_path):
    archive = export(tmp_path, 'gzip', key=KEY)
    assert archives.read_archive(archive, key=KEY)[1] == 'verified'
    assert archives.read_archive(archive)[1] == 'not checked'
    with pytest.raises(ValidationError, match='changed after its export, or exported with another key'):
        archives.read_archive(archive, key=KEY.upper())


@needs_root
def test_a_tampered_archive_is_refused(tmp_path):
    """The archive is rewritten with one byte of process memory changed: the digest no longer matches."""
    archive = export(tmp_path, 'none', key=KEY)
    tampered = str(tmp_path / 'tampered.tar')
    with tarfile.open(archive) as source, tarfile.open(tampered, 'w', format=tarfile.PAX_FORMAT) as target:
        for member in source:
            data = source.extractfile(member).read() if member.isreg() else None
            if member.name == 'images/pages-1.img':
                data = b'\x02' + data[1:]
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    with pytest.raises(ValidationError, match='changed after its export'):
        archives.read_archive(tampered, key=KEY)
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(ValidationError, match='changed after its export'):
        archives.read_archive(tampered, str(out), key=KEY)


@needs_root
def test_an_unsigned_archive_is_refused_when_a_key_is_given(tmp_path):
    archive = export(tmp_path, 'none')
    with pytest.raises(ValidationError, match='carries no integrity digest'):
        archives.read_archive(archive, key=KEY)


def test_short_keys_are_refused():
    with pytest.raises(ValidationError, match='at least 16 characters'):
        archives.integrity_digest('short')


# -- hostile archives (item 1 and 2 of the hostile-input issue) -------------------------------------------

def _member(name, data=None, kind=tarfile.REGTYPE, linkname='', major=0, minor=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.devmajor, info.devminor = major, minor
    info.mode = 0o644
    if data is not None:
        info.size = len(data)
    return info, data


def _hostile(path, members, first=None):
    with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as tar:
        data = json.dumps(first or manifest()).encode()
        info = tarfile.TarInfo('manifest.json')
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


HOSTILE = {
    'symlink, then a regular member of the same name': (
        [_member('config.json', b'{}'), _member('images/x', b'x'),
         _member('upper/v', kind=tarfile.SYMTYPE, linkname='{victim}'), _member('upper/v', b'overwritten')],
        'appears twice'),
    'symlink to a host dir, then ./ through it': (
        [_member('config.json', b'{}'), _member('images/x', b'x'),
         _member('upper/d', kind=tarfile.SYMTYPE, linkname='{victim_dir}'), _member('upper/./d/x', b'pwned')],
        'lies below upper/d, which is a symlink'),
    'symlink to a host dir, then // through it': (
        [_member('config.json', b'{}'), _member('images/x', b'x'),
         _member('upper/d', kind=tarfile.SYMTYPE, linkname='{victim_dir}'), _member('upper//d/x', b'pwned')],
        'lies below upper/d, which is a symlink'),
    'setuid file through a symlinked dir': (
        [_member('config.json', b'{}'), _member('images/x', b'x'),
         _member('upper/d', kind=tarfile.SYMTYPE, linkname='{victim_dir}'), _member('upper/d/suid', b'#!')],
        'lies below upper/d'),
    'dot-dot': ([_member('config.json', b'{}'), _member('images/../../escaped', b'x')], 'contains ".."'),
    'absolute': ([_member('config.json', b'{}'), _member('/tmp/escaped-abs', b'x')], 'absolute path'),
    'hard link to a host file': ([_member('config.json', b'{}'), _member('images/x', b'x'),
                                  _member('upper/passwd', kind=tarfile.LNKTYPE, linkname='/etc/passwd')],
                                 'absolute path'),
    'hard link to a later or missing member': ([_member('config.json', b'{}'), _member('images/x', b'x'),
                                                _member('upper/a', kind=tarfile.LNKTYPE, linkname='upper/b')],
                                               'not an earlier file'),
    'hard link out of upper': ([_member('config.json', b'{}'), _member('images/x', b'x'),
                                _member('upper/a', kind=tarfile.LNKTYPE, linkname='images/x')], 'out of upper'),
    'device node': ([_member('config.json', b'{}'), _member('images/x', b'x'),
                     _member('upper/null', kind=tarfile.CHRTYPE, major=1, minor=3)], 'device node'),
    'symlink in images': ([_member('config.json', b'{}'), _member('images/x', kind=tarfile.SYMTYPE, linkname='/')],
                          'regular file or directory'),
    'foreign member': ([_member('config.json', b'{}'), _member('etc/shadow', b'x')], 'not part of'),
    'config.json twice': ([_member('config.json', b'{}'), _member('./config.json', b'{}')], 'appears twice'),
    'member after the integrity digest': ([_member('config.json', b'{}'), _member('images/x', b'x'),
                                           _member('integrity.json', b'{}'), _member('upper/late', b'x')],
                                          'must be the last member'),
}


@needs_root
@pytest.mark.parametrize('dry_run', [True, False], ids=['check mode', 'unpack'])
@pytest.mark.parametrize('case', sorted(HOSTILE))
def test_hostile_archives_are_refused_and_never_write_outside(tmp_path, case, dry_run):
    victim = tmp_path / 'victim'
    victim.write_text('host file\n')
    victim_dir = tmp_path / 'victim-dir'
    victim_dir.mkdir()
    members = []
    for info, data in HOSTILE[case][0]:
        info.linkname = info.linkname.replace('{victim_dir}', str(victim_dir)).replace('{victim}', str(victim))
        members.append((info, data))
    path = str(tmp_path / 'evil.tar')
    _hostile(path, members)
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(ValidationError, match=HOSTILE[case][1]):
        archives.read_archive(path, None if dry_run else str(out))
    assert victim.read_text() == 'host file\n' and os.listdir(str(victim_dir)) == []
    assert not os.path.exists('/tmp/escaped-abs')
    if dry_run:
        assert os.listdir(str(out)) == []


@needs_root
def test_a_sparse_member_cannot_fill_the_disk(tmp_path):
    import subprocess
    source = tmp_path / 'src'
    (source / 'images').mkdir(parents=True)
    with open(str(source / 'images' / 'pages-1.img'), 'wb') as handle:
        handle.seek((301 << 20) - 1)
        handle.write(b'x')
    (source / 'config.json').write_text('{}')
    (source / 'manifest.json').write_text(json.dumps(manifest()))
    path = str(tmp_path / 'sparse.tar')
    subprocess.run(['tar', '--sparse', '--format=posix', '-C', str(source), '-cf', path, 'manifest.json',
                    'config.json', 'images'], check=True)
    assert os.path.getsize(path) < 64 << 10
    out = tmp_path / 'out'
    out.mkdir()
    with pytest.raises(ValidationError, match='larger than the limit'):
        archives.read_archive(path, str(out), limits=untar.Limits(max_bytes=1 << 20))


@pytest.mark.parametrize('changes, message', [
    ({'checkpoint_id': '../../../../x'}, 'not a checkpoint id'),
    ({'checkpoint_id': 'c1'}, 'not a checkpoint id'),
    ({'id': '../x'}, 'not a container id'),
    ({'runtime': '/tmp/evil/runc'}, 'runtime'),
    ({'config': 'x'}, 'wrong type'),
    ({'surprise': 1}, 'unknown manifest fields surprise'),
    ({'format': 'other'}, 'foreign manifest'),
    ({'version': 2}, 'archive version 2'),
    ({'tcp_established': 'yes'}, 'wrong type'),
])
def test_manifest_fields_are_checked(changes, message):
    with pytest.raises(ValidationError, match=message):
        archives.validate_manifest(json.dumps(manifest(**changes)).encode(), 'a.tar')
