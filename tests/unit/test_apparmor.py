# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/apparmor.py: the default profile's template, the host's state, loading only when missing or changed.

The profile is compiled by the real apparmor_parser (``-Q``: parse and compile, load nothing), so a
template the parser rejects fails here. Loading it into a kernel is tested in the VMs
(tests/vm/test_vm_confinement.py); here a stand-in parser records what it was asked to load.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import apparmor
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuntimeCommandError, ValidationError

PARSER = shutil.which('apparmor_parser', path=os.environ.get('PATH', '') + ':/sbin:/usr/sbin')


def test_the_template_renders_our_profile_with_its_version():
    text = apparmor.render()
    assert 'profile runcible-default flags=(attach_disconnected,mediate_deleted) {' in text
    assert 'version %d' % apparmor.PROFILE_VERSION in text
    assert 'deny mount,' in text and '#include' not in text  # self-contained: nothing from /etc/apparmor.d
    assert 'peer=runcible-default' in text and '{name}' not in text


@pytest.mark.skipif(PARSER is None, reason='apparmor_parser is not installed (Debian package apparmor)')
@pytest.mark.parametrize('name', ['runcible-default', 'other-profile'])
def test_apparmor_parser_compiles_the_rendered_profile(name, tmp_path):
    process = subprocess.run([PARSER, '--skip-kernel-load', '--skip-cache', '--abort-on-error'],
                             input=apparmor.render(name).encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             check=False)
    assert process.returncode == 0, process.stderr.decode()


@pytest.mark.skipif(PARSER is None, reason='apparmor_parser is not installed (Debian package apparmor)')
def test_the_compile_check_can_fail():
    broken = apparmor.render().replace('deny mount,', 'deny mount nonsense words;')
    process = subprocess.run([PARSER, '--skip-kernel-load', '--skip-cache'], input=broken.encode(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    assert process.returncode != 0


def fake_host(tmp_path, enabled='Y', profiles=''):
    enabled_file = tmp_path / 'enabled'
    enabled_file.write_text(enabled + '\n')
    securityfs = tmp_path / 'securityfs'
    securityfs.mkdir()
    (securityfs / 'profiles').write_text(profiles)
    return str(enabled_file), str(securityfs)


def test_enabled_and_loaded_profiles(tmp_path):
    profiles = 'runcible-default (enforce)\n/usr/bin/man (complain)\nodd name (x) (enforce)\n'
    enabled_file, securityfs = fake_host(tmp_path, profiles=profiles)
    assert apparmor.enabled(enabled_file, securityfs)
    assert apparmor.loaded_profiles(securityfs) == {'runcible-default': 'enforce', '/usr/bin/man': 'complain',
                                                    'odd name (x)': 'enforce'}
    assert not apparmor.enabled(enabled_file, str(tmp_path / 'nowhere'))
    (tmp_path / 'enabled').write_text('N\n')
    assert not apparmor.enabled(enabled_file, securityfs)
    assert not apparmor.enabled(str(tmp_path / 'missing'), securityfs)
    assert apparmor.loaded_profiles(str(tmp_path / 'nowhere')) == {}


@pytest.mark.parametrize('name', ['', '-r', 'two words', 'tab\there', 'x' * 256, 'nl\n'])
def test_profile_names_that_are_refused(name):
    with pytest.raises(ValidationError, match='not an AppArmor profile name'):
        apparmor.check_profile_name(name)


def test_profile_names_that_are_taken():
    for name in ('runcible-default', 'unconfined', 'my-app', '/usr/bin/foo', 'a.b_c'):
        assert apparmor.check_profile_name(name) == name


def stand_in_parser(tmp_path, rc=0):
    """A parser that saves what it is given and answers ``rc`` (for the stamp logic, not the kernel)."""
    log = tmp_path / 'loaded'
    script = tmp_path / 'bin' / 'apparmor_parser'
    script.parent.mkdir()
    script.write_text('#!/bin/sh\necho "$@" >> %s.args\ncat >> %s\necho parser said no >&2\nexit %d\n' % (log, log, rc))
    script.chmod(0o755)
    return str(script.parent), log


def test_the_default_is_loaded_when_missing_or_changed_and_not_again(tmp_path, monkeypatch):
    enabled_file, securityfs = fake_host(tmp_path)
    monkeypatch.setattr(apparmor, 'SECURITYFS', securityfs)
    bindir, log = stand_in_parser(tmp_path)
    monkeypatch.setenv('PATH', bindir + ':' + os.environ.get('PATH', '/usr/bin:/bin'))
    run_root = str(tmp_path / 'run')
    assert apparmor.ensure_default(run_root) is True          # not loaded: load it
    assert log.read_text() == apparmor.render()
    assert '--replace' in (tmp_path / 'loaded.args').read_text()
    stamp = os.path.join(run_root, 'apparmor', 'runcible-default.sha256')
    assert oct(os.stat(stamp).st_mode & 0o777) == '0o600'
    assert apparmor.ensure_default(run_root) is True          # stamped, but the kernel still lacks it
    (tmp_path / 'securityfs' / 'profiles').write_text('runcible-default (enforce)\n')
    assert apparmor.ensure_default(run_root) is False         # loaded and the same version: nothing to do
    with open(stamp, 'w') as handle:
        handle.write('an older version\n')
    assert apparmor.ensure_default(run_root) is True          # another version loaded: replace it
    assert log.read_text().count('profile runcible-default') == 3


def test_a_parser_failure_or_a_missing_parser_is_an_error_naming_the_fix(tmp_path, monkeypatch):
    _enabled, securityfs = fake_host(tmp_path)
    monkeypatch.setattr(apparmor, 'SECURITYFS', securityfs)
    bindir, _log = stand_in_parser(tmp_path, rc=1)
    monkeypatch.setenv('PATH', bindir + ':' + os.environ.get('PATH', '/usr/bin:/bin'))
    with pytest.raises(RuntimeCommandError, match='could not load runcible-default: parser said no'):
        apparmor.ensure_default(str(tmp_path / 'run'))
    assert not os.path.exists(tmp_path / 'run' / 'apparmor' / 'runcible-default.sha256')
    monkeypatch.setattr(apparmor, 'find_program', lambda name: None)
    with pytest.raises(RuntimeCommandError, match='install the apparmor package'):
        apparmor.ensure_default(str(tmp_path / 'run'))


def test_asking_for_a_profile_where_apparmor_is_off_fails_clearly(tmp_path, monkeypatch):
    enabled_file, securityfs = fake_host(tmp_path, enabled='N')
    monkeypatch.setattr(apparmor, 'ENABLED_FILE', enabled_file)
    monkeypatch.setattr(apparmor, 'SECURITYFS', securityfs)
    apparmor.require('unconfined')
    with pytest.raises(ValidationError, match='AppArmor is not enabled on this host'):
        apparmor.require('runcible-default')
    (tmp_path / 'enabled').write_text('Y\n')
    with pytest.raises(ValidationError, match='profile my-app is not loaded'):
        apparmor.require('my-app')
    (tmp_path / 'securityfs' / 'profiles').write_text('my-app (enforce)\n')
    apparmor.require('my-app')
