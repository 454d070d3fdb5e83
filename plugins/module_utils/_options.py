# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every container option, declared once.

An entry says what the option means everywhere: its Ansible type (the module's argument_spec is
made from the table), its default when a container is created, its normaliser (``"1g"`` ->
1073741824, ``"TERM"`` -> 15, ...), its OCI spec mapping, how it is compared with the existing
container (``strict``, ``ignore``, ``allow_more_present``), and what a change of it takes:
``recreate`` (a new container), ``live`` (the runtime's ``update`` on the running container) or
``record`` (only how we manage it changes, e.g. the stop timeout).

Options the user leaves out are not compared: ``name: web, state: stopped`` stops ``web`` whatever
it was created with. Options given are compared as normalised, typed values.
"""

from __future__ import annotations

import math
import os
import re

from ._runtime import cgroups, network, ports
from ._runtime import secrets as container_secrets
from ._runtime import image_options as oci_images
from ._runtime import spec as oci_spec
from ._runtime.errors import ValidationError
from ._runtime.oci_cli import select_runtime
from ._runtime.rootfs import validate_rootfs
from ._runtime.units import (absolute_path, normalise_mounts, parse_signal, parse_size, resolve_user,
                             split_command, string_dict)

COMPARISONS = ('strict', 'ignore', 'allow_more_present')
DEFAULT_PIDS_LIMIT = 2048  # podman's default for new containers
UPDATES = ('recreate', 'live', 'record')
HOSTNAME_RE = re.compile(r'[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*')
HOSTNAME_MAX = 64  # the kernel's limit (HOST_NAME_MAX)
MIN_CPUS = 0.01


_SAME_AS_DEFAULT = object()


class Option(object):
    """One container option (see the module docstring)."""

    __slots__ = ('name', 'type', 'elements', 'choices', 'default', 'normalise', 'spec', 'comparison', 'update',
                 'no_log', 'equal', 'absent')

    def __init__(self, name, type, default=None, normalise=None, spec=None, comparison='strict', update='recreate',
                 elements=None, choices=None, no_log=False, equal=None, absent=_SAME_AS_DEFAULT):
        self.name = name
        self.type = type
        self.elements = elements
        self.choices = choices
        self.default = default
        self.normalise = normalise
        self.spec = spec
        self.comparison = comparison
        self.update = update
        self.no_log = no_log
        # (wanted, actual) -> bool, instead of ==; e.g. images compare by manifest digest.
        self.equal = equal
        # What a record without this option means (one written before the option or its default existed).
        self.absent = default if absent is _SAME_AS_DEFAULT else absent

    def argument_spec(self):
        entry = {'type': self.type}
        if self.elements:
            entry['elements'] = self.elements
        if self.choices:
            entry['choices'] = list(self.choices)
        if self.no_log:
            entry['no_log'] = True
        return entry

    def default_value(self, context):
        return self.default(context) if callable(self.default) else _copy(self.default)


def _copy(value):
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


# -- normalisers: (value, context) -> normalised value; context has name and rootfs ----------------

def _rootfs(value, context):
    return validate_rootfs(value)


def _command(value, context):
    return split_command(value)


def _image(value, context):
    images = context.get('images')
    if images is None:
        images = context['images'] = oci_images.ContainerImages(context.get('root') or '/var/lib/runcible')
    return images.normalise(value)


def _entrypoint(value, context):
    if value in ('', []):
        return []
    return split_command(value, 'entrypoint')


def _env(value, context):
    return string_dict(value, 'env')


def _labels(value, context):
    return string_dict(value, 'labels')


def _workdir(value, context):
    return absolute_path(value, 'workdir')


def _user(value, context):
    images = context.get('images')
    if images is not None and images.uses_image(context):
        return images.resolve_user(value, context)
    return resolve_user(value, context.get('rootfs'))


def _hostname(value, context):
    value = str(value)
    if len(value) > HOSTNAME_MAX or not HOSTNAME_RE.fullmatch(value):
        raise ValidationError('hostname: %r is not a valid host name (up to %d letters, digits, "-" and ".")'
                              % (value, HOSTNAME_MAX))
    return value


def _mounts(value, context):
    mounts = normalise_mounts(value)
    for mount in mounts:
        if not os.path.exists(mount['source']):
            raise ValidationError('mounts: source %s does not exist on the host; create it first' % mount['source'])
    return mounts


def _secrets(value, context):
    key = container_secrets.store_key(context.get('root') or '/var/lib/runcible')
    normalised, values = container_secrets.normalise(value, key)
    context['secret_values'] = values
    return normalised


def _memory(value, context):
    return parse_size(value, 'memory')


def _size(option):
    def normalise(value, context):
        return parse_size(value, option)
    return normalise


def _cpus(value, context):
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise ValidationError('cpus: %r is not a number of CPUs (e.g. 0.5 or 2)' % (value,))
    if not math.isfinite(cpus) or cpus < 0:
        raise ValidationError('cpus: %r must be 0 (no limit) or a positive number of CPUs' % (value,))
    if 0 < cpus < MIN_CPUS:
        raise ValidationError('cpus: %r is below the smallest limit the kernel takes (%s CPUs: a 1 ms quota per '
                              '100 ms period)' % (value, MIN_CPUS))
    return cpus


def _non_negative_int(option):
    def normalise(value, context):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError('%s: %r must be a whole number of 0 or more' % (option, value))
        return value
    return normalise


def _stop_signal(value, context):
    return parse_signal(value, 'stop_signal')


def _log_size_max(value, context):
    return parse_size(value, 'log_size_max')


def _memory_swap(value, context):
    if str(value).strip() == '-1':
        return -1
    swap = parse_size(value, 'memory_swap')
    memory = context.get('memory', (context.get('record_config') or {}).get('memory'))
    if swap and memory and swap < memory:
        raise ValidationError('memory_swap: %s is less than memory (%s): memory_swap is memory plus swap, so it must '
                              'be at least memory, or -1 for unlimited swap' % (value, memory))
    return swap


def _cpu_shares(value, context):
    if isinstance(value, bool) or not isinstance(value, int) or value != 0 and not 2 <= value <= 262144:
        raise ValidationError('cpu_shares: %r must be 0 (default) or from 2 to 262144' % (value,))
    return value


def _cpuset(option):
    def normalise(value, context):
        try:
            return cgroups.normalise_cpuset(value)
        except ValidationError as exc:
            raise ValidationError('%s: %s' % (option, exc.msg))
    return normalise


def _blkio_weight(value, context):
    if isinstance(value, bool) or not isinstance(value, int) or value != 0 and not 10 <= value <= 1000:
        raise ValidationError('blkio_weight: %r must be 0 (default) or from 10 to 1000' % (value,))
    if value and not cgroups.blkio_weight_supported():
        raise ValidationError('blkio_weight: this host has no block I/O weight controller (blkio.weight, or '
                              'io.weight with the BFQ scheduler); leave blkio_weight out here')
    return value


def _cgroup_manager(value, context):
    return cgroups.resolve_manager(value)


def _default_cgroup_manager(context):
    return cgroups.resolve_manager('auto')


def _cgroup_parent(value, context):
    manager = context.get('cgroup_manager') or (context.get('record_config') or {}).get('cgroup_manager') \
        or cgroups.resolve_manager('auto')
    return cgroups.validate_parent(manager, value)


def _default_cgroup_parent(context):
    return cgroups.validate_parent(context.get('cgroup_manager') or cgroups.resolve_manager('auto'), None)


def _network(value, context):
    return network.check_network(network.normalise_network(value), context)


def _ip_address(value, context):
    return network.check_ip_address(network.normalise_ip_address(value), context)


def _published_ports(value, context):
    return network.check_published_ports(ports.normalise(value), context)


def _runtime(value, context):
    name, path, _warnings = select_runtime(value)
    return path


def _default_hostname(context):
    """The container name made a valid host name: '_' -> '-', empty or dashed labels cleaned."""
    labels = [label.strip('-') for label in context['name'].replace('_', '-').split('.')]
    return '.'.join(label for label in labels if label)[:HOSTNAME_MAX - 1].strip('.-') or 'container'


OPTIONS = [
    Option('rootfs', 'path', normalise=_rootfs),
    Option('image', 'str', normalise=_image, spec=oci_images.map_image, equal=oci_images.same_image),
    Option('rootfs_mode', 'str', default='overlay', choices=('overlay', 'direct')),
    Option('entrypoint', 'raw', default=[], normalise=_entrypoint),
    Option('command', 'raw', normalise=_command, spec=oci_spec.map_command),
    Option('hostname', 'str', default=_default_hostname, normalise=_hostname, spec=oci_spec.map_hostname),
    Option('env', 'dict', default={}, normalise=_env, spec=oci_spec.map_env),
    Option('workdir', 'str', default='/', normalise=_workdir, spec=oci_spec.map_workdir),
    Option('user', 'str', default='0:0', normalise=_user, spec=oci_spec.map_user),
    Option('read_only', 'bool', default=False, spec=oci_spec.map_read_only),
    Option('network', 'str', default=network.DEFAULT_NETWORK, normalise=_network, spec=network.map_spec),
    Option('ip_address', 'str', normalise=_ip_address),
    Option('published_ports', 'list', elements='str', default=[], normalise=_published_ports),
    Option('mounts', 'list', elements='raw', default=[], normalise=_mounts, spec=oci_spec.map_mounts),
    Option('secrets', 'dict', default={}, normalise=_secrets, spec=container_secrets.map_spec, no_log=True),
    Option('cgroup_manager', 'str', default=_default_cgroup_manager, normalise=_cgroup_manager,
           choices=('auto', 'cgroupfs', 'systemd')),
    Option('cgroup_parent', 'str', default=_default_cgroup_parent, normalise=_cgroup_parent),
    Option('memory', 'raw', default=0, normalise=_memory, spec=oci_spec.map_memory, update='live'),
    Option('memory_reservation', 'raw', default=0, normalise=_size('memory_reservation'),
           spec=oci_spec.map_memory_reservation, update='live'),
    Option('memory_swap', 'raw', default=0, normalise=_memory_swap, spec=oci_spec.map_memory_swap, update='live'),
    Option('cpus', 'float', default=0.0, normalise=_cpus, spec=oci_spec.map_cpus, update='live'),
    Option('cpu_shares', 'int', default=0, normalise=_cpu_shares, spec=oci_spec.map_cpu_shares, update='live'),
    Option('cpuset_cpus', 'str', default='', normalise=_cpuset('cpuset_cpus'), spec=oci_spec.map_cpuset_cpus,
           update='live'),
    Option('cpuset_mems', 'str', default='', normalise=_cpuset('cpuset_mems'), spec=oci_spec.map_cpuset_mems,
           update='live'),
    Option('pids_limit', 'int', default=DEFAULT_PIDS_LIMIT, absent=0, normalise=_non_negative_int('pids_limit'), spec=oci_spec.map_pids_limit,
           update='live'),
    Option('blkio_weight', 'int', default=0, normalise=_blkio_weight, spec=oci_spec.map_blkio_weight,
           update='live'),
    Option('stop_signal', 'raw', default=15, normalise=_stop_signal),
    Option('stop_timeout', 'int', default=10, normalise=_non_negative_int('stop_timeout'), update='record'),
    Option('labels', 'dict', default={}, normalise=_labels, spec=oci_spec.map_labels),
    Option('log_driver', 'str', default='k8s-file', choices=('k8s-file', 'journald', 'none')),
    Option('log_size_max', 'raw', default=0, normalise=_log_size_max),
    Option('runtime', 'str', normalise=_runtime),
]
OPTIONS_BY_NAME = dict((option.name, option) for option in OPTIONS)


def argument_spec():
    """The container options' part of the module's argument_spec (no defaults: None = not given)."""
    return dict((option.name, option.argument_spec()) for option in OPTIONS)


def normalise_given(params, context):
    """-> {option: normalised value} for every option given (not None) in ``params``."""
    given = {}
    for option in OPTIONS:
        value = params.get(option.name)
        if value is None:
            continue
        given[option.name] = option.normalise(value, context) if option.normalise else value
        # Later normalisers may depend on earlier values (cgroup_parent on cgroup_manager, ...).
        context[option.name] = given[option.name]
    return given


def complete_config(given, context):
    """The full config of a new container: the given options plus the defaults of the others."""
    config = {}
    context = dict(context)
    for option in OPTIONS:
        if option.name in given:
            config[option.name] = given[option.name]
        else:
            config[option.name] = option.default_value(context)
        context[option.name] = config[option.name]
    return config


LIVE_MAPPERS = dict((option.name, option.spec) for option in OPTIONS if option.update == 'live')


def resources_for_update(config):
    """The runtime ``update`` document of every live-updatable option of ``config``."""
    return oci_spec.resources_for_update(config, LIVE_MAPPERS)


def live_value_matches(name, wanted, live):
    """Does the value read back from the container's cgroup (``live``, a dict) say ``wanted``?

    -> True / False, or None when it could not be read here (then the record is compared instead).
    """
    if name == 'cpu_shares' and name not in live and 'cpu_weight' in live:
        return not wanted or live['cpu_weight'] == cgroups.shares_to_weight(wanted)
    if name not in live:
        return None
    value = live[name]
    if name in ('memory', 'memory_reservation', 'memory_swap') and wanted and wanted > 0:
        # The kernel rounds byte limits down to whole pages.
        page = os.sysconf('SC_PAGE_SIZE')
        return value == wanted // page * page
    if name == 'cpus':
        return int(round(value * oci_spec.CPU_PERIOD)) == int(round(wanted * oci_spec.CPU_PERIOD))
    if name in ('cpuset_cpus', 'cpuset_mems') and not wanted:
        return True  # no pinning asked: whatever the parent gives is right
    if name == 'cpu_shares' and not wanted:
        return True
    if name == 'blkio_weight' and not wanted:
        return True
    if name == 'memory_swap' and not wanted:
        return True
    return value == wanted


def build_spec(config, container_id, root_path, cgroups_path):
    """The OCI config.json of a container with this (complete) ``config``."""
    spec = oci_spec.base_spec(container_id, root_path, cgroups_path, network=config.get('network') or 'none')
    for option in OPTIONS:
        if option.spec is not None and config.get(option.name) is not None:
            option.spec(spec, config[option.name], config)
    return spec


def comparison_modes(comparisons):
    """Resolve the user's ``comparisons`` ({option or '*': mode}) over the table's own modes."""
    comparisons = comparisons or {}
    for key, mode in comparisons.items():
        if key != '*' and key not in OPTIONS_BY_NAME:
            raise ValidationError('comparisons: unknown option %r; known: %s' % (key, ', '.join(sorted(OPTIONS_BY_NAME))))
        if mode not in COMPARISONS:
            raise ValidationError('comparisons: %r for %s is not one of %s' % (mode, key, ', '.join(COMPARISONS)))
    modes = {}
    for option in OPTIONS:
        modes[option.name] = comparisons.get(option.name, comparisons.get('*', option.comparison))
    return modes


def values_match(wanted, actual, mode):
    if mode == 'ignore':
        return True
    if mode == 'allow_more_present':
        if isinstance(wanted, dict) and isinstance(actual, dict):
            return all(key in actual and actual[key] == item for key, item in wanted.items())
        if isinstance(wanted, list) and isinstance(actual, list):
            return all(item in actual for item in wanted)
    return wanted == actual


class Difference(object):
    __slots__ = ('name', 'before', 'after', 'update')

    def __init__(self, name, before, after, update):
        self.name = name
        self.before = before
        self.after = after
        self.update = update


def differences(given, actual, modes):
    """Options whose given value differs from the container's ``actual`` config, in table order."""
    result = []
    for option in OPTIONS:
        if option.name not in given:
            continue
        wanted = given[option.name]
        current = actual.get(option.name, option.absent)
        mode = modes[option.name]
        if option.equal is not None and mode != 'ignore':
            same = option.equal(wanted, current)
        else:
            same = values_match(wanted, current, mode)
        if not same:
            result.append(Difference(option.name, current, wanted, option.update))
    return result


# -- a container config that comes from outside a task (a checkpoint archive's manifest) ---------------

IMPORTED_EXTRA = ('image_config',)


def _check_types(params, what):
    """Types and choices of ``params`` exactly as Ansible checks a task's own options."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # pylint: disable=import-outside-toplevel
    result = ArgumentSpecValidator(argument_spec()).validate(params)
    if result.error_messages:
        raise ValidationError('%s: %s; refusing it' % (what, '; '.join(result.error_messages)))
    return dict((key, value) for key, value in result.validated_parameters.items() if value is not None)


def imported_config(name, raw, overrides, runtime, engine):
    """The complete config of a container imported from a checkpoint archive whose manifest says ``raw``.

    Nothing of an archive is trusted: unknown options are refused; host paths (``rootfs``, bind
    ``mounts``) come only from the importing task (``overrides``), which must give them when the
    archive's container had them; an image is taken by digest from this host's image store only; the
    runtime is chosen by name (``runtime``: runc or crun, or the task's own choice); every value goes
    through the type checks and normalisers of a task's own options.
    """
    what = "the archive's container config"
    if not isinstance(raw, dict):
        raise ValidationError('%s is not a dictionary: refusing it' % what)
    unknown = sorted(set(raw) - set(OPTIONS_BY_NAME) - set(IMPORTED_EXTRA))
    if unknown:
        raise ValidationError('%s has unknown options %s: refusing it' % (what, ', '.join(unknown)))
    params = dict((key, value) for key, value in raw.items() if key in OPTIONS_BY_NAME and value is not None)
    params.pop('runtime', None)
    if params.get('secrets'):
        raise ValidationError('the archive\'s container had secrets (%s), whose values archives do not carry: import '
                              'is not supported for such containers' % ', '.join(sorted(params['secrets'])))
    if 'rootfs' in overrides or 'image' in overrides:
        params.pop('rootfs', None)
        params.pop('image', None)
    elif params.get('rootfs'):
        raise ValidationError('the archive\'s container ran on the root filesystem %s of its host; an archive may not '
                              'choose host paths: give rootfs (the directory on this host the container may use, '
                              'usually the same) to import it' % params['rootfs'])
    if params.get('image'):
        # By content only: the image must be in this host's image store with this digest.
        params['image'] = oci_images.split_normalised(str(params['image']))[1]
    if params.get('command') == []:
        del params['command']  # no command of its own: an image's entrypoint runs (the image fills it in again)
    if params.get('rootfs_mode') == 'direct' and 'rootfs' not in overrides:
        raise ValidationError('the archive\'s container writes to its root filesystem directly (rootfs_mode: direct); '
                              'give rootfs to import it')
    if 'mounts' not in overrides and params.get('mounts'):
        raise ValidationError('the archive\'s container binds host paths at %s; an archive may not choose host paths: '
                              'give mounts (the host directories to bind there) to import it'
                              % ', '.join(str((mount or {}).get('target') if isinstance(mount, dict) else mount)
                                          for mount in params['mounts']))
    params.update(overrides)
    params['runtime'] = runtime
    params = _check_types(params, what)
    images = oci_images.ContainerImages(engine.store.root, 'never')
    context = {'name': name, 'root': engine.store.root, 'record_config': {}, 'rootfs': params.get('rootfs'),
               'images': images}
    given = normalise_given(params, context)
    images.check_given(given, {})
    config = complete_config(given, {'name': name, 'rootfs': given.get('rootfs')})
    images.complete(config, given)
    return config
