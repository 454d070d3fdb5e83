# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build OCI image layouts in tests: layers as tar(.gz) with correct digests and diff_ids, configs, tags.

Used by the unit and the integration tests (both put this directory on sys.path)::

    layout = LayoutBuilder(path)
    base = layout.layer_from_dir(rootfs)                 # every file of a directory
    app = layout.layer([file_member('app/run.sh', b'#!/bin/sh\\n...', mode=0o755)])
    digest = layout.image([base, app], {'Entrypoint': ['/app/run.sh'], 'Env': ['A=1']}, tag='v1')
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'
REF_NAME = 'org.opencontainers.image.ref.name'


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def file_member(name, data=b'', mode=0o644, uid=0, gid=0, mtime=1700000000, xattrs=None):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.uid, info.gid, info.mtime = uid, gid, mtime
    if xattrs:
        info.pax_headers = dict(('SCHILY.xattr.' + key, value) for key, value in xattrs.items())
    return info, data


def dir_member(name, mode=0o755, uid=0, gid=0, mtime=1700000000):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.uid, info.gid, info.mtime = uid, gid, mtime
    return info, None


def symlink_member(name, target, mtime=1700000000):
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    info.mtime = mtime
    return info, None


def hardlink_member(name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    info.mode = 0o644
    return info, None


def device_member(name, major=1, minor=3, kind=tarfile.CHRTYPE, mode=0o666):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = major, minor
    info.mode = mode
    return info, None


def fifo_member(name, mode=0o600):
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    info.mode = mode
    return info, None


def tar_bytes(members):
    """A PAX tar of ``members`` ((TarInfo, data or None) pairs), in the order given."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def tar_of_dir(path):
    """A PAX tar of everything under ``path`` (names relative, sorted, owners and modes kept)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT) as archive:
        archive.add(path, arcname='.', recursive=False)
        for directory, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(dirs + files):
                full = os.path.join(directory, name)
                archive.add(full, arcname='./' + os.path.relpath(full, path), recursive=False)
    return raw.getvalue()


class Layer(object):
    def __init__(self, descriptor, diff_id, tar):
        self.descriptor = descriptor
        self.diff_id = diff_id
        self.tar = tar


class LayoutBuilder(object):
    """An OCI image layout directory under construction (index.json rewritten on every image)."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, 'blobs', 'sha256'), exist_ok=True)
        with open(os.path.join(path, 'oci-layout'), 'w') as handle:
            json.dump({'imageLayoutVersion': '1.0.0'}, handle)
        self.manifests = []
        if os.path.isfile(os.path.join(path, 'index.json')):
            with open(os.path.join(path, 'index.json')) as handle:
                self.manifests = json.load(handle).get('manifests', [])
        self._write_index()

    def blob(self, data):
        digest = sha256(data)
        with open(self.blob_path(digest), 'wb') as handle:
            handle.write(data)
        return digest

    def blob_path(self, digest):
        return os.path.join(self.path, 'blobs', 'sha256', digest.split(':', 1)[1])

    def layer_from_tar(self, tar, compress=True):
        data = gzip.compress(tar, mtime=0) if compress else tar
        digest = self.blob(data)
        return Layer({'mediaType': LAYER_GZIP if compress else LAYER_TAR, 'digest': digest, 'size': len(data)},
                     sha256(tar), tar)

    def layer(self, members, compress=True):
        return self.layer_from_tar(tar_bytes(members), compress)

    def layer_from_dir(self, path, compress=True):
        return self.layer_from_tar(tar_of_dir(path), compress)

    def image(self, layers, config=None, tag=None, architecture='amd64'):
        """Write config + manifest of an image of ``layers`` (bottom first); tag it; -> manifest digest."""
        document = {
            'created': '2026-01-01T00:00:00Z', 'architecture': architecture, 'os': 'linux',
            'config': dict(config or {}),
            'rootfs': {'type': 'layers', 'diff_ids': [layer.diff_id for layer in layers]},
        }
        config_bytes = json.dumps(document, sort_keys=True).encode()
        manifest = {
            'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
            'config': {'mediaType': OCI_CONFIG, 'digest': self.blob(config_bytes), 'size': len(config_bytes)},
            'layers': [layer.descriptor for layer in layers],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        digest = self.blob(manifest_bytes)
        descriptor = {'mediaType': OCI_MANIFEST, 'digest': digest, 'size': len(manifest_bytes)}
        if tag:
            descriptor['annotations'] = {REF_NAME: tag}
            self.manifests = [m for m in self.manifests if (m.get('annotations') or {}).get(REF_NAME) != tag]
        self.manifests.append(descriptor)
        self._write_index()
        return digest

    def _write_index(self):
        with open(os.path.join(self.path, 'index.json'), 'w') as handle:
            json.dump({'schemaVersion': 2, 'manifests': self.manifests}, handle)

    def archive(self, target):
        """This layout as an ``oci-archive`` tar at ``target``."""
        with tarfile.open(target, 'w', format=tarfile.PAX_FORMAT) as archive:
            for name in ('oci-layout', 'index.json'):
                archive.add(os.path.join(self.path, name), arcname=name)
            archive.add(os.path.join(self.path, 'blobs'), arcname='blobs')
        return target
