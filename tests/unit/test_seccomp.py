# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/seccomp.py: containers-common profiles converted to the OCI spec, our hardening rules, profile files."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import seccomp
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError

PROFILE = {
    'defaultAction': 'SCMP_ACT_ERRNO',
    'defaultErrnoRet': 38,
    'archMap': [
        {'architecture': 'SCMP_ARCH_X86_64', 'subArchitectures': ['SCMP_ARCH_X86', 'SCMP_ARCH_X32']},
        {'architecture': 'SCMP_ARCH_AARCH64', 'subArchitectures': ['SCMP_ARCH_ARM']},
    ],
    'syscalls': [
        {'names': ['read', 'write', 'unshare', 'keyctl'], 'action': 'SCMP_ACT_ALLOW', 'args': [], 'includes': {},
         'excludes': {}},
        {'names': ['arch_prctl'], 'action': 'SCMP_ACT_ALLOW', 'includes': {'arches': ['amd64', 'x32']}, 'excludes': {}},
        {'names': ['arm_fadvise64_64'], 'action': 'SCMP_ACT_ALLOW', 'includes': {'arches': ['arm', 'arm64']}},
        {'names': ['chroot'], 'action': 'SCMP_ACT_ALLOW', 'includes': {'caps': ['CAP_SYS_CHROOT']}},
        {'names': ['chroot'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1, 'excludes': {'caps': ['CAP_SYS_CHROOT']}},
        {'names': ['sync_file_range2'], 'action': 'SCMP_ACT_ALLOW', 'excludes': {'arches': ['amd64']}},
        {'names': ['new_call'], 'action': 'SCMP_ACT_ALLOW', 'includes': {'minKernel': '6.20'}},
        {'names': ['personality'], 'action': 'SCMP_ACT_ALLOW',
         'args': [{'index': 0, 'value': 8, 'valueTwo': 0, 'op': 'SCMP_CMP_EQ'}]},
    ],
}


def names(seccomp_doc, action=None):
    return set(name for rule in seccomp_doc['syscalls'] if action in (None, rule['action']) for name in rule['names'])


def test_conversion_takes_the_host_arch_its_sub_arches_and_the_rules_that_apply_to_it():
    oci = seccomp.to_oci(PROFILE, ['CAP_SYS_CHROOT'], machine='x86_64', kernel=(6, 1, 0))
    assert oci['defaultAction'] == 'SCMP_ACT_ERRNO' and oci['defaultErrnoRet'] == 38
    assert oci['architectures'] == ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']
    allowed = names(oci, 'SCMP_ACT_ALLOW')
    assert {'read', 'write', 'arch_prctl', 'chroot', 'personality'} <= allowed
    assert 'arm_fadvise64_64' not in allowed          # includes.arches: another architecture
    assert 'sync_file_range2' not in allowed          # excludes.arches: this one
    assert 'new_call' not in allowed                  # includes.minKernel above this kernel
    assert 'chroot' not in names(oci, 'SCMP_ACT_ERRNO')  # excludes.caps: the container has it
    personality = [rule for rule in oci['syscalls'] if rule['names'] == ['personality']][0]
    assert personality['args'] == [{'index': 0, 'value': 8, 'valueTwo': 0, 'op': 'SCMP_CMP_EQ'}]
    assert all(set(rule) <= {'names', 'action', 'errnoRet', 'args'} for rule in oci['syscalls'])


def test_conversion_on_arm64_and_without_the_capability_and_on_a_newer_kernel():
    oci = seccomp.to_oci(PROFILE, [], machine='aarch64', kernel=(6, 20, 1))
    assert oci['architectures'] == ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']
    assert {'arm_fadvise64_64', 'sync_file_range2', 'new_call'} <= names(oci, 'SCMP_ACT_ALLOW')
    assert 'arch_prctl' not in names(oci)
    chroot = [rule for rule in oci['syscalls'] if rule['names'] == ['chroot']]
    assert chroot == [{'names': ['chroot'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1}]


def test_an_oci_profile_is_taken_as_written():
    oci_profile = {'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_X86_64'],
                   'syscalls': [{'names': ['mount'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 1}]}
    assert seccomp.to_oci(oci_profile, [], machine='x86_64') == oci_profile


@pytest.mark.parametrize('caps, machine', [([], 'x86_64'), (['CAP_SYS_ADMIN'], 'x86_64'), ([], 's390x')])
def test_hardening_replaces_the_base_rules_of_the_names_it_covers(caps, machine):
    oci = seccomp.to_oci(PROFILE, caps, machine=machine, kernel=(6, 1), hardening=seccomp.HARDENING)
    by_name = {}
    for rule in oci['syscalls']:
        for name in rule['names']:
            by_name.setdefault(name, []).append(rule)
    assert by_name['read'][0]['action'] == 'SCMP_ACT_ALLOW'
    assert [rule['action'] for rule in by_name['keyctl']] == ['SCMP_ACT_ERRNO']  # allowed by the base, denied here
    if 'CAP_SYS_ADMIN' in caps:
        assert [rule['action'] for rule in by_name['unshare']] == ['SCMP_ACT_ALLOW']
        assert [rule.get('args') for rule in by_name['clone']] == [None]
        assert [rule['action'] for rule in by_name['clone3']] == ['SCMP_ACT_ALLOW']
    else:
        assert [(rule['action'], rule['errnoRet']) for rule in by_name['unshare']] == [('SCMP_ACT_ERRNO', 1)]
        assert [(rule['action'], rule['errnoRet']) for rule in by_name['mount']] == [('SCMP_ACT_ERRNO', 1)]
        assert [(rule['action'], rule['errnoRet']) for rule in by_name['clone3']] == [('SCMP_ACT_ERRNO', 38)]
        [clone] = by_name['clone']
        # clone without a CLONE_NEW* flag only; the flags are the second argument on s390.
        assert clone['args'] == [{'index': 1 if machine == 's390x' else 0, 'value': seccomp.CLONE_NAMESPACE_FLAGS,
                                  'valueTwo': 0, 'op': 'SCMP_CMP_MASKED_EQ'}]


def test_the_namespace_mask_covers_every_clone_new_flag():
    for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x80):
        assert seccomp.CLONE_NAMESPACE_FLAGS & flag
    assert not seccomp.CLONE_NAMESPACE_FLAGS & 0x00000100  # CLONE_VM: threads still work


@pytest.mark.skipif(not any(os.path.isfile(path) for path in seccomp.DEFAULT_PROFILE_PATHS),
                    reason='no containers-common seccomp.json on this host')
def test_the_host_profile_converts_and_keeps_what_a_shell_needs():
    oci = seccomp.default_seccomp(['CAP_CHOWN', 'CAP_SYS_CHROOT'])
    allowed = names(oci, 'SCMP_ACT_ALLOW')
    assert {'read', 'write', 'execve', 'openat', 'wait4', 'chroot'} <= allowed
    assert {'keyctl', 'add_key', 'request_key'}.isdisjoint(allowed)
    native = seccomp.ARCHES.get(os.uname().machine, ('', ''))[1]
    assert oci['architectures'] == [native] if native else 'SCMP_ARCH_X32' not in oci['architectures']
    json.dumps(oci)


@pytest.mark.parametrize('machine, expected', [
    ('x86_64', ['SCMP_ARCH_X86_64']),           # no i386, no x32
    ('aarch64', ['SCMP_ARCH_AARCH64']),         # no 32-bit ARM
    ('s390x', ['SCMP_ARCH_S390X']),
    ('i686', ['SCMP_ARCH_X86']),                # the native ABI of a 32-bit host stays
    ('sparc64', ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']),  # unknown here: the profile's list less x32
])
def test_the_default_keeps_the_native_abi_only(monkeypatch, machine, expected):
    profile = {'defaultAction': 'SCMP_ACT_ERRNO', 'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
               'archMap': [
                   {'architecture': 'SCMP_ARCH_X86_64', 'subArchitectures': ['SCMP_ARCH_X86', 'SCMP_ARCH_X32']},
                   {'architecture': 'SCMP_ARCH_AARCH64', 'subArchitectures': ['SCMP_ARCH_ARM']},
                   {'architecture': 'SCMP_ARCH_S390X', 'subArchitectures': ['SCMP_ARCH_S390']},
                   {'architecture': 'SCMP_ARCH_X86', 'subArchitectures': []}],
               'syscalls': [{'names': ['read'], 'action': 'SCMP_ACT_ALLOW'}]}
    monkeypatch.setattr(seccomp, 'read_profile', lambda path, option='seccomp_profile': (profile, 'sha256:x'))
    monkeypatch.setattr(seccomp, 'default_profile_path', lambda: '/x.json')
    assert seccomp.default_seccomp(['CAP_CHOWN'], machine=machine)['architectures'] == expected


def test_profile_files_are_read_checked_and_digested(tmp_path):
    good = tmp_path / 'good.json'
    good.write_text(json.dumps(PROFILE))
    profile, digest = seccomp.read_profile(str(good))
    assert profile == PROFILE and digest.startswith('sha256:') and len(digest) == 71
    assert seccomp.profile_seccomp(str(good), digest, [])['defaultAction'] == 'SCMP_ACT_ERRNO'
    good.write_text(json.dumps(dict(PROFILE, defaultErrnoRet=1)))
    with pytest.raises(ValidationError, match='changed since the container was made'):
        seccomp.profile_seccomp(str(good), digest, [])
    for text, message in (('{"syscalls": []}', 'no defaultAction'), ('[1]', 'no defaultAction'),
                          ('not json', 'not a JSON'), ('{"defaultAction": "X", "syscalls": [{"action": "A"}]}',
                                                       r'syscalls\[0\] needs names')):
        bad = tmp_path / 'bad.json'
        bad.write_text(text)
        with pytest.raises(ValidationError, match=message):
            seccomp.read_profile(str(bad))
    with pytest.raises(ValidationError, match='cannot read'):
        seccomp.read_profile(str(tmp_path / 'missing.json'))
    huge = tmp_path / 'huge.json'
    huge.write_bytes(b' ' * (seccomp.MAX_PROFILE_SIZE + 1))
    with pytest.raises(ValidationError, match='larger than'):
        seccomp.read_profile(str(huge))


def test_a_missing_host_profile_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(seccomp, 'DEFAULT_PROFILE_PATHS', (str(tmp_path / 'a.json'), str(tmp_path / 'b.json')))
    with pytest.raises(ValidationError, match='golang-github-containers-common'):
        seccomp.default_profile_path()


@pytest.mark.parametrize('release, version', [('6.18.0-1-amd64', (6, 18, 0)), ('5.10.0+', (5, 10, 0)),
                                              ('6.1', (6, 1)), ('4.19.0-rc3', (4, 19, 0))])
def test_kernel_versions(release, version):
    assert seccomp.kernel_version(release) == version
