# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runtime library kept on the host between tasks, for conmon's exit command (restart policies).

A module runs from Ansible's payload, which is gone when the task ends; conmon runs its exit command
when a container's process ends, long after. So the runtime library (this package's sources) is
installed under the store, one directory per version named by the SHA-256 of its sources:
``ROOT/lib/HASH/`` holds ``ansible_collections/.../module_utils/_runtime/*.py`` and ``exit.py``, the
command conmon runs with the host's Python (``-I``: no environment variable or user site changes
what it imports). Installed once per version (a task checks that the directory is there); made in a
temporary directory of the same parent, every file created exclusively, root's only, then renamed into
place. An older version is removed when no container of the store refers to it (``Record.lib``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Iterable

PACKAGE = 'ansible_collections.runcible.oci.plugins.module_utils._runtime'
LAUNCHER = 'exit.py'
_LAUNCHER_SOURCE = '''# runcible.oci: conmon's exit command (installed by the collection; see _runtime/payload.py)
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ansible_collections.runcible.oci.plugins.module_utils._runtime import restart
sys.exit(restart.main(sys.argv[1:]))
'''
_cache: dict[str, str] = {}


def sources() -> dict[str, bytes]:
    """{file name: bytes} of this package's modules, from the payload zip or the file system."""
    package = sys.modules[PACKAGE]
    directory = os.path.dirname(os.path.abspath(package.__file__ or ''))
    archive = _archive_of(directory)
    found: dict[str, bytes] = {}
    if archive:
        import zipfile  # pylint: disable=import-outside-toplevel
        prefix = os.path.relpath(directory, archive).replace(os.sep, '/') + '/'
        with zipfile.ZipFile(archive) as payload:
            for name in payload.namelist():
                rest = name[len(prefix):] if name.startswith(prefix) else None
                if rest and '/' not in rest and rest.endswith('.py'):
                    found[rest] = payload.read(name)
    else:
        for name in sorted(os.listdir(directory)):
            if name.endswith('.py'):
                with open(os.path.join(directory, name), 'rb') as handle:
                    found[name] = handle.read()
    return found


def _archive_of(directory: str) -> str | None:
    """The zip a package directory is inside (Ansible's payload, whoever's loader imported it), or None."""
    if os.path.isdir(directory):
        return None
    parent = directory
    while parent and parent != os.path.dirname(parent):
        parent = os.path.dirname(parent)
        if os.path.isfile(parent):
            return parent
    return None


def version(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b'\0' + hashlib.sha256(files[name]).digest())
    digest.update(_LAUNCHER_SOURCE.encode())
    return digest.hexdigest()[:24]


def installed(root: str) -> bool:
    """Is this version installed under ``root`` already (a launch then checks one directory only)?"""
    if root in _cache and os.path.isdir(_cache[root]):
        return True
    target = os.path.join(root, 'lib', version(sources()))
    if os.path.isdir(target):
        _cache[root] = target
        return True
    return False


def install(root: str) -> str:
    """-> the installed library's directory ``ROOT/lib/VERSION`` (made now when missing)."""
    if root in _cache and os.path.isdir(_cache[root]):
        return _cache[root]
    files = sources()
    lib = os.path.join(root, 'lib')
    target = os.path.join(lib, version(files))
    if not os.path.isdir(target):
        os.makedirs(lib, mode=0o700, exist_ok=True)
        staging = tempfile.mkdtemp(prefix='.install-', dir=lib)  # 0700, ours
        try:
            package_dir = os.path.join(staging, *PACKAGE.split('.'))
            os.makedirs(package_dir, mode=0o700)
            parts = PACKAGE.split('.')
            for depth in range(1, len(parts)):
                _write(os.path.join(staging, *parts[:depth], '__init__.py'), b'')
            for name, data in files.items():
                _write(os.path.join(package_dir, name), data)
            _write(os.path.join(staging, LAUNCHER), _LAUNCHER_SOURCE.encode())
            try:
                os.rename(staging, target)
            except OSError:
                if not os.path.isdir(target):  # another task installed the same version meanwhile: fine
                    raise
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
    _cache[root] = target
    return target


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)


def collect(root: str, in_use: Iterable[str], keep: str | None = None) -> list[str]:
    """Remove the installed versions no container refers to (``in_use``: their lib directories) but ``keep``."""
    lib = os.path.join(root, 'lib')
    used = set(os.path.normpath(path) for path in in_use if path)
    removed = []
    with contextlib.suppress(OSError):
        for name in os.listdir(lib):
            path = os.path.join(lib, name)
            if path in used or path == keep or name.startswith('.install-') or not os.path.isdir(path):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed
