# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container options: one table (table.py), and what the task layer does with it.

    params  --normalise()-->  given options (each normalised, then the group checks across them)
    given   --complete()-->   a new container's whole config (defaults, then the group checks again)
    given vs record config --differences()--> what differs, and whether it recreates, updates live or
                                              only changes the record; with_drift() adds the live
                                              cgroup's differences for the limits given
    config  --build_spec()-->  the OCI spec;  --update_resources()--> the runtime's update document

The runtime layer (``_runtime``) knows nothing of options: it gets a finished spec, a resources
document and a config whose keys it reads for its own stages (network, image layers, cgroups, conmon).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._runtime.errors import ValidationError
from .base import COMPARISONS, PULL_POLICIES, Context, Difference, values_match  # noqa: F401 (the package API)
from .table import OPTIONS, OPTIONS_BY_NAME

if TYPE_CHECKING:
    from typing import Any, Callable

    from .base import Option


def argument_spec() -> dict[str, dict[str, Any]]:
    """The container options' part of the module's argument_spec (no defaults: None = not given)."""
    return dict((option.name, option.argument_spec()) for option in OPTIONS)


def normalise(params: dict[str, Any], context: Context) -> dict[str, Any]:
    """-> {option: normalised value} for every option given (not None) in ``params``; bad input raises."""
    from .groups import GROUPS  # pylint: disable=import-outside-toplevel
    given: dict[str, Any] = {}
    for option in OPTIONS:
        value = params.get(option.name)
        if value is None:
            continue
        if option.choices and value not in option.choices:
            raise ValidationError('%s: %r is not one of %s' % (option.name, value, ', '.join(option.choices)))
        given[option.name] = option.normalise(value, context) if option.normalise else value
    for check in GROUPS:
        check(given, context, False)
    return given


def complete(given: dict[str, Any], context: Context) -> dict[str, Any]:
    """The whole config of a new container: the given options plus the defaults of the others."""
    from .groups import GROUPS  # pylint: disable=import-outside-toplevel
    config: dict[str, Any] = {}
    for option in OPTIONS:
        config[option.name] = given[option.name] if option.name in given else option.default_value(context)
    for check in GROUPS:
        check(config, context, True)
    return config


def comparison_modes(comparisons: dict[str, str] | None) -> dict[str, str]:
    """Resolve the user's ``comparisons`` ({option or '*': mode}) over the table's own modes."""
    comparisons = comparisons or {}
    for key, mode in comparisons.items():
        if key != '*' and key not in OPTIONS_BY_NAME:
            raise ValidationError('comparisons: unknown option %r; known: %s' % (key, ', '.join(sorted(OPTIONS_BY_NAME))))
        if mode not in COMPARISONS:
            raise ValidationError('comparisons: %r for %s is not one of %s' % (mode, key, ', '.join(COMPARISONS)))
    return dict((option.name, comparisons.get(option.name, comparisons.get('*', option.comparison)))
                for option in OPTIONS)


def differences(given: dict[str, Any], actual: dict[str, Any], modes: dict[str, str]) -> list[Difference]:
    """Options whose given value differs from the container's ``actual`` config, in table order."""
    result: list[Difference] = []
    for option in OPTIONS:
        if option.name not in given:
            continue
        wanted = given[option.name]
        current = actual[option.name] if option.name in actual else option.absent_value()
        mode = modes[option.name]
        if option.equal is not None and mode != 'ignore':
            same = option.equal(wanted, current)
        else:
            same = values_match(wanted, current, mode)
        if not same:
            result.append(Difference(option.name, current, wanted, option.update))
    return result


def live_options(given: dict[str, Any], modes: dict[str, str]) -> list[Option]:
    """The given options that are read back from the container's cgroup (not ignored)."""
    return [option for option in OPTIONS if option.name in given and option.live is not None
            and modes[option.name] != 'ignore']


def with_drift(changes: list[Difference], given: dict[str, Any], modes: dict[str, str],
               live_values: dict[str, Any]) -> list[Difference]:
    """``changes`` plus the given limits the live cgroup (``live_values``) does not say (hand edits show)."""
    by_name = dict((change.name, change) for change in changes)
    for option in live_options(given, modes):
        live = option.live
        if live is None or live.matches(option.name, given[option.name], live_values) is not False:
            continue
        key = live.key or option.name
        before = live_values.get(key, by_name[option.name].before if option.name in by_name else None)
        by_name[option.name] = Difference(option.name, before, given[option.name], 'live')
    return [by_name[option.name] for option in OPTIONS if option.name in by_name]


def build_spec(config: dict[str, Any], container_id: str) -> dict[str, Any]:
    """The OCI config.json of a container with this (complete) ``config``."""
    from .._runtime import cgroups  # pylint: disable=import-outside-toplevel
    from .._runtime import spec as oci_spec  # pylint: disable=import-outside-toplevel
    root_path = 'rootfs' if config.get('rootfs_mode') == 'overlay' else config['rootfs']
    cgroups_path = cgroups.container_cgroups_path(config.get('cgroup_manager') or 'cgroupfs',
                                                  config.get('cgroup_parent') or cgroups.DEFAULT_CGROUPFS_PARENT,
                                                  container_id)
    spec = oci_spec.base_spec(container_id, root_path, cgroups_path, network=config.get('network') or 'none')
    for option in OPTIONS:
        if option.spec is None:
            continue
        # A record made before an option existed has what its absence meant (cap_drop then still applies).
        value = config[option.name] if option.name in config else option.absent_value()
        if value is not None:
            option.spec(spec, value, config)
    return spec


def reserve(config: dict[str, Any], root: str, container_id: str,
            known: Callable[[], dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """``config`` with what a new container takes from the host (its SELinux level) before its spec is made.

    Only when a container is really made (never in check mode); ``known()`` gives {id: config} of the
    store's containers (an allocation of an id without a record is a task that died). The runtime
    gives it back when the container is removed.
    """
    config = dict(config)
    for option in OPTIONS:
        if option.reserve is not None and config.get(option.name) is not None:
            config[option.name] = option.reserve(config[option.name], config, root, container_id, known)
    return config


def update_resources(config: dict[str, Any]) -> dict[str, Any]:
    """The runtime ``update --resources`` document of every live-updatable option of ``config``."""
    spec: dict[str, Any] = {'linux': {'resources': {}}}
    for option in OPTIONS:
        if option.live is not None and option.spec is not None:
            option.spec(spec, config.get(option.name), config)
    resources = spec['linux']['resources']
    for option in OPTIONS:
        if option.live is not None and option.live.unset and not config.get(option.name):
            section, key, value = option.live.unset
            resources.setdefault(section, {}).setdefault(key, value)  # another option's value stays (cpu_quota, cpus)
    if 'quota' in resources.get('cpu', {}):
        from .resources import CPU_PERIOD  # pylint: disable=import-outside-toplevel
        resources['cpu'].setdefault('period', CPU_PERIOD)
    return resources


def imported_config(name: str, raw: Any, overrides: dict[str, Any], runtime: str, store_root: str,
                    trusted: bool = False) -> dict[str, Any]:
    """A checkpoint archive's container config, rebuilt as a task's own options are (see imported.py)."""
    from .imported import imported_config as rebuild  # pylint: disable=import-outside-toplevel
    return rebuild(name, raw, overrides, runtime, store_root, trusted=trusted)


__all__ = ['OPTIONS', 'OPTIONS_BY_NAME', 'PULL_POLICIES', 'Context', 'Difference', 'argument_spec', 'normalise', 'complete',
           'comparison_modes', 'differences', 'with_drift', 'live_options', 'build_spec', 'reserve', 'update_resources',
           'imported_config']
