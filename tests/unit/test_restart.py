# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart policies: the decision, the back-off, the exit command, and the library installed for it."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import payload, restart
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError


@pytest.mark.parametrize('policy, retries, code, streak, expected', [
    ('no', 0, 1, 0, False), ('always', 0, 0, 50, True), ('unless-stopped', 0, 137, 0, True),
    ('on-failure', 0, 0, 0, False), ('on-failure', 0, 1, 99, True), ('on-failure', 2, 1, 1, True),
    ('on-failure', 2, 1, 2, False), ('on-failure', 0, None, 0, True),  # killed with its conmon: no code, a failure
])
def test_wants_restart(policy, retries, code, streak, expected):
    assert restart.wants_restart(policy, retries, code, streak) is expected


def test_backoff_doubles_and_is_capped():
    assert [restart.backoff(streak) for streak in range(5)] == [0.0, 0.1, 0.2, 0.4, 0.8]
    assert restart.backoff(30) == restart.BACKOFF_MAX


def test_the_exit_command_is_an_isolated_python_running_the_installed_launcher():
    program, arguments = restart.exit_command('/r/lib/abc', '/r', '/run/r', 'web', 'f' * 64)
    assert program == sys.executable
    assert arguments == ['-I', '-B', '/r/lib/abc/exit.py', '/r', '/run/r', 'web', 'f' * 64]


def test_install_is_content_addressed_exclusive_and_collects_old_versions(tmp_path):
    root = str(tmp_path)
    payload._cache.clear()
    lib = payload.install(root)
    assert os.path.basename(lib) == payload.version(payload.sources())
    package = os.path.join(lib, *payload.PACKAGE.split('.'))
    assert os.path.isfile(os.path.join(package, 'restart.py')) and os.path.isfile(os.path.join(lib, payload.LAUNCHER))
    for depth in range(1, len(payload.PACKAGE.split('.'))):
        assert os.path.isfile(os.path.join(lib, *payload.PACKAGE.split('.')[:depth], '__init__.py'))
    assert oct(os.stat(os.path.join(package, 'restart.py')).st_mode & 0o777) == '0o600'
    assert any(name.startswith('restart.') for name in os.listdir(os.path.join(package, '__pycache__')))
    assert payload.installed(root) and payload.install(root) == lib
    old, used = os.path.join(root, 'lib', 'old'), os.path.join(root, 'lib', 'used')
    os.makedirs(old)
    os.makedirs(used)
    assert payload.collect(root, [used], keep=lib) == ['old']
    assert sorted(os.listdir(os.path.join(root, 'lib'))) == sorted([os.path.basename(lib), 'current', 'used'])
    assert os.readlink(os.path.join(root, 'lib', 'current')) == os.path.basename(lib)  # what the boot unit runs
    payload._cache.clear()


def test_a_removed_store_is_not_made_again_by_a_late_exit_command(tmp_path):
    """The exit command of a container whose store is gone does nothing and makes no directory."""
    root = str(tmp_path / 'gone')
    assert restart.handle_exit(root, str(tmp_path / 'run'), 'web', 'f' * 64) == 'gone'
    assert not os.path.exists(root)


def test_the_boot_unit_of_a_store(tmp_path):
    unit_dir = str(tmp_path / 'systemd')
    path = payload.ensure_boot_unit('/var/lib/x', '/run/x', unit_dir=unit_dir)
    with open(path) as handle:
        text = handle.read()
    assert '"-I" "-B" "/var/lib/x/lib/current/exit.py" "--boot" "/var/lib/x" "/run/x"' in text  # each word quoted
    assert 'WantedBy=multi-user.target' in text
    link = os.path.join(unit_dir, 'multi-user.target.wants', os.path.basename(path))
    assert os.readlink(link) == path
    assert oct(os.stat(path).st_mode & 0o777) == '0o644'
    assert payload.ensure_boot_unit('/var/lib/x', '/run/x', unit_dir=unit_dir) == path  # unchanged: not rewritten


def test_the_boot_unit_is_removed_with_its_link(tmp_path):
    unit_dir = str(tmp_path / 'systemd')
    path = payload.ensure_boot_unit('/var/lib/x', '/run/x', unit_dir=unit_dir)
    assert payload.remove_boot_unit('/var/lib/x', unit_dir=unit_dir) is True
    assert not os.path.exists(path) and os.listdir(os.path.join(unit_dir, 'multi-user.target.wants')) == []
    assert payload.remove_boot_unit('/var/lib/x', unit_dir=unit_dir) is False


def test_the_python_that_runs_as_root_after_the_task_must_be_roots_alone(tmp_path, monkeypatch):
    """The exit command, units and port proxy run this Python as root later: a copy its owner (uid 1000) or anyone
    could change meanwhile is refused before anything is installed; root's own, 0755, passes."""
    python = tmp_path / 'bin' / 'python3'
    python.parent.mkdir()
    python.write_bytes(b'')
    assert payload.untrusted_path(str(python)) is None
    os.chmod(str(python), 0o777)
    assert payload.untrusted_path(str(python)) == '%s is writable by anyone' % python
    os.chmod(str(python), 0o755)
    os.chown(str(python.parent), 1000, 0)
    assert payload.untrusted_path(str(python)) == '%s belongs to uid 1000' % python.parent
    link = tmp_path / 'python-link'
    os.symlink(str(python), str(link))
    assert 'belongs to uid 1000' in payload.untrusted_path(str(link)), 'the link is followed to what runs'
    monkeypatch.setattr(payload, '_trusted', [])
    monkeypatch.setattr(payload.sys, 'executable', str(link))
    root = tmp_path / 'store'
    with pytest.raises(ValidationError, match='set ansible_python_interpreter to a Python that only root can change'):
        payload.install(str(root))
    assert not root.exists(), 'nothing installed'
