# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks across options: they run after every given option was normalised on its own.

Each is ``(values, context, complete)``: ``values`` are the given options (``complete`` false) or a
new container's whole config (``complete`` true). A check may finish a value that depends on
another option (a user name resolved in the root filesystem the container will have) and raises
ValidationError for combinations that cannot work. The container's other options, when not given,
are its recorded ones (``context.effective``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._runtime.errors import ValidationError

if TYPE_CHECKING:
    from typing import Any, Callable

    from .base import Context


def images(values: dict[str, Any], context: Context, complete: bool) -> None:
    """``image`` and ``rootfs`` exclude each other; an image always runs on an overlay of its layers."""
    if 'image' in values and values.get('rootfs') and (not complete or values.get('image')):
        raise ValidationError('image and rootfs are mutually exclusive: give one of them')
    has_image = values.get('image') or (context.record_config.get('image') and 'rootfs' not in values)
    mode = context.effective(values, 'rootfs_mode')
    if has_image and mode == 'direct':
        raise ValidationError('rootfs_mode: direct needs rootfs; a container from an image always uses an overlay '
                              'of its shared read-only layers')


def user(values: dict[str, Any], context: Context, complete: bool) -> None:
    """A user name is looked up in the /etc/passwd of the root filesystem the container will have; its
    supplementary groups (``user_groups``, not an option: what /etc/group lists it in) and ``group_add``'s
    names in its /etc/group."""
    given_user = 'user' in values and values['user'] is not None
    if not given_user and not values.get('group_add'):
        return
    image = values.get('image') or (context.record_config.get('image') if not values.get('rootfs') else None)
    from .._runtime.parsers import resolve_group, resolve_user, supplementary_gids  # pylint: disable=import-outside-toplevel
    if image:
        images = context.container_images()
        user_db = images.user_db(image)
        if given_user:
            values['user'] = images.resolve_user(values['user'], image)
        if user_db is None and not images.allow_pull:
            return  # not pulled yet (check mode, or before the lock): names resolved once it is
    else:
        user_db = context.effective(values, 'rootfs')
        if given_user:
            values['user'] = resolve_user(values['user'], user_db)
    if given_user:
        values['user_groups'] = supplementary_gids(values['user'], user_db)
    if values.get('group_add'):
        values['group_add'] = [resolve_group(item, user_db) for item in values['group_add']]


def memory(values: dict[str, Any], context: Context, complete: bool) -> None:
    """``memory_swap`` is memory plus swap: at least ``memory`` (or -1 for unlimited swap)."""
    swap = values.get('memory_swap')
    limit = context.effective(values, 'memory')
    if swap and swap > 0 and limit and swap < limit:
        raise ValidationError('memory_swap: %s is less than memory (%s): memory_swap is memory plus swap, so it must '
                              'be at least memory, or -1 for unlimited swap' % (swap, limit))


def cpu(values: dict[str, Any], context: Context, complete: bool) -> None:
    """``cpus`` is a quota per the default period: it excludes ``cpu_quota`` and ``cpu_period``."""
    cpus = context.effective(values, 'cpus')
    given = [name for name in ('cpu_quota', 'cpu_period') if context.effective(values, name)]
    if cpus and given and ('cpus' in values or any(name in values for name in given)):
        raise ValidationError('cpus and %s exclude each other: cpus: N is a quota of N periods of 100 ms; give '
                              'one form (set the other to 0)' % ' and '.join(given))


def restart(values: dict[str, Any], context: Context, complete: bool) -> None:
    """``restart_retries`` counts the restarts of ``on-failure`` only (as docker's ``on-failure:N``)."""
    if values.get('restart_retries') and context.effective(values, 'restart_policy') != 'on-failure':
        raise ValidationError('restart_retries: only restart_policy on-failure stops after a number of restarts; '
                              'give restart_policy: on-failure, or leave restart_retries out')


def unit(values: dict[str, Any], context: Context, complete: bool) -> None:
    """The settings of a unit-managed container (``units.check``); loaded only when one is given or recorded."""
    names = ('systemd_unit', 'sdnotify', 'systemd_socket', 'restart_retries')
    if not any(name in values for name in names) and not context.record_config.get('systemd_unit'):
        return
    from . import units  # pylint: disable=import-outside-toplevel
    units.check(values, context, complete)


def systemd(values: dict[str, Any], context: Context, complete: bool) -> None:
    """systemd as PID 1 (``process.check_systemd``): its command and stop signal, the cgroup tree it needs."""
    if values.get('systemd'):
        from . import process  # pylint: disable=import-outside-toplevel
        process.check_systemd(values, context, complete)


def mount_targets(values: dict[str, Any], context: Context, complete: bool) -> None:
    """One mount per target across ``mounts``, ``tmpfs`` and file ``secrets``."""
    if not complete and not any(name in values for name in ('mounts', 'tmpfs', 'secrets')):
        return
    seen: dict[str, str] = {}
    for option, targets in (('mounts', [mount['target'] for mount in context.effective(values, 'mounts') or []]),
                            ('tmpfs', list(context.effective(values, 'tmpfs') or {})),
                            ('secrets', [entry['target'] for entry in (context.effective(values, 'secrets') or {}).values()
                                         if entry.get('type') == 'file'])):
        for target in targets:
            if target in seen:
                raise ValidationError('%s: %s is already a mount of %s; give each path once' % (option, target, seen[target]))
            seen[target] = option


def placement(values: dict[str, Any], context: Context, complete: bool) -> None:
    """``cgroup_parent`` is a path for cgroupfs and a slice for systemd; a new container gets its manager's default."""
    if 'cgroup_parent' not in values and not complete:
        return
    from .._runtime import cgroups  # pylint: disable=import-outside-toplevel
    manager = context.effective(values, 'cgroup_manager') or cgroups.resolve_manager('auto')
    values['cgroup_parent'] = cgroups.validate_parent(manager, values.get('cgroup_parent'))


def network(values: dict[str, Any], context: Context, complete: bool) -> None:
    """``ip_address``, ``published_ports`` and the name options (``dns``...) against the network the container
    will be on; ``networks`` or the one-network shorthand (``network``), the other recorded from it."""
    given = ('published_ports', 'dns', 'dns_search', 'dns_options', 'etc_hosts', 'aliases', 'networks')
    if complete or not any(values.get(option) for option in given) and 'ip_address' not in values \
            and 'network' not in values:
        return
    from . import network as network_options  # pylint: disable=import-outside-toplevel
    network_options.check(values, context)


def sysctls(values: dict[str, Any], context: Context, complete: bool) -> None:
    """``net.*`` settings need a network namespace of the container's own (not ``network: host``)."""
    if not any(key.startswith('net.') for key in values.get('sysctls') or {}):
        return
    if context.effective(values, 'network') == 'host':
        raise ValidationError('sysctls: net.* settings need a network of the container\'s own; with network: host they '
                              'would change the host\'s network: set them on the host')


def confinement(values: dict[str, Any], context: Context, complete: bool) -> None:
    """Capabilities, privileged and the profiles together (security.check); loaded only when one is given."""
    if not complete and not any(name in values for name in CONFINEMENT):
        return
    from . import security  # pylint: disable=import-outside-toplevel
    security.check(values, context, complete)


CONFINEMENT = ('privileged', 'cap_add', 'cap_drop', 'seccomp_profile', 'apparmor_profile', 'label')
# In this order: the image and the root filesystem first (the user is resolved in them).
GROUPS: tuple[Callable[[dict[str, Any], Context, bool], None], ...] = (images, user, memory, cpu, placement, network,
                                                                       sysctls, restart, unit, systemd, mount_targets,
                                                                       confinement)
