# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OCI images: references, the sources they come from, and the local image store under ``root/images``.

References (``parse_reference``)::

    oci:/path/to/layout[:tag]        an OCI image layout directory
    oci-archive:/path/to/file.tar[:tag]   the same as a tar archive
    docker://[registry/]repo[:tag|@sha256:...]   a registry, through skopeo
    sha256:HEX                       an image of the local store, by manifest digest

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
import fcntl
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import time

from .errors import RuncibleError, RuntimeCommandError, ValidationError
from .oci_cli import find_program
from .files import atomic_write

INDEX_VERSION = 1
MAX_JSON = 4 << 20
MAX_USERDB = 1 << 20
LOCK_TIMEOUT = 600.0
SKOPEO_INSPECT_TIMEOUT = 120
SKOPEO_HINT = 'skopeo not found: pulling docker:// images needs skopeo; install the Debian package "skopeo"'

DIGEST_RE = re.compile(r'sha256:[a-f0-9]{64}')
ANY_DIGEST_RE = re.compile(r'[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+')
TAG_RE = re.compile(r'[A-Za-z0-9_][A-Za-z0-9._-]{0,127}')
REPO_COMPONENT_RE = re.compile(r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*')
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


def sha256_digest(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def hex_of(digest):
    return digest.split(':', 1)[1]


def host_platform():
    machine = platform.machine()
    return 'linux', ARCHITECTURES.get(machine, machine)


def _check_digest(value, what):
    if not isinstance(value, str) or not ANY_DIGEST_RE.fullmatch(value):
        raise ValidationError('%s: %r is not a digest' % (what, value))
    if not DIGEST_RE.fullmatch(value):
        raise ValidationError('%s: digest %s uses an algorithm this collection does not support (only sha256)'
                              % (what, value))
    return value


# -- references -------------------------------------------------------------------------------------

class Reference(object):
    """A parsed image reference; ``canonical`` is the name it has in the local store."""

    __slots__ = ('transport', 'path', 'tag', 'digest', 'registry', 'repository')

    def __init__(self, transport, path=None, tag=None, digest=None, registry=None, repository=None):
        self.transport = transport
        self.path = path
        self.tag = tag
        self.digest = digest
        self.registry = registry
        self.repository = repository

    @property
    def canonical(self):
        if self.transport == 'local':
            return self.digest
        if self.transport == 'docker':
            text = 'docker://%s/%s' % (self.registry, self.repository)
            if self.tag:
                text += ':' + self.tag
            return text + ('@' + self.digest if self.digest else '')
        return '%s:%s%s' % (self.transport, self.path, ':' + self.tag if self.tag else '')

    def docker_source(self, digest=None):
        """The skopeo name of a docker reference, pinned to ``digest`` when given."""
        base = 'docker://%s/%s' % (self.registry, self.repository)
        if digest or self.digest:
            return base + '@' + (digest or self.digest)
        return base + ':' + self.tag

    def __repr__(self):
        return 'Reference(%s)' % self.canonical


REFERENCE_FORMS = ('oci:/path/to/layout[:tag], oci-archive:/path/to/archive.tar[:tag], '
                   'docker://[registry/]repository[:tag|@sha256:...] or sha256:<digest> of a local image')


def parse_reference(text):
    """An image reference -> Reference; raises ValidationError naming the accepted forms."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError('image: %r is not an image reference; use %s' % (text, REFERENCE_FORMS))
    text = text.strip()
    if DIGEST_RE.fullmatch(text):
        return Reference('local', digest=text)
    if text.startswith('oci-archive:'):
        return _path_reference('oci-archive', text[len('oci-archive:'):], text)
    if text.startswith('oci:'):
        return _path_reference('oci', text[len('oci:'):], text)
    if text.startswith('docker://'):
        return _docker_reference(text[len('docker://'):], text)
    raise ValidationError('image: %r has no known transport; use %s' % (text, REFERENCE_FORMS))


def _path_reference(transport, rest, text):
    path, tag = rest, None
    head, sep, tail = rest.rpartition(':')
    if sep and head and TAG_RE.fullmatch(tail):
        path, tag = head, tail
    if not path.startswith('/'):
        raise ValidationError('image: the path in %r must be absolute (%s:/path[:tag])' % (text, transport))
    return Reference(transport, path=os.path.normpath(path), tag=tag)


def _docker_reference(rest, text):
    name, digest = rest, None
    if '@' in rest:
        name, digest = rest.split('@', 1)
        if not DIGEST_RE.fullmatch(digest):
            raise ValidationError('image: %r has an invalid digest (use @sha256:<64 hex digits>)' % text)
    tag = None
    last = name.rsplit('/', 1)[-1]
    if ':' in last:
        name, tag = name.rsplit(':', 1)
        if not TAG_RE.fullmatch(tag):
            raise ValidationError('image: %r has an invalid tag %r' % (text, tag))
    first = name.split('/', 1)[0]
    if '/' in name and ('.' in first or ':' in first or first == 'localhost'):
        registry, repository = first, name.split('/', 1)[1]
    else:
        registry, repository = 'docker.io', name
    if registry in ('index.docker.io', 'registry-1.docker.io'):
        registry = 'docker.io'
    if registry == 'docker.io' and '/' not in repository:
        repository = 'library/' + repository
    if not repository or not all(REPO_COMPONENT_RE.fullmatch(part) for part in repository.split('/')):
        raise ValidationError('image: %r has an invalid repository name %r (lower-case letters, digits and '
                              'separators)' % (text, repository))
    if not tag and not digest:
        tag = 'latest'
    return Reference('docker', tag=tag, digest=digest, registry=registry, repository=repository)


def split_normalised(value):
    """-> (reference text, manifest digest) of a normalised ``image`` value (or (None, None))."""
    if not value:
        return None, None
    if '@' in value:
        reference, digest = value.rsplit('@', 1)
        return reference, digest
    return value, value


def join_normalised(reference, digest):
    """The value of the container option ``image``: ``<canonical reference>@<manifest digest>``."""
    canonical = reference.canonical
    if canonical == digest or canonical.endswith('@' + digest):
        return canonical
    return '%s@%s' % (canonical, digest)


# -- sources ----------------------------------------------------------------------------------------

def _read_limited(handle, limit, what):
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValidationError('%s is larger than %d bytes: refusing it' % (what, limit))
    return data


def _parse_json(data, what):
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

    def open_blob(self, digest):
        raise NotImplementedError

    def close(self):
        pass

    def blob_bytes(self, descriptor, what, limit=MAX_JSON):
        """A small blob (manifest, config, index), verified against its descriptor's digest and size."""
        digest = _check_digest(descriptor.get('digest'), what)
        with self.open_blob(digest) as handle:
            data = _read_limited(handle, limit, '%s %s of %s' % (what, digest, self.description))
        return verify_bytes(data, digest, descriptor.get('size'), '%s of %s' % (what, self.description))


def verify_bytes(data, digest, size, what):
    if size is not None and len(data) != size:
        raise ValidationError('%s %s is %d bytes, its descriptor says %s: refusing it' % (what, digest, len(data), size))
    actual = sha256_digest(data)
    if actual != digest:
        raise ValidationError('digest mismatch for %s: expected %s, the content is %s: refusing it'
                              % (what, digest, actual))
    return data


class LayoutSource(_Source):
    """An OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/sha256/``)."""

    def __init__(self, path):
        self.path = path
        self.description = 'oci:' + path
        if not os.path.isdir(path):
            raise ValidationError('image: %s is not a directory (an OCI image layout was expected)' % path)
        if not os.path.isfile(os.path.join(path, 'index.json')):
            raise ValidationError('image: %s is not an OCI image layout (it has no index.json)' % path)

    def index(self):
        with open(os.path.join(self.path, 'index.json'), 'rb') as handle:
            return _parse_json(_read_limited(handle, MAX_JSON, 'index.json of ' + self.description),
                               'index.json of ' + self.description)

    def open_blob(self, digest):
        path = os.path.join(self.path, 'blobs', 'sha256', hex_of(digest))
        try:
            return open(path, 'rb')
        except (IOError, OSError) as exc:
            raise ValidationError('%s lacks blob %s (%s)' % (self.description, digest, exc.strerror))


class ArchiveSource(_Source):
    """An OCI image layout in a tar archive (``oci-archive:``), read in place."""

    def __init__(self, path):
        import tarfile
        self.path = path
        self.description = 'oci-archive:' + path
        if not os.path.isfile(path):
            raise ValidationError('image: %s is not a file (an OCI archive was expected)' % path)
        try:
            self.archive = tarfile.open(path, 'r:*')
            self.members = {}
            for member in self.archive:
                if member.isreg():
                    name = '/'.join(part for part in member.name.split('/') if part not in ('', '.'))
                    self.members[name] = member
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ValidationError('image: %s is not a readable tar archive: %s' % (path, exc))
        if 'index.json' not in self.members:
            raise ValidationError('image: %s is not an OCI archive (it has no index.json)' % path)

    def _open(self, name, what):
        member = self.members.get(name)
        if member is None:
            raise ValidationError('%s lacks %s' % (self.description, what))
        return self.archive.extractfile(member)

    def index(self):
        with self._open('index.json', 'index.json') as handle:
            return _parse_json(_read_limited(handle, MAX_JSON, 'index.json of ' + self.description),
                               'index.json of ' + self.description)

    def open_blob(self, digest):
        return self._open('blobs/sha256/' + hex_of(digest), 'blob ' + digest)

    def close(self):
        self.archive.close()


class DirSource(_Source):
    """skopeo's ``dir:`` layout: ``manifest.json`` as the registry served it, blobs named by hex digest."""

    def __init__(self, path, description):
        self.path = path
        self.description = description

    def manifest_bytes(self):
        with open(os.path.join(self.path, 'manifest.json'), 'rb') as handle:
            return _read_limited(handle, MAX_JSON, 'the manifest of ' + self.description)

    def open_blob(self, digest):
        try:
            return open(os.path.join(self.path, hex_of(digest)), 'rb')
        except (IOError, OSError) as exc:
            raise ValidationError('%s lacks blob %s (%s)' % (self.description, digest, exc.strerror))


# -- manifests --------------------------------------------------------------------------------------

class Resolved(object):
    """An image as its source names it: manifest digest and bytes, config, and how to get its blobs."""

    __slots__ = ('reference', 'digest', 'manifest_bytes', 'manifest', 'config_bytes', 'config', 'source')

    def __init__(self, reference, digest, manifest_bytes, manifest, config_bytes, config, source=None):
        self.reference = reference
        self.digest = digest
        self.manifest_bytes = manifest_bytes
        self.manifest = manifest
        self.config_bytes = config_bytes
        self.config = config
        self.source = source

    @property
    def diff_ids(self):
        return list(self.config['rootfs']['diff_ids'])


def _media_type(document, descriptor=None):
    media_type = document.get('mediaType') or (descriptor or {}).get('mediaType')
    if not media_type:
        if isinstance(document.get('manifests'), list):
            return OCI_INDEX
        if 'config' in document and 'layers' in document:
            return OCI_MANIFEST
    return media_type


def validate_manifest(manifest, what):
    """-> (config descriptor, layer descriptors) of an image manifest; raises on anything else."""
    media_type = _media_type(manifest)
    if manifest.get('schemaVersion') != 2 or media_type not in MANIFEST_TYPES:
        raise ValidationError('%s is not an OCI or Docker v2 image manifest (media type %s, schema %s)'
                              % (what, media_type, manifest.get('schemaVersion')))
    config = manifest.get('config')
    layers = manifest.get('layers')
    if not isinstance(config, dict) or not isinstance(layers, list) or not layers:
        raise ValidationError('%s has no config or no layers' % what)
    _check_digest(config.get('digest'), what + ' config')
    for layer in layers:
        if not isinstance(layer, dict):
            raise ValidationError('%s has an invalid layer descriptor %r' % (what, layer))
        _check_digest(layer.get('digest'), what + ' layer')
        if layer.get('mediaType') not in LAYER_TYPES:
            raise ValidationError('%s has a layer of media type %r, which is not a container image layer'
                                  % (what, layer.get('mediaType')))
        if not isinstance(layer.get('size'), int) or layer['size'] < 0:
            raise ValidationError('%s has a layer without a valid size' % what)
    return config, layers


def validate_config(config, layer_count, what):
    rootfs = config.get('rootfs')
    if not isinstance(rootfs, dict) or rootfs.get('type') != 'layers' or not isinstance(rootfs.get('diff_ids'), list):
        raise ValidationError('%s has no rootfs.diff_ids' % what)
    if len(rootfs['diff_ids']) != layer_count:
        raise ValidationError('%s lists %d diff_ids for %d layers' % (what, len(rootfs['diff_ids']), layer_count))
    for diff_id in rootfs['diff_ids']:
        _check_digest(diff_id, what + ' diff_id')
    if config.get('config') is not None and not isinstance(config.get('config'), dict):
        raise ValidationError('%s has an invalid "config" section' % what)
    return config


def pick_platform(index, what):
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


def _select_in_layout(index, tag, what):
    manifests = [m for m in index.get('manifests') or [] if isinstance(m, dict)]
    if tag:
        found = [m for m in manifests if (m.get('annotations') or {}).get(REF_NAME_ANNOTATION) == tag]
        if not found:
            tags = sorted(set((m.get('annotations') or {}).get(REF_NAME_ANNOTATION) for m in manifests) - set([None]))
            raise ValidationError('%s has no image tagged %r (tags: %s)' % (what, tag, ', '.join(tags) or 'none'))
        return found[0]
    if len(manifests) == 1:
        return manifests[0]
    tags = sorted(set((m.get('annotations') or {}).get(REF_NAME_ANNOTATION) for m in manifests) - set([None]))
    raise ValidationError('%s holds %d images: name one with :TAG (tags: %s)' % (what, len(manifests),
                                                                                 ', '.join(tags) or 'none'))


def resolve_layout(reference, source):
    """Read (never write) the manifest and config a layout or archive reference points to -> Resolved."""
    what = reference.canonical
    descriptor = _select_in_layout(source.index(), reference.tag, what)
    for _depth in range(4):
        data = source.blob_bytes(descriptor, 'manifest')
        document = _parse_json(data, 'manifest %s of %s' % (descriptor.get('digest'), what))
        if _media_type(document, descriptor) in INDEX_TYPES:
            descriptor = pick_platform(document, what)
            continue
        return _resolved(reference, descriptor['digest'], data, document, source.blob_bytes, source)
    raise ValidationError('%s nests image indexes too deeply' % what)


def _resolved(reference, digest, manifest_bytes, manifest, read_blob, source):
    what = '%s (manifest %s)' % (reference.canonical, digest)
    config_descriptor, layers = validate_manifest(manifest, what)
    config_bytes = read_blob(config_descriptor, 'config')
    config = validate_config(_parse_json(config_bytes, 'the config of ' + what), len(layers), 'the config of ' + what)
    return Resolved(reference, digest, manifest_bytes, manifest, config_bytes, config, source)


# -- skopeo ------------------------------------------------------------------------------------------

class Registry(object):
    """docker:// references through skopeo: inspect (read-only) and copy into a ``dir:`` layout."""

    def __init__(self, tls_verify=True, auth_file=None, tmp_dir=None):
        self.tls_verify = tls_verify
        self.auth_file = auth_file
        self.tmp_dir = tmp_dir

    @staticmethod
    def skopeo():
        path = find_program('skopeo')
        if not path:
            raise ValidationError(SKOPEO_HINT)
        return path

    def _run(self, args, timeout):
        env = dict(os.environ)
        if self.tmp_dir:
            env['TMPDIR'] = self.tmp_dir
        argv = [self.skopeo()] + args
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeCommandError('skopeo %s timed out after %ss' % (args[0], timeout), argv=argv)
        if proc.returncode != 0:
            err = proc.stderr.decode('utf-8', 'replace').strip()
            found = re.findall(r'msg="((?:[^"\\]|\\.)*)"', err)
            message = found[-1].replace('\\"', '"') if found else err
            raise RuntimeCommandError('skopeo %s failed: %s' % (args[0], message[-2000:]), argv=argv,
                                      stderr=err[-4000:], rc=proc.returncode)
        return proc.stdout

    def _auth(self, prefix=''):
        args = []
        if not self.tls_verify:
            args.append('--%stls-verify=false' % prefix)
        if self.auth_file:
            args += ['--%sauthfile' % prefix, self.auth_file]
        return args

    def inspect_raw(self, name, config=False):
        args = ['inspect', '--raw'] + (['--config'] if config else []) + self._auth() + [name]
        return self._run(args, SKOPEO_INSPECT_TIMEOUT)

    def resolve(self, reference):
        """The manifest and config the registry serves for ``reference`` now -> Resolved (no source yet)."""
        what = reference.canonical
        data = self.inspect_raw(reference.docker_source())
        if reference.digest:
            verify_bytes(data, reference.digest, None, 'the manifest of ' + what)
        document = _parse_json(data, 'the manifest of ' + what)
        digest = reference.digest or sha256_digest(data)
        if _media_type(document) in INDEX_TYPES:
            descriptor = pick_platform(document, what)
            digest = _check_digest(descriptor.get('digest'), what)
            data = verify_bytes(self.inspect_raw(reference.docker_source(digest)), digest, descriptor.get('size'),
                                'the manifest of ' + what)
            document = _parse_json(data, 'the manifest of ' + what)

        def read_config(descriptor, _what):
            blob = self.inspect_raw(reference.docker_source(digest), config=True)
            return verify_bytes(blob, descriptor['digest'], descriptor.get('size'), 'the config of ' + what)
        return _resolved(reference, digest, data, document, read_config, None)

    def copy(self, reference, digest, destination):
        """skopeo copy of exactly ``digest`` into a ``dir:`` layout, which keeps the manifest as served."""
        self._run(['copy', '--quiet'] + self._auth('src-') + [reference.docker_source(digest), 'dir:' + destination],
                  None)
        return DirSource(destination, reference.canonical)


# -- image config -----------------------------------------------------------------------------------

def _string_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else []


def config_defaults(config):
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
    labels = section.get('Labels') if isinstance(section.get('Labels'), dict) else {}
    ports = section.get('ExposedPorts') if isinstance(section.get('ExposedPorts'), dict) else {}
    return {
        'entrypoint': _string_list(section.get('Entrypoint')),
        'cmd': _string_list(section.get('Cmd')),
        'env': env,
        'workdir': '/' if workdir == '//' else workdir,
        'user': str(section.get('User') or ''),
        'labels': dict((str(key), str(value)) for key, value in labels.items()),
        'exposed_ports': sorted(str(port) for port in ports),
        'stop_signal': str(section.get('StopSignal') or '') or None,
    }


# -- the store ----------------------------------------------------------------------------------------

class ImageStore(object):
    """The local images of one ``root`` (see the module docstring)."""

    def __init__(self, root, limits=None, tls_verify=True, auth_file=None):
        self.root = os.path.normpath(root)
        self.dir = os.path.join(self.root, 'images')
        self.limits = limits
        self.tls_verify = tls_verify
        self.auth_file = auth_file

    # -- paths ----------------------------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def blob_path(self, digest):
        return self.path('blobs', 'sha256', hex_of(digest))

    def layer_dir(self, diff_id):
        return self.path('layers', hex_of(diff_id) if ':' in diff_id else diff_id)

    def layer_diff(self, diff_id):
        return os.path.join(self.layer_dir(diff_id), 'diff')

    def userdb(self, digest):
        return self.path('userdb', hex_of(digest))

    def has_layer(self, diff_id):
        return os.path.isfile(os.path.join(self.layer_dir(diff_id), 'layer.json'))

    # -- locks ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name, shared=False, blocking=True, timeout=LOCK_TIMEOUT):
        """An fcntl lock ``locks/NAME.lock``; yields True, or False when not blocking and it is taken."""
        fd = self.acquire(name, shared, blocking, timeout)
        try:
            yield fd is not None
        finally:
            if fd is not None:
                os.close(fd)

    def acquire(self, name, shared=False, blocking=True, timeout=LOCK_TIMEOUT):
        """-> an fd holding the lock (close it to release), or None when not blocking and taken."""
        os.makedirs(self.path('locks'), mode=0o700, exist_ok=True)
        path = self.path('locks', name + '.lock')
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                return fd
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if not blocking or time.monotonic() > deadline:
                os.close(fd)
                if not blocking:
                    return None
                raise RuncibleError('timed out after %ds waiting for the image store lock %s (another task holds it)'
                                    % (timeout, path))
            time.sleep(0.02)

    # -- the index --------------------------------------------------------------------------------
    def load_index(self):
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

    def _save_index(self, index):
        index['version'] = INDEX_VERSION
        atomic_write(self.path('index.json'), json.dumps(index, indent=1, sort_keys=True))

    def tag_digest(self, canonical, index=None):
        index = index if index is not None else self.load_index()
        digest = index['tags'].get(canonical)
        return digest if digest in index['images'] else None

    def find(self, reference, index=None):
        """-> the manifest digest of a local image named by ``reference`` (Reference), or None.

        A reference pinned to a digest names that content, whatever tag it was pulled under.
        """
        index = index if index is not None else self.load_index()
        if reference.digest:
            return reference.digest if reference.digest in index['images'] else None
        return self.tag_digest(reference.canonical, index)

    @staticmethod
    def references_of(index, digest):
        return sorted(name for name, target in index['tags'].items() if target == digest)

    # -- blobs ----------------------------------------------------------------------------------
    def read_blob(self, digest, what='blob'):
        """A stored blob, verified against its digest on every read."""
        try:
            with open(self.blob_path(digest), 'rb') as handle:
                data = _read_limited(handle, MAX_JSON, what + ' ' + digest)
        except (IOError, OSError) as exc:
            raise RuncibleError('the image store lacks %s %s (%s): pull the image again' % (what, digest, exc.strerror))
        actual = sha256_digest(data)
        if actual != digest:
            raise RuncibleError('the image store\'s %s %s is corrupt (its content is %s): remove the image and pull '
                                'it again' % (what, digest, actual))
        return data

    def _put_blob(self, data, digest):
        verify_bytes(data, digest, None, 'blob')
        path = self.blob_path(digest)
        if os.path.isfile(path):
            return
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, data, mode=0o600)

    def image_config(self, digest, index=None):
        """The parsed config of the local image ``digest`` (verified)."""
        index = index if index is not None else self.load_index()
        record = index['images'].get(digest)
        if record is None:
            raise ValidationError('image %s is not in the local image store' % digest)
        return _parse_json(self.read_blob(record['config_digest'], 'config'), 'config ' + record['config_digest'])

    # -- importing --------------------------------------------------------------------------------
    def _ensure_dirs(self):
        for sub in ('blobs/sha256', 'layers', 'userdb', 'locks', 'tmp'):
            os.makedirs(self.path(sub), mode=0o700, exist_ok=True)

    def pull(self, resolved):
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

    def _tag(self, resolved, pulled):
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

    def _record(self, resolved):
        config_descriptor, layers = validate_manifest(resolved.manifest, resolved.reference.canonical)
        config = resolved.config
        entries = []
        for descriptor, diff_id in zip(layers, resolved.diff_ids):
            meta = self.layer_meta(diff_id)
            entries.append({'diff_id': diff_id, 'digest': descriptor['digest'], 'size': descriptor['size'],
                            'media_type': descriptor.get('mediaType'), 'unpacked_size': meta.get('unpacked_size')})
        return {
            'digest': resolved.digest,
            'media_type': _media_type(resolved.manifest),
            'config_digest': config_descriptor['digest'],
            'layers': entries,
            'created': config.get('created'),
            'architecture': config.get('architecture'),
            'os': config.get('os'),
            'source': resolved.reference.canonical,
            'pulled_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        }

    def missing_layers(self, digest, index=None):
        """diff_ids of the local image ``digest`` whose unpacked layer is not there (deleted by hand?)."""
        index = index if index is not None else self.load_index()
        record = index['images'].get(digest) or {'layers': []}
        return [layer['diff_id'] for layer in record['layers'] if not self.has_layer(layer['diff_id'])]

    def layer_meta(self, diff_id):
        try:
            with open(os.path.join(self.layer_dir(diff_id), 'layer.json')) as handle:
                return json.load(handle)
        except (IOError, OSError, ValueError):
            return {}

    def _import(self, resolved):
        """Unpack the missing layers of ``resolved`` and store its manifest, config and user database."""
        source = resolved.source
        if source is None:
            staging = tempfile.mkdtemp(prefix='pull-', dir=self.path('tmp'))
            try:
                registry = Registry(self.tls_verify, self.auth_file, tmp_dir=self.path('tmp'))
                source = registry.copy(resolved.reference, resolved.digest, staging)
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

    def _import_layers(self, resolved, source):
        _config, layers = validate_manifest(resolved.manifest, resolved.reference.canonical)
        for descriptor, diff_id in zip(layers, resolved.diff_ids):
            if self.has_layer(diff_id):
                continue
            with self.lock('layer-' + hex_of(diff_id)):
                if not self.has_layer(diff_id):
                    self._unpack_layer(source, descriptor, diff_id)

    def _unpack_layer(self, source, descriptor, diff_id):
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

    def _write_userdb(self, digest, diff_ids):
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
    def plan_removal(self, reference, force=False, index=None, users=None):
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

    def remove(self, reference, force=False):
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

    def prune_dangling(self, digests, blocking=True):
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

    def collect(self, blocking=True):
        """Garbage collection: layers, blobs and user databases no image and no container needs, staging."""
        if not os.path.isdir(self.dir):
            return {}
        with self.lock('gc', blocking=blocking) as held:
            if not held:
                return {}
            return self._collect_locked(self.load_index(), self.container_users())

    def _collect_locked(self, index, users):
        wanted_layers = set(users['layers'])
        wanted_blobs = set()
        for digest, record in index['images'].items():
            wanted_blobs.update([digest, record['config_digest']])
            wanted_layers.update(hex_of(layer['diff_id']) for layer in record['layers'])
        removed = {'layers': [], 'blobs': 0}
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

    def container_users(self):
        """Which containers of this root use which images and layers: {'images': {digest: [names]}, 'layers': set}."""
        images = {}
        layers = set()
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
    def view(self, digest, index=None, users=None):
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


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except (IOError, OSError):
        return []


def _remove_tree(path):
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


def find_in_layers(lower_dirs, parts):
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


def _is_opaque(path):
    try:
        return os.getxattr(path, 'trusted.overlay.opaque', follow_symlinks=False) == b'y'
    except OSError:
        return False


def resolve(reference, store, tls_verify=True, auth_file=None):
    """What ``reference`` points to at its source now (read-only) -> Resolved."""
    if reference.transport == 'oci':
        return resolve_layout(reference, LayoutSource(reference.path))
    if reference.transport == 'oci-archive':
        return resolve_layout(reference, ArchiveSource(reference.path))
    if reference.transport == 'docker':
        return Registry(tls_verify, auth_file, tmp_dir=None).resolve(reference)
    raise ValidationError('image %s is a local digest: there is no source to pull it from' % reference.canonical)


__all__ = ['ImageStore', 'Reference', 'Registry', 'parse_reference', 'resolve', 'join_normalised', 'config_defaults',
           'find_in_layers', 'verify_bytes']


OVERLAY_OPTIONS_MAX = 3800


def lower_dirs(root, config):
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
