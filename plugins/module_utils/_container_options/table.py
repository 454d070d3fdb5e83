# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""THE option table: every container option, declared once, with every binding it has.

To add an option: one ``Option(...)`` entry here (its normaliser, spec mapper, live read-back in
the module of its kind), and its documentation in ``plugins/modules/container.py``. Nothing else
names an option: the module's argument_spec, the comparison, the diff, the spec, the live update
and the drift check all come from this table. Bindings are ``'module:function'`` names of this
package, imported on first use; a default that is computed is ``Bound('module:function')``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Bound, Live, Option

if TYPE_CHECKING:
    from typing import Any

DEFAULT_PIDS_LIMIT = 2048  # podman's default for a new container
DEFAULT_NETWORK = 'runcible'  # the runtime's default bridge network (network.DEFAULT_NETWORK)


def _limit(name: str, type_: str, default: Any = 0, unset: tuple[str, str, int] | None = None,
           absent: Any = None) -> Option:
    """A resource limit: normalised in resources.py, mapped into linux.resources, updated and read back live."""
    return Option(name, type_, 'spec', default=default, absent=default if absent is None else absent,
                  normalise='resources:' + name, spec='resources:map_' + name, update='live',
                  live=Live(match='resources:match_' + name, unset=unset))


OPTIONS = [
    # What runs, and on what.
    Option('rootfs', 'path', 'image', normalise='storage:rootfs'),
    Option('image', 'str', 'image', normalise='images:image', spec='images:map_image', equal='images:same_image'),
    Option('rootfs_mode', 'str', 'runtime', default='overlay', choices=('overlay', 'direct')),
    Option('entrypoint', 'raw', 'spec', default=[], normalise='process:entrypoint'),
    Option('command', 'raw', 'spec', normalise='process:command', spec='process:map_command'),
    Option('hostname', 'str', 'spec', default=Bound('process:default_hostname'), normalise='process:hostname',
           spec='process:map_hostname'),
    Option('env', 'dict', 'spec', default={}, normalise='process:env', spec='process:map_env'),
    Option('env_file', 'raw', 'spec', default={}, normalise='process:env_file'),  # merged by map_env
    Option('workdir', 'str', 'spec', default='/', normalise='process:workdir', spec='process:map_workdir'),
    Option('user', 'str', 'spec', default='0:0', normalise='process:user', spec='process:map_user'),
    # After user (which makes process.user).
    Option('group_add', 'list', 'spec', elements='str', default=[], normalise='process:group_add',
           spec='process:map_group_add'),
    Option('umask', 'raw', 'spec', normalise='process:umask', spec='process:map_umask'),
    Option('oom_score_adj', 'int', 'spec', normalise='process:oom_score_adj', spec='process:map_oom_score_adj'),
    Option('read_only', 'bool', 'spec', default=False, spec='process:map_read_only'),
    Option('tty', 'bool', 'spec', default=False, spec='process:map_tty'),  # conmon's --terminal reads it too
    Option('ulimits', 'dict', 'spec', default={}, normalise='process:ulimits', spec='process:map_ulimits'),
    Option('sysctls', 'dict', 'spec', default={}, normalise='process:sysctls', spec='process:map_sysctls'),
    # Its confinement (docs/security.md). In this order: privileged and the capabilities before seccomp,
    # whose rules depend on the bounding set; after user (a non-root user gets only the added ones).
    Option('privileged', 'bool', 'spec', default=False, spec='security:map_privileged'),
    Option('cap_add', 'list', 'spec', elements='str', default=[], normalise='security:cap_add',
           spec='security:map_capabilities'),
    Option('cap_drop', 'list', 'spec', elements='str', default=[], normalise='security:cap_drop'),
    Option('no_new_privileges', 'bool', 'spec', default=True, spec='security:map_no_new_privileges'),
    Option('seccomp_profile', 'str', 'spec', default='default', absent='unconfined',
           normalise='security:seccomp_profile', spec='security:map_seccomp'),
    Option('apparmor_profile', 'str', 'spec', default=Bound('security:default_apparmor_profile'), absent='unconfined',
           normalise='security:apparmor_profile', spec='security:map_apparmor'),
    Option('label', 'raw', 'spec', default=Bound('security:default_label'), absent='disable', normalise='security:label',
           spec='security:map_label', equal='security:same_label', reserve='security:reserve_label'),
    Option('devices', 'list', 'spec', elements='raw', default=[], normalise='security:devices',
           spec='security:map_devices'),
    Option('cgroupns', 'str', 'spec', default=Bound('security:default_cgroupns'), absent='host',
           choices=('private', 'host'), spec='security:map_cgroupns'),
    # Its network.
    Option('network', 'str', 'network', default=DEFAULT_NETWORK, normalise='network:network',
           spec='network:map_network'),
    Option('ip_address', 'str', 'network', normalise='network:ip_address'),
    Option('published_ports', 'list', 'network', elements='str', default=[], normalise='network:published_ports'),
    # Several networks (eth0, eth1...); [] means the shorthand above (the group check records one from the other).
    # A change is made live to a running container where network.live_change() says it can (networks appended or the
    # last ones removed, aliases); else it recreates it. A stopped one joins what its config says at its next start.
    Option('networks', 'list', 'network', elements='raw', default=[], normalise='network:networks', update='network'),
    # Names (written by the network stage into the bundle's resolv.conf and hosts, and aardvark-dns's files).
    Option('dns', 'list', 'network', elements='str', default=[], normalise='network:dns'),
    Option('dns_search', 'list', 'network', elements='str', default=[], normalise='network:dns_search'),
    Option('dns_options', 'list', 'network', elements='str', default=[], normalise='network:dns_options'),
    Option('etc_hosts', 'dict', 'network', default={}, normalise='network:etc_hosts'),
    Option('aliases', 'list', 'network', elements='str', default=[], normalise='network:aliases', update='network'),
    # What it sees on disk.
    Option('mounts', 'list', 'spec', elements='raw', default=[], normalise='storage:mounts', spec='storage:map_mounts'),
    Option('tmpfs', 'dict', 'spec', default={}, normalise='storage:tmpfs', spec='storage:map_tmpfs'),
    Option('shm_size', 'raw', 'spec', default=64 * 1024 * 1024, normalise='storage:shm_size', spec='storage:map_shm_size'),
    Option('secrets', 'dict', 'spec', default={}, normalise='storage:secrets', spec='storage:map_secrets', no_log=True),
    # systemd as PID 1 (podman's --systemd=always): after the mounts (its tmpfs go where none is); the group
    # check finishes command and stop_signal (process.check_systemd).
    Option('systemd', 'bool', 'spec', default=False, spec='process:map_systemd'),
    # Run by a systemd unit of its own (runtime units.py; task layer _container_unit.py): a change recreates.
    # sdnotify container mounts the notify socket's directory: after every other mount but the init.
    Option('systemd_unit', 'bool', 'runtime', default=False, normalise='units:systemd_unit'),
    Option('sdnotify', 'str', 'spec', default='conmon', choices=('conmon', 'container', 'ignore'),
           spec='units:map_sdnotify'),
    Option('systemd_socket', 'list', 'runtime', elements='str', default=[], normalise='units:systemd_socket'),
    # After the command and every mount: the init is mounted last and put before the command.
    Option('init', 'bool', 'spec', default=False, normalise='process:init', spec='process:map_init'),
    # Where it runs, and its limits (updated live, read back from its cgroup).
    Option('cgroup_manager', 'str', 'runtime', default=Bound('placement:default_cgroup_manager'),
           normalise='placement:cgroup_manager', choices=('auto', 'cgroupfs', 'systemd')),
    Option('cgroup_parent', 'str', 'runtime', normalise='placement:cgroup_parent'),
    _limit('memory', 'raw', unset=('memory', 'limit', -1)),
    _limit('memory_reservation', 'raw', unset=('memory', 'reservation', -1)),
    _limit('memory_swap', 'raw'),
    _limit('cpus', 'float', default=0.0, unset=('cpu', 'quota', -1)),
    _limit('cpu_quota', 'int', unset=('cpu', 'quota', -1)),
    _limit('cpu_period', 'int'),
    _limit('cpu_shares', 'int'),
    _limit('cpuset_cpus', 'str', default=''),
    _limit('cpuset_mems', 'str', default=''),
    _limit('pids_limit', 'int', default=DEFAULT_PIDS_LIMIT, absent=0, unset=('pids', 'limit', -1)),
    _limit('blkio_weight', 'int'),
    # Not updated by the runtime's update: a change recreates.
    Option('memory_swappiness', 'int', 'spec', normalise='resources:memory_swappiness',
           spec='resources:map_memory_swappiness'),
    Option('device_read_bps', 'list', 'spec', elements='raw', default=[], normalise='resources:device_read_bps',
           spec='resources:map_device_read_bps'),
    Option('device_write_bps', 'list', 'spec', elements='raw', default=[], normalise='resources:device_write_bps',
           spec='resources:map_device_write_bps'),
    Option('device_read_iops', 'list', 'spec', elements='raw', default=[], normalise='resources:device_read_iops',
           spec='resources:map_device_read_iops'),
    Option('device_write_iops', 'list', 'spec', elements='raw', default=[], normalise='resources:device_write_iops',
           spec='resources:map_device_write_iops'),
    # How it is stopped, logged and run.
    Option('stop_signal', 'raw', 'runtime', default=15, normalise='process:stop_signal'),
    Option('stop_timeout', 'int', 'record', default=10, normalise='process:stop_timeout', update='record'),
    # Read by conmon's exit command (runtime restart.py) when the process ends: a change is a record write.
    Option('restart_policy', 'str', 'record', default='no', choices=('no', 'on-failure', 'always', 'unless-stopped'),
           update='record'),
    Option('restart_retries', 'int', 'record', default=0, normalise='process:restart_retries', update='record'),
    # Run by tasks that ask for health (runtime health.py): a change is a record write.
    Option('healthcheck', 'raw', 'record', default={}, normalise='process:healthcheck', update='record'),
    Option('health_on_failure', 'str', 'record', default='none', choices=('none', 'kill', 'restart'), update='record'),
    Option('labels', 'dict', 'spec', default={}, normalise='process:labels', spec='process:map_labels'),
    Option('log_driver', 'str', 'runtime', default='k8s-file', choices=('k8s-file', 'journald', 'none')),
    Option('log_size_max', 'raw', 'runtime', default=0, normalise='process:log_size_max'),
    Option('runtime', 'str', 'runtime', normalise='placement:runtime'),
]
OPTIONS_BY_NAME = dict((option.name, option) for option in OPTIONS)
