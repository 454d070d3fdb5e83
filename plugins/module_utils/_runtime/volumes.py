# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named volumes: directories of the store that outlive containers (driver ``local``, as docker's and podman's).

Layout::

    root/volumes/NAME/volume.json   the record: name, driver, labels, options, created, mountpoint
    root/volumes/NAME/_data         the data: a plain directory, or the mount point of the volume's file system
    root/locks/.volumes.lock        one lock for every change of the volumes of this root

A container gets a volume by bind-mounting its ``_data`` (``mountpoint()``); ``ensure_mounted()`` mounts a volume
with mount options (a tmpfs, a device, a bind of a host directory) on the host first, also after a reboot.

Safety: the directories are made and opened one component at a time, relative to the previous one's fd, with
``O_NOFOLLOW``, and mounts go onto ``/proc/self/fd/N`` of the opened ``_data``: a symbolic link planted at
``volumes``, ``NAME`` or ``_data`` is refused, never followed. Every record write is atomic (a temp file created
exclusively with mode 0600, fsync, rename, fsync of the directory) and happens under the volumes lock. A removal
unmounts without ``MNT_DETACH`` (a busy mount fails the removal) and deletes nothing while anything is still
mounted below the volume's directory.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import threading
from typing import TYPE_CHECKING

from .errors import RuncibleError, ValidationError
from .files import locked as _locked_file
from .volume_options import (FLAG_WORDS, MS_BIND, MS_NODEV, MS_NOSUID, MS_REC, MS_REMOUNT, UMOUNT_NOFOLLOW,
                             normalise_options, split_o)

if TYPE_CHECKING:
    from typing import Any, Iterator

    Volume = dict[str, Any]

VOLUME_NAME = r'[a-zA-Z0-9][a-zA-Z0-9_.-]*'
NAME_MAX = 128
DRIVER = 'local'
RECORD = 'volume.json'
DATA = '_data'
RECORD_VERSION = 1
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


# -- input ---------------------------------------------------------------------------------------------------------

def validate_volume_name(name: object) -> str:
    if not isinstance(name, str) or len(name) > NAME_MAX or not re.fullmatch(VOLUME_NAME, name):
        raise ValidationError('invalid volume name %r: use 1 to %d characters from [a-zA-Z0-9_.-], starting with a '
                              'letter or digit' % (name, NAME_MAX))
    return name


def normalise_labels(labels: object) -> dict[str, str]:
    """``labels`` -> {str: str} (numbers and booleans as Ansible hands them become strings)."""
    from .parsers import string_dict  # pylint: disable=import-outside-toplevel
    return string_dict(labels, 'labels') or {}


def label_filter(labels: object) -> dict[str, str | None]:
    """A filter of labels -> {key: value, or None for "any value"} (numbers and booleans as strings)."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise ValidationError('labels: expected a dictionary of label names and values, got a %s'
                              % type(labels).__name__)
    normalised: dict[str, str | None] = {}
    for key, value in labels.items():
        normalised[str(key)] = None if value is None else normalise_labels({key: value})[str(key)]
    return normalised


def has_labels(record: Volume, labels: dict[str, str | None] | None) -> bool:
    """Whether a volume record has every label of the filter ``labels`` (label_filter()'s)."""
    have = record.get('labels') or {}
    return all(key in have and (value is None or have[key] == value) for key, value in (labels or {}).items())


# -- paths and directories, never through a symbolic link ----------------------------------------------------------

def volumes_dir(root: str) -> str:
    if not isinstance(root, str) or not os.path.isabs(root):
        raise RuncibleError('root must be an absolute path (got %r)' % (root,))
    return os.path.join(os.path.normpath(root), 'volumes')


def mountpoint(root: str, name: str) -> str:
    """Host path of the volume's data directory (``root/volumes/NAME/_data``): what a container bind-mounts."""
    return os.path.join(volumes_dir(root), validate_volume_name(name), DATA)


def _open_dir(parent_fd: int, name: str, path: str, create: bool, mode: int = 0o700) -> int | None:
    """fd of directory ``name`` under ``parent_fd`` (made when ``create``), never through a link; None when absent."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, mode, dir_fd=parent_fd)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT and not create:
            return None
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise RuncibleError('%s is not a directory (a symbolic link or a file was put there): refusing to use '
                                'it; remove it' % path)
        raise RuncibleError('cannot open %s: %s' % (path, exc.strerror))


def _need(fd: int | None) -> int:
    """An fd _dirs() opened (made when asked to): None only where the directory is absent."""
    if fd is None:
        raise RuncibleError('a directory of the volumes store vanished while it was used: run the task again')
    return fd


@contextlib.contextmanager
def _dirs(root: str, name: str | None, create: bool = False, data: bool = True) -> Iterator[list[int | None]]:
    """[fd of root/volumes, of NAME, of NAME/_data] (None from the first absent or unasked one on); closed after."""
    base = volumes_dir(root)
    fds: list[int | None] = []
    try:
        if create:
            os.makedirs(os.path.dirname(base), mode=0o700, exist_ok=True)
        try:
            root_fd = os.open(os.path.dirname(base), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            root_fd = None
        if root_fd is not None:
            fds.append(root_fd)
            parts = [('volumes', base, 0o700)]
            if name is not None:
                parts.append((name, os.path.join(base, name), 0o700))
                if data:
                    parts.append((DATA, os.path.join(base, name, DATA), 0o755))
            for part, path, mode in parts:
                fd = _open_dir(_need(fds[-1]), part, path, create, mode)
                if fd is None:
                    break
                fds.append(fd)
        yield (fds[1:] + [None, None, None])[:3]
    finally:
        for fd in fds:
            if fd is not None:
                os.close(fd)


class _Held(threading.local):
    """Lock path -> depth, of the volume locks this *thread* holds (flock()s on fresh open files exclude the
    other threads of the process as they exclude other processes: a deployment runs container tasks on threads)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth: dict[str, int] = {}


_held = _Held()


@contextlib.contextmanager
def locked(root: str, timeout: float = 300.0) -> Iterator[None]:
    """``with locked(root):`` the lock of every change of this root's volumes, ``root/locks/.volumes.lock`` (no
    container or volume name starts with a dot). Reentrant within a thread: a caller may hold it across a check
    and the calls of this module it makes (a volume task's compare and create, a container's "the volume exists"
    and its record write). Creates the lock's directory: not for check mode."""
    path = os.path.join(os.path.dirname(volumes_dir(root)), 'locks', '.volumes.lock')
    held = _held.depth
    if held.get(path):
        held[path] += 1
        try:
            yield
        finally:
            held[path] -= 1
        return
    with _locked_file(path, 'the lock of the volumes under %s' % root, timeout=timeout):
        held[path] = 1
        try:
            yield
        finally:
            del held[path]


# -- records -------------------------------------------------------------------------------------------------------

def _read_record(dir_fd: int, path: str) -> Volume | None:
    try:
        fd = os.open(RECORD, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RuncibleError('cannot read %s: %s' % (path, exc.strerror))
    with os.fdopen(fd, 'rb') as handle:
        try:
            record = json.loads(handle.read().decode('utf-8'))
        except ValueError as exc:
            raise RuncibleError('the record %s is corrupt (%s): remove the volume directory to forget it' % (path, exc))
    if not isinstance(record, dict) or not isinstance(record.get('name'), str):
        raise RuncibleError('the record %s is corrupt (no name): remove the volume directory to forget it' % path)
    return record


def _write_record(dir_fd: int, record: Volume) -> None:
    """Atomic: a temp file made exclusively, 0600, without following links; fsync; rename; fsync of the directory."""
    data = json.dumps(record, indent=1, sort_keys=True).encode('utf-8')
    temp = '.%s.tmp-%d' % (RECORD, os.getpid())
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp, dir_fd=dir_fd)  # a leftover of a killed writer (we hold the lock)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temp, RECORD, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)


def get(root: str, name: str) -> Volume | None:
    """The record of volume ``name`` (a dict), or None when there is none. Reads without a lock (records are replaced
    atomically); a symbolic link in place of a directory raises RuncibleError."""
    validate_volume_name(name)
    with _dirs(root, name, data=False) as (_base_fd, volume_fd, _data_fd):
        if volume_fd is None:
            return None
        return _read_record(volume_fd, os.path.join(volumes_dir(root), name, RECORD))


def list_volumes(root: str, labels: dict[str, Any] | None = None) -> list[Volume]:
    """Every volume's record, sorted by name; with ``labels``, those having each label (a None value: any value)."""
    wanted = label_filter(labels)
    try:
        names = sorted(os.listdir(volumes_dir(root)))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if len(name) > NAME_MAX or not re.fullmatch(VOLUME_NAME, name) or \
                not stat.S_ISDIR(os.lstat(os.path.join(volumes_dir(root), name)).st_mode):
            continue  # leftovers of removals (.removing-*), the lock, anything not ours
        with contextlib.suppress(RuncibleError):
            record = get(root, name)
            if record is not None and has_labels(record, wanted):
                found.append(record)
    return found


def users(root: str, name: str) -> list[str]:
    """Names of the containers of this root's store whose record config mounts volume ``name``
    (an entry ``{'type': 'volume', 'source': NAME, ...}`` of ``config['mounts']``, or of ``image_volumes``)."""
    from .store import DEFAULT_RUN_ROOT, Store  # pylint: disable=import-outside-toplevel
    store = Store(os.path.normpath(root), DEFAULT_RUN_ROOT)  # records only: run_root is not read
    found = []
    for container in store.names():
        try:
            record = store.load(container)
        except RuncibleError:
            continue
        mounts = (record['config'] or {}).get('mounts') if record is not None else None
        # Its mounts, and the volumes of its image's declared Volumes (``image_volumes``).
        image_volumes = (record['config'] or {}).get('image_volumes') if record is not None else None
        if isinstance(mounts, list) and any(isinstance(mount, dict) and mount.get('type') == 'volume'
                                            and mount.get('source') == name for mount in mounts) or \
                isinstance(image_volumes, list) and any(isinstance(volume, dict) and volume.get('source') == name
                                                        for volume in image_volumes):
            found.append(container)
    return found


# -- mounts --------------------------------------------------------------------------------------------------------

def _mount_points() -> list[str]:
    """Every mount point of this mount namespace (/proc/self/mountinfo's 5th field, unescaped)."""
    points = []
    with open('/proc/self/mountinfo', 'rb') as handle:
        for line in handle:
            fields = line.split(b' ', 5)
            if len(fields) > 4:
                text = fields[4].decode('utf-8', 'surrogateescape')
                points.append(re.sub(r'\\([0-7]{3})', lambda match: chr(int(match.group(1), 8)), text))
    return points


def _real_volume_dir(root: str, name: str) -> str:
    # root may be reached through a link of the administrator's (/var/lib -> /srv); below it none is followed.
    return os.path.join(os.path.realpath(os.path.dirname(volumes_dir(root))), 'volumes', name)


def is_mounted(root: str, name: str) -> bool:
    """Whether something is mounted on the volume's ``_data``."""
    return os.path.join(_real_volume_dir(root, validate_volume_name(name)), DATA) in _mount_points()


def _mounts_below(path: str) -> list[str]:
    return [point for point in _mount_points() if point == path or point.startswith(path + '/')]


def _mount(options: dict[str, str], volume_fd: int, data_fd: int, where: str) -> None:
    """Mount the volume's file system on the opened ``_data`` (through /proc/self/fd: no path is resolved again).

    The new mount is then reached as ``_data`` under the fd of its parent: the fd of ``_data`` is the directory
    below the mount; ``_data`` cannot be swapped meanwhile (a mount point is not renamed; we hold the lock)."""
    from . import libc  # pylint: disable=import-outside-toplevel
    words = split_o(options.get('o', ''))
    # No set-uid program or device node of the volume counts unless asked (suid, dev): its files are containers'.
    flags = (0 if 'suid' in words else MS_NOSUID) | (0 if 'dev' in words else MS_NODEV)
    data = []
    for word in words:
        key, has_value, _value = word.partition('=')
        if has_value:
            data.append(word)
        else:
            flags |= FLAG_WORDS[key]
    target = '/proc/self/fd/%d' % data_fd
    mounted = '/proc/self/fd/%d/%s' % (volume_fd, DATA)
    fs_type = options['type']
    try:
        if flags & MS_BIND:
            libc.mount(options['device'], target, None, flags & (MS_BIND | MS_REC), None)
            rest = flags & ~(MS_BIND | MS_REC)
            if rest:
                try:
                    libc.mount(None, mounted, None, MS_REMOUNT | MS_BIND | rest, None)
                except OSError:
                    _unmount(mounted, where)
                    raise
        else:
            libc.mount(options.get('device') or fs_type, target, fs_type, flags, ','.join(data) or None)
    except OSError as exc:
        raise RuncibleError('cannot mount the %s volume at %s (options %s): %s'
                            % (fs_type, where, json.dumps(options, sort_keys=True), exc.strerror))


def _unmount(target: str, where: str) -> None:
    """umount(2) without MNT_DETACH: a busy mount fails with a message, it is never hidden."""
    from . import libc  # pylint: disable=import-outside-toplevel
    try:
        libc.umount2(target, UMOUNT_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise RuncibleError('volume mount %s is busy: a process on the host uses it (`fuser -vm %s` shows which); '
                                'stop it, then try again' % (where, where))
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point (any more)
            raise RuncibleError('cannot unmount %s: %s' % (where, exc.strerror))


def _mount_if_needed(root: str, record: Volume, volume_fd: int, data_fd: int) -> bool:
    options = record.get('options') or {}
    if not options.get('type') or is_mounted(root, record['name']):
        return False
    _mount(options, volume_fd, data_fd, mountpoint(root, record['name']))
    return True


def ensure_mounted(root: str, name: str) -> str:
    """Host path of the volume's ``_data``, its file system mounted there first when the volume has mount options
    and it is not mounted (idempotent: /proc/self/mountinfo says). For a container's start, also after a reboot.
    A volume that does not exist raises RuncibleError."""
    validate_volume_name(name)
    with locked(root), _dirs(root, name) as (_base_fd, volume_fd, data_fd):
        record_path = os.path.join(volumes_dir(root), name, RECORD)
        record = _read_record(volume_fd, record_path) if volume_fd is not None else None
        if record is None:
            raise RuncibleError('volume %s does not exist under %s: create it with runcible.oci.volume'
                                % (name, volumes_dir(root)))
        if data_fd is None:  # a plain volume's data directory removed behind our back: made again, empty
            os.mkdir(DATA, 0o755, dir_fd=volume_fd)
            new_fd = _need(_open_dir(_need(volume_fd), DATA, mountpoint(root, name), False))
            try:
                _mount_if_needed(root, record, _need(volume_fd), new_fd)
            finally:
                os.close(new_fd)
        else:
            _mount_if_needed(root, record, _need(volume_fd), data_fd)
    return mountpoint(root, name)


# -- create, remove ------------------------------------------------------------------------------------------------

def _discard(root: str, name: str, base_fd: int) -> None:
    """Remove directory NAME (under the lock, no record or a record being removed): unmount ``_data`` first, refuse
    while anything stays mounted below it; renamed away first, so that a crash never leaves half a volume."""
    where = os.path.join(_real_volume_dir(root, name), DATA)
    if where in _mount_points():
        with _dirs(root, name, data=False) as (_base, volume_fd, _data):
            # By its parent's fd and without following a link at _data (an fd of _data itself would keep it busy).
            _unmount(os.path.join('/proc/self/fd', str(_need(volume_fd)), DATA), where)
    left = _mounts_below(_real_volume_dir(root, name))
    if left:
        raise RuncibleError('%s still has mounts below it (%s): unmount them, then try again; nothing was deleted'
                            % (os.path.join(volumes_dir(root), name), ', '.join(left)))
    _sweep(root)
    doomed = '.removing-%s-%d' % (name, os.getpid())
    os.rename(name, doomed, src_dir_fd=base_fd, dst_dir_fd=base_fd)
    os.fsync(base_fd)
    _sweep(root)


def _sweep(root: str) -> None:
    """Delete the renamed-away directories of removals (a killed removal may have left one)."""
    import shutil  # pylint: disable=import-outside-toplevel
    base = volumes_dir(root)
    for entry in os.listdir(base):
        path = os.path.join(base, entry)
        if entry.startswith('.removing-') and not os.path.islink(path) and not _mounts_below(os.path.realpath(path)):
            shutil.rmtree(path, ignore_errors=True)


def create(root: str, name: str, labels: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> Volume:
    """Create volume ``name`` -> its record. Mounts its file system when it has mount options (so a bad option or
    device fails here, and what was made is removed again). Raises ValidationError when it exists."""
    name = validate_volume_name(name)
    labels = normalise_labels(labels)
    options = normalise_options(options)
    with locked(root):
        return _create_locked(root, name, labels, options)


def _create_locked(root: str, name: str, labels: dict[str, str], options: dict[str, str]) -> Volume:
    with _dirs(root, None, create=True) as (base_fd, _volume, _data):
        volume_fd = _open_dir(_need(base_fd), name, os.path.join(volumes_dir(root), name), False)
        if volume_fd is not None:
            try:
                existing = _read_record(volume_fd, os.path.join(volumes_dir(root), name, RECORD))
            finally:
                os.close(volume_fd)
            if existing is not None:
                raise ValidationError('volume %s exists already' % name)
            _discard(root, name, _need(base_fd))  # a killed create's leftover
    record = {'version': RECORD_VERSION, 'name': name, 'driver': DRIVER, 'labels': labels, 'options': options,
              'created': _utc_now(), 'mountpoint': mountpoint(root, name)}
    try:
        with _dirs(root, name, create=True) as (_base_fd, volume_fd, data_fd):
            _mount_if_needed(root, record, _need(volume_fd), _need(data_fd))
            _write_record(_need(volume_fd), record)
    except BaseException:
        with contextlib.suppress(RuncibleError, OSError), _dirs(root, None) as (base_fd, _volume, _data):
            if base_fd is not None:
                _discard(root, name, base_fd)
        raise
    return record


def get_or_create(root: str, name: str, labels: dict[str, Any] | None = None,
                  options: dict[str, Any] | None = None) -> tuple[Volume, bool]:
    """-> (record, True when it was created now): the volume ``name`` as it is, or created with these labels and
    options (a container's ``mounts`` naming a volume that is not there yet, an image's declared volume)."""
    name = validate_volume_name(name)
    labels = normalise_labels(labels)
    options = normalise_options(options)
    with locked(root):
        existing = get(root, name)
        if existing is not None:
            return existing, False
        return _create_locked(root, name, labels, options), True


def remove(root: str, name: str) -> bool:
    """Remove volume ``name`` and its data -> False when it did not exist. Fails (ValidationError) while containers
    of the store use it, and (RuncibleError) while its mount is busy; a bind volume's host directory is kept."""
    validate_volume_name(name)
    with locked(root):
        if get(root, name) is None:
            return False
        in_use = users(root, name)
        if in_use:
            raise ValidationError('volume %s is used by container%s %s: remove %s first (its data would be lost)'
                                  % (name, 's' if len(in_use) > 1 else '', ', '.join(in_use),
                                     'them' if len(in_use) > 1 else 'it'))
        with _dirs(root, None) as (base_fd, _volume, _data):
            _discard(root, name, _need(base_fd))
    return True


def _utc_now() -> str:
    from .store import utc_iso  # pylint: disable=import-outside-toplevel
    return utc_iso()


def anonymous_name(container: str, path: str) -> str:
    """The volume of an image's declared Volume ``path`` of container ``container``: the same for the same
    name and path, so a recreated container gets its data back (at most NAME_MAX characters)."""
    import hashlib  # pylint: disable=import-outside-toplevel
    digest = hashlib.sha256(('%s\0%s' % (container, path)).encode('utf-8', 'surrogateescape')).hexdigest()[:16]
    return '%s-%s' % (container[:NAME_MAX - 17], digest)


def prepare_for(root: str, record: Any, rootfs: str) -> None:
    """The volumes of a container's mounts and its image's declared ones, before its launch: made on first use (an
    image volume gets what the image has at its path), mounted when they have mount options (a reboot unmounts
    them), so each data directory is there to bind. Named volumes are the user's; image volumes carry the
    container's name (``keep_volumes: false`` with ``state: absent`` finds them by it)."""
    config = record['config']
    wanted: list[tuple[str, str | None, dict[str, str] | None]] = [
        (mount['source'], None, None) for mount in config.get('mounts') or [] if mount.get('type') == 'volume']
    for volume in config.get('image_volumes') or []:
        wanted.append((volume['source'], volume['target'],
                       {'io.runcible.container': record['name'], 'io.runcible.path': volume['target']}))
    for name, path, volume_labels in wanted:
        _record, created = get_or_create(root, name, labels=volume_labels)
        data_dir = ensure_mounted(root, name)
        if path is not None:
            _fill(root, name, path, data_dir, rootfs, record['name'], created)


def _fill(root: str, name: str, path: str, data_dir: str, rootfs: str, container: str, created: bool) -> None:
    """A new image volume gets what the image has at ``path``. A marker says the copy is under way: a copy that
    failed (a full disk, a killed task) is redone from an empty volume at the next start, never used half done."""
    from .copy_up import copy_up, empty_dir  # pylint: disable=import-outside-toplevel
    marker = os.path.join(volumes_dir(root), name, '.filling')
    if not created and not os.path.lexists(marker):
        return
    try:
        if created:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        else:
            empty_dir(data_dir)
        copy_up(rootfs, path, data_dir)
        os.unlink(marker)
    except OSError as exc:
        raise RuncibleError('cannot copy what the image of container %s has at %s into its volume %s: %s (the next '
                            'start copies it again)' % (container, path, name, exc.strerror or exc))
