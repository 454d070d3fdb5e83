# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests: the pure parts of the runtime library, with fakes for conmon and the OCI runtime.

The code is imported as ``ansible_collections.runcible.oci...``. With ``ANSIBLE_COLLECTIONS_PATH``
set, its first entry is used; otherwise ``build/collections/ansible_collections/runcible/oci`` (a
symlink to the repository root, gitignored) is created, or, when that path is taken by something
else, the same layout in a temporary directory.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _link_collection(base):
    """Make ``base/ansible_collections/runcible/oci`` point at the repository; -> True when it does."""
    link = os.path.join(base, 'ansible_collections', 'runcible', 'oci')
    if not os.path.lexists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(REPO, os.path.dirname(link)), link)
    return os.path.realpath(link) == os.path.realpath(REPO)


def _collections_path():
    configured = os.environ.get('ANSIBLE_COLLECTIONS_PATH')
    if configured:
        return configured.split(os.pathsep)[0]
    build = os.path.join(REPO, 'build', 'collections')
    try:
        if _link_collection(build):
            return build
    except OSError:
        pass
    temp = tempfile.mkdtemp(prefix='runcible-unit-collections-')
    atexit.register(shutil.rmtree, temp, True)
    _link_collection(temp)
    return temp


COLLECTIONS = _collections_path()
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


def _import_every_module_util():
    """Import every module_utils module now, through sys.path.

    The collection loads some modules on first use (the option table's bindings, for one). Once a test
    has called Ansible's init_plugin_loader(), imports of ``ansible_collections.*`` go through Ansible's
    collection finder, which refuses a package it did not load itself; so everything is loaded first.
    """
    base = os.path.join(REPO, 'plugins', 'module_utils')
    for directory, _dirs, files in os.walk(base):
        for name in sorted(files):
            if name.endswith('.py') and name != '__init__.py':
                relative = os.path.relpath(os.path.join(directory, name[:-3]), base).replace(os.sep, '.')
                importlib.import_module('ansible_collections.runcible.oci.plugins.module_utils.' + relative)


_import_every_module_util()


@pytest.fixture(params=['openat2', 'walk'])
def lookup_mode(request, monkeypatch):
    """Resolve paths inside a root with the kernel's openat2, or with the component walk used where it is missing."""
    from ansible_collections.runcible.oci.plugins.module_utils._runtime import inroot
    if request.param == 'openat2':
        monkeypatch.setattr(inroot, '_openat2', None)
        if not inroot.have_openat2():
            pytest.skip('this kernel has no openat2(2) (Linux 5.6+): only the component walk can be tested here')
    else:
        monkeypatch.setattr(inroot, '_openat2', False)
    assert inroot.have_openat2() is (request.param == 'openat2')
    return request.param


@pytest.fixture
def store_dirs(tmp_path):
    """A fresh ``root`` and ``run_root`` pair (paths only: nothing is created)."""
    return str(tmp_path / 'root'), str(tmp_path / 'run')


def _tree(path):
    """Every path under ``path`` (relative), or None when ``path`` does not exist."""
    if not os.path.lexists(path):
        return None
    found = []
    for current, dirs, files in os.walk(path):
        for entry in dirs + files:
            found.append(os.path.relpath(os.path.join(current, entry), path))
    return sorted(found)


@pytest.fixture
def tree():
    """``tree(path)``: the sorted relative paths under ``path``, or None when it does not exist."""
    return _tree
