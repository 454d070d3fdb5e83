# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references, and the digests that name image content.

References (``parse_reference``)::

    oci:/path/to/layout[:tag]        an OCI image layout directory
    oci-archive:/path/to/file.tar[:tag]   the same as a tar archive
    docker://[registry/]repo[:tag|@sha256:...]   a registry, through skopeo
    sha256:HEX                       an image of the local store, by manifest digest

A reference's ``canonical`` text is its name in the local store; the value of the container option
``image`` is ``<canonical reference>@<manifest digest>`` (``join_normalised``, ``split_normalised``).
Only sha256 digests are supported; ``verify_bytes`` checks content against its digest and size.
"""

from __future__ import annotations

import hashlib
import os
import re

from .errors import ValidationError

DIGEST = r'sha256:[a-f0-9]{64}'  # patterns are compiled on first use (re's cache)
ANY_DIGEST = r'[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+'
TAG = r'[A-Za-z0-9_][A-Za-z0-9._-]{0,127}'
REPO_COMPONENT = r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*'


# -- digests ----------------------------------------------------------------------------------------

def sha256_digest(data: bytes) -> str:
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    return digest.split(':', 1)[1]


def check_digest(value: object, what: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(ANY_DIGEST, value):
        raise ValidationError('%s: %r is not a digest' % (what, value))
    if not re.fullmatch(DIGEST, value):
        raise ValidationError('%s: digest %s uses an algorithm this collection does not support (only sha256)'
                              % (what, value))
    return value


def verify_bytes(data: bytes, digest: str, size: int | None, what: str) -> bytes:
    if size is not None and len(data) != size:
        raise ValidationError('%s %s is %d bytes, its descriptor says %s: refusing it' % (what, digest, len(data), size))
    actual = sha256_digest(data)
    if actual != digest:
        raise ValidationError('digest mismatch for %s: expected %s, the content is %s: refusing it'
                              % (what, digest, actual))
    return data


# -- references -------------------------------------------------------------------------------------

class Reference(object):
    """A parsed image reference; ``canonical`` is the name it has in the local store."""

    __slots__ = ('transport', 'path', 'tag', 'digest', 'registry', 'repository')

    def __init__(self, transport: str, path: str | None = None, tag: str | None = None, digest: str | None = None,
                 registry: str | None = None, repository: str | None = None) -> None:
        self.transport = transport
        self.path = path
        self.tag = tag
        self.digest = digest
        self.registry = registry
        self.repository = repository

    @property
    def canonical(self) -> str:
        if self.transport == 'local':
            return self.digest or ''  # a local reference is its digest (parse_reference)
        if self.transport == 'docker':
            text = 'docker://%s/%s' % (self.registry, self.repository)
            if self.tag:
                text += ':' + self.tag
            return text + ('@' + self.digest if self.digest else '')
        return '%s:%s%s' % (self.transport, self.path, ':' + self.tag if self.tag else '')

    def docker_source(self, digest: str | None = None) -> str:
        """The skopeo name of a docker reference, pinned to ``digest`` when given."""
        base = 'docker://%s/%s' % (self.registry, self.repository)
        pinned = digest or self.digest
        if pinned:
            return base + '@' + pinned
        return '%s:%s' % (base, self.tag)  # not pinned: tagged (parse_reference)

    def __repr__(self) -> str:
        return 'Reference(%s)' % self.canonical


REFERENCE_FORMS = ('oci:/path/to/layout[:tag], oci-archive:/path/to/archive.tar[:tag], '
                   'docker://[registry/]repository[:tag|@sha256:...] or sha256:<digest> of a local image')


def parse_reference(text: object) -> Reference:
    """An image reference -> Reference; raises ValidationError naming the accepted forms."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError('image: %r is not an image reference; use %s' % (text, REFERENCE_FORMS))
    text = text.strip()
    if re.fullmatch(DIGEST, text):
        return Reference('local', digest=text)
    if text.startswith('oci-archive:'):
        return _path_reference('oci-archive', text[len('oci-archive:'):], text)
    if text.startswith('oci:'):
        return _path_reference('oci', text[len('oci:'):], text)
    if text.startswith('docker://'):
        return _docker_reference(text[len('docker://'):], text)
    raise ValidationError('image: %r has no known transport; use %s' % (text, REFERENCE_FORMS))


def _path_reference(transport: str, rest: str, text: str) -> Reference:
    path, tag = rest, None
    head, sep, tail = rest.rpartition(':')
    if sep and head and re.fullmatch(TAG, tail):
        path, tag = head, tail
    if not path.startswith('/'):
        raise ValidationError('image: the path in %r must be absolute (%s:/path[:tag])' % (text, transport))
    return Reference(transport, path=os.path.normpath(path), tag=tag)


def _docker_reference(rest: str, text: str) -> Reference:
    name, digest = rest, None
    if '@' in rest:
        name, digest = rest.split('@', 1)
        if not re.fullmatch(DIGEST, digest):
            raise ValidationError('image: %r has an invalid digest (use @sha256:<64 hex digits>)' % text)
    tag = None
    last = name.rsplit('/', 1)[-1]
    if ':' in last:
        name, tag = name.rsplit(':', 1)
        if not re.fullmatch(TAG, tag):
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
    if not repository or not all(re.fullmatch(REPO_COMPONENT, part) for part in repository.split('/')):
        raise ValidationError('image: %r has an invalid repository name %r (lower-case letters, digits and '
                              'separators)' % (text, repository))
    if not tag and not digest:
        tag = 'latest'
    return Reference('docker', tag=tag, digest=digest, registry=registry, repository=repository)


def split_normalised(value: str | None) -> tuple[str | None, str | None]:
    """-> (reference text, manifest digest) of a normalised ``image`` value (or (None, None))."""
    if not value:
        return None, None
    if '@' in value:
        reference, digest = value.rsplit('@', 1)
        return reference, digest
    return value, value


def join_normalised(reference: Reference, digest: str) -> str:
    """The value of the container option ``image``: ``<canonical reference>@<manifest digest>``."""
    canonical = reference.canonical
    if canonical == digest or canonical.endswith('@' + digest):
        return canonical
    return '%s@%s' % (canonical, digest)


__all__ = ['Reference', 'parse_reference', 'join_normalised', 'split_normalised', 'sha256_digest', 'hex_of',
           'check_digest', 'verify_bytes']
