# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""seccomp profiles: the host's container profile, our hardening rules on top, conversion to the OCI spec.

The default profile is the one the host's container tooling ships (containers-common:
``/etc/containers/seccomp.json`` when the admin put one there, else
``/usr/share/containers/seccomp.json``), the same file podman applies, kept current by the
distribution with its kernel and libseccomp. We do not carry a copy of it.

On top of it the default applies a short rule set of ours (:data:`HARDENING`), because
containers-common's profile lets an unprivileged container create namespaces (``unshare -U``
hands it every capability inside a new user namespace: the entry point of many kernel exploits),
mount and use the kernel keyring (not namespaced). Without ``CAP_SYS_ADMIN``:

* ``unshare`` and ``clone`` with any ``CLONE_NEW*`` flag fail with EPERM; ``clone3`` fails with
  ENOSYS (its flags are in memory a filter cannot read, and libc falls back to ``clone``);
* ``mount``, ``umount2``, ``pivot_root``, the new mount API (``fsopen``, ``fsmount``, ``move_mount``,
  ``open_tree``...) fail with EPERM;
* ``keyctl``, ``add_key``, ``request_key`` fail with EPERM for every container;
* only the host's native system call ABI is in the filter's architectures: the compat ABIs of a 64-bit
  kernel (i386 and x32 on x86_64, 32-bit ARM on arm64...) fail as a foreign architecture (the process is
  killed), see :func:`default_seccomp`.

A profile file given by the user is applied as written (OCI ``linux.seccomp`` or containers-common
format), without our rules. The containers-common format is converted as podman does: the host's
architecture and its sub-architectures from ``archMap``; a rule applies when its ``includes``
(``arches``, ``caps``: all in the container's bounding set, ``minKernel``) hold and its ``excludes``
(any of ``arches``, ``caps``) do not.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from typing import TYPE_CHECKING

from .errors import ValidationError

if TYPE_CHECKING:
    from typing import Any, Iterable

# containers-common's profile: the admin's copy first, as podman reads them.
DEFAULT_PROFILE_PATHS = ('/etc/containers/seccomp.json', '/usr/share/containers/seccomp.json')
DEFAULT_PROFILE_PACKAGE = 'golang-github-containers-common'
MAX_PROFILE_SIZE = 4 * 1024 * 1024
EPERM, ENOSYS = 1, 38

# uname -m -> (the Go name containers-common's ``arches`` use, the libseccomp name ``archMap`` uses).
ARCHES = {
    'x86_64': ('amd64', 'SCMP_ARCH_X86_64'), 'aarch64': ('arm64', 'SCMP_ARCH_AARCH64'),
    'ppc64le': ('ppc64le', 'SCMP_ARCH_PPC64LE'), 's390x': ('s390x', 'SCMP_ARCH_S390X'),
    'riscv64': ('riscv64', 'SCMP_ARCH_RISCV64'), 'i686': ('386', 'SCMP_ARCH_X86'),
    'armv7l': ('arm', 'SCMP_ARCH_ARM'), 'mips64': ('mips64', 'SCMP_ARCH_MIPS64'),
}
# Every CLONE_NEW* flag (NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME).
CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
_ADMIN = {'caps': ['CAP_SYS_ADMIN']}
_MOUNT_CALLS = ['mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount',
                'open_tree', 'mount_setattr']
_NO_NEW_NAMESPACE = [{'value': CLONE_NAMESPACE_FLAGS, 'valueTwo': 0, 'op': 'SCMP_CMP_MASKED_EQ'}]


def _rule(names: list[str], action: str, errno: int | None = None, args: list[dict[str, Any]] | None = None,
          includes: dict[str, Any] | None = None, excludes: dict[str, Any] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {'names': names, 'action': action, 'args': args or [], 'includes': includes or {},
                            'excludes': excludes or {}}
    if errno is not None:
        rule['errnoRet'] = errno
    return rule


def _clone_flags_at(index: int) -> list[dict[str, Any]]:
    return [dict(_NO_NEW_NAMESPACE[0], index=index)]


# Our rules (containers-common format), replacing every rule of the base profile for these names.
HARDENING = [
    _rule(['unshare', 'clone3'] + _MOUNT_CALLS, 'SCMP_ACT_ALLOW', includes=_ADMIN),
    _rule(['unshare'] + _MOUNT_CALLS, 'SCMP_ACT_ERRNO', EPERM, excludes=_ADMIN),
    _rule(['clone3'], 'SCMP_ACT_ERRNO', ENOSYS, excludes=_ADMIN),
    _rule(['clone'], 'SCMP_ACT_ALLOW', includes=_ADMIN),
    # clone's flags are its first argument, its second on s390 (the kernel's CLONE_BACKWARDS2).
    _rule(['clone'], 'SCMP_ACT_ALLOW', args=_clone_flags_at(0), excludes=dict(_ADMIN, arches=['s390', 's390x'])),
    _rule(['clone'], 'SCMP_ACT_ALLOW', args=_clone_flags_at(1), includes={'arches': ['s390', 's390x']},
          excludes=_ADMIN),
    _rule(['keyctl', 'add_key', 'request_key'], 'SCMP_ACT_ERRNO', EPERM),
]
HARDENED_NAMES = frozenset(name for rule in HARDENING for name in rule['names'])
# Sub-architectures a default filter never keeps, also where the native one is unknown here: x32 (32-bit
# pointers on x86_64), which no distribution ships binaries for and Debian's kernel turns off.
DROPPED_ARCHES = frozenset(('SCMP_ARCH_X32',))


def default_profile_path() -> str:
    """The host's containers-common profile; fails naming the package when it has none."""
    for path in DEFAULT_PROFILE_PATHS:
        if os.path.isfile(path):
            return path
    raise ValidationError('seccomp_profile: default needs the host\'s container seccomp profile (%s), which is missing: '
                          'install the %s package (the runcible.oci.runtime role does), or give seccomp_profile: '
                          'unconfined to run without a filter' % (DEFAULT_PROFILE_PATHS[-1], DEFAULT_PROFILE_PACKAGE))


def read_profile(path: str, option: str = 'seccomp_profile') -> tuple[dict[str, Any], str]:
    """(the profile document, ``sha256:HEX`` of its bytes); a missing, huge or malformed file fails clearly."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read(MAX_PROFILE_SIZE + 1)
    except OSError as exc:
        raise ValidationError('%s: cannot read %s: %s' % (option, path, exc.strerror or exc))
    if len(data) > MAX_PROFILE_SIZE:
        raise ValidationError('%s: %s is larger than %d bytes: not a seccomp profile' % (option, path, MAX_PROFILE_SIZE))
    try:
        profile = json.loads(data.decode('utf-8'))
    except ValueError as exc:
        raise ValidationError('%s: %s is not a JSON seccomp profile: %s' % (option, path, exc))
    check_profile(profile, '%s: %s' % (option, path))
    return profile, 'sha256:' + hashlib.sha256(data).hexdigest()


def check_profile(profile: Any, where: str) -> None:
    """The shape both formats share: a default action and a list of rules naming syscalls."""
    if not isinstance(profile, dict) or not isinstance(profile.get('defaultAction'), str):
        raise ValidationError('%s: not a seccomp profile (no defaultAction): give an OCI linux.seccomp document or a '
                              'containers-common seccomp.json' % where)
    rules = profile.get('syscalls') or []
    if not isinstance(rules, list):
        raise ValidationError('%s: syscalls must be a list' % where)
    for number, rule in enumerate(rules):
        names = rule.get('names') if isinstance(rule, dict) else None
        if isinstance(rule, dict) and names is None and isinstance(rule.get('name'), str):
            names = [rule['name']]  # the old single-name form
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names) \
                or not isinstance(rule.get('action'), str):
            raise ValidationError('%s: syscalls[%d] needs names (a list of syscall names) and an action' % (where, number))


def kernel_version(release: str | None = None) -> tuple[int, ...]:
    parts = []
    for piece in (release or platform.release()).split('-')[0].split('.')[:3]:
        digits = ''.join(char for char in piece if char.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _applies(rule: dict[str, Any], arch: str, capabilities: set[str], kernel: tuple[int, ...]) -> bool:
    includes = rule.get('includes') or {}
    excludes = rule.get('excludes') or {}
    if includes.get('arches') and arch not in includes['arches']:
        return False
    if includes.get('caps') and not all(cap in capabilities for cap in includes['caps']):
        return False
    if includes.get('minKernel') and kernel < kernel_version(str(includes['minKernel'])):
        return False
    if arch in (excludes.get('arches') or []):
        return False
    return not any(cap in capabilities for cap in excludes.get('caps') or [])


def _oci_rule(rule: dict[str, Any], names: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {'names': names, 'action': rule['action']}
    for key in ('errnoRet', 'args'):
        if rule.get(key):
            entry[key] = rule[key]
    return entry


def to_oci(profile: dict[str, Any], capabilities: Iterable[str], machine: str | None = None,
           kernel: tuple[int, ...] | None = None, hardening: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` of ``profile`` for a container with this bounding set, on this host.

    An OCI document (no ``archMap``, no ``includes``/``excludes``) is returned as it is. ``hardening``
    rules replace every rule of the profile for the syscalls they name.
    """
    if 'archMap' not in profile and not any('includes' in rule or 'excludes' in rule
                                            for rule in profile.get('syscalls') or []) and not hardening:
        return profile
    machine = machine or platform.machine()
    arch, scmp_arch = ARCHES.get(machine, (machine, ''))
    caps = set(capabilities)
    kernel = kernel or kernel_version()
    seccomp: dict[str, Any] = {'defaultAction': profile['defaultAction']}
    if profile.get('defaultErrnoRet') is not None:
        seccomp['defaultErrnoRet'] = profile['defaultErrnoRet']
    architectures = []
    for entry in profile.get('archMap') or []:
        if entry.get('architecture') == scmp_arch:
            architectures = [scmp_arch] + list(entry.get('subArchitectures') or [])
    architectures = architectures or list(profile.get('architectures') or [])
    if architectures:
        seccomp['architectures'] = architectures
    if profile.get('flags'):
        seccomp['flags'] = list(profile['flags'])
    replaced = frozenset(name for rule in hardening or [] for name in rule['names'])
    syscalls = []
    for rule in list(profile.get('syscalls') or []):
        names = [name for name in rule.get('names') or [rule.get('name')] if name not in replaced]
        if names and _applies(rule, arch, caps, kernel):
            syscalls.append(_oci_rule(rule, names))
    for rule in hardening or []:
        if _applies(rule, arch, caps, kernel):
            syscalls.append(_oci_rule(rule, list(rule['names'])))
    seccomp['syscalls'] = syscalls
    return seccomp


def default_seccomp(capabilities: Iterable[str], machine: str | None = None) -> dict[str, Any]:
    """The default: the host's containers-common profile with :data:`HARDENING`, for this bounding set.

    Only the native ABI: the compat ABIs of a 64-bit kernel (i386 and x32 on x86_64, 32-bit ARM on arm64)
    are left out, so their system calls fail as a foreign architecture. Images are pulled for the host's
    own architecture only, so a container runs 64-bit programs; the 32-bit entry points are old kernel
    code with a history of exploits; and their tables are most of the filter the runtime builds at every
    start (i386's socketcall and ipc multiplexers alone double it: some 15 ms per container here). A
    container that runs 32-bit programs takes containers-common's file as its ``seccomp_profile``.
    """
    profile, _digest = read_profile(default_profile_path())
    seccomp = to_oci(profile, capabilities, machine=machine, hardening=HARDENING)
    native = ARCHES.get(machine or platform.machine(), ('', ''))[1]
    if native and native in (seccomp.get('architectures') or []):
        seccomp['architectures'] = [native]
    elif seccomp.get('architectures'):
        seccomp['architectures'] = [arch for arch in seccomp['architectures'] if arch not in DROPPED_ARCHES]
    return seccomp


def profile_seccomp(path: str, digest: str, capabilities: Iterable[str]) -> dict[str, Any]:
    """A user's profile file, as recorded: its content must still have the ``digest`` it had."""
    profile, now = read_profile(path)
    if now != digest:
        raise ValidationError('seccomp_profile: %s changed since the container was made with it (%s, now %s): give '
                              'seccomp_profile again to recreate the container with the new profile, or put the old '
                              'file back' % (path, digest, now))
    return to_oci(profile, capabilities)


__all__ = ['DEFAULT_PROFILE_PATHS', 'HARDENING', 'read_profile', 'to_oci', 'default_seccomp', 'profile_seccomp',
           'default_profile_path', 'kernel_version']
