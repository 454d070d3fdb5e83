# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_bytecode: the node-side cache of compiled module_utils, driven from a payload-like zip.

    a payload compiles each module_utils file once, then loads it from the cache (0600, root's)
    a changed source gets a new entry and its old one goes
    outside a payload (the Python API, tests) it does nothing; RUNCIBLE_BYTECODE_CACHE=off turns it off
    attacks: a cache file with code planted by someone who is not root, a file another user could have
    written (mode, owner), a link in place of a file, a cache directory others can write, one that is a link,
    or one under a directory another user owns - none of them is used, and the module still imports
"""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
import zipfile
from importlib.util import MAGIC_NUMBER

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _bytecode

from conftest import REPO

PREFIX = _bytecode.PACKAGE + '.'
# Import two module_utils from the payload the way a module does, and say where they came from.
PROBE = '''
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache
used = enable_cache(sys.argv[2])
from ansible_collections.runcible.oci.plugins.module_utils._runtime import parsers, errors
print(json.dumps({"used": used, "loader": type(parsers.__spec__.loader).__name__,
                  "marker": getattr(parsers, "PLANTED", None), "has_parse": hasattr(parsers, "parse_size"),
                  "file": parsers.__file__, "filename": parsers.parse_size.__code__.co_filename
                  if hasattr(parsers, "parse_size") else None}))
'''

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the cache is used by root only')


def make_payload(path, changed=None):
    """A zip laid out as AnsiballZ lays out a module's module_utils; ``changed``: {relative path: source}."""
    with zipfile.ZipFile(path, 'w') as payload:
        for package in ('ansible_collections', 'ansible_collections/runcible', 'ansible_collections/runcible/oci',
                        'ansible_collections/runcible/oci/plugins',
                        'ansible_collections/runcible/oci/plugins/module_utils'):
            payload.writestr(package + '/__init__.py', '')
        top = os.path.join(REPO, 'plugins', 'module_utils')
        for folder, _dirs, files in os.walk(top):
            for name in files:
                if name.endswith('.py'):
                    relative = os.path.relpath(os.path.join(folder, name), top)
                    source = (changed or {}).get(relative)
                    if source is None:
                        with open(os.path.join(folder, name)) as handle:
                            source = handle.read()
                    payload.writestr('ansible_collections/runcible/oci/plugins/module_utils/' + relative, source)
    return str(path)


def run_probe(payload, cache):
    proc = subprocess.run([sys.executable, '-I', '-c', PROBE, payload, str(cache)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout.decode())


def entries(cache, module='_runtime.parsers'):
    return sorted(name for name in os.listdir(cache) if name.startswith(PREFIX + module + '.'))


def plant(cache, mode=0o600, owner=0):
    """Replace the cache entry of _runtime.parsers with other code (as an attacker would); -> its path."""
    [name] = entries(cache)
    path = os.path.join(cache, name)
    os.unlink(path)
    code = compile('PLANTED = "planted"\n', 'planted', 'exec')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(MAGIC_NUMBER + marshal.dumps(code))
    os.chmod(path, mode)
    os.chown(path, owner, owner)
    return path


@pytest.fixture
def payload(tmp_path):
    return make_payload(tmp_path / 'payload.zip')


@pytest.fixture
def cache(tmp_path):
    return tmp_path / 'cache' / 'bytecode'


def test_a_payload_compiles_once_then_loads_from_the_cache(payload, cache):
    first = run_probe(payload, cache)
    assert first['used'] == str(cache) and first['loader'] == '_CachedLoader' and first['has_parse']
    assert first['file'].startswith(payload + os.sep)
    assert oct(os.stat(cache).st_mode & 0o777) == '0o700'
    [name] = entries(cache)
    info = os.stat(os.path.join(cache, name))
    assert info.st_uid == 0 and oct(info.st_mode & 0o777) == '0o600'
    assert entries(cache, '_runtime.errors')

    second = run_probe(payload, cache)
    assert second['has_parse'] and second['filename'] == first['file']  # the code names this payload's file
    again = os.stat(os.path.join(cache, name))
    assert (again.st_ino, again.st_mtime_ns) == (info.st_ino, info.st_mtime_ns), 'the entry was written again'

    # Proof that the entry is what gets run: code put there by root is run instead of the source.
    plant(cache)
    assert run_probe(payload, cache)['marker'] == 'planted'


def test_a_changed_source_gets_a_new_entry_and_the_old_one_goes(payload, cache, tmp_path):
    run_probe(payload, cache)
    [old] = entries(cache)
    with open(os.path.join(REPO, 'plugins', 'module_utils', '_runtime', 'parsers.py')) as handle:
        source = handle.read() + '\nCHANGED = True\n'
    changed = make_payload(tmp_path / 'changed.zip', {os.path.join('_runtime', 'parsers.py'): source})
    assert run_probe(changed, cache)['has_parse']
    [new] = entries(cache)
    assert new != old


def test_outside_a_payload_or_when_off_it_does_nothing(payload, cache, monkeypatch):
    assert _bytecode.enable_cache(str(cache)) is None  # this process imports from the file system
    assert not os.path.exists(cache)
    found = run_probe(payload, 'off')
    assert found['used'] is None and found['loader'] == 'zipimporter' and found['has_parse']


@pytest.mark.parametrize('mode, owner', [(0o644, 0), (0o620, 0), (0o600, 65534)], ids=['world-readable',
                                                                                       'group-writable',
                                                                                       'not-roots'])
def test_a_planted_entry_another_user_could_have_written_is_not_run(payload, cache, mode, owner):
    run_probe(payload, cache)
    path = plant(cache, mode=mode, owner=owner)
    found = run_probe(payload, cache)
    assert found['marker'] is None and found['has_parse']
    info = os.lstat(path)  # compiled again from source, and written back as root's, 0600
    assert info.st_uid == 0 and oct(info.st_mode & 0o777) == '0o600'


def test_a_link_in_place_of_an_entry_is_not_followed(payload, cache, tmp_path):
    run_probe(payload, cache)
    [name] = entries(cache)
    elsewhere = str(tmp_path / 'elsewhere.bin')
    os.rename(os.path.join(cache, name), elsewhere)
    planted = plant_at(elsewhere)
    os.symlink(planted, os.path.join(cache, name))
    found = run_probe(payload, cache)
    assert found['marker'] is None and found['has_parse']


def plant_at(path):
    os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(MAGIC_NUMBER + marshal.dumps(compile('PLANTED = "planted"\n', 'planted', 'exec')))
    return path


@pytest.mark.parametrize('attack', ['others-can-write', 'a-link', 'parent-not-roots', 'relative'])
def test_a_cache_directory_others_could_change_is_not_used(payload, cache, tmp_path, attack):
    os.makedirs(cache, mode=0o700)
    where = str(cache)
    if attack == 'others-can-write':
        os.chmod(cache, 0o777)
    elif attack == 'a-link':
        where = str(tmp_path / 'link')
        os.symlink(cache, where)
    elif attack == 'parent-not-roots':
        os.chown(os.path.dirname(cache), 65534, 65534)
    else:
        where = 'cache/bytecode'
    found = run_probe(payload, where)
    assert found['used'] is None and found['loader'] == 'zipimporter' and found['has_parse']
    assert os.listdir(cache) == []
