# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers and normalisers of user input: sizes, signals, commands, names, users (looked up inside the root), mounts."""

from __future__ import annotations

import os
import re
import shlex
import signal
from typing import TYPE_CHECKING

from .errors import ValidationError

if TYPE_CHECKING:
    from typing import Any, Iterable

NAME_PATTERN = r'[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}'  # patterns are compiled on first use (re's cache)
_DIGITS = r'[0-9]+'


def is_number(text: object) -> bool:
    """ASCII digits only (str.isdigit() also accepts '²', which int() refuses)."""
    return isinstance(text, str) and re.fullmatch(_DIGITS, text) is not None


_SIZE = r'(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$'
_SIZE_FACTORS = {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40, 'p': 1 << 50}


def validate_name(name: object) -> str:
    """Container names: ``[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}``; no ``/``, ``..``, spaces."""
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name) or '..' in name:
        raise ValidationError(
            'invalid container name %r: use 1 to 128 characters from [a-zA-Z0-9_.-], starting with a letter '
            'or digit, without "/", ".." or spaces' % (name,))
    return name


def parse_size(value: object, option: str = 'size') -> int:
    """``"64m"``, ``"1g"``, ``"512k"``, ``"1.5g"``, ``"64MiB"`` or an integer of bytes -> bytes (int)."""
    if isinstance(value, bool):
        raise ValidationError('%s: %r is not a size; use bytes or a number with k, m, g or t (e.g. "64m")' % (option, value))
    number: float
    if isinstance(value, int):
        number, unit = value, ''
    elif isinstance(value, float) and value.is_integer():
        number, unit = int(value), ''
    else:
        match = re.match(_SIZE, str(value))
        if not match:
            raise ValidationError('%s: %r is not a size; use bytes or a number with k, m, g or t (e.g. "64m")' % (option, value))
        number, unit = float(match.group(1)), match.group(2).lower()
    result = int(number * _SIZE_FACTORS[unit])
    if result < 0:
        raise ValidationError('%s: %r is negative; sizes must be 0 or more bytes' % (option, value))
    return result


def parse_signal(value: object, option: str = 'stop_signal') -> int:
    """``"SIGTERM"``, ``"term"``, ``"15"`` or ``15`` -> signal number."""
    if isinstance(value, bool):
        raise ValidationError('%s: unknown signal %r' % (option, value))
    if isinstance(value, int) or (isinstance(value, str) and is_number(value.strip())):
        number = int(value)
        if 1 <= number < signal.NSIG:
            return number
        raise ValidationError('%s: unknown signal %r; use a name such as SIGTERM or a number from 1 to %d'
                              % (option, value, signal.NSIG - 1))
    name = str(value).strip().upper()
    if not name.startswith('SIG'):
        name = 'SIG' + name
    rt_match = re.match(r'^SIGRTMIN(?:\+(\d+))?$', name) or re.match(r'^SIGRTMAX(?:-(\d+))?$', name)
    if rt_match:
        offset = int(rt_match.group(1) or 0)
        number = signal.SIGRTMIN + offset if name.startswith('SIGRTMIN') else signal.SIGRTMAX - offset
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return int(number)
    sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
    if sig is None:
        raise ValidationError('%s: unknown signal %r; use a name such as SIGTERM, SIGINT, SIGQUIT or a number' % (option, value))
    return int(sig)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def split_command(value: object, option: str = 'command') -> list[str] | None:
    """A list is kept (items as strings); a string is split like a POSIX shell would, without running one."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        argv = [str(item) for item in value]
    else:
        try:
            argv = shlex.split(str(value))
        except ValueError as exc:
            raise ValidationError('%s: cannot split %r into arguments: %s' % (option, value, exc))
    if not argv:
        raise ValidationError('%s: must not be empty' % option)
    return argv


def string_dict(value: object, option: str) -> dict[str, str] | None:
    """A dict with string keys and values (Ansible hands ints and bools as such)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        # The type only: a value given by mistake may be a secret.
        raise ValidationError('%s: expected a dictionary, got a %s' % (option, type(value).__name__))
    result: dict[str, str] = {}
    for key, item in value.items():
        key = str(key)
        if not key or '=' in key and option in ('env', 'secrets'):
            raise ValidationError('%s: invalid variable name %r' % (option, key))
        if isinstance(item, bool):
            item = 'true' if item else 'false'
        result[key] = '' if item is None else str(item)
    return result


def absolute_path(value: object, option: str) -> str:
    value = str(value)
    if not value.startswith('/'):
        raise ValidationError('%s: %r is not an absolute path' % (option, value))
    return os.path.normpath(value) if value != '/' else value


_MOUNT_OPTIONS = frozenset(['ro', 'rw', 'nosuid', 'nodev', 'noexec', 'suid', 'dev', 'exec', 'bind', 'rbind',
                            'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave',
                            'relatime', 'norelatime', 'strictatime', 'noatime', 'z', 'Z'])


MOUNT_TYPES = ('bind', 'volume', 'tmpfs')


def parse_mount(value: object) -> dict[str, Any]:
    """``"src:dst[:opts]"`` or ``{type, source, target, options}`` -> ``{source, target, type, options}``.

    ``type``: ``bind`` (a host path; the default), ``volume`` (a named volume under the store: a source
    that is not a path, as ``name:/data`` in docker), ``tmpfs`` (no source; its options are made
    canonical by the option layer).
    """
    source: object
    target: object
    if isinstance(value, str):
        parts = value.split(':')
        if len(parts) not in (2, 3):
            raise ValidationError('mounts: %r must be "source:target" or "source:target:ro|rw"' % value)
        source, target = parts[0], parts[1]
        options = parts[2].split(',') if len(parts) == 3 else []
        kind = 'bind' if str(source).startswith('/') else 'volume'
    elif isinstance(value, dict):
        unknown = set(value) - set(['source', 'target', 'options', 'type'])
        if unknown:
            raise ValidationError('mounts: unknown keys %s in %r; use type, source, target, options' % (sorted(unknown), value))
        source, target = value.get('source'), value.get('target')
        options = value.get('options') or []
        if isinstance(options, str):
            options = options.split(',')
        kind = value.get('type') or 'bind'
        if kind not in MOUNT_TYPES:
            raise ValidationError('mounts: type %r is not one of %s' % (kind, ', '.join(MOUNT_TYPES)))
    else:
        raise ValidationError('mounts: %r must be a string "source:target[:ro|rw]" or a dictionary' % (value,))
    if kind == 'tmpfs':
        if not target or source not in (None, '', 'tmpfs'):
            raise ValidationError('mounts: a tmpfs mount takes a target and no source: %r' % (value,))
        return {'source': 'tmpfs', 'target': absolute_path(target, 'mounts target'), 'type': 'tmpfs',
                'options': [str(opt).strip() for opt in options if str(opt).strip()]}
    if not source or not target:
        raise ValidationError('mounts: %r needs both a source and a target' % (value,))
    if kind == 'volume':
        from .volumes import validate_volume_name  # pylint: disable=import-outside-toplevel
        try:
            source = validate_volume_name(source)
        except ValidationError:
            raise ValidationError('mounts: source %r is neither an absolute host path nor a volume name (1 to 128 '
                                  'characters from [a-zA-Z0-9_.-], starting with a letter or digit)' % (source,))
    else:
        source = absolute_path(source, 'mounts source')
    target = absolute_path(target, 'mounts target')
    options = [str(opt).strip() for opt in options if str(opt).strip()]
    for opt in options:
        if opt not in _MOUNT_OPTIONS:
            raise ValidationError('mounts: unknown option %r for %s; known: %s' % (opt, target, ', '.join(sorted(_MOUNT_OPTIONS))))
    if 'ro' in options and 'rw' in options:
        raise ValidationError('mounts: %s cannot be both ro and rw' % target)
    if 'z' in options or 'Z' in options:
        if 'z' in options and 'Z' in options:
            raise ValidationError('mounts: %s cannot be both z (shared label) and Z (private label)' % target)
        if kind == 'bind':
            from .selinux_labels import check_relabel_source  # pylint: disable=import-outside-toplevel
            check_relabel_source(str(source))
    if 'ro' not in options and 'rw' not in options:
        options.append('rw')
    if kind == 'volume':
        # A volume's files are the containers' own (or a device's): no set-uid program or device node of
        # theirs counts unless asked (suid, dev), as the image's declared volumes.
        options.extend(flag for flag, allow in (('nosuid', 'suid'), ('nodev', 'dev')) if allow not in options)
    if 'bind' not in options and 'rbind' not in options:
        options.append('rbind')
    return {'source': source, 'target': target, 'type': kind, 'options': sorted(set(options))}


def normalise_mounts(values: Iterable[object] | None) -> list[dict[str, Any]] | None:
    """Parse and sort by target: order then only matters for nesting, which sorting keeps right."""
    if values is None:
        return None
    mounts = [parse_mount(item) for item in values]
    targets = [m['target'] for m in mounts]
    duplicates = sorted(set(t for t in targets if targets.count(t) > 1))
    if duplicates:
        raise ValidationError('mounts: target %s is given more than once' % ', '.join(duplicates))
    return sorted(mounts, key=lambda m: m['target'])


def _read_db(rootfs: str | int, name: str) -> tuple[list[list[str]], str | None]:
    """The entries of ``/etc/NAME`` of ``rootfs`` (a directory or an fd), read inside it -> (entries, problem).

    Resolved and read by :mod:`.inroot`: symlinks stay inside ``rootfs``, only a regular file of at
    most 4 MiB is read. A file that is not there gives no entries; one that is there but refused (a
    FIFO, a symlink loop, too large, too slow) gives no entries and ``problem``, the reason in words.
    """
    from . import inroot  # pylint: disable=import-outside-toplevel
    path = '/etc/' + name
    try:
        data = inroot.read_file(rootfs, path)
    except (FileNotFoundError, NotADirectoryError):
        return [], None
    except OSError as exc:
        return [], '%s in the root filesystem is refused: %s' % (path, inroot.reason(exc))
    entries = []
    for line in data.decode('utf-8', 'replace').replace('\r\n', '\n').replace('\r', '\n').split('\n'):
        fields = line.split(':')
        if len(fields) >= 4 and not line.startswith('#'):
            entries.append(fields)
    return entries, None


def _user_db(rootfs: str | int | None, name: str, wanted: str) -> list[list[str]]:
    """The entries of ``/etc/NAME`` to look ``wanted`` up in; raises ValidationError when the file is refused."""
    if rootfs is None or rootfs == '':
        return []
    entries, problem = _read_db(rootfs, name)
    if problem:
        raise ValidationError('user: cannot look up %s: %s' % (wanted, problem))
    return entries


def check_user_db(rootfs: str | int, what: str) -> None:
    """Refuse a root filesystem whose /etc/passwd or /etc/group is there but is not a regular file.

    The OCI runtime opens both inside the container to set up the user of the process it starts
    (runc whatever the user, crun for HOME), and opening a FIFO blocks it for good. ``what`` starts
    the message (``"cannot exec in container web"``).
    """
    from . import inroot  # pylint: disable=import-outside-toplevel
    for path in ('/etc/passwd', '/etc/group'):
        found = inroot.kind(rootfs, path)
        if found not in (None, 'a regular file'):
            raise ValidationError('%s: %s in its root filesystem is %s, not a regular file, and the OCI runtime would '
                                  'block reading it to set up the user; make it a regular file' % (what, path, found))


def resolve_user(value: object, rootfs: str | int | None) -> str | None:
    """``uid[:gid]``, ``name[:group]`` -> ``"uid:gid"``; names resolved in the rootfs' /etc/passwd and /etc/group.

    ``rootfs``: the root filesystem (a directory such as ``/proc/PID/root``, or an fd of one), or
    None. Its files are read inside it (:mod:`.inroot`): a symlink never leads to a file of the host.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        raise ValidationError('user: must not be empty')
    user_part, _sep, group_part = text.partition(':')
    if is_number(user_part):
        # A numeric uid takes its primary group from /etc/passwd when listed there, else gid 0 (as docker does).
        uid = int(user_part)
        gid = 0
        passwd = _user_db(rootfs, 'passwd', 'the group of uid %s' % user_part) if not group_part else []
        for fields in passwd:
            if fields[2] == user_part and is_number(fields[3]):
                gid = int(fields[3])
                break
    else:
        passwd = _user_db(rootfs, 'passwd', 'user %r' % user_part)
        match = [fields for fields in passwd if fields[0] == user_part]
        if not match or not is_number(match[0][2]):
            raise ValidationError('user: %r is not in the root filesystem\'s /etc/passwd; use a numeric uid[:gid] '
                                  'or add the user to the image' % user_part)
        uid = int(match[0][2])
        gid = int(match[0][3]) if is_number(match[0][3]) else 0
    if group_part:
        if is_number(group_part):
            gid = int(group_part)
        else:
            groups = _user_db(rootfs, 'group', 'group %r' % group_part)
            match = [fields for fields in groups if fields[0] == group_part]
            if not match or not is_number(match[0][2]):
                raise ValidationError('user: group %r is not in the root filesystem\'s /etc/group; use a numeric gid'
                                      % group_part)
            gid = int(match[0][2])
    return '%d:%d' % (uid, gid)


def resolve_group(value: object, rootfs: str | int | None) -> str:
    """A group name or gid -> the gid (a string of digits); names resolved in the rootfs' /etc/group."""
    text = str(value).strip()
    if is_number(text):
        return str(int(text))
    groups = _user_db(rootfs, 'group', 'group %r' % text)
    match = [fields for fields in groups if fields[0] == text]
    if not match or not is_number(match[0][2]):
        raise ValidationError('group_add: group %r is not in the root filesystem\'s /etc/group; use a numeric gid or '
                              'add the group to the image' % text)
    return str(int(match[0][2]))


def supplementary_gids(user: str, rootfs: str | int | None) -> list[int]:
    """The groups of /etc/group that list the user of ``user`` (``"uid:gid"``) as a member, as ``id`` shows them."""
    uid = user.partition(':')[0]
    if rootfs is None or rootfs == '' or not is_number(uid):
        return []
    entries, problem = _read_db(rootfs, 'passwd')
    names = set(fields[0] for fields in entries if fields[2] == uid) if not problem else set()
    if not names:
        return []
    entries, problem = _read_db(rootfs, 'group')
    if problem:
        return []
    return sorted(set(int(fields[2]) for fields in entries if len(fields) > 3 and is_number(fields[2])
                      and names.intersection(member.strip() for member in fields[3].split(','))))


def validate_rootfs(path: str) -> str:
    if not path or not os.path.isabs(path):
        raise ValidationError('rootfs: %r must be the absolute path of a directory' % (path,))
    if not os.path.isdir(path):
        raise ValidationError('rootfs: %s does not exist or is not a directory; create the root filesystem first '
                              '(e.g. with mmdebstrap or by unpacking an image)' % path)
    return os.path.normpath(path)
