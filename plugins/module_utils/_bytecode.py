# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bytecode cache for the collection's module_utils when a module runs from Ansible's payload.

Ansible sends a module with its module_utils in a zip (AnsiballZ) that Python imports from with
zipimport, which caches nothing: every task compiles every module_utils file it imports from
source again, on every host (tens of milliseconds for a container task, more than all its own
work). ``enable_cache()``, called by the modules before they import anything else of the
collection, puts a finder in front of zipimport for this collection's module_utils only. It keeps
each module's compiled code in a root-only directory (``/var/cache/runcible/bytecode``, or
``RUNCIBLE_BYTECODE_CACHE`` in the module's environment; ``off`` there turns the cache off), keyed
by the SHA-256 of the module's source as the payload carries it, so a task compiles only what
changed since the last one.

What it trusts: the cache directory, and every directory above it, must be a directory (not a
link) owned by root that no one else can write (a sticky directory such as /tmp may be writable by
all: no one else can rename root's entries in it); each cache file must be a regular file owned by
root, mode 0600, starting with this Python's bytecode magic. Anything else is not used: the module
compiles from source, as without the cache. Files are written exclusively under a temporary name,
then renamed. Outside a payload (the Python API, tests, the controller) it does nothing: Python
caches bytecode itself there.
"""

from __future__ import annotations

import marshal
import os
import stat
import sys

PACKAGE = 'ansible_collections.runcible.oci.plugins.module_utils'
DEFAULT_DIRECTORY = '/var/cache/runcible/bytecode'
ENVIRONMENT = 'RUNCIBLE_BYTECODE_CACHE'


def enable_cache(directory=None):
    """Serve this collection's module_utils through the cache; -> the cache directory, or None when not used."""
    package = sys.modules.get(PACKAGE)
    zip_loader = getattr(package, '__loader__', None)
    archive = getattr(zip_loader, 'archive', None)
    if archive is None or not hasattr(os, 'geteuid') or os.geteuid() != 0:
        return None  # not running from a payload zip (or not as root: nothing to share safely)
    if any(isinstance(finder, _CacheFinder) for finder in sys.meta_path):
        return None
    directory = directory or os.environ.get(ENVIRONMENT) or DEFAULT_DIRECTORY
    if directory == 'off':
        return None
    try:
        _trusted_directory(directory)
    except OSError:
        return None
    sys.meta_path.insert(0, _CacheFinder(archive, directory))
    return directory


def _trusted_directory(directory):
    """Make ``directory`` (0700, and its parent) if missing; raise OSError unless only root can change it."""
    directory = os.path.normpath(directory)
    if not os.path.isabs(directory):
        raise OSError('%s is not an absolute path' % directory)
    for path, mode in ((os.path.dirname(directory), 0o755), (directory, 0o700)):
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass
    path = directory
    while True:
        info = os.lstat(path)
        writable = info.st_mode & 0o022 and not (path != directory and info.st_mode & stat.S_ISVTX)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or writable:
            raise OSError('%s is not a directory that only root can change' % path)
        if path == os.path.dirname(path):
            return
        path = os.path.dirname(path)


class _CacheFinder(object):
    """A meta path finder for PACKAGE's modules in the payload zip, with a code cache."""

    def __init__(self, archive, directory):
        self.archive = archive
        self.directory = directory
        self.importers = {}  # one zipimporter per package directory in the payload

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(PACKAGE + '.') or not path:
            return None
        where = path[0]
        if not where.startswith(self.archive + os.sep):
            return None  # the package does not come from the payload
        importer = self.importers.get(where)
        if importer is None:
            import zipimport  # pylint: disable=import-outside-toplevel
            importer = self.importers[where] = zipimport.zipimporter(where)
        try:
            is_package = importer.is_package(fullname)
        except ImportError:
            return None  # not in the payload: let the other finders say
        import importlib.util  # pylint: disable=import-outside-toplevel
        last = fullname.rpartition('.')[2]
        origin = os.path.join(where, last, '__init__.py') if is_package else os.path.join(where, last + '.py')
        spec = importlib.util.spec_from_loader(fullname, _CachedLoader(self, importer, fullname, origin),
                                               origin=origin, is_package=is_package)
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations = [os.path.join(where, last)]
        return spec


class _CachedLoader(object):
    def __init__(self, finder, importer, fullname, origin):
        self.finder = finder
        self.importer = importer
        self.fullname = fullname
        self.origin = origin

    def create_module(self, spec):
        return None  # the default module object

    def get_source(self, fullname):
        return self.importer.get_source(fullname)

    def get_filename(self, fullname):
        return self.origin

    def exec_module(self, module):
        exec(self.get_code(), module.__dict__)  # pylint: disable=exec-used

    def get_code(self):
        import hashlib  # pylint: disable=import-outside-toplevel
        import importlib.util  # pylint: disable=import-outside-toplevel
        source = self.get_source(self.fullname)
        if source is None:
            return self.importer.get_code(self.fullname)
        digest = hashlib.sha256(source.encode('utf-8', 'surrogateescape')).hexdigest()[:32]
        tag = sys.implementation.cache_tag or 'python'
        path = os.path.join(self.finder.directory, '%s.%s.%s.bin' % (self.fullname, digest, tag))
        magic = importlib.util.MAGIC_NUMBER
        code = _read_cached(path, magic)
        if code is not None:
            import _imp  # pylint: disable=import-outside-toplevel
            _imp._fix_co_filename(code, self.origin)  # pylint: disable=protected-access
            return code
        code = compile(source, self.origin, 'exec', dont_inherit=True)
        _write_cached(path, magic + marshal.dumps(code), self.fullname)
        return code


def _read_cached(path, magic):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, 'rb') as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != 0 or stat.S_IMODE(info.st_mode) != 0o600:
                return None
            data = handle.read()
    except OSError:
        return None
    if not data.startswith(magic):
        return None
    try:
        return marshal.loads(data[len(magic):])
    except (EOFError, ValueError, TypeError):
        return None


def _write_cached(path, data, fullname):
    """Write exclusively under a temporary name, then rename. Best effort.

    Then drop this module's other entries for this Python (the entries of other Pythons on the node
    stay theirs; a file two collection versions share has one entry), and the temporary files of
    writers killed over an hour ago.
    """
    directory = os.path.dirname(path)
    temp = os.path.join(directory, '.%s.%d.tmp' % (os.path.basename(path), os.getpid()))
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
        os.rename(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
        return
    import time  # pylint: disable=import-outside-toplevel
    name = os.path.basename(path)
    prefix, suffix = fullname + '.', name[name.rindex('.', 0, -len('.bin')):]  # suffix: .TAG.bin
    hour_ago = time.time() - 3600
    try:
        for entry in os.listdir(directory):
            entry_path = os.path.join(directory, entry)
            if entry != name and entry.startswith(prefix) and entry.endswith(suffix) and \
                    entry[len(prefix):].count('.') == 2:
                os.unlink(entry_path)
            elif entry.startswith('.' + prefix) and entry.endswith('.tmp') and os.lstat(entry_path).st_mtime < hour_ago:
                os.unlink(entry_path)
    except OSError:
        pass
