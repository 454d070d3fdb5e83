# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of every OCI runtime spec (config.json): podman's defaults. The option layer maps each option onto it."""

from __future__ import annotations

import resource
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = '1.0.2'

# podman's default capability set, in the kernel's order (as the option layer writes sets).
DEFAULT_CAPABILITIES = [
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
    'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_SETFCAP',
]

# podman's default masked paths (containers-common): nothing of the host's hardware, keys or timing leaks.
MASKED_PATHS = [
    '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
    '/proc/sched_debug', '/proc/scsi', '/proc/interrupts', '/sys/firmware', '/sys/fs/selinux', '/sys/dev/block',
    '/sys/devices/virtual/powercap',
]
READONLY_PATHS = ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']

# Wanted rlimits; never above the host's hard limit (runc fails with EPERM otherwise).
WANTED_RLIMITS = {'RLIMIT_NOFILE': 1048576, 'RLIMIT_NPROC': 4194304}


def host_rlimits() -> list[dict[str, Any]]:
    limits = []
    for name, wanted in sorted(WANTED_RLIMITS.items()):
        _soft, hard = resource.getrlimit(getattr(resource, name))
        value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        limits.append({'type': name, 'soft': value, 'hard': value})
    return limits


def base_mounts(network: str) -> list[dict[str, Any]]:
    mounts = [
        {'destination': '/proc', 'type': 'proc', 'source': 'proc', 'options': ['nosuid', 'noexec', 'nodev']},
        {'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs',
         'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
        {'destination': '/dev/pts', 'type': 'devpts', 'source': 'devpts',
         'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']},
        {'destination': '/dev/shm', 'type': 'tmpfs', 'source': 'shm',
         'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
        {'destination': '/dev/mqueue', 'type': 'mqueue', 'source': 'mqueue', 'options': ['nosuid', 'noexec', 'nodev']},
    ]
    if network == 'host':
        # A new sysfs needs a network namespace of its own: with the host's, bind the host's read-only.
        mounts.append({'destination': '/sys', 'type': 'bind', 'source': '/sys',
                       'options': ['rbind', 'nosuid', 'noexec', 'nodev', 'ro']})
    else:
        mounts.append({'destination': '/sys', 'type': 'sysfs', 'source': 'sysfs',
                       'options': ['nosuid', 'noexec', 'nodev', 'ro']})
    mounts.append({'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': 'cgroup',
                   'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']})
    return mounts


def base_spec(container_id: str, root_path: str, cgroups_path: str, network: str = 'none') -> dict[str, Any]:
    return {
        'ociVersion': OCI_VERSION,
        'process': {
            'terminal': False,
            'user': {'uid': 0, 'gid': 0},
            'args': ['/bin/sh'],
            'env': [],
            'cwd': '/',
            'capabilities': {key: list(DEFAULT_CAPABILITIES) for key in ('bounding', 'effective', 'permitted')},
            'rlimits': host_rlimits(),
            'noNewPrivileges': True,
        },
        'root': {'path': root_path, 'readonly': False},
        'hostname': container_id[:12],
        'mounts': base_mounts(network),
        'annotations': {'io.runcible.container.id': container_id},
        'linux': {
            'cgroupsPath': cgroups_path,
            'resources': {'devices': [{'allow': False, 'access': 'rwm'}]},
            'namespaces': [{'type': 'pid'}, {'type': 'ipc'}, {'type': 'uts'}, {'type': 'mount'}],
            'maskedPaths': list(MASKED_PATHS),
            'readonlyPaths': list(READONLY_PATHS),
        },
    }
