# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image stage of the container options: ``image`` and what a container takes from its image.

The runtime's image modules (``_runtime/image_refs.py``, ``image_sources.py``, ``image_store.py``) are
imported only when a task names an image.

The value of ``image`` is ``<canonical reference>@<manifest digest>``; two values are the same image
when their digests are equal. A container from an image records ``image_config``: the digest, its
layers (diff_id hex digits, bottom first) and the defaults its config gives (entrypoint, cmd, env,
workdir, user, labels, exposed ports, stop signal), so that it keeps working, and can be recreated,
even after the image itself was removed with force.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from .._runtime.errors import RuncibleError, ValidationError
from .base import PULL_POLICIES
from .table import OPTIONS_BY_NAME
from .._runtime.parsers import is_number, resolve_user

if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Iterator

    from .._runtime.image_refs import Reference
    from .._runtime.image_sources import Resolved
    from .._runtime.image_store import ImageStore
    from .base import Context

# The options an image gives a container the task does not set (the table's default when the image has none).
IMAGE_DEFAULTS = ('entrypoint', 'command', 'workdir', 'user', 'stop_signal')


def _image_refs() -> ModuleType:
    from .._runtime import image_refs  # pylint: disable=import-outside-toplevel
    return image_refs


def split_normalised(value: str | None) -> tuple[str | None, str | None]:
    """-> (reference text, manifest digest) of a normalised ``image`` value (or (None, None))."""
    return _image_refs().split_normalised(value)


def same_image(wanted: str | None, actual: str | None) -> bool:
    """The container option ``image`` compares content: equal manifest digests are the same image."""
    return split_normalised(wanted)[1] == split_normalised(actual)[1]


def map_image(spec: dict[str, Any], value: str | None, config: dict[str, Any]) -> None:
    """Spec mapper of the ``image`` option: an annotation naming the image and its digest."""
    if value:
        spec['annotations']['io.runcible.image'] = value


def image(value: str, context: Context) -> str:
    """The normaliser of ``image``: ``<canonical reference>@<manifest digest>`` (resolved, pulled if allowed)."""
    return context.container_images().normalise(value)


class ContainerImages(object):
    """The ``image`` option of one container task: resolve, pull when allowed, supply the image's defaults.

    A task validates its input twice, before and under the container lock; resolutions are cached so
    a registry is asked once. Pulls happen only inside ``session(apply=True)`` (under the container
    lock, never in check mode); the session holds the image store's gc lock shared, so the layers
    a new container is about to use cannot be collected under it.
    """

    def __init__(self, root: str, pull: str = 'missing', tls_verify: bool = True, auth_file: str | None = None) -> None:
        if pull not in PULL_POLICIES:
            raise ValidationError('pull: %r is not one of %s' % (pull, ', '.join(PULL_POLICIES)))
        self.root = root
        self.tls_verify = tls_verify
        self.auth_file = auth_file
        self._store: ImageStore | None = None
        self.pull = pull
        self.allow_pull = False
        self._resolved: dict[str, Resolved] = {}  # canonical reference -> what its source says
        self._gc_fd: int | None = None
        self._moved: list[str] = []  # digests whose tag a pull moved away
        self._defaults: dict[str, dict[str, Any]] = {}  # digest -> image_config()

    @property
    def store(self) -> ImageStore:
        if self._store is None:
            from .._runtime.image_store import ImageStore  # pylint: disable=import-outside-toplevel
            self._store = ImageStore(self.root, tls_verify=self.tls_verify, auth_file=self.auth_file)
        return self._store

    @contextlib.contextmanager
    def session(self, apply: bool) -> Iterator[ContainerImages]:
        self.allow_pull = apply
        try:
            yield self
        finally:
            self.allow_pull = False
            if self._gc_fd is not None:
                os.close(self._gc_fd)
                self._gc_fd = None
            if self._moved:
                moved, self._moved = self._moved, []
                with contextlib.suppress(RuncibleError, OSError):
                    self.store.prune_dangling(moved, blocking=False)

    # -- the option's normaliser ------------------------------------------------------------------
    def normalise(self, value: str) -> str:
        refs = _image_refs()
        reference = refs.parse_reference(value)
        return refs.join_normalised(reference, self._digest(reference))

    def _hold(self) -> None:
        if self.allow_pull and self._gc_fd is None:
            self.store._ensure_dirs()
            self._gc_fd = self.store.acquire('gc', shared=True)

    def _digest(self, reference: Reference) -> str:
        self._hold()
        index = self.store.load_index()
        local = self.store.find(reference, index)
        if reference.transport == 'local':
            if not local:
                raise ValidationError('image %s is not in the local image store (%s)' % (reference.digest, self.store.dir))
            return local
        if local and self.store.missing_layers(local, index):
            local = None  # its layers were deleted behind our back: pull it again, like a missing image
        if self.pull == 'never' or (self.pull == 'missing' and local):
            if not local:
                raise ValidationError('image %s is not in the local image store and pull is never: pull it first with '
                                      'runcible.oci.image, or use pull: missing' % reference.canonical)
            return local
        resolved = self._resolved.get(reference.canonical)
        if resolved is None:
            from .._runtime.image_sources import resolve  # pylint: disable=import-outside-toplevel
            resolved = resolve(reference, self.store, tls_verify=self.tls_verify, auth_file=self.auth_file)
            self._resolved[reference.canonical] = resolved
        if self.allow_pull and (resolved.digest not in index['images'] or local != resolved.digest):
            _record, previous, _pulled = self.store.pull(resolved)
            if previous:
                self._moved.append(previous)
        return resolved.digest

    # -- users ----------------------------------------------------------------------------------
    def resolve_user(self, value: object, image: str) -> str | None:
        """``user`` of a container from ``image``: names are looked up in the image's /etc/passwd."""
        user_db = self.user_db(image)
        if user_db is None and not self.allow_pull:
            text = str(value).strip()
            if not all(is_number(part) for part in text.split(':') if part):
                # Not pulled yet (check mode, or before the container lock): resolved once it is.
                return text
        return resolve_user(value, user_db)

    # -- defaults ---------------------------------------------------------------------------------
    def user_db(self, normalised: str) -> str | None:
        """The directory whose etc/passwd and etc/group resolve user names of the image, or None."""
        digest = split_normalised(normalised)[1]
        path = self.store.userdb(digest) if digest else None
        return path if path and os.path.isdir(path) else None

    def image_config(self, normalised: str) -> dict[str, Any]:
        """What a container of this image records: digest, layers and the config's defaults."""
        _reference, digest = split_normalised(normalised)
        if digest is None:
            raise ValidationError('image %s is not in the local image store' % normalised)
        if digest in self._defaults:
            return dict(self._defaults[digest])
        index = self.store.load_index()
        if digest in index['images']:
            config = self.store.image_config(digest, index)
        else:
            resolved = [r for r in self._resolved.values() if r.digest == digest]
            if not resolved:
                raise ValidationError('image %s is not in the local image store' % normalised)
            config = resolved[0].config  # check mode: the image is not pulled yet
        from .._runtime.image_sources import config_defaults  # pylint: disable=import-outside-toplevel
        defaults = config_defaults(config)
        defaults['digest'] = digest
        defaults['layers'] = [_image_refs().hex_of(diff_id) for diff_id in config['rootfs']['diff_ids']]
        user_db = self.user_db(normalised)
        if defaults['user']:
            try:
                defaults['user'] = resolve_user(defaults['user'], user_db)
            except ValidationError:
                if user_db is not None:
                    raise ValidationError('the image %s runs as user %r, which is not in its /etc/passwd; set user'
                                          % (normalised, defaults['user']))
        else:
            defaults['user'] = '0:0'
        if defaults['stop_signal']:
            from .._runtime.parsers import parse_signal  # pylint: disable=import-outside-toplevel
            try:
                defaults['stop_signal'] = parse_signal(defaults['stop_signal'], 'the image\'s StopSignal')
            except ValidationError:
                defaults['stop_signal'] = None
        self._defaults[digest] = defaults
        return dict(defaults)

    def complete(self, config: dict[str, Any], given: dict[str, Any], previous: dict[str, Any] | None = None,
                 name: str | None = None) -> dict[str, Any]:
        """Fill the config of a new container (or of a recreated one, ``previous`` its old config).

        Options not given take the image's values (Entrypoint, Cmd, WorkingDir, User, StopSignal) --
        on a recreate only where the old value was the old image's: a value the task once set stays.
        Env and labels are not merged here: the spec builder lays the task's over the image's, so the
        task's own dicts stay comparable.
        """
        previous = previous or {}
        old = previous.get('image_config') or {}
        if 'rootfs' in given:
            config['image'] = None
        if not config.get('image'):
            config.pop('image_config', None)
            config.pop('image_volumes', None)
            if old:
                for option in IMAGE_DEFAULTS:
                    if option not in given and previous.get(option) == _derived(option, old, given):
                        config[option] = OPTIONS_BY_NAME[option].default_value()
                if not config.get('command'):
                    raise ValidationError('command: the container leaves its image for rootfs, so it needs a command')
            return config
        config['rootfs'] = None
        if config.get('rootfs_mode') == 'direct':
            raise ValidationError('rootfs_mode: direct needs rootfs; a container from an image uses an overlay')
        if old and old.get('digest') == split_normalised(config['image'])[1]:
            new = old
        else:
            new = self.image_config(config['image'])
        config['image_config'] = new
        for option in IMAGE_DEFAULTS:
            if option in given:
                continue
            if not old or previous.get(option) == _derived(option, old, given):
                config[option] = _derived(option, new, given)
        if not list(config.get('entrypoint') or []) + list(config.get('command') or []):
            raise ValidationError('image %s has no Entrypoint or Cmd: give command' % config['image'])
        if 'user' not in given:
            from .._runtime.parsers import supplementary_gids  # pylint: disable=import-outside-toplevel
            config['user_groups'] = supplementary_gids(config.get('user') or '0:0', self.user_db(config['image']))
        if name is not None:
            config['image_volumes'] = image_volumes(config, name, self.root)
        return config


def image_volumes(config: dict[str, Any], name: str, root: str) -> list[dict[str, str]]:
    """The image's declared Volumes not covered by a mount or tmpfs of the task: each a volume of its own,
    named after the container and the path, so a recreated container (a new image, a changed option) gets
    the same data back. Only ``state: absent`` with ``keep_volumes: false`` removes them."""
    from .._runtime import volumes  # pylint: disable=import-outside-toplevel
    covered = set(mount['target'] for mount in config.get('mounts') or []) | set(config.get('tmpfs') or {})
    result = []
    for path in (config.get('image_config') or {}).get('volumes') or []:
        if path in covered:
            continue
        volume = volumes.anonymous_name(name, path)
        result.append({'target': path, 'source': volume, 'path': volumes.mountpoint(root, volume)})
    return result


def _derived(option: str, image_config: dict[str, Any], given: dict[str, Any]) -> list[str] | str | int:
    """The value a container takes from ``image_config`` for an option the task does not give."""
    if option == 'entrypoint':
        return list(image_config.get('entrypoint') or [])
    if option == 'command':
        # As docker: a task that sets the entrypoint drops the image's Cmd.
        return [] if 'entrypoint' in given else list(image_config.get('cmd') or [])
    if option in ('workdir', 'user', 'stop_signal'):
        return image_config.get(option) or OPTIONS_BY_NAME[option].default_value()
    raise KeyError(option)


__all__ = ['ContainerImages', 'PULL_POLICIES', 'image', 'map_image', 'same_image', 'split_normalised']
