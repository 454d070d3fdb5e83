# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OCI runtime spec (config.json): a base like podman's defaults, then one mapper per option."""

from __future__ import annotations

import resource

OCI_VERSION = '1.0.2'
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# podman's default capability set.
DEFAULT_CAPABILITIES = [
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',
    'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
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
CPU_PERIOD = 100000


def host_rlimits():
    limits = []
    for name, wanted in sorted(WANTED_RLIMITS.items()):
        _soft, hard = resource.getrlimit(getattr(resource, name))
        value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        limits.append({'type': name, 'soft': value, 'hard': value})
    return limits


def base_mounts(network):
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


def base_spec(container_id, root_path, cgroups_path, network='none'):
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


# -- one mapper per option: (spec, value, config) -> None ------------------------------------------

def map_command(spec, value, config):
    spec['process']['args'] = list(config.get('entrypoint') or []) + list(value)


def map_env(spec, value, config):
    env = {'PATH': DEFAULT_PATH, 'HOSTNAME': spec['hostname'], 'container': 'runcible'}
    env.update((config.get('image_config') or {}).get('env') or {})  # the image's Env, under the task's
    env.update(value or {})
    spec['process']['env'] = ['%s=%s' % item for item in sorted(env.items())]


def map_workdir(spec, value, config):
    spec['process']['cwd'] = value


def map_user(spec, value, config):
    uid, gid = (int(part) for part in value.split(':'))
    spec['process']['user'] = {'uid': uid, 'gid': gid}
    if uid != 0:
        # As podman: a non-root process keeps the bounding set but no effective or permitted capabilities.
        spec['process']['capabilities']['effective'] = []
        spec['process']['capabilities']['permitted'] = []


def map_hostname(spec, value, config):
    spec['hostname'] = value


def map_read_only(spec, value, config):
    spec['root']['readonly'] = bool(value)


def map_network(spec, value, config):
    if value != 'host':
        spec['linux']['namespaces'].append({'type': 'network'})


def map_mounts(spec, value, config):
    for mount in value or []:
        spec['mounts'].append({'destination': mount['target'], 'type': 'bind', 'source': mount['source'],
                               'options': list(mount['options'])})


def _resources(spec):
    return spec['linux']['resources']


def map_memory(spec, value, config):
    if value:
        _resources(spec).setdefault('memory', {})['limit'] = value


def map_memory_reservation(spec, value, config):
    if value:
        _resources(spec).setdefault('memory', {})['reservation'] = value


def map_memory_swap(spec, value, config):
    # OCI's memory.swap is memory + swap; -1 is unlimited swap.
    if value:
        _resources(spec).setdefault('memory', {})['swap'] = value


def map_cpus(spec, value, config):
    if value:
        _resources(spec).setdefault('cpu', {}).update(quota=int(round(value * CPU_PERIOD)), period=CPU_PERIOD)


def map_cpu_shares(spec, value, config):
    if value:
        _resources(spec).setdefault('cpu', {})['shares'] = value


def map_cpuset_cpus(spec, value, config):
    if value:
        _resources(spec).setdefault('cpu', {})['cpus'] = value


def map_cpuset_mems(spec, value, config):
    if value:
        _resources(spec).setdefault('cpu', {})['mems'] = value


def map_pids_limit(spec, value, config):
    if value:
        _resources(spec)['pids'] = {'limit': value}


def map_blkio_weight(spec, value, config):
    if value:
        _resources(spec)['blockIO'] = {'weight': value}


# What "no limit" is when a live update takes a limit away (omitting it would keep the old one).
UNSET_FOR_UPDATE = {
    'memory': ('memory', 'limit', -1),
    'memory_reservation': ('memory', 'reservation', -1),
    'cpus': ('cpu', 'quota', -1),
    'pids_limit': ('pids', 'limit', -1),
}


def resources_for_update(config, mappers):
    """The ``runtime update --resources`` document for ``config``; ``mappers``: {option: mapper}."""
    spec = {'linux': {'resources': {}}}
    for name, mapper in mappers.items():
        mapper(spec, config.get(name), config)
    resources = spec['linux']['resources']
    for name, (section, key, unset) in UNSET_FOR_UPDATE.items():
        if name in mappers and not config.get(name):
            resources.setdefault(section, {})[key] = unset
    if 'quota' in resources.get('cpu', {}):
        resources['cpu'].setdefault('period', CPU_PERIOD)
    return resources


def map_labels(spec, value, config):
    labels = dict((config.get('image_config') or {}).get('labels') or {})  # the image's Labels, under the task's
    labels.update(value or {})
    for key, item in labels.items():
        spec['annotations']['io.runcible.label.' + key] = item
