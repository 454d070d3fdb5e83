# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one ``runcible.oci.container_copy`` task does: a file into a container, or one out of it.

    params     -> direction, source, dest, owner, group, mode (validated; bad input raises here)
    container  -> its root: /proc/PID/root while a process lives (its mounts and volumes seen as it
                  sees them), else its root filesystem on the host (the overlay mounted for the task)
    dest       -> its directory opened inside that root (never left: inroot), the entry there compared
                  by content (sha256), owner and mode
    write      -> a temporary file made exclusively in that directory, fsync, chown, chmod, renamed over
                  the entry relative to the directory fd (skipped in check mode)
    result     -> changed, dest, checksum, size, uid, gid, mode, diff

``run(params, check_mode)`` is the Python API the module wraps. The task holds the container's lock
(so no task starts, stops or removes the container meanwhile, and a stopped container's overlay is
mounted by this task alone).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import stat

from ._runtime import inroot
from ._runtime.errors import RuncibleError, ValidationError
from ._runtime.host import process_alive
from ._runtime.parsers import is_number, resolve_user, validate_name
from ._runtime.store import Store
from ._task import common_argument_spec, with_defaults

MAX_DIFF_SIZE = 104448  # as Ansible's max_diff_size: larger files get no text in the diff
MAX_FETCH_SIZE = 64 << 20  # a file fetched out is read into memory, at most this much
FETCH_TIMEOUT = 60.0
CHUNK = 1 << 20
SYSTEM_TREES = ('/proc', '/sys', '/dev')
NEW_FILE_MODE = {'into': 0o644, 'out': 0o600}
PARENT_MODE = {'into': 0o755, 'out': 0o700}


def argument_spec():
    spec = dict(
        container=dict(type='str', required=True, aliases=['name']),
        src=dict(type='str'),
        content=dict(type='str', no_log=True),
        dest=dict(type='str', required=True),
        direction=dict(type='str', default='into', choices=['into', 'out']),
        owner=dict(type='str'),
        group=dict(type='str'),
        mode=dict(type='raw'),
        follow=dict(type='bool', default=False),
        parents=dict(type='bool', default=False),
    )
    spec.update(common_argument_spec())
    return spec


MUTUALLY_EXCLUSIVE = [('src', 'content')]
REQUIRED_ONE_OF = [('src', 'content')]


# -- input ------------------------------------------------------------------------------------------

def parse_mode(value):
    """``mode``: octal digits as a string (``'0644'``, ``'644'``) or a number (YAML's ``0644`` is 420) -> int."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError('mode: %r is not a file mode; give octal digits such as "0644"' % (value,))
    if isinstance(value, int):
        mode = value
    else:
        text = str(value).strip()
        if not text or any(char not in '01234567' for char in text):
            raise ValidationError('mode: %r is not a file mode in octal digits such as "0644" (symbolic modes '
                                  'like u+rw are not supported)' % (value,))
        mode = int(text, 8)
    if not 0 <= mode <= 0o7777:
        raise ValidationError('mode: %r is out of range (0000 to 7777 octal)' % (value,))
    return mode


def system_tree(path):
    """The system tree (/proc, /sys, /dev) ``path`` lies in, or None."""
    for tree in SYSTEM_TREES:
        if path == tree or path.startswith(tree + '/'):
            return tree
    return None


def container_path(value, option):
    """An absolute path of a file inside the container: no ``..`` (it would mean different things before
    and after a symlink), not a directory (a trailing ``/``), not under /proc, /sys or /dev. -> normalised."""
    text = str(value or '')
    if not text.startswith('/'):
        raise ValidationError('%s: %r is not an absolute path (it is a path inside the container)' % (option, value))
    if '\0' in text:
        raise ValidationError('%s: %r holds a NUL byte' % (option, value))
    parts = [part for part in text.split('/') if part not in ('', '.')]
    if '..' in parts:
        raise ValidationError('%s: %r holds "..": give the path without it' % (option, value))
    if not parts or text.endswith('/') or text.endswith('/.'):
        raise ValidationError('%s: %r names a directory; give the path of the file' % (option, value))
    path = '/' + '/'.join(parts)
    tree = system_tree(path)
    if tree:
        raise ValidationError('%s: %s is under %s, which the kernel (not the container\'s files) provides: refused'
                              % (option, path, tree))
    return path


def host_path(value, option):
    text = str(value or '')
    if not os.path.isabs(text) or text.endswith('/'):
        raise ValidationError('%s: %r must be the absolute path of a file on the managed node' % (option, value))
    return os.path.normpath(text)


def host_ids(owner, group):
    """``owner``/``group`` (names or numbers) on the managed node -> (uid or None, gid or None)."""
    import grp  # pylint: disable=import-outside-toplevel
    import pwd  # pylint: disable=import-outside-toplevel
    uid = gid = None
    if owner is not None:
        try:
            uid = int(owner) if is_number(owner) else pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise ValidationError('owner: %r is not a user of the managed node' % (owner,))
    if group is not None:
        try:
            gid = int(group) if is_number(group) else grp.getgrnam(group).gr_gid
        except KeyError:
            raise ValidationError('group: %r is not a group of the managed node' % (group,))
    return uid, gid


def container_ids(owner, group, root_fd):
    """``owner``/``group`` (names or numbers) in the container's /etc/passwd and /etc/group (read inside its
    root) -> (uid or None, gid or None)."""
    uid = gid = None
    try:
        if owner is not None:
            uid = int(owner) if is_number(owner) else int(resolve_user(owner, root_fd).split(':')[0])
        if group is not None:
            gid = int(group) if is_number(group) else int(resolve_user('0:' + group, root_fd).split(':')[1])
    except ValidationError as exc:
        option = 'owner' if uid is None and owner is not None else 'group'
        raise ValidationError('%s: %s' % (option, exc.msg[len('user: '):] if exc.msg.startswith('user: ') else exc.msg))
    return uid, gid


# -- what is written, what is there -------------------------------------------------------------------

class Source(object):
    """What is written: bytes in memory (``content``, a fetched file) or a file of the managed node (``src``)."""

    def __init__(self, data=None, path=None, secret=False):
        self.data = data
        self.path = path
        self.secret = secret  # content: never shown in a diff
        if data is not None:
            self.size = len(data)
            self.checksum = hashlib.sha256(data).hexdigest()
        else:
            self.size, self.checksum = self._hash_file()

    def _open(self):
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise ValidationError('src: cannot open %s on the managed node: %s' % (self.path, exc.strerror))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValidationError('src: %s is not a regular file' % self.path)
        return fd

    def _read(self):
        fd = self._open()
        try:
            while True:
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    return
                yield chunk
        finally:
            os.close(fd)

    def _hash_file(self):
        digest = hashlib.sha256()
        size = 0
        for chunk in self._read():
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()

    def chunks(self):
        """The bytes to write; a file that changed since it was hashed raises (the write is then abandoned)."""
        if self.data is not None:
            yield self.data
            return
        digest = hashlib.sha256()
        for chunk in self._read():
            digest.update(chunk)
            yield chunk
        if digest.hexdigest() != self.checksum:
            raise RuncibleError('src: %s changed while it was copied; nothing was written' % self.path)

    def text(self):
        """The text for a diff, or None (secret, too large, or not text)."""
        if self.secret or self.size > MAX_DIFF_SIZE:
            return None
        data = self.data if self.data is not None else b''.join(self._read())
        return _text(data)


def _text(data):
    if b'\0' in data:
        return None
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        return None


class Entry(object):
    """What ``name`` in an open directory is now: ``kind`` absent, file or link; a file's attributes."""

    def __init__(self, dir_fd, name, where):
        self.dir_fd = dir_fd
        self.name = name
        info = inroot.entry_at(dir_fd, name)
        self.kind = 'absent'
        self.uid = self.gid = self.mode = self.size = None
        if info is None:
            return
        if inroot.is_mount_point_at(dir_fd, name):
            raise RuncibleError('%s is a mount point (a file bind-mounted into the container): refused, as replacing '
                                'it would detach the mount; write to its source instead' % where)
        if stat.S_ISLNK(info.st_mode):
            self.kind = 'link'
        elif stat.S_ISREG(info.st_mode):
            self.kind = 'file'
            self.uid, self.gid, self.mode, self.size = info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), info.st_size
        else:
            raise RuncibleError('%s is %s, not a regular file: refused (only a file or a symbolic link is ever '
                                'replaced; give the path of the file)'
                                % (where, inroot._kind(info.st_mode)))  # pylint: disable=protected-access

    def same_content(self, source):
        """Does the file hold exactly ``source``'s bytes (same size, same sha256)?"""
        if self.kind != 'file' or self.size != source.size:
            return False
        return self._digest() == source.checksum

    def _digest(self):
        digest = hashlib.sha256()
        for chunk in self._read(self.size + 1):
            digest.update(chunk)
        return digest.hexdigest()

    def _read(self, limit):
        fd = inroot.open_regular_at(self.dir_fd, self.name)
        try:
            left = limit
            while left > 0:
                chunk = os.read(fd, min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk
        finally:
            os.close(fd)

    def text(self):
        if self.kind == 'absent':
            return ''
        if self.kind != 'file' or self.size > MAX_DIFF_SIZE:
            return None
        return _text(b''.join(self._read(MAX_DIFF_SIZE + 1)))

    def summary(self, checksum=None):
        if self.kind != 'file':
            return {'state': self.kind}
        return {'state': 'file', 'size': self.size, 'checksum': checksum, 'uid': self.uid, 'gid': self.gid,
                'mode': '%04o' % self.mode}


# -- the task ------------------------------------------------------------------------------------------

class CopyTask(object):
    def __init__(self, params, check_mode=False):
        """``params``: complete, as ``_task.with_defaults(argument_spec(), ...)`` gives them."""
        self.params = params
        self.check_mode = check_mode
        self.name = validate_name(params['container'])
        self.direction = params['direction']
        if self.direction not in ('into', 'out'):
            raise ValidationError('direction: %r must be into or out' % (self.direction,))
        if params.get('src') is not None and params.get('content') is not None:
            raise ValidationError('src and content are mutually exclusive: give the file one way')
        if params.get('src') is None and params.get('content') is None:
            raise ValidationError('one of src or content is required')
        if self.direction == 'into':
            self.dest = container_path(params['dest'], 'dest')
            self.src = host_path(params['src'], 'src') if params.get('src') is not None else None
        else:
            if params.get('content') is not None:
                raise ValidationError('content: only with direction=into; direction=out fetches src from the container')
            self.src = container_path(params['src'], 'src')
            self.dest = host_path(params['dest'], 'dest')
        self.mode = parse_mode(params.get('mode'))
        self.follow = bool(params['follow'])
        self.parents = bool(params['parents'])
        self.store = Store(params['root'], params['run_root'])

    def run(self):
        if self.store.load(self.name) is None:
            return self._absent()
        with self.store.lock(self.name):
            record, live = self.store.inspect(self.name)
            if record is None:
                return self._absent()
            if live['status'] == 'stopped':
                refuse_mounted_path(record, self.dest if self.direction == 'into' else self.src,
                                    'dest' if self.direction == 'into' else 'src')
            with container_root(self.store, record, live) as root_fd:
                if self.direction == 'into':
                    result = self._into(root_fd)
                else:
                    result = self._out(root_fd)
        result['container_status'] = live['status']
        return result

    def _absent(self):
        if self.check_mode:
            # An earlier task of the same check-mode run may be the one that would create it.
            return {'changed': True, 'dest': self.dest, 'container_status': 'absent',
                    'msg': 'container %s does not exist: a real run fails unless an earlier task creates it' % self.name}
        raise RuncibleError('cannot copy: container %s does not exist; create it first (runcible.oci.container)'
                            % self.name, container_status='absent')

    # -- into the container ---------------------------------------------------------------------
    def _into(self, root_fd):
        source = Source(path=self.src) if self.src else Source(
            data=self.params['content'].encode('utf-8', 'surrogateescape'), secret=True)
        dest = self.dest
        if self.follow:
            # A symlink as dest is followed inside the root, to where a process of the container would write.
            try:
                dest = container_path(inroot.resolve_path(root_fd, dest), 'dest (after its symlinks)')
            except OSError as exc:
                raise RuncibleError('dest: cannot resolve %s in container %s: %s' % (dest, self.name, inroot.reason(exc)))
        parent, name = posixpath.split(dest)
        uid, gid = container_ids(self.params.get('owner'), self.params.get('group'), root_fd)
        where = '%s in container %s' % (dest, self.name)
        with self._container_dir(root_fd, parent) as (dir_fd, created):
            if dir_fd is not None:
                check_not_system(root_fd, dir_fd, parent, name, self.name)
            return self._place(dir_fd, name, dest, source, uid, gid, where, created)

    @contextlib.contextmanager
    def _container_dir(self, root_fd, parent):
        """-> (fd of ``parent`` inside the root or None in check mode when it would be created, dirs created)."""
        created = []
        try:
            dir_fd = inroot.open_dir(root_fd, parent)
        except FileNotFoundError:
            if not self.parents:
                raise RuncibleError('dest: the directory %s does not exist in container %s; create it first or set '
                                    'parents: true' % (parent, self.name))
            if self.check_mode:
                yield None, missing_dirs(root_fd, parent)
                return
            try:
                created = inroot.make_dirs(root_fd, parent, PARENT_MODE['into'])
                dir_fd = inroot.open_dir(root_fd, parent)
            except FileExistsError as exc:
                raise RuncibleError('dest: cannot create %s in container %s: %s exists and is not a directory (a '
                                    'symbolic link leading nowhere?); as mkdir -p, parents replaces nothing'
                                    % (parent, self.name, exc.filename or 'a component'))
            except OSError as exc:
                raise RuncibleError('dest: cannot create %s in container %s: %s' % (parent, self.name, inroot.reason(exc)))
        except OSError as exc:
            raise RuncibleError('dest: cannot open the directory %s in container %s: %s'
                                % (parent, self.name, inroot.reason(exc)))
        try:
            yield dir_fd, created
        finally:
            os.close(dir_fd)

    # -- out of the container -------------------------------------------------------------------
    def _out(self, root_fd):
        try:
            tree = system_tree(inroot.resolve_path(root_fd, self.src))
        except OSError:
            tree = None  # a loop: read_file says so below
        if tree:
            raise RuncibleError('src: %s leads under %s in container %s, which the kernel provides: refused'
                                % (self.src, tree, self.name))
        try:
            data = inroot.read_file(root_fd, self.src, limit=MAX_FETCH_SIZE, timeout=FETCH_TIMEOUT)
        except OSError as exc:
            missing = isinstance(exc, (FileNotFoundError, NotADirectoryError))
            raise RuncibleError('src: %s %s in container %s%s' % (
                self.src, 'does not exist' if missing else 'cannot be read', self.name,
                '' if missing else ': ' + inroot.reason(exc)))
        source = Source(data=data)
        dest = os.path.realpath(self.dest) if self.follow else self.dest
        parent, name = os.path.split(dest)
        uid, gid = host_ids(self.params.get('owner'), self.params.get('group'))
        with self._host_dir(parent) as (dir_fd, created):
            return self._place(dir_fd, name, dest, source, uid, gid, dest, created)

    @contextlib.contextmanager
    def _host_dir(self, parent):
        created = []
        if not os.path.isdir(parent):
            if os.path.lexists(parent) or not self.parents:
                raise RuncibleError('dest: the directory %s does not exist on the managed node; create it first or set '
                                    'parents: true' % parent)
            missing = parent
            while not os.path.lexists(missing):
                created.insert(0, missing)
                missing = os.path.dirname(missing)
            if self.check_mode:
                yield None, created
                return
            os.makedirs(parent, mode=PARENT_MODE['out'])
            for path in created:
                os.chmod(path, PARENT_MODE['out'])  # the umask left out
        dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield dir_fd, created
        finally:
            os.close(dir_fd)

    # -- both ------------------------------------------------------------------------------------
    def _place(self, dir_fd, name, dest, source, uid, gid, where, created):
        """Compare ``name`` in ``dir_fd`` (None: a directory still to create) with what is wanted; write it."""
        if dir_fd is None:
            entry = None
            before = {'state': 'absent'}
        else:
            entry = Entry(dir_fd, name, where)
            before = entry.summary()
        is_file = entry is not None and entry.kind == 'file'
        want_uid = uid if uid is not None else (entry.uid if is_file else 0)
        want_gid = gid if gid is not None else (entry.gid if is_file else 0)
        want_mode = self.mode if self.mode is not None else (entry.mode if is_file else NEW_FILE_MODE[self.direction])
        same_content = entry is not None and entry.same_content(source)
        if is_file:
            before['checksum'] = source.checksum if same_content else _checksum_of(entry)
        after = {'state': 'file', 'size': source.size, 'checksum': source.checksum, 'uid': want_uid, 'gid': want_gid,
                 'mode': '%04o' % want_mode}
        changed = before != after
        result = {'changed': changed, 'dest': dest, 'checksum': source.checksum, 'size': source.size,
                  'uid': want_uid, 'gid': want_gid, 'mode': '%04o' % want_mode, 'direction': self.direction}
        if self.src:
            result['src'] = self.src
        if created:
            result['created_dirs'] = created
        diff = [{'before_header': where, 'after_header': where, 'before': before, 'after': after}]
        if not same_content:
            old_text = entry.text() if entry is not None else ''
            new_text = source.text() if old_text is not None else None
            if new_text is not None:
                diff.append({'before_header': where, 'after_header': where, 'before': old_text, 'after': new_text})
        result['diff'] = diff
        if not changed or self.check_mode:
            return result
        try:
            if same_content:
                inroot.set_attributes_at(dir_fd, name, want_uid, want_gid, want_mode)
            else:
                inroot.replace_file(dir_fd, name, source.chunks(), want_uid, want_gid, want_mode)
        except OSError as exc:
            hint = ''
            if exc.errno == errno.EBUSY:
                hint = ' (it is a mount point, such as a file bind-mounted into the container: it cannot be replaced)'
            raise RuncibleError('cannot write %s: %s%s' % (where, inroot.reason(exc), hint))
        return result


def missing_dirs(root_fd, path):
    """The directories of ``path`` (absolute, without ``..``) missing inside the root, top first."""
    parts = [part for part in path.split('/') if part]
    existing = len(parts)
    while existing:
        try:
            os.close(inroot.open_dir(root_fd, '/' + '/'.join(parts[:existing])))
            break
        except FileNotFoundError:
            existing -= 1
        except OSError:
            break
    return ['/' + '/'.join(parts[:index + 1]) for index in range(existing, len(parts))]


def _checksum_of(entry):
    """The sha256 of what a file holds now, for the diff; None when it is too large to read for that."""
    if entry.size > MAX_FETCH_SIZE:
        return None
    try:
        return entry._digest()  # pylint: disable=protected-access
    except OSError:
        return None


def check_not_system(root_fd, dir_fd, parent, name, container):
    """Refuse a directory that is (or lies in) the container's /proc, /sys or /dev once its links are resolved.

    By the path it resolves to, and by the directory actually opened: on the file system of one of those
    mounts (a running container's; a stopped root filesystem has plain directories there).
    """
    try:
        resolved = inroot.resolve_path(root_fd, parent)
    except OSError as exc:
        raise RuncibleError('dest: cannot resolve %s in container %s: %s' % (parent, container, inroot.reason(exc)))
    tree = system_tree(posixpath.join(resolved, name))
    opened = os.fstat(dir_fd).st_dev
    if tree is None:
        root_dev = os.fstat(root_fd).st_dev
        for candidate in SYSTEM_TREES:
            try:
                fd = inroot.lookup(root_fd, candidate)
            except OSError:
                continue
            try:
                dev = os.fstat(fd).st_dev
            finally:
                os.close(fd)
            if dev != root_dev and dev == opened:
                tree = candidate
                break
    if tree:
        raise RuncibleError('dest: %s/%s leads under %s in container %s, which the kernel provides: refused'
                            % (parent.rstrip('/'), name, tree, container))


def refuse_mounted_path(record, path, option):
    """A stopped container's mounts are not there: a path under one would reach the root filesystem below it
    (hidden once it runs) instead of the volume, bind or tmpfs the container sees."""
    from ._container_options.storage import mount_targets  # pylint: disable=import-outside-toplevel
    for target in mount_targets(record['config']):
        if path == target or path.startswith(target.rstrip('/') + '/'):
            raise ValidationError('%s: %s is in %s, a mount of container %s that exists only while it runs; start '
                                  'the container first, or copy into the volume or host directory itself'
                                  % (option, path, target, record['name']))


@contextlib.contextmanager
def container_root(store, record, live):
    """-> an O_PATH fd of the container's root, as its processes see it while one lives (``/proc/PID/root``:
    its mounts and volumes too), else its root filesystem: for an overlay container, the overlay is mounted
    for the task (the caller holds the container's lock) and unmounted afterwards."""
    if live['status'] != 'stopped' and live['pid']:
        root_fd = inroot.open_root('/proc/%d/root' % live['pid'])
        try:
            if not process_alive(live['pid'], record.get('pid_start')):
                raise RuncibleError('container %s stopped while its root was opened; run the task again' % record['name'])
            yield root_fd
        finally:
            os.close(root_fd)
        return
    config = record['config']
    if config.get('rootfs_mode') != 'overlay':
        root_fd = inroot.open_root(config['rootfs'])
        try:
            yield root_fd
        finally:
            os.close(root_fd)
        return
    from ._runtime import rootfs  # pylint: disable=import-outside-toplevel
    paths = store.paths(record['name'], record['id'])
    if config.get('image'):
        from ._runtime.image_store import lower_dirs  # pylint: disable=import-outside-toplevel
        lower = lower_dirs(store.root, config)
    else:
        lower = [config['rootfs']]
    label = config.get('label')
    mounted = rootfs.mount_overlay(lower, paths.upper, paths.work, paths.rootfs_mount,
                                   mount_label=label.get('mount') if isinstance(label, dict) else None)
    try:
        root_fd = inroot.open_root(paths.rootfs_mount)
        try:
            yield root_fd
        finally:
            os.close(root_fd)
    finally:
        if mounted:
            rootfs.unmount(paths.rootfs_mount)


def run(params, check_mode=False):
    """Run one copy task; -> the module result. Raises RuncibleError subclasses on bad input and failures."""
    return CopyTask(with_defaults(argument_spec(), params), check_mode=check_mode).run()
