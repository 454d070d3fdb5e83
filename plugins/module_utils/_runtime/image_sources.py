# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where an image comes from, and what its manifest and config say.

Sources: an OCI image layout directory (``oci:``), the same in a tar archive (``oci-archive:``), a
registry (``docker://``, through skopeo.py) and the ``dir:`` layout skopeo copies an image into.
``resolve`` reads (never writes) what a reference points to at its source now -> ``Resolved``: the
manifest (an image index narrowed to the host's platform), the config, and where the blobs are.
Every document is validated, and every blob read is checked against its digest and size.
``config_defaults`` is what an image config gives a container.
"""

from __future__ import annotations

import json
import os
import platform
from typing import TYPE_CHECKING

from .errors import ValidationError
from .image_refs import check_digest, hex_of, sha256_digest, verify_bytes
from .skopeo import SkopeoClient

if TYPE_CHECKING:
    import tarfile
    from typing import IO, Any, Callable

    from .image_refs import Reference
    from .image_store import ImageStore

MAX_JSON = 4 << 20
REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name'

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
LAYER_TYPES = (
    'application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+gzip',
    'application/vnd.oci.image.layer.v1.tar+zstd',
    'application/vnd.oci.image.layer.nondistributable.v1.tar',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
    'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
    'application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
)
ARCHITECTURES = {'x86_64': 'amd64', 'aarch64': 'arm64', 'armv7l': 'arm', 'armv6l': 'arm', 'i686': '386',
                 'i386': '386', 'ppc64le': 'ppc64le', 's390x': 's390x', 'riscv64': 'riscv64'}


def host_platform() -> tuple[str, str]:
    machine = platform.machine()
    return 'linux', ARCHITECTURES.get(machine, machine)


# -- sources ----------------------------------------------------------------------------------------

def read_limited(handle: IO[bytes], limit: int, what: str) -> bytes:
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValidationError('%s is larger than %d bytes: refusing it' % (what, limit))
    return data


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode('utf-8'))
    except (UnicodeError, ValueError) as exc:
        raise ValidationError('%s is not valid JSON: %s' % (what, exc))
    if not isinstance(value, dict):
        raise ValidationError('%s is not a JSON object' % what)
    return value


class _Source(object):
    """Where blobs come from: ``open_blob(digest)`` -> binary file object; ``blob_bytes`` verifies."""

    description = ''

    def open_blob(self, digest: str) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def blob_bytes(self, descriptor: dict[str, Any], what: str, limit: int = MAX_JSON) -> bytes:
        """A small blob (manifest, config, index), verified against its descriptor's digest and size."""
        digest = check_digest(descriptor.get('digest'), what)
        with self.open_blob(digest) as handle:
            data = read_limited(handle, limit, '%s %s of %s' % (what, digest, self.description))
        return verify_bytes(data, digest, descriptor.get('size'), '%s of %s' % (what, self.description))


class LayoutSource(_Source):
    """An OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/sha256/``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = 'oci:' + path
        if not os.path.isdir(path):
            raise ValidationError('image: %s is not a directory (an OCI image layout was expected)' % path)
        if not os.path.isfile(os.path.join(path, 'index.json')):
            raise ValidationError('image: %s is not an OCI image layout (it has no index.json)' % path)

    def index(self) -> dict[str, Any]:
        with open(os.path.join(self.path, 'index.json'), 'rb') as handle:
            return parse_json(read_limited(handle, MAX_JSON, 'index.json of ' + self.description),
                              'index.json of ' + self.description)

    def open_blob(self, digest: str) -> IO[bytes]:
        path = os.path.join(self.path, 'blobs', 'sha256', hex_of(digest))
        try:
            return open(path, 'rb')
        except (IOError, OSError) as exc:
            raise ValidationError('%s lacks blob %s (%s)' % (self.description, digest, exc.strerror))


class ArchiveSource(_Source):
    """An OCI image layout in a tar archive (``oci-archive:``), read in place."""

    def __init__(self, path: str) -> None:
        import tarfile
        self.path = path
        self.description = 'oci-archive:' + path
        if not os.path.isfile(path):
            raise ValidationError('image: %s is not a file (an OCI archive was expected)' % path)
        try:
            self.archive = tarfile.open(path, 'r:*')
            self.members: dict[str, tarfile.TarInfo] = {}
            for member in self.archive:
                if member.isreg():
                    name = '/'.join(part for part in member.name.split('/') if part not in ('', '.'))
                    self.members[name] = member
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ValidationError('image: %s is not a readable tar archive: %s' % (path, exc))
        if 'index.json' not in self.members:
            raise ValidationError('image: %s is not an OCI archive (it has no index.json)' % path)

    def _open(self, name: str, what: str) -> IO[bytes]:
        member = self.members.get(name)
        handle = self.archive.extractfile(member) if member is not None else None
        if handle is None:  # no such member (members are regular files: they have data)
            raise ValidationError('%s lacks %s' % (self.description, what))
        return handle

    def index(self) -> dict[str, Any]:
        with self._open('index.json', 'index.json') as handle:
            return parse_json(read_limited(handle, MAX_JSON, 'index.json of ' + self.description),
                              'index.json of ' + self.description)

    def open_blob(self, digest: str) -> IO[bytes]:
        return self._open('blobs/sha256/' + hex_of(digest), 'blob ' + digest)

    def close(self) -> None:
        self.archive.close()


class DirSource(_Source):
    """skopeo's ``dir:`` layout: ``manifest.json`` as the registry served it, blobs named by hex digest."""

    def __init__(self, path: str, description: str) -> None:
        self.path = path
        self.description = description

    def manifest_bytes(self) -> bytes:
        with open(os.path.join(self.path, 'manifest.json'), 'rb') as handle:
            return read_limited(handle, MAX_JSON, 'the manifest of ' + self.description)

    def open_blob(self, digest: str) -> IO[bytes]:
        try:
            return open(os.path.join(self.path, hex_of(digest)), 'rb')
        except (IOError, OSError) as exc:
            raise ValidationError('%s lacks blob %s (%s)' % (self.description, digest, exc.strerror))


# -- manifests --------------------------------------------------------------------------------------

class Resolved(object):
    """An image as its source names it: manifest digest and bytes, config, and how to get its blobs."""

    __slots__ = ('reference', 'digest', 'manifest_bytes', 'manifest', 'config_bytes', 'config', 'source')

    def __init__(self, reference: Reference, digest: str, manifest_bytes: bytes, manifest: dict[str, Any], config_bytes: bytes,
                 config: dict[str, Any], source: _Source | None = None) -> None:
        self.reference = reference
        self.digest = digest
        self.manifest_bytes = manifest_bytes
        self.manifest = manifest
        self.config_bytes = config_bytes
        self.config = config
        self.source = source

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config['rootfs']['diff_ids'])


def media_type_of(document: dict[str, Any], descriptor: dict[str, Any] | None = None) -> str | None:
    media_type = document.get('mediaType') or (descriptor or {}).get('mediaType')
    if not media_type:
        if isinstance(document.get('manifests'), list):
            return OCI_INDEX
        if 'config' in document and 'layers' in document:
            return OCI_MANIFEST
    return media_type


def validate_manifest(manifest: dict[str, Any], what: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """-> (config descriptor, layer descriptors) of an image manifest; raises on anything else."""
    media_type = media_type_of(manifest)
    if manifest.get('schemaVersion') != 2 or media_type not in MANIFEST_TYPES:
        raise ValidationError('%s is not an OCI or Docker v2 image manifest (media type %s, schema %s)'
                              % (what, media_type, manifest.get('schemaVersion')))
    config = manifest.get('config')
    layers = manifest.get('layers')
    if not isinstance(config, dict) or not isinstance(layers, list) or not layers:
        raise ValidationError('%s has no config or no layers' % what)
    check_digest(config.get('digest'), what + ' config')
    for layer in layers:
        if not isinstance(layer, dict):
            raise ValidationError('%s has an invalid layer descriptor %r' % (what, layer))
        check_digest(layer.get('digest'), what + ' layer')
        if layer.get('mediaType') not in LAYER_TYPES:
            raise ValidationError('%s has a layer of media type %r, which is not a container image layer'
                                  % (what, layer.get('mediaType')))
        if not isinstance(layer.get('size'), int) or layer['size'] < 0:
            raise ValidationError('%s has a layer without a valid size' % what)
    return config, layers


def validate_config(config: dict[str, Any], layer_count: int, what: str) -> dict[str, Any]:
    rootfs = config.get('rootfs')
    if not isinstance(rootfs, dict) or rootfs.get('type') != 'layers' or not isinstance(rootfs.get('diff_ids'), list):
        raise ValidationError('%s has no rootfs.diff_ids' % what)
    if len(rootfs['diff_ids']) != layer_count:
        raise ValidationError('%s lists %d diff_ids for %d layers' % (what, len(rootfs['diff_ids']), layer_count))
    for diff_id in rootfs['diff_ids']:
        check_digest(diff_id, what + ' diff_id')
    if config.get('config') is not None and not isinstance(config.get('config'), dict):
        raise ValidationError('%s has an invalid "config" section' % what)
    return config


def pick_platform(index: dict[str, Any], what: str) -> dict[str, Any]:
    """The descriptor of the host's platform in an image index (manifest list)."""
    wanted_os, wanted_arch = host_platform()
    manifests = [m for m in index.get('manifests') or [] if isinstance(m, dict)]
    found = [m for m in manifests if (m.get('platform') or {}).get('os') == wanted_os
             and (m.get('platform') or {}).get('architecture') == wanted_arch]
    if not found:
        offered = sorted('%s/%s' % ((m.get('platform') or {}).get('os'), (m.get('platform') or {}).get('architecture'))
                         for m in manifests)
        raise ValidationError('%s has no image for %s/%s (it has: %s)'
                              % (what, wanted_os, wanted_arch, ', '.join(offered) or 'none'))
    return found[0]


def _layout_tags(manifests: list[dict[str, Any]]) -> str:
    """The tags (ref.name annotations) of a layout's manifests, for a message: ``a, b`` or ``none``."""
    names = ((m.get('annotations') or {}).get(REF_NAME_ANNOTATION) for m in manifests)
    return ', '.join(sorted(set(name for name in names if name is not None))) or 'none'


def _select_in_layout(index: dict[str, Any], tag: str | None, what: str) -> dict[str, Any]:
    manifests = [m for m in index.get('manifests') or [] if isinstance(m, dict)]
    if tag:
        found = [m for m in manifests if (m.get('annotations') or {}).get(REF_NAME_ANNOTATION) == tag]
        if not found:
            raise ValidationError('%s has no image tagged %r (tags: %s)' % (what, tag, _layout_tags(manifests)))
        return found[0]
    if len(manifests) == 1:
        return manifests[0]
    raise ValidationError('%s holds %d images: name one with :TAG (tags: %s)' % (what, len(manifests),
                                                                                 _layout_tags(manifests)))


def resolve_layout(reference: Reference, source: LayoutSource | ArchiveSource) -> Resolved:
    """Read (never write) the manifest and config a layout or archive reference points to -> Resolved."""
    what = reference.canonical
    descriptor = _select_in_layout(source.index(), reference.tag, what)
    for _depth in range(4):
        data = source.blob_bytes(descriptor, 'manifest')
        document = parse_json(data, 'manifest %s of %s' % (descriptor.get('digest'), what))
        if media_type_of(document, descriptor) in INDEX_TYPES:
            descriptor = pick_platform(document, what)
            continue
        return _resolved(reference, descriptor['digest'], data, document, source.blob_bytes, source)
    raise ValidationError('%s nests image indexes too deeply' % what)


def _resolved(reference: Reference, digest: str, manifest_bytes: bytes, manifest: dict[str, Any],
              read_blob: Callable[[dict[str, Any], str], bytes], source: _Source | None) -> Resolved:
    what = '%s (manifest %s)' % (reference.canonical, digest)
    config_descriptor, layers = validate_manifest(manifest, what)
    config_bytes = read_blob(config_descriptor, 'config')
    config = validate_config(parse_json(config_bytes, 'the config of ' + what), len(layers), 'the config of ' + what)
    return Resolved(reference, digest, manifest_bytes, manifest, config_bytes, config, source)


# -- registries -------------------------------------------------------------------------------------

def resolve_registry(client: SkopeoClient, reference: Reference) -> Resolved:
    """The manifest and config the registry serves for ``reference`` now -> Resolved (no source yet)."""
    what = reference.canonical
    data = client.inspect_raw(reference.docker_source())
    if reference.digest:
        verify_bytes(data, reference.digest, None, 'the manifest of ' + what)
    document = parse_json(data, 'the manifest of ' + what)
    digest = reference.digest or sha256_digest(data)
    if media_type_of(document) in INDEX_TYPES:
        descriptor = pick_platform(document, what)
        digest = check_digest(descriptor.get('digest'), what)
        data = verify_bytes(client.inspect_raw(reference.docker_source(digest)), digest, descriptor.get('size'),
                            'the manifest of ' + what)
        document = parse_json(data, 'the manifest of ' + what)

    def read_config(descriptor: dict[str, Any], _what: str) -> bytes:
        blob = client.inspect_raw(reference.docker_source(digest), config=True)
        return verify_bytes(blob, descriptor['digest'], descriptor.get('size'), 'the config of ' + what)
    return _resolved(reference, digest, data, document, read_config, None)


def resolve(reference: Reference, store: ImageStore, tls_verify: bool = True, auth_file: str | None = None) -> Resolved:
    """What ``reference`` points to at its source now (read-only) -> Resolved."""
    # An oci: or oci-archive: reference always has its path (parse_reference).
    if reference.transport == 'oci':
        return resolve_layout(reference, LayoutSource(reference.path or ''))
    if reference.transport == 'oci-archive':
        return resolve_layout(reference, ArchiveSource(reference.path or ''))
    if reference.transport == 'docker':
        return resolve_registry(SkopeoClient(tls_verify, auth_file, tmp_dir=None), reference)
    raise ValidationError('image %s is a local digest: there is no source to pull it from' % reference.canonical)


# -- image config -----------------------------------------------------------------------------------

def _string_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else []


def config_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """What the image config supplies to a container: entrypoint, cmd, env, workdir, user, labels, ..."""
    section = config.get('config') or {}
    env = {}
    for item in _string_list(section.get('Env')):
        key, _sep, value = item.partition('=')
        if key:
            env[key] = value
    workdir = section.get('WorkingDir') or '/'
    if not isinstance(workdir, str):
        workdir = '/'
    workdir = os.path.normpath('/' + workdir) if not workdir.startswith('/') else os.path.normpath(workdir)
    labels = section.get('Labels')
    labels = labels if isinstance(labels, dict) else {}
    ports = section.get('ExposedPorts')
    ports = ports if isinstance(ports, dict) else {}
    return {
        'entrypoint': _string_list(section.get('Entrypoint')),
        'cmd': _string_list(section.get('Cmd')),
        'env': env,
        'workdir': '/' if workdir == '//' else workdir,
        'user': str(section.get('User') or ''),
        'labels': dict((str(key), str(value)) for key, value in labels.items()),
        'exposed_ports': sorted(str(port) for port in ports),
        'stop_signal': str(section.get('StopSignal') or '') or None,
        'volumes': image_volume_paths(section.get('Volumes')),
    }


_NO_VOLUME_AT = ('/', '/proc', '/sys', '/dev')


def image_volume_paths(volumes: object) -> list[str]:
    """The image's declared Volumes as clean absolute paths in the container; the root, /proc, /sys and /dev
    (the runtime's) and what is not a path are left out."""
    found = set()
    for path in volumes if isinstance(volumes, dict) else ():
        if not isinstance(path, str) or '\0' in path or not path.strip():
            continue
        clean = os.path.normpath('/' + path.strip()).replace('//', '/')
        if any(clean == top or (top != '/' and clean.startswith(top + '/')) for top in _NO_VOLUME_AT):
            continue
        found.add(clean)
    return sorted(found)


__all__ = ['Resolved', 'LayoutSource', 'ArchiveSource', 'DirSource', 'resolve', 'resolve_layout', 'resolve_registry',
           'validate_manifest', 'validate_config', 'pick_platform', 'config_defaults']
