# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container config that comes from outside a task: a checkpoint archive's manifest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._runtime.errors import ValidationError
from .base import Context
from .images import ContainerImages, split_normalised
from .table import OPTIONS_BY_NAME

if TYPE_CHECKING:
    from typing import Any

IMPORTED_EXTRA = ('image_config', 'user_groups', 'image_volumes')  # derived keys: made again here, never taken from the archive
# What loosens a container's confinement below the defaults: (option, test of the archive's value).
LOOSENING = (
    ('privileged', lambda value: value is True),
    ('cap_add', bool),
    ('no_new_privileges', lambda value: value is False),
    ('seccomp_profile', lambda value: value == 'unconfined'),
    ('label', lambda value: value == 'disable' and _selinux_enabled()),
    ('network', lambda value: value == 'host'),
    ('apparmor_profile', lambda value: value not in ('unconfined', 'runcible-default')),
    ('cgroupns', lambda value: value == 'host' and _default_cgroupns() == 'private'),
)


def _default_cgroupns() -> str:
    from .security import default_cgroupns  # pylint: disable=import-outside-toplevel
    return default_cgroupns(None)


def _selinux_enabled() -> bool:
    from .._runtime.selinux_labels import enabled  # pylint: disable=import-outside-toplevel
    return enabled()


def _host_paths(params: dict[str, Any]) -> None:
    """Host devices and a seccomp profile file are host paths, which an archive never chooses."""
    if params.get('devices'):
        raise ValidationError('the archive\'s container had host devices (%s); an archive may not choose host paths: '
                              'import is not supported for such containers' % ', '.join(
                                  str(device.get('host') if isinstance(device, dict) else device)
                                  for device in params['devices']))
    if isinstance(params.get('seccomp_profile'), dict):
        raise ValidationError('the archive\'s container had the seccomp profile file %s of its host; an archive may '
                              'not choose host paths: import is not supported for such containers'
                              % params['seccomp_profile'].get('path'))


def _confinement(params: dict[str, Any], trusted: bool) -> None:
    """This host's default profiles and labels; no loosening from an archive that is not verified."""
    loosened = [name for name, loosens in LOOSENING if name in params and loosens(params[name])]
    if loosened and not trusted:
        raise ValidationError('the archive\'s container ran with less confinement than the default (%s), and the '
                              'archive is not verified: give integrity_key (the key it was exported with) to accept it'
                              % ', '.join('%s: %s' % (name, params[name]) for name in loosened))
    if params.get('apparmor_profile') in ('unconfined', 'runcible-default'):
        del params['apparmor_profile']  # this host's default: ours where AppArmor is enabled here
    if params.get('label') != 'disable':
        params.pop('label', None)       # this host's policy labels, with a level of this host


def _check_types(params: dict[str, Any], what: str) -> dict[str, Any]:
    """Types and choices of ``params`` exactly as Ansible checks a task's own options."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # pylint: disable=import-outside-toplevel
    from .api import argument_spec  # pylint: disable=import-outside-toplevel
    result = ArgumentSpecValidator(argument_spec()).validate(params)
    if result.error_messages:
        raise ValidationError('%s: %s; refusing it' % (what, '; '.join(result.error_messages)))
    return dict((key, value) for key, value in result.validated_parameters.items() if value is not None)


def imported_config(name: str, raw: object, overrides: dict[str, Any], runtime: str, store_root: str,
                    trusted: bool = False) -> dict[str, Any]:
    """The complete config of a container imported from a checkpoint archive whose manifest says ``raw``.

    Nothing of an archive is trusted: unknown options are refused; host paths (``rootfs``, bind
    ``mounts``) come only from the importing task (``overrides``), which must give them when the
    archive's container had them; an image is taken by digest from this host's image store only; the
    runtime is chosen by name (``runtime``: runc or crun, or the task's own choice); every value goes
    through the type checks and normalisers of a task's own options.

    Confinement: the profiles this host has by default (seccomp, AppArmor, an SELinux label and level
    of this host) replace the archive's; an archive may not loosen confinement (``privileged``,
    ``cap_add``, ``no_new_privileges: false``, no seccomp filter, SELinux labels off) unless it is
    ``trusted`` (its integrity digest verified with the task's key); ``devices`` and a seccomp profile
    file are host paths, which an archive never chooses.
    """
    what = "the archive's container config"
    if not isinstance(raw, dict):
        raise ValidationError('%s is not a dictionary: refusing it' % what)
    unknown = sorted(set(raw) - set(OPTIONS_BY_NAME) - set(IMPORTED_EXTRA))
    if unknown:
        raise ValidationError('%s has unknown options %s: refusing it' % (what, ', '.join(unknown)))
    params = dict((key, value) for key, value in raw.items() if key in OPTIONS_BY_NAME and value is not None)
    params.pop('runtime', None)
    # The variables its files gave on its host (the files are not here): recorded as they are, never read again.
    env_file = params.pop('env_file', None) or {}
    if not isinstance(env_file, dict):
        raise ValidationError('%s has env_file %r, not the variables of its files: refusing it' % (what, env_file))
    from .._runtime.parsers import string_dict  # pylint: disable=import-outside-toplevel
    env_file = string_dict(env_file, 'env_file') or {}
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
        params['image'] = split_normalised(str(params['image']))[1]
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
    _host_paths(params)
    params.update(overrides)
    params['runtime'] = runtime
    params = _check_types(params, what)
    _confinement(params, trusted)  # on the typed values ("yes" is True by now)
    from .api import complete, normalise  # pylint: disable=import-outside-toplevel
    images = ContainerImages(store_root, 'never')
    context = Context(name, store_root, images=images)
    given = normalise(params, context)
    config = complete(given, context)
    images.complete(config, given, name=name)
    config['env_file'] = env_file
    return config
