# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of confinement: privileged, capabilities, no_new_privileges, seccomp, AppArmor, devices, cgroupns.

The spec mappers run in table order: ``privileged`` and the capabilities before ``seccomp_profile``
(seccomp rules depend on the container's bounding set). docs/security.md says what each default
allows and denies.
"""

from __future__ import annotations

import os
import re
import stat
from typing import TYPE_CHECKING

from .._runtime.errors import ValidationError
from .._runtime.host import capability_set as process_capability_set
from .._runtime.spec import DEFAULT_CAPABILITIES

if TYPE_CHECKING:
    from typing import Any, Callable, Iterable

    from .base import Context

# The kernel's capabilities, by number (include/uapi/linux/capability.h).
CAPABILITIES = (
    'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
    'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
    'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
    'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
    'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
    'CHECKPOINT_RESTORE',
)
CAP_LAST_CAP = '/proc/sys/kernel/cap_last_cap'
DEVICE_PERMISSIONS = frozenset('rwm')
# /dev entries a privileged container does not get from the host: its own pts, shm and mqueue.
HOST_DEVICES_SKIPPED = ('/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/ptmx', '/dev/console')


# -- capabilities ----------------------------------------------------------------------------------

def host_capabilities(cap_last_cap: str = CAP_LAST_CAP, status: str = '/proc/self/status') -> list[str]:
    """``CAP_*`` names of every capability this kernel has (and we know) that our own bounding set holds.

    A container cannot get what the task lacks: the runtime would fail with "unable to apply caps".
    """
    try:
        with open(cap_last_cap) as handle:
            last = int(handle.read().strip())
    except (OSError, ValueError):
        last = len(CAPABILITIES) - 1
    bounding = process_capability_set('CapBnd', status)
    if bounding is None:
        bounding = -1
    return ['CAP_' + name for number, name in enumerate(CAPABILITIES[:last + 1]) if bounding & (1 << number)]


def _capabilities(value: list[Any], option: str) -> list[str]:
    names = set()
    for item in value or []:
        text = str(item).strip().upper()
        bare = text[4:] if text.startswith('CAP_') else text
        if bare == 'ALL':
            names.add('ALL')
        elif bare in CAPABILITIES:
            names.add('CAP_' + bare)
        else:
            raise ValidationError('%s: %r is not a capability: give names such as NET_ADMIN or CAP_NET_ADMIN, or ALL '
                                  '(see capabilities(7))' % (option, item))
    return sorted(names)


def cap_add(value: list[Any], context: Context) -> list[str]:
    names = _capabilities(value, 'cap_add')
    missing = sorted(set(names) - set(host_capabilities()) - {'ALL'})
    if missing:
        raise ValidationError('cap_add: %s not in the bounding set of this host\'s root (grep CapBnd /proc/self/status): '
                              'a container cannot get what the host withholds; leave %s out'
                              % (', '.join(missing) + (' is' if len(missing) == 1 else ' are'), ', '.join(missing)))
    return names


def cap_drop(value: list[Any], context: Context) -> list[str]:
    return _capabilities(value, 'cap_drop')


def capability_set(config: dict[str, Any]) -> list[str]:
    """The bounding set: the defaults (all with ``privileged``); cap_drop ALL empties it, then cap_add, then cap_drop."""
    everything = host_capabilities()
    added, dropped = set(config.get('cap_add') or []), set(config.get('cap_drop') or [])
    caps = set(everything if config.get('privileged') else DEFAULT_CAPABILITIES)
    if 'ALL' in dropped:
        caps = set()
    caps |= set(everything) if 'ALL' in added else added
    caps -= dropped
    return [name for name in everything if name in caps]


def map_capabilities(spec: dict[str, Any], value: list[str], config: dict[str, Any]) -> None:
    """Bounding set for every process; root gets it effective and permitted, another user only what cap_add names."""
    bounding = capability_set(config)
    uid = int(str(config.get('user') or '0:0').split(':', maxsplit=1)[0])
    if uid == 0:
        granted = bounding
    else:
        # As podman: a non-root user starts with no capabilities, but the ones the task added (ambient).
        added = set(bounding) if 'ALL' in (value or []) else set(value or [])
        granted = [name for name in bounding if name in added]
    caps: dict[str, list[str]] = {'bounding': bounding, 'effective': list(granted), 'permitted': list(granted)}
    if uid != 0 and granted:
        caps['inheritable'] = list(granted)
        caps['ambient'] = list(granted)
    spec['process']['capabilities'] = caps


# -- privileged, no_new_privileges, cgroupns ------------------------------------------------------

def map_privileged(spec: dict[str, Any], value: bool, config: dict[str, Any]) -> None:
    """Every host device, /sys and the cgroup tree writable, nothing masked (capabilities: map_capabilities)."""
    if not value:
        return
    linux = spec['linux']
    linux['maskedPaths'] = []
    linux['readonlyPaths'] = []
    linux['resources']['devices'] = [{'allow': True, 'access': 'rwm'}]
    for mount in spec['mounts']:
        if mount['destination'] in ('/sys', '/sys/fs/cgroup'):
            mount['options'] = [option for option in mount['options'] if option != 'ro'] + ['rw']
    present = set(device['path'] for device in linux.get('devices') or [])
    linux.setdefault('devices', []).extend(device for device in host_devices() if device['path'] not in present)


def host_devices(top: str = '/dev') -> list[dict[str, Any]]:
    """Every character and block device under /dev (links not followed), as OCI ``linux.devices`` entries."""
    devices = []
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in sorted(entries, key=lambda item: item.path):
            if entry.path in HOST_DEVICES_SKIPPED:
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            device = _device_entry(entry.path, info)
            if device is not None:
                devices.append(device)
    return devices


def _device_entry(path: str, info: os.stat_result) -> dict[str, Any] | None:
    if stat.S_ISCHR(info.st_mode):
        kind = 'c'
    elif stat.S_ISBLK(info.st_mode):
        kind = 'b'
    else:
        return None
    return {'path': path, 'type': kind, 'major': os.major(info.st_rdev), 'minor': os.minor(info.st_rdev),
            'fileMode': stat.S_IMODE(info.st_mode), 'uid': 0, 'gid': 0}


def map_no_new_privileges(spec: dict[str, Any], value: bool, config: dict[str, Any]) -> None:
    spec['process']['noNewPrivileges'] = bool(value)


def default_cgroupns(context: Context | None) -> str:
    """``private`` on a cgroup v2 host (as podman), ``host`` where v1 controllers are mounted."""
    from .._runtime.host import cgroup_mode  # pylint: disable=import-outside-toplevel
    return 'private' if cgroup_mode() == 'unified' else 'host'


def map_cgroupns(spec: dict[str, Any], value: str, config: dict[str, Any]) -> None:
    if value == 'private':
        spec['linux']['namespaces'].append({'type': 'cgroup'})


# -- devices ---------------------------------------------------------------------------------------

def devices(value: list[Any], context: Context) -> list[dict[str, str]]:
    """``HOST[:CONTAINER][:PERMISSIONS]`` strings or {host, container, permissions} dicts -> dicts, checked."""
    from .._runtime.parsers import absolute_path  # pylint: disable=import-outside-toplevel
    result = []
    seen = set()
    for item in value or []:
        if isinstance(item, dict):
            unknown = sorted(set(item) - {'host', 'container', 'permissions'})
            if unknown or 'host' not in item:
                raise ValidationError('devices: %r: a device is {host, container, permissions} (host required)' % item)
            host_path, target, permissions = item['host'], item.get('container'), item.get('permissions')
        else:
            parts = str(item).split(':')
            if len(parts) > 3:
                raise ValidationError('devices: %r: give HOST, HOST:CONTAINER or HOST:CONTAINER:PERMISSIONS' % item)
            if len(parts) == 2 and parts[1] and set(parts[1]) <= DEVICE_PERMISSIONS:
                parts = [parts[0], '', parts[1]]
            host_path, target, permissions = (parts + ['', ''])[:3]
        host_path = absolute_path(str(host_path), 'devices')
        target = absolute_path(str(target or host_path), 'devices')
        permissions = str(permissions or 'rwm')
        if not set(permissions) <= DEVICE_PERMISSIONS:
            raise ValidationError('devices: permissions %r of %s: give letters of rwm (read, write, mknod)'
                                  % (permissions, host_path))
        if target == '/' or target in seen:
            raise ValidationError('devices: %s is not a place for a device (the root, or given twice)' % target)
        seen.add(target)
        device_stat(host_path)
        result.append({'host': host_path, 'container': target, 'permissions': ''.join(sorted(permissions, key='rwm'.index))})
    return result


def device_stat(path: str) -> os.stat_result:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ValidationError('devices: %s: %s on this host' % (path, exc.strerror))
    if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise ValidationError('devices: %s is not a character or block device' % path)
    return info


def map_devices(spec: dict[str, Any], value: list[dict[str, str]], config: dict[str, Any]) -> None:
    linux = spec['linux']
    for device in value or []:
        entry = _device_entry(device['container'], device_stat(device['host']))
        if entry is None:  # device_stat refused it
            continue
        linux['devices'] = [known for known in linux.get('devices') or [] if known['path'] != entry['path']]
        linux['devices'].append(entry)
        linux['resources']['devices'].append({'allow': True, 'type': entry['type'], 'major': entry['major'],
                                              'minor': entry['minor'], 'access': device['permissions']})


# -- seccomp and AppArmor -------------------------------------------------------------------------

def seccomp_profile(value: str, context: Context) -> Any:
    """``default``, ``unconfined``, or a profile file -> {path, digest} (a changed file is a changed option)."""
    if value in ('default', 'unconfined'):
        return value
    from .._runtime import seccomp  # pylint: disable=import-outside-toplevel
    from .._runtime.parsers import absolute_path  # pylint: disable=import-outside-toplevel
    path = absolute_path(str(value), 'seccomp_profile')
    _profile, digest = seccomp.read_profile(path)
    return {'path': path, 'digest': digest}


def map_seccomp(spec: dict[str, Any], value: Any, config: dict[str, Any]) -> None:
    if config.get('privileged') or value == 'unconfined':
        return
    from .._runtime import seccomp  # pylint: disable=import-outside-toplevel
    bounding = spec['process']['capabilities']['bounding']
    if value == 'default':
        spec['linux']['seccomp'] = seccomp.default_seccomp(bounding)
    else:
        spec['linux']['seccomp'] = seccomp.profile_seccomp(value['path'], value['digest'], bounding)


def apparmor_profile(value: str, context: Context) -> str:
    from .._runtime import apparmor  # pylint: disable=import-outside-toplevel
    name = apparmor.check_profile_name(str(value))
    apparmor.require(name)
    return name


def default_apparmor_profile(context: Context | None) -> str:
    """Ours where the host has AppArmor, else none (and no warning: there is nothing to confine with)."""
    from .._runtime import apparmor  # pylint: disable=import-outside-toplevel
    return apparmor.DEFAULT_PROFILE if apparmor.enabled() else 'unconfined'


def map_apparmor(spec: dict[str, Any], value: str, config: dict[str, Any]) -> None:
    if value != 'unconfined' and not config.get('privileged'):
        spec['process']['apparmorProfile'] = value


# -- SELinux -------------------------------------------------------------------------------------

LABEL_PARTS = ('user', 'role', 'type', 'level', 'file_type')


def label(value: Any, context: Context) -> Any:
    """``disable``, or the parts (user, role, type, level, file_type) that override the policy's defaults."""
    from .._runtime import selinux_labels  # pylint: disable=import-outside-toplevel
    if value == 'disable':
        return 'disable'
    if not isinstance(value, dict):
        raise ValidationError('label: give disable, or a dictionary of user, role, type, level and file_type')
    unknown = sorted(set(value) - set(LABEL_PARTS))
    if unknown:
        raise ValidationError('label: unknown keys %s; known: %s' % (', '.join(unknown), ', '.join(LABEL_PARTS)))
    parts = {}
    for key, item in sorted(value.items()):
        text = str(item)
        pattern = _LEVEL if key == 'level' else _IDENTIFIER
        if not re.fullmatch(pattern, text):
            kind = 'level (s0:c1,c2)' if key == 'level' else 'identifier'
            raise ValidationError('label: %s %r is not an SELinux %s' % (key, text, kind))
        parts[key] = text
    if not selinux_labels.enabled():
        raise ValidationError('label: SELinux is not enabled on this host: give label: disable or leave it out')
    # The labels these parts make must be contexts the loaded policy knows (checked now, in check mode too).
    selinux_labels.check_labels(selinux_labels.labels_for(parts, parts.get('level') or 's0', _contexts(parts)))
    return parts


def _contexts(parts: dict[str, str]) -> tuple[str, str]:
    """The contexts the parts are laid over: the policy's container contexts (user and role only when both
    types are given)."""
    from .._runtime import selinux_labels  # pylint: disable=import-outside-toplevel
    if parts.get('type') and parts.get('file_type'):
        return selinux_labels.DEFAULT_PROCESS, selinux_labels.DEFAULT_FILE
    return selinux_labels.container_contexts()


_IDENTIFIER = r'[A-Za-z0-9_.-]{1,255}'
_LEVEL = r's[0-9]+(-s[0-9]+)?(:c[0-9]+([.,]c[0-9]+)*)?'


def default_label(context: Context | None) -> Any:
    """The policy's container labels with a level of its own where SELinux is enabled; else none."""
    from .._runtime import selinux_labels  # pylint: disable=import-outside-toplevel
    return {} if selinux_labels.enabled() else 'disable'


def same_label(wanted: Any, actual: Any) -> bool:
    """The given parts against the ones the container was made with (its level, when allocated, is its own)."""
    if isinstance(actual, dict) and 'process' in actual:
        actual = actual.get('parts') or {}
    return bool(wanted == actual)


def reserve_label(value: Any, config: dict[str, Any], root: str, container_id: str,
                  known: Callable[[], dict[str, dict[str, Any]]]) -> Any:
    """A new container's labels: the policy's contexts, the task's parts and a level no other container has.

    ``known()``: {id: config} of the store's containers (their levels, pinned ones too, are taken). A
    recreated container's labels (``value`` already has them) are made again from its parts: the old
    container's level goes with it. A privileged container gets none.
    """
    if not isinstance(value, dict):
        return value
    if 'process' in value:
        value = value.get('parts') or {}
    if config.get('privileged'):
        return value
    from .._runtime import selinux_labels  # pylint: disable=import-outside-toplevel
    contexts = _contexts(value)
    selinux_labels.check_labels(selinux_labels.labels_for(value, value.get('level') or 's0', contexts))
    level = value.get('level')
    if not level:
        records = known()
        taken = [selinux_labels.split_context(other['label']['process'])['level'] for other in records.values()
                 if isinstance(other.get('label'), dict) and other['label'].get('process')]
        level = selinux_labels.LevelAllocator(root).allocate(container_id, records, taken=taken)
    labels = selinux_labels.labels_for(value, level, contexts)
    return dict(labels, parts=dict(value), allocated=not value.get('level'))


def map_label(spec: dict[str, Any], value: Any, config: dict[str, Any]) -> None:
    if value == 'disable' or config.get('privileged'):
        return
    if not isinstance(value, dict) or 'process' not in value:
        raise ValueError('label: the container\'s labels were not reserved before its spec was made')
    spec['process']['selinuxLabel'] = value['process']
    spec['linux']['mountLabel'] = value['mount']


# -- the group check -----------------------------------------------------------------------------

def check(values: dict[str, Any], context: Context, complete: bool) -> None:
    """Combinations that cannot mean anything, and the default seccomp profile a new container needs."""
    if 'ALL' in (values.get('cap_add') or []) and 'ALL' in (values.get('cap_drop') or []):
        raise ValidationError('cap_add and cap_drop both say ALL: give ALL in one of them only')
    privileged = context.effective(values, 'privileged', False)
    if privileged and not complete:
        for name in ('seccomp_profile', 'apparmor_profile', 'label'):
            if values.get(name) not in (None, 'unconfined', 'default', 'disable', {}):
                raise ValidationError('%s: a privileged container runs without seccomp, AppArmor and SELinux labels; leave '
                                      '%s out or drop privileged' % (name, name))
    if not privileged and values.get('seccomp_profile') == 'default':
        from .._runtime import seccomp  # pylint: disable=import-outside-toplevel
        seccomp.default_profile_path()
