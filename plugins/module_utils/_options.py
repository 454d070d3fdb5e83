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

from ._runtime import spec as oci_spec
from ._runtime.errors import ValidationError
from ._runtime.oci_cli import select_runtime
from ._runtime.rootfs import validate_rootfs
from ._runtime.units import (absolute_path, normalise_mounts, parse_signal, parse_size, resolve_user,
                             split_command, string_dict)

COMPARISONS = ('strict', 'ignore', 'allow_more_present')
UPDATES = ('recreate', 'live', 'record')
HOSTNAME_RE = re.compile(r'[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*')
HOSTNAME_MAX = 64  # the kernel's limit (HOST_NAME_MAX)
MIN_CPUS = 0.01


class Option(object):
    """One container option (see the module docstring)."""

    __slots__ = ('name', 'type', 'elements', 'choices', 'default', 'normalise', 'spec', 'comparison', 'update',
                 'no_log')

    def __init__(self, name, type, default=None, normalise=None, spec=None, comparison='strict', update='recreate',
                 elements=None, choices=None, no_log=False):
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


def _env(value, context):
    return string_dict(value, 'env')


def _labels(value, context):
    return string_dict(value, 'labels')


def _workdir(value, context):
    return absolute_path(value, 'workdir')


def _user(value, context):
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


def _memory(value, context):
    return parse_size(value, 'memory')


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


def _runtime(value, context):
    name, path, _warnings = select_runtime(value)
    return path


def _default_hostname(context):
    """The container name made a valid host name: '_' -> '-', empty or dashed labels cleaned."""
    labels = [label.strip('-') for label in context['name'].replace('_', '-').split('.')]
    return '.'.join(label for label in labels if label)[:HOSTNAME_MAX - 1].strip('.-') or 'container'


OPTIONS = [
    Option('rootfs', 'path', normalise=_rootfs),
    Option('rootfs_mode', 'str', default='overlay', choices=('overlay', 'direct')),
    Option('command', 'raw', normalise=_command, spec=oci_spec.map_command),
    Option('hostname', 'str', default=_default_hostname, normalise=_hostname, spec=oci_spec.map_hostname),
    Option('env', 'dict', default={}, normalise=_env, spec=oci_spec.map_env),
    Option('workdir', 'str', default='/', normalise=_workdir, spec=oci_spec.map_workdir),
    Option('user', 'str', default='0:0', normalise=_user, spec=oci_spec.map_user),
    Option('read_only', 'bool', default=False, spec=oci_spec.map_read_only),
    Option('network', 'str', default='none', choices=('none', 'host'), spec=oci_spec.map_network),
    Option('mounts', 'list', elements='raw', default=[], normalise=_mounts, spec=oci_spec.map_mounts),
    Option('memory', 'raw', default=0, normalise=_memory, spec=oci_spec.map_memory),
    Option('cpus', 'float', default=0.0, normalise=_cpus, spec=oci_spec.map_cpus),
    Option('pids_limit', 'int', default=0, normalise=_non_negative_int('pids_limit'), spec=oci_spec.map_pids_limit),
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
    return given


def complete_config(given, context):
    """The full config of a new container: the given options plus the defaults of the others."""
    config = {}
    for option in OPTIONS:
        if option.name in given:
            config[option.name] = given[option.name]
        else:
            config[option.name] = option.default_value(context)
    return config


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
        current = actual.get(option.name, option.default)
        if not values_match(wanted, current, modes[option.name]):
            result.append(Difference(option.name, current, wanted, option.update))
    return result
