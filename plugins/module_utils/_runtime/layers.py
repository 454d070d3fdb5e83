# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OCI image layers: a layer blob verified and unpacked into a directory used as an overlay lower layer.

A layer blob is read once: its sha256 (the blob digest, compressed) and the sha256 of the tar
stream inside (the diff_id) are computed while the tar is unpacked, and both must match what the
manifest and the image config say, or the unpacked tree is thrown away.

The unpacking itself is untar.py's, the one unpacker of the collection (checkpoint archives use it
too): names normalised and checked before anything is written, nothing ever written through a
symlink or outside the layer directory, expanded sizes (sparse members too) bounded. What is
particular to layers is :class:`LayerPolicy`: OCI whiteouts become overlayfs whiteouts, so that
stacking the layer directories as overlay lower dirs gives the image's view (``.wh.NAME`` -> a
character device 0:0 named NAME, ``DIR/.wh..wh..opq`` -> the ``trusted.overlay.opaque=y`` xattr on
DIR), and the layer's own ``trusted.overlay.*``, ``user.overlay.*`` and ``security.selinux``
attributes are dropped (only we decide what overlayfs sees). Owners, modes (set-id bits too),
mtimes and other extended attributes are kept. Device nodes are created only when running as root,
else skipped and counted. The uncompressed size and the number of members are bounded (``Limits``)
against tar bombs.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import subprocess
import tarfile
import threading
import zlib
from typing import TYPE_CHECKING

from . import untar
from .host import child_pipe
from .untar import CHUNK, Limits, detect_compression

if TYPE_CHECKING:
    from typing import IO, Any

    from .untar import Readable

DROPPED_XATTR_PREFIXES = ('trusted.overlay.', 'user.overlay.', 'security.selinux')

# A layer that is corrupt, does not match its digests, or tries to write outside its directory.
LayerError = untar.UnpackError


# -- streams ------------------------------------------------------------------------------------------

class HashingReader(object):
    """A file-like ``read()`` that hashes what passes through and refuses more than ``limit`` bytes."""

    def __init__(self, raw: Readable, algorithm: str = 'sha256', limit: int | None = None, what: str = 'stream') -> None:
        self.raw = raw
        self.hasher = hashlib.new(algorithm)
        self.count = 0
        self.limit = limit
        self.what = what

    def read(self, size: int | None = -1) -> bytes:
        data = self.raw.read(size if size is not None and size >= 0 else CHUNK)
        if data:
            self.count += len(data)
            if self.limit is not None and self.count > self.limit:
                raise LayerError('%s is larger than the limit of %d bytes: refusing it (a tar bomb?)'
                                 % (self.what, self.limit))
            self.hasher.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return 'sha256:' + self.hasher.hexdigest()


class _ZstdStream(object):
    """Decompress zstd through the zstd program, fed by a thread (the reader hashes what it feeds)."""

    def __init__(self, raw: Readable, zstd_path: str) -> None:
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        self.proc = subprocess.Popen([zstd_path, '-d', '-q', '-c'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._feed, args=(raw,))
        self.thread.daemon = True
        self.thread.start()

    def _feed(self, raw: Readable) -> None:
        stdin = child_pipe(self.proc.stdin)
        try:
            while True:
                data = raw.read(CHUNK)
                if not data:
                    break
                stdin.write(data)
        except Exception as exc:  # pylint: disable=broad-except
            self.error = exc
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def read(self, size: int | None = -1) -> bytes:
        return child_pipe(self.proc.stdout).read(size if size is not None and size > 0 else CHUNK)

    def close(self, abort: bool = False) -> None:
        stdout, stderr = child_pipe(self.proc.stdout), child_pipe(self.proc.stderr)
        if abort:
            with contextlib.suppress(OSError):
                self.proc.kill()
        with contextlib.suppress(OSError):
            stdout.close()
        self.thread.join()
        err = stderr.read().decode('utf-8', 'replace').strip()
        stderr.close()
        rc = self.proc.wait()
        if isinstance(self.error, LayerError):
            raise self.error
        if rc != 0:
            raise LayerError('the layer blob is not a valid zstd stream: %s' % (err or 'zstd exit %d' % rc))


# -- the policy of image layers ----------------------------------------------------------------------

class LayerPolicy(untar.Policy):
    """OCI image layers: every file kind, OCI whiteouts, no overlay or SELinux attributes of the author's."""

    what = 'layer'
    oci_whiteouts = True

    def keep_xattr(self, parts: list[str], name: str, value: bytes) -> bool:
        return not name.startswith(DROPPED_XATTR_PREFIXES)


def member_parts(name: str, what: str = 'member') -> list[str]:
    """Split a tar member name into safe path components; refuses absolute names and ``..``."""
    return untar.member_parts(name, 'layer', what)


# -- one layer blob -----------------------------------------------------------------------------------

def unpack_blob(blob: IO[bytes], dest: str, expected_digest: str | None = None, expected_size: int | None = None,
                expected_diff_id: str | None = None, limits: Limits | None = None, zstd_path: str | None = None,
                as_root: bool | None = None) -> dict[str, Any]:
    """Unpack the layer blob ``blob`` (a readable binary file object at offset 0) into ``dest``.

    Verifies the blob's digest and size and the diff_id of its tar stream when given; raises
    LayerError on any mismatch or refused member (the caller throws ``dest`` away then).
    -> dict: digest, diff_id, size (blob bytes), compression, entries, bytes, skipped.
    """
    limits = limits or Limits()
    head = blob.read(8)
    compression = detect_compression(head)
    raw = HashingReader(_Prefixed(head, blob), limit=expected_size,
                        what='layer blob %s (its descriptor says %s bytes)' % (expected_digest, expected_size))
    stream: Readable = raw
    zstd: _ZstdStream | None = None
    if compression == 'gzip':
        # Ignored: typeshed's GzipFile wants a fileobj with seek(), which it only calls to rewind (never here).
        stream = gzip.GzipFile(fileobj=raw, mode='rb')  # type: ignore[call-overload]
    elif compression == 'zstd':
        if not zstd_path:
            raise LayerError('the layer is zstd-compressed: install the "zstd" package to unpack it')
        stream = zstd = _ZstdStream(raw, zstd_path)
    tar_stream = HashingReader(stream, limit=limits.max_bytes, what='the uncompressed layer')
    unpacker = untar.Unpacker(dest, LayerPolicy(), limits=limits, as_root=as_root)
    finished = False
    try:
        # Ignored: typeshed's tarfile wants a fileobj that also seeks, tells and writes; a stream ('r|') is only read.
        archive = tarfile.open(fileobj=tar_stream, mode='r|', errorlevel=2)  # type: ignore[call-overload]
        stats = unpacker.unpack(archive)
        tar_stream.drain()
        raw.drain()
        finished = True
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeError) as exc:
        raise LayerError('the layer blob is not a valid (compressed) tar archive: %s' % exc)
    finally:
        if zstd is not None:
            zstd.close(abort=not finished)
    result = dict(stats, digest=raw.digest(), diff_id=tar_stream.digest(), size=raw.count, compression=compression)
    if expected_size is not None and raw.count != expected_size:
        raise LayerError('layer blob %s is %d bytes, its descriptor says %d: refusing it'
                         % (expected_digest or '', raw.count, expected_size))
    if expected_digest and result['digest'] != expected_digest:
        raise LayerError('layer blob digest mismatch: expected %s, the content is %s: refusing it'
                         % (expected_digest, result['digest']))
    if expected_diff_id and result['diff_id'] != expected_diff_id:
        raise LayerError('layer diff_id mismatch: the image config says %s, the uncompressed layer is %s: refusing it'
                         % (expected_diff_id, result['diff_id']))
    return result


class _Prefixed(object):
    """Bytes already read (the magic), then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: Readable) -> None:
        self.head = head
        self.raw = raw

    def read(self, size: int | None = -1) -> bytes:
        if self.head:
            if size is None or size < 0 or size >= len(self.head):
                data, self.head = self.head, b''
                if size is None or size < 0:
                    return data + self.raw.read()
                return data + self.raw.read(size - len(data)) if size > len(data) else data
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.raw.read(-1 if size is None else size)
