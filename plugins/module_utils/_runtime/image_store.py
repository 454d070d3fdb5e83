# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local image store under ``root/images``, and the overlay lower dirs of a container made from an image.

The store::

    root/images/index.json              image records by manifest digest, and tags: reference -> digest
    root/images/blobs/sha256/HEX        manifests and configs, content-addressed, verified on every read
    root/images/layers/HEX/diff/        a layer unpacked once (HEX: its diff_id), shared read-only by every
                                        container of every image that has it, as an overlay lower dir
    root/images/layers/HEX/layer.json   what was unpacked (blob digest, sizes); a layer without it is not there
    root/images/userdb/HEX/etc/         the image's /etc/passwd and /etc/group, to resolve user names
    root/images/locks/                  gc.lock (imports hold it shared, collection exclusive),
                                        index.lock (index read-modify-write), layer-HEX.lock (one unpack)
    root/images/tmp/                    staging: layers being unpacked, skopeo downloads

The content chain is verified end to end: the manifest's digest is the image's identity, the
manifest names the config and the layer blobs by digest, the config names each layer's
uncompressed content by diff_id; every blob read is checked against its digest and size, and a
layer is unpacked (``layers.unpack_blob``) while both its digests are computed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
import tempfile
import time
from typing import TYPE_CHECKING

from .errors import RuncibleError, ValidationError
from .files import atomic_write, lock_file, try_lock_file
from .image_refs import hex_of, sha256_digest, split_normalised, verify_bytes
from .image_sources import MAX_JSON, DirSource, config_defaults, media_type_of, parse_json, read_limited, validate_manifest
from .host import find_program
from .skopeo import SkopeoClient
from .untar import OPAQUE_XATTR

if TYPE_CHECKING:
    from typing import Any, Iterable, Iterator

    from .image_refs import Reference
    from .image_sources import Resolved, _Source
    from .untar import Limits

INDEX_VERSION = 1
MAX_USERDB = 1 << 20
LOCK_TIMEOUT = 600.0
OVERLAY_OPTIONS_MAX = 3800


class ImageStore(object):
    """The local images of one ``root`` (see the module docstring)."""

    def __init__(self, root: str, limits: Limits | None = None, tls_verify: bool = True, auth_file: str | None = None) -> None:
        self.root = os.path.normpath(root)
        self.dir = os.path.join(self.root, 'images')
        self.limits = limits
        self.tls_verify = tls_verify
        self.auth_file = auth_file

    # -- paths ----------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def blob_path(self, digest: str) -> str:
        return self.path('blobs', 'sha256', hex_of(digest))

    def layer_dir(self, diff_id: str) -> str:
        return self.path('layers', hex_of(diff_id) if ':' in diff_id else diff_id)

    def layer_diff(self, diff_id: str) -> str:
        return os.path.join(self.layer_dir(diff_id), 'diff')

    def userdb(self, digest: str) -> str:
        return self.path('userdb', hex_of(digest))

    def has_layer(self, diff_id: str) -> bool:
        return os.path.isfile(os.path.join(self.layer_dir(diff_id), 'layer.json'))

    # -- locks ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, shared: bool = False, blocking: bool = True, timeout: float = LOCK_TIMEOUT) -> Iterator[bool]:
        """An fcntl lock ``locks/NAME.lock``; yields True, or False when not blocking and it is taken."""
        fd = self.acquire(name, shared, blocking, timeout)
        try:
            yield fd is not None
        finally:
            if fd is not None:
                os.close(fd)

    def acquire(self, name: str, shared: bool = False, blocking: bool = True, timeout: float = LOCK_TIMEOUT) -> int | None:
        """-> an fd holding the lock (close it to release), or None when not blocking and taken."""
        path = self.path('locks', name + '.lock')
        if not blocking:
            return try_lock_file(path, shared=shared)
        return lock_file(path, 'the image store lock ' + path, shared=shared, timeout=timeout, interval=0.02)

    # -- the index --------------------------------------------------------------------------------
    def load_index(self) -> dict[str, Any]:
        try:
            with open(self.path('index.json'), 'r') as handle:
                index = json.load(handle)
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOENT:
                return {'version': INDEX_VERSION, 'images': {}, 'tags': {}}
            raise RuncibleError('cannot read the image index %s: %s' % (self.path('index.json'), exc))
        except ValueError as exc:
            raise RuncibleError('the image index %s is corrupt (%s)' % (self.path('index.json'), exc))
        index.setdefault('images', {})
        index.setdefault('tags', {})
        return index

    def _save_index(self, index: dict[str, Any]) -> None:
        index['version'] = INDEX_VERSION
        atomic_write(self.path('index.json'), json.dumps(index, indent=1, sort_keys=True))

    def tag_digest(self, canonical: str, index: dict[str, Any] | None = None) -> str | None:
        index = index if index is not None else self.load_index()
        digest = index['tags'].get(canonical)
        return digest if digest in index['images'] else None

    def find(self, reference: Reference, index: dict[str, Any] | None = None) -> str | None:
        """-> the manifest digest of a local image named by ``reference`` (Reference), or None.

        A reference pinned to a digest names that content, whatever tag it was pulled under.
        """
        index = index if index is not None else self.load_index()
        if reference.digest:
            return reference.digest if reference.digest in index['images'] else None
        return self.tag_digest(reference.canonical, index)

    @staticmethod
    def references_of(index: dict[str, Any], digest: str) -> list[str]:
        return sorted(name for name, target in index['tags'].items() if target == digest)

    # -- blobs ----------------------------------------------------------------------------------
    def read_blob(self, digest: str, what: str = 'blob') -> bytes:
        """A stored blob, verified against its digest on every read."""
        try:
            with open(self.blob_path(digest), 'rb') as handle:
                data = read_limited(handle, MAX_JSON, what + ' ' + digest)
        except (IOError, OSError) as exc:
            raise RuncibleError('the image store lacks %s %s (%s): pull the image again' % (what, digest, exc.strerror))
        actual = sha256_digest(data)
        if actual != digest:
            raise RuncibleError('the image store\'s %s %s is corrupt (its content is %s): remove the image and pull '
                                'it again' % (what, digest, actual))
        return data

    def _put_blob(self, data: bytes, digest: str) -> None:
        verify_bytes(data, digest, None, 'blob')
        path = self.blob_path(digest)
        if os.path.isfile(path):
            return
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, data, mode=0o600)

    def image_config(self, digest: str, index: dict[str, Any] | None = None) -> dict[str, Any]:
        """The parsed config of the local image ``digest`` (verified)."""
        index = index if index is not None else self.load_index()
        record = index['images'].get(digest)
        if record is None:
            raise ValidationError('image %s is not in the local image store' % digest)
        return parse_json(self.read_blob(record['config_digest'], 'config'), 'config ' + record['config_digest'])

    # -- importing --------------------------------------------------------------------------------
    def _ensure_dirs(self) -> None:
        for sub in ('blobs/sha256', 'layers', 'userdb', 'locks', 'tmp'):
            os.makedirs(self.path(sub), mode=0o700, exist_ok=True)

    def pull(self, resolved: Resolved) -> tuple[dict[str, Any], str | None, bool]:
        """Make the image ``resolved`` local (every layer unpacked, blobs stored) and tag its reference.

        -> (record, previous digest of the tag or None, pulled: bool). Idempotent and safe in
        parallel: layers are unpacked under a lock of their own, the index changes under its lock.
        """
        self._ensure_dirs()
        index = self.load_index()
        pulled = False
        try:
            with self.lock('gc', shared=True):
                if resolved.digest not in index['images'] or self.missing_layers(resolved.digest, index):
                    self._import(resolved)
                    pulled = True
                return self._tag(resolved, pulled)
        finally:
            if resolved.source is not None:
                resolved.source.close()

    def _tag(self, resolved: Resolved, pulled: bool) -> tuple[dict[str, Any], str | None, bool]:
        with self.lock('index'):
            index = self.load_index()
            if resolved.digest not in index['images']:
                index['images'][resolved.digest] = self._record(resolved)
            canonical = resolved.reference.canonical
            previous = index['tags'].get(canonical)
            changed = previous != resolved.digest
            if resolved.reference.transport != 'local':
                index['tags'][canonical] = resolved.digest
            if changed or pulled:
                self._save_index(index)
        return index['images'][resolved.digest], (previous if previous != resolved.digest else None), pulled

    def _record(self, resolved: Resolved) -> dict[str, Any]:
        config_descriptor, layers = validate_manifest(resolved.manifest, resolved.reference.canonical)
        config = resolved.config
        entries = []
        for descriptor, diff_id in zip(layers, resolved.diff_ids):
            meta = self.layer_meta(diff_id)
            entries.append({'diff_id': diff_id, 'digest': descriptor['digest'], 'size': descriptor['size'],
                            'media_type': descriptor.get('mediaType'), 'unpacked_size': meta.get('unpacked_size')})
        return {
            'digest': resolved.digest,
            'media_type': media_type_of(resolved.manifest),
            'config_digest': config_descriptor['digest'],
            'layers': entries,
            'created': config.get('created'),
            'architecture': config.get('architecture'),
            'os': config.get('os'),
            'source': resolved.reference.canonical,
            'pulled_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        }

    def missing_layers(self, digest: str, index: dict[str, Any] | None = None) -> list[str]:
        """diff_ids of the local image ``digest`` whose unpacked layer is not there (deleted by hand?)."""
        index = index if index is not None else self.load_index()
        record = index['images'].get(digest) or {'layers': []}
        return [layer['diff_id'] for layer in record['layers'] if not self.has_layer(layer['diff_id'])]

    def layer_meta(self, diff_id: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self.layer_dir(diff_id), 'layer.json')) as handle:
                return json.load(handle)
        except (IOError, OSError, ValueError):
            return {}

    def _import(self, resolved: Resolved) -> None:
        """Unpack the missing layers of ``resolved`` and store its manifest, config and user database."""
        source = resolved.source
        if source is None:
            staging = tempfile.mkdtemp(prefix='pull-', dir=self.path('tmp'))
            try:
                skopeo = SkopeoClient(self.tls_verify, self.auth_file, tmp_dir=self.path('tmp'))
                skopeo.copy(resolved.reference, resolved.digest, staging)
                source = DirSource(staging, resolved.reference.canonical)
                manifest_bytes = source.manifest_bytes()
                verify_bytes(manifest_bytes, resolved.digest, None, 'the manifest skopeo copied')
                self._import_layers(resolved, source)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        else:
            self._import_layers(resolved, source)
        self._put_blob(resolved.manifest_bytes, resolved.digest)
        config_descriptor = resolved.manifest['config']
        self._put_blob(resolved.config_bytes, config_descriptor['digest'])
        self._write_userdb(resolved.digest, resolved.diff_ids)

    def _import_layers(self, resolved: Resolved, source: _Source) -> None:
        _config, layers = validate_manifest(resolved.manifest, resolved.reference.canonical)
        for descriptor, diff_id in zip(layers, resolved.diff_ids):
            if self.has_layer(diff_id):
                continue
            with self.lock('layer-' + hex_of(diff_id)):
                if not self.has_layer(diff_id):
                    self._unpack_layer(source, descriptor, diff_id)

    def _unpack_layer(self, source: _Source, descriptor: dict[str, Any], diff_id: str) -> None:
        from . import layers as layer_tools
        staging = tempfile.mkdtemp(prefix='layer-', dir=self.path('tmp'))
        try:
            diff = os.path.join(staging, 'diff')
            os.mkdir(diff, 0o755)
            with source.open_blob(descriptor['digest']) as blob:
                stats = layer_tools.unpack_blob(blob, diff, expected_digest=descriptor['digest'],
                                                expected_size=descriptor['size'], expected_diff_id=diff_id,
                                                limits=self.limits, zstd_path=find_program('zstd'))
            meta = {'diff_id': diff_id, 'digest': descriptor['digest'], 'size': stats['size'],
                    'compression': stats['compression'], 'unpacked_size': stats['bytes'],
                    'entries': stats['entries'], 'skipped': stats['skipped'],
                    'unpacked_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}
            atomic_write(os.path.join(staging, 'layer.json'), json.dumps(meta, indent=1, sort_keys=True))
            target = self.layer_dir(diff_id)
            if os.path.isdir(target):
                # Left by a crash before layer.json was written: never complete, never used.
                _remove_tree(target)
            os.rename(staging, target)
        except BaseException:
            _remove_tree(staging)
            raise

    def _write_userdb(self, digest: str, diff_ids: list[str]) -> None:
        """Copy the image's /etc/passwd and /etc/group (as the layer stack shows them) for user names."""
        target = self.userdb(digest)
        if os.path.isdir(target):
            return
        staging = tempfile.mkdtemp(prefix='userdb-', dir=self.path('tmp'))
        try:
            os.mkdir(os.path.join(staging, 'etc'), 0o700)
            lowers = [self.layer_diff(diff_id) for diff_id in reversed(diff_ids)]
            for name in ('passwd', 'group'):
                found = find_in_layers(lowers, ['etc', name])
                if found:
                    with open(found, 'rb') as source:
                        data = source.read(MAX_USERDB)
                    atomic_write(os.path.join(staging, 'etc', name), data, mode=0o600)
            os.rename(staging, target)
        except OSError as exc:
            _remove_tree(staging)
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise

    # -- removing ---------------------------------------------------------------------------------
    def plan_removal(self, reference: Reference, force: bool = False, index: dict[str, Any] | None = None,
                     users: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """What removing ``reference`` does, without doing it -> dict or None when there is nothing.

        ``{'digest', 'untag': [references], 'remove_image': bool, 'containers': [names using it]}``;
        raises ValidationError when the image would go but containers use it and not ``force``.
        """
        index = index if index is not None else self.load_index()
        if reference.transport == 'local':
            digest = reference.digest if reference.digest in index['images'] else None
            untag = self.references_of(index, digest) if digest else []
        else:
            digest = self.tag_digest(reference.canonical, index)
            untag = [reference.canonical] if digest else []
        if digest is None:
            return None
        remaining = [name for name in self.references_of(index, digest) if name not in untag]
        remove_image = not remaining
        users = users if users is not None else self.container_users()
        using = sorted(users['images'].get(digest, []))
        if remove_image and using and not force:
            raise ValidationError('image %s (%s) is used by container%s %s: remove %s first, or use force (the '
                                  'containers keep their layers until they are removed)'
                                  % (', '.join(untag) or digest, digest, 's' if len(using) > 1 else '',
                                     ', '.join(using), 'them' if len(using) > 1 else 'it'))
        return {'digest': digest, 'untag': untag, 'remove_image': remove_image, 'containers': using}

    def remove(self, reference: Reference, force: bool = False) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Untag / remove an image, then collect what nothing uses any more -> (plan or None, collected)."""
        if not os.path.isdir(self.dir):
            return None, {}
        self._ensure_dirs()
        with self.lock('index'):
            index = self.load_index()
            plan = self.plan_removal(reference, force, index)
            if plan is not None:
                for name in plan['untag']:
                    index['tags'].pop(name, None)
                if plan['remove_image']:
                    index['images'].pop(plan['digest'], None)
                self._save_index(index)
        return plan, self.collect()

    def prune_dangling(self, digests: Iterable[str], blocking: bool = True) -> dict[str, Any]:
        """Remove images among ``digests`` that lost their last tag and that no container uses; collect."""
        with self.lock('gc', blocking=blocking) as held:
            if not held:
                return {}
            with self.lock('index'):
                index = self.load_index()
                users = self.container_users()
                gone = [d for d in digests if d in index['images'] and not self.references_of(index, d)
                        and d not in users['images']]
                for digest in gone:
                    index['images'].pop(digest, None)
                if gone:
                    self._save_index(index)
            return self._collect_locked(index, users)

    def collect(self, blocking: bool = True) -> dict[str, Any]:
        """Garbage collection: layers, blobs and user databases no image and no container needs, staging."""
        if not os.path.isdir(self.dir):
            return {}
        with self.lock('gc', blocking=blocking) as held:
            if not held:
                return {}
            return self._collect_locked(self.load_index(), self.container_users())

    def _collect_locked(self, index: dict[str, Any], users: dict[str, Any]) -> dict[str, Any]:
        wanted_layers = set(users['layers'])
        wanted_blobs = set()
        for digest, record in index['images'].items():
            wanted_blobs.update([digest, record['config_digest']])
            wanted_layers.update(hex_of(layer['diff_id']) for layer in record['layers'])
        removed: dict[str, Any] = {'layers': [], 'blobs': 0}
        for entry in _listdir(self.path('layers')):
            if entry not in wanted_layers:
                _remove_tree(self.path('layers', entry))
                removed['layers'].append('sha256:' + entry)
                with contextlib.suppress(OSError):
                    os.unlink(self.path('locks', 'layer-%s.lock' % entry))
        for entry in _listdir(self.path('blobs', 'sha256')):
            if 'sha256:' + entry not in wanted_blobs:
                with contextlib.suppress(OSError):
                    os.unlink(self.path('blobs', 'sha256', entry))
                    removed['blobs'] += 1
        for entry in _listdir(self.path('userdb')):
            if 'sha256:' + entry not in index['images']:
                _remove_tree(self.path('userdb', entry))
        # Every import holds the gc lock shared: nothing in tmp/ is in use now.
        for entry in _listdir(self.path('tmp')):
            _remove_tree(self.path('tmp', entry))
        return removed

    def container_users(self) -> dict[str, Any]:
        """Which containers of this root use which images and layers: {'images': {digest: [names]}, 'layers': set}."""
        images: dict[str, list[str]] = {}
        layers: set[str] = set()
        containers = os.path.join(self.root, 'containers')
        for name in _listdir(containers):
            try:
                with open(os.path.join(containers, name, 'record.json')) as handle:
                    config = json.load(handle).get('config') or {}
            except (IOError, OSError, ValueError):
                continue
            digest = split_normalised(config.get('image'))[1]
            if digest:
                images.setdefault(digest, []).append(name)
                layers.update((config.get('image_config') or {}).get('layers') or [])
        return {'images': images, 'layers': layers}

    # -- views ------------------------------------------------------------------------------------
    def view(self, digest: str, index: dict[str, Any] | None = None, users: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``image`` dict modules return for the local image ``digest``."""
        index = index if index is not None else self.load_index()
        record = index['images'][digest]
        users = users if users is not None else self.container_users()
        config = self.image_config(digest, index)
        layers = [dict(layer, path=self.layer_diff(layer['diff_id'])) for layer in record['layers']]
        return {
            'digest': digest,
            'references': self.references_of(index, digest),
            'media_type': record.get('media_type'),
            'config_digest': record['config_digest'],
            'created': record.get('created'),
            'architecture': record.get('architecture'),
            'os': record.get('os'),
            'size': sum(layer.get('unpacked_size') or 0 for layer in record['layers']),
            'layers': layers,
            'config': config_defaults(config),
            'containers': sorted(users['images'].get(digest, [])),
            'pulled_at': record.get('pulled_at'),
        }


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (IOError, OSError):
        return []


def _remove_tree(path: str) -> None:
    """Remove a directory tree (renamed away first, so a half-removed layer never looks like one) or a file."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        trash = '%s.removing-%s' % (path, secrets.token_hex(4))
        try:
            os.rename(path, trash)
            path = trash
        except OSError:
            pass
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def find_in_layers(lower_dirs: list[str], parts: list[str]) -> str | None:
    """The path of ``parts`` (a relative path, as components) as the overlay of ``lower_dirs`` (top first)
    shows it, without following symlinks; None when it is absent, whited out, or not a regular file."""
    for lower in lower_dirs:
        current = lower
        hidden = False
        for index, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                info = os.lstat(current)
            except OSError:
                info = None
            if info is None:
                # Not in this layer; an opaque directory on the way hides the layers below.
                if index and _is_opaque(os.path.dirname(current)):
                    hidden = True
                break
            if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                return None  # whited out
            if index == len(parts) - 1:
                return current if stat.S_ISREG(info.st_mode) else None
            if not stat.S_ISDIR(info.st_mode):
                return None
        if hidden:
            return None
    return None


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b'y'
    except OSError:
        return False


def lower_dirs(root: str, config: dict[str, Any]) -> list[str]:
    """The overlay lower dirs (top first) of a container created from an image."""
    image_config = config.get('image_config') or {}
    layers = image_config.get('layers') or []
    if not layers:
        raise RuncibleError('the container has the image %s but no layers recorded: recreate it' % config.get('image'))
    result = []
    for layer in reversed(layers):
        path = os.path.join(root, 'images', 'layers', layer, 'diff')
        if not os.path.isdir(path):
            raise RuncibleError('layer sha256:%s of image %s is missing from the image store (%s): pull the image '
                                'again (runcible.oci.image with state=present restores it)' % (layer, config.get('image'), path))
        result.append(path)
    # overlayfs takes its options in one page: about 40 layers under the default root.
    if len(':'.join(result)) > OVERLAY_OPTIONS_MAX:
        raise RuncibleError('image %s has %d layers, too many for one overlay mount under %s (%d bytes of lower dirs, '
                            'the kernel takes about %d): use a shorter root, or an image with fewer layers'
                            % (config.get('image'), len(result), root, len(':'.join(result)), OVERLAY_OPTIONS_MAX))
    return result


__all__ = ['ImageStore', 'find_in_layers', 'lower_dirs']
