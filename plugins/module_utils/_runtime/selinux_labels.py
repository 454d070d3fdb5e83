# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SELinux labels of containers: the policy's container contexts, one unique MCS level each, relabelling.

On a host with SELinux enabled (selinuxfs mounted) every container gets a process label and a
mount label: the policy's container contexts (its ``lxc_contexts`` file, as podman reads it:
``container_t`` and ``container_file_t`` in the reference policy and Fedora's container-selinux),
with an MCS level ``s0:cX,cY`` that no other container of the store has. Two containers then
cannot touch each other's files or processes even with the same type.

The levels are allocated in ``root/selinux/levels.json`` under ``root/locks/selinux-levels.lock``
and released when the container is removed. An allocation whose container never got a record (a
task killed between the two) is taken back by a later allocation once it is older than
:data:`ALLOCATION_GRACE` (younger ones may belong to a task creating its container right now).

The libselinux bindings (``selinux``, Debian's python3-selinux) are imported only on an SELinux
host: a host without SELinux never needs them.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import traceback
from typing import TYPE_CHECKING

from .errors import MissingLibraryError, RuncibleError, ValidationError
from .files import atomic_write, locked

if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Callable, Iterable

SELINUXFS = '/sys/fs/selinux'
CATEGORIES = 1024  # c0..c1023, the reference policy's MCS categories
ALLOCATION_GRACE = 600.0
DEFAULT_PROCESS = 'system_u:system_r:container_t:s0'
DEFAULT_FILE = 'system_u:object_r:container_file_t:s0'
# When the loaded policy lacks the types its lxc_contexts names (Debian's reference policy ships the
# file but not the container module): older Fedora names, then sVirt's confined guest types (the virt
# module: MCS-separated, which Debian's policy has).
FALLBACK_CONTEXTS = (
    ('system_u:system_r:svirt_lxc_net_t:s0', 'system_u:object_r:svirt_sandbox_file_t:s0'),
    ('system_u:system_r:svirt_t:s0', 'system_u:object_r:svirt_image_t:s0'),
)
PARTS = ('user', 'role', 'type', 'level')
# Never relabelled for a z/Z mount (as podman, and stricter): the host's own directories, anything below
# its system trees, a home directory or its hidden (dot) directories.
SYSTEM_PATHS = frozenset(('/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/media', '/mnt',
                          '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/var',
                          '/var/lib', '/var/log', '/var/tmp'))
SYSTEM_TREES = ('/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/proc', '/root', '/sbin', '/sys', '/usr')


def enabled(selinuxfs: str | None = None) -> bool:
    """SELinux is the host's LSM (selinuxfs is mounted): no bindings needed to know."""
    return os.path.exists(os.path.join(selinuxfs or SELINUXFS, 'enforce'))


def bindings() -> ModuleType:
    try:
        import selinux  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise MissingLibraryError('selinux', 'to label containers on this SELinux host (Debian: python3-selinux; '
                                  'or give label: disable)', traceback.format_exc())
    return selinux


def split_context(context: str) -> dict[str, str]:
    """``user:role:type:level`` (the level may hold colons) -> its parts."""
    pieces = context.split(':', 3)
    if len(pieces) < 3:
        raise ValidationError('%r is not an SELinux context (user:role:type[:level])' % context)
    return dict(zip(PARTS, pieces + ([''] if len(pieces) == 3 else [])))


def join_context(parts: dict[str, str]) -> str:
    return ':'.join(parts[name] for name in PARTS if parts.get(name))


def container_contexts(lxc_contexts: str | None = None, valid: Callable[[str], bool] | None = None) -> tuple[str, str]:
    """(process, file) contexts for containers: the policy's lxc_contexts, else the first pair it knows.

    ``valid(context)``: does the loaded policy know it (default: libselinux's security_check_context).
    """
    valid = valid or _valid_context
    named = _lxc_contexts(lxc_contexts or bindings().selinux_lxc_contexts_path())
    for pair in (named,) + FALLBACK_CONTEXTS:
        if valid(pair[0]) and valid(pair[1]):
            return pair
    raise ValidationError('label: the loaded SELinux policy knows neither the container types its lxc_contexts names (%s, '
                          '%s) nor %s: install a policy with container types (container-selinux), or give label '
                          'with type and file_type, or label: disable'
                          % (named[0], named[1], ', '.join(pair[0] for pair in FALLBACK_CONTEXTS)))


def _valid_context(context: str) -> bool:
    try:
        return bool(bindings().security_check_context(context) == 0)
    except OSError:
        return False


def _lxc_contexts(path: str) -> tuple[str, str]:
    found: dict[str, str] = {}
    try:
        with open(path) as handle:
            for line in handle:
                key, sep, value = line.partition('=')
                if sep:
                    found[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return found.get('process') or DEFAULT_PROCESS, found.get('file') or DEFAULT_FILE


def labels_for(parts: dict[str, str], level: str, contexts: tuple[str, str]) -> dict[str, str]:
    """The process and mount labels of a container: the policy's contexts, the task's parts, ``level``."""
    process = split_context(contexts[0])
    mount = split_context(contexts[1])
    for name in ('user', 'role', 'type'):
        if parts.get(name):
            process[name] = parts[name]
    if parts.get('file_type'):
        mount['type'] = parts['file_type']
    process['level'] = mount['level'] = level
    return {'process': join_context(process), 'mount': join_context(mount)}


def check_labels(labels: dict[str, str], valid: Callable[[str], bool] | None = None) -> None:
    """Both labels are contexts the loaded policy knows (else the runtime would fail with EINVAL)."""
    for kind in ('process', 'mount'):
        if not (valid or _valid_context)(labels[kind]):
            raise ValidationError('label: the %s label %s is not a context the loaded SELinux policy knows: check the '
                                  'type and level given' % (kind, labels[kind]))


class LevelAllocator(object):
    """Unique MCS levels for the containers of one store (``root``)."""

    def __init__(self, root: str, clock: Callable[[], float] = time.time) -> None:
        self.path = os.path.join(root, 'selinux', 'levels.json')
        self.lock_path = os.path.join(root, 'locks', 'selinux-levels.lock')
        self.clock = clock

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.path) as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RuncibleError('cannot read the SELinux level allocations %s: %s; remove it to start over (levels of '
                                'running containers are then reused)' % (self.path, exc))
        return dict((level, entry) for level, entry in data.items() if isinstance(entry, dict))

    def _save(self, levels: dict[str, dict[str, Any]]) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        atomic_write(self.path, json.dumps(levels, indent=1, sort_keys=True), mode=0o600)

    def allocate(self, container_id: str, known_ids: Iterable[str], randbelow: Callable[[int], int] = secrets.randbelow,
                 taken: Iterable[str] = ()) -> str:
        """A level no other container has; recorded for ``container_id``.

        ``known_ids``: the ids with a record now; ``taken``: levels in use besides the allocations (levels
        the tasks pinned).
        """
        known = set(known_ids) | {container_id}
        pinned = set(taken)
        with locked(self.lock_path, 'the SELinux level allocations'):
            levels = self._load()
            now = self.clock()
            for level, entry in list(levels.items()):
                if entry.get('id') not in known and now - float(entry.get('at') or 0) > ALLOCATION_GRACE:
                    del levels[level]  # its task died before its container got a record
            for level, entry in levels.items():
                if entry.get('id') == container_id:
                    return level
            if len(levels) >= CATEGORIES * (CATEGORIES - 1) // 2:
                raise RuncibleError('no free SELinux MCS level left for a new container')
            while True:
                first, second = sorted((randbelow(CATEGORIES), randbelow(CATEGORIES)))
                level = 's0:c%d,c%d' % (first, second)
                if first != second and level not in levels and level not in pinned:
                    break
            levels[level] = {'id': container_id, 'at': now}
            self._save(levels)
            return level

    def release(self, container_id: str) -> bool:
        if not os.path.exists(self.path):
            return False
        with locked(self.lock_path, 'the SELinux level allocations'):
            levels = self._load()
            kept = dict((level, entry) for level, entry in levels.items() if entry.get('id') != container_id)
            if kept == levels:
                return False
            self._save(kept)
            return True

    def allocated(self) -> dict[str, str]:
        """{level: container id} (for tests and container_info)."""
        return dict((level, str(entry.get('id'))) for level, entry in self._load().items())


def check_relabel_source(path: str, forbidden: Iterable[str] = ()) -> None:
    """A z/Z source is never a system directory or below one, a home directory or its dot directories,
    nor inside ``forbidden`` (the store's own directories)."""
    normalised = os.path.normpath(path)
    parts = normalised.split('/')
    refused = (normalised in SYSTEM_PATHS or any(normalised.startswith(tree + '/') for tree in SYSTEM_TREES)
               or (len(parts) >= 3 and parts[1] == 'home' and (len(parts) == 3 or parts[3].startswith('.')))
               or any(normalised == top or normalised.startswith(top.rstrip('/') + '/') for top in forbidden))
    if refused:
        raise ValidationError('mounts: %s cannot be relabelled (z/Z) for a container: it is a system directory, a home '
                              'directory or the store\'s own; mount a directory of its own, or leave z/Z out' % path)


def relabel(path: str, context: str, forbidden: Iterable[str] = ()) -> None:
    """Give ``path`` and everything under it ``context``: links never followed, one file system only.

    The source is checked again here, resolved (a link put there since the task would lead elsewhere:
    refused). Nothing is done when its top has the label already.
    """
    selinux = bindings()
    if os.path.islink(path) or os.path.realpath(path) != os.path.normpath(path):
        raise RuncibleError('mounts: %s is or goes through a symbolic link now; refusing to relabel it' % path)
    check_relabel_source(path, forbidden)
    try:
        if selinux.lgetfilecon(path)[1] == context:
            return
    except OSError:
        pass
    try:
        device = os.lstat(path).st_dev
        selinux.lsetfilecon(path, context)
        for top, directories, files, top_fd in os.fwalk(path, follow_symlinks=False):
            if os.fstat(top_fd).st_dev != device:
                directories[:] = []
                continue
            for name in directories + files:
                selinux.lsetfilecon(os.path.join(top, name), context)
    except OSError as exc:
        raise RuncibleError('cannot relabel %s with %s: %s' % (path, context, exc.strerror or exc))


def shared_context(mount_label: str) -> str:
    """The ``z`` label: the container file type at ``s0`` (no categories), so every container may share it."""
    parts = split_context(mount_label)
    parts['level'] = 's0'
    return join_context(parts)


__all__ = ['enabled', 'bindings', 'container_contexts', 'labels_for', 'LevelAllocator', 'relabel', 'shared_context',
           'check_relabel_source', 'split_context']
