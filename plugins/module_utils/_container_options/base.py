# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pieces of the option table: an option with its bindings, how it is read back live, its context.

Bindings are named, not imported (``'resources:memory'`` is the function ``memory`` of
``resources.py`` in this package): a module is imported the first time one of its bindings is
called, so a task loads only the code of the options it gives (Ansible compiles every imported
module_utils file on every task). The imports are written out in load_module() so that Ansible's
module_utils finder ships every module of the package with a module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable

    from .images import ContainerImages


PULL_POLICIES = ('missing', 'always', 'never')  # the image stage's ``pull`` (a task option, not a container's)


COMPARISONS = ('strict', 'ignore', 'allow_more_present')
UPDATES = ('recreate', 'live', 'record', 'network')
# Who applies an option's value: the OCI spec, the network attachment before conmon starts the container,
# the image stage (root filesystem layers and the image's defaults), the runtime layer itself (how it
# launches and supervises: runtime, cgroups, conmon's log), or only the record (how a task manages it).
STAGES = ('spec', 'network', 'image', 'runtime', 'record')

_NOT_GIVEN = object()


class Bound(object):
    """A function of a module of this package, imported on its first call: ``Bound('resources:memory')``."""

    __slots__ = ('path', '_function')

    def __init__(self, path: str) -> None:
        self.path = path
        self._function: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._function is None:
            module_name, _sep, attribute = self.path.partition(':')
            self._function = getattr(load_module(module_name), attribute)
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return 'Bound(%r)' % self.path


def load_module(name: str) -> ModuleType:
    """The binding module ``name`` of this package (imported on first use)."""
    # pylint: disable=import-outside-toplevel
    if name == 'process':
        from . import process
        return process
    if name == 'storage':
        from . import storage
        return storage
    if name == 'resources':
        from . import resources
        return resources
    if name == 'placement':
        from . import placement
        return placement
    if name == 'network':
        from . import network
        return network
    if name == 'images':
        from . import images
        return images
    if name == 'security':
        from . import security
        return security
    if name == 'units':
        from . import units
        return units
    raise ValueError('no option binding module %r' % name)


def bound(path: str | Callable[..., Any] | None) -> Callable[..., Any] | None:
    return Bound(path) if isinstance(path, str) else path


class Live(object):
    """How a live-updatable option is read back from the container's cgroup and unset by ``runtime update``.

    ``key``: its name in the runtime's live values (``cgroups.read_live``), default the option's;
    ``match``: ``(wanted, live values) -> True, False, or None`` when it cannot be read here (then the
    record is compared instead), default: equal to ``live[key]``; ``unset``: ``(section, key, value)``
    of the update document that takes the limit away when the option is 0 (leaving it out would keep
    the old limit).
    """

    __slots__ = ('key', 'match', 'unset')

    def __init__(self, key: str | None = None, match: str | Callable[..., Any] | None = None,
                 unset: tuple[str, str, int] | None = None) -> None:
        self.key = key
        self.match = bound(match)
        self.unset = unset

    def matches(self, name: str, wanted: Any, live_values: dict[str, Any]) -> bool | None:
        """Does the live value (``live_values``: what the cgroup says) say ``wanted``? None: not readable here."""
        if self.match is not None:
            return self.match(wanted, live_values)
        key = self.key or name
        return live_values[key] == wanted if key in live_values else None


class Option(object):
    """One container option and every binding it has; see the package docstring for the whole table."""

    __slots__ = ('name', 'type', 'elements', 'choices', 'no_log', 'default', 'absent', 'normalise', 'stage', 'spec',
                 'comparison', 'equal', 'update', 'live', 'reserve')

    def __init__(self, name: str, type: str, stage: str, default: Any = None, absent: Any = _NOT_GIVEN,
                 normalise: str | None = None, spec: str | None = None, comparison: str = 'strict',
                 equal: str | None = None, update: str = 'recreate', live: Live | None = None,
                 elements: str | None = None, choices: tuple[str, ...] | None = None, no_log: bool = False,
                 reserve: str | None = None) -> None:
        if stage not in STAGES or update not in UPDATES or comparison not in COMPARISONS:
            raise ValueError('option %s: bad stage, update or comparison' % name)
        if (update == 'live') != (live is not None):
            raise ValueError('option %s: a live update needs a live read-back, and only a live update has one' % name)
        self.name = name
        # The module's argument_spec entry (no default there: None means "not given").
        self.type = type
        self.elements = elements
        self.choices = choices
        self.no_log = no_log
        # A new container's value when the task does not give it: a value, or a Bound(context) -> value.
        self.default = default
        # What a record without this option means (one written before the option or its default existed).
        self.absent = default if absent is _NOT_GIVEN else absent
        # (value, context) -> normalised value; raises ValidationError. None: the value as Ansible typed it.
        self.normalise = bound(normalise)
        self.stage = stage
        # (spec, value, config) -> None: writes the value into the OCI spec (stage 'spec').
        self.spec = bound(spec)
        # How a given value is compared with the container's: a mode, or equal(wanted, actual) -> bool.
        self.comparison = comparison
        self.equal = bound(equal)
        # What a difference takes: a new container, the runtime's update, or only a record write.
        self.update = update
        self.live = live
        # (value, config, store root, container id, known) -> value: what a new container takes from the host
        # when it is made (not in check mode), before its spec: a unique SELinux level. The runtime gives it back.
        self.reserve = bound(reserve)

    def argument_spec(self) -> dict[str, Any]:
        entry: dict[str, Any] = {'type': self.type}
        if self.elements:
            entry['elements'] = self.elements
        if self.choices:
            entry['choices'] = list(self.choices)
        if self.no_log:
            entry['no_log'] = True
        return entry

    def default_value(self, context: Context | None = None) -> Any:
        """A new container's value (a copy); a computed default needs the task's ``context``."""
        if isinstance(self.default, Bound):
            return self.default(context)
        return _copy(self.default)

    def absent_value(self) -> Any:
        return _copy(self.absent) if not isinstance(self.absent, Bound) else None


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


class Context(object):
    """What normalisers and group checks may know besides the value: the task's container and its store.

    ``record_config``: the existing container's config ({} for a new one); ``images``: the image stage
    (a ContainerImages) when the task has one; ``secret_values``: filled by the ``secrets`` normaliser
    with the values that must reach the container but never the config.
    """

    def __init__(self, name: str, root: str, record_config: dict[str, Any] | None = None,
                 images: ContainerImages | None = None) -> None:
        self.name = name
        self.root = root
        self.record_config: dict[str, Any] = record_config or {}
        self.images = images
        self.secret_values: dict[str, str] = {}

    def container_images(self) -> ContainerImages:
        if self.images is None:
            from .images import ContainerImages  # pylint: disable=import-outside-toplevel
            self.images = ContainerImages(self.root)
        return self.images

    def effective(self, given: dict[str, Any], name: str, default: Any = None) -> Any:
        """The value a container will have: given now, else recorded, else ``default``."""
        if name in given:
            return given[name]
        return self.record_config.get(name, default)


class Difference(object):
    __slots__ = ('name', 'before', 'after', 'update')

    def __init__(self, name: str, before: Any, after: Any, update: str) -> None:
        self.name = name
        self.before = before
        self.after = after
        self.update = update

    def __repr__(self) -> str:
        return 'Difference(%r, %r -> %r, %s)' % (self.name, self.before, self.after, self.update)


def values_match(wanted: Any, actual: Any, mode: str) -> bool:
    if mode == 'ignore':
        return True
    if mode == 'allow_more_present':
        if isinstance(wanted, dict) and isinstance(actual, dict):
            return all(key in actual and actual[key] == item for key, item in wanted.items())
        if isinstance(wanted, list) and isinstance(actual, list):
            return all(item in actual for item in wanted)
    return wanted == actual
