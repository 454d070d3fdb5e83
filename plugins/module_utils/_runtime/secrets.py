# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container secrets: values that never reach a disk, a record, a diff, a result or a log in clear.

A secret is delivered to the container as a read-only file (default ``/run/secrets/NAME``, mode
0400, owned by the container's user) or as an environment variable. Its value lives only:

* in the task's parameters (``no_log``),
* in ``run_root/containers/ID/secrets/NAME`` (a tmpfs: mode 0700 dir, 0400 files), bind-mounted
  read-only into the container, and, for environment secrets, in the spec, which lives on the
  same tmpfs (``bundle/config.json`` is a link to ``run_root/containers/ID/config.json``).

The record keeps a keyed hash of each value (HMAC-SHA256 with a random key of the store,
``root/secrets.key``, mode 0600), so a changed value is seen (and recreates the container) while
nothing that reads the record can learn the value. After a reboot the tmpfs is empty: the next task
that starts the container must give ``secrets`` again.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets as random
import stat
from typing import TYPE_CHECKING

from .errors import RuncibleError, ValidationError

if TYPE_CHECKING:
    from typing import Any

KEY_FILE = 'secrets.key'
KEY_BYTES = 32
TYPES = ('file', 'env')
DEFAULT_DIR = '/run/secrets'
DEFAULT_MODE = 0o400
MAX_VALUE = 1 << 20


def _name_ok(name: object) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= 64 and name not in ('.', '..')
            and all(char.isalnum() or char in '_.-' for char in name) and name.isascii())


def _env_name_ok(name: object) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= 255 and name.isascii()
            and (name[0].isalpha() or name[0] == '_') and all(char.isalnum() or char == '_' for char in name))


def store_key(root: str, create: bool = False) -> bytes | None:
    """The store's secret key (bytes); None when it has none yet and ``create`` is false."""
    path = os.path.join(root, KEY_FILE)
    for _attempt in range(3):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if not create:
                return None
            os.makedirs(root, mode=0o700, exist_ok=True)
            data = random.token_bytes(KEY_BYTES)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue  # another task made it meanwhile: read theirs
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            return data
        try:
            data = os.read(fd, KEY_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) == KEY_BYTES:
            return data
        raise RuncibleError('the secrets key %s is damaged (%d bytes): remove it and give every container its '
                            'secrets again' % (path, len(data)))
    raise RuncibleError('cannot create the secrets key %s' % path)


def digest(key: bytes | None, name: str, value: str) -> str | None:
    """The keyed hash kept in the record (None without a key: check mode on a store with no secret yet)."""
    if key is None:
        return None
    return 'hmac-sha256:' + hmac.new(key, name.encode() + b'\0' + value.encode('utf-8', 'surrogateescape'),
                                     'sha256').hexdigest()


def normalise(value: object, key: bytes | None) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``secrets`` as given -> (normalised dict without values, {name: value}).

    Each entry is ``NAME: value`` or ``NAME: {value, type: file|env, target, mode}``; the normalised
    entry is ``{type, target, mode, digest}``.
    """
    if not isinstance(value, dict):
        raise ValidationError('secrets: expected a dictionary of name: value')
    normalised: dict[str, dict[str, Any]] = {}
    values: dict[str, str] = {}
    targets: dict[tuple[str, str], str] = {}
    for name, entry in value.items():
        if not _name_ok(name):
            raise ValidationError('secrets: %r is not a secret name (1 to 64 letters, digits, "_", "." and "-")' % (name,))
        if not isinstance(entry, dict):
            entry = {'value': entry}
        unknown = sorted(set(entry) - set(['value', 'type', 'target', 'mode']))
        if unknown:
            raise ValidationError('secrets: %s has unknown keys %s; use value, type, target, mode'
                                  % (name, ', '.join(unknown)))
        secret = entry.get('value')
        if isinstance(secret, bool) or secret is None or isinstance(secret, (dict, list)):
            raise ValidationError('secrets: %s needs a value (a string)' % name)
        secret = str(secret)
        if len(secret) > MAX_VALUE or '\0' in secret:
            raise ValidationError('secrets: the value of %s is longer than 1 MiB or holds a NUL byte' % name)
        kind = entry.get('type') or 'file'
        if kind not in TYPES:
            raise ValidationError('secrets: type of %s must be file or env' % name)
        target = entry.get('target')
        if kind == 'env':
            target = str(target) if target else name
            if not _env_name_ok(target):
                raise ValidationError('secrets: %r (of %s) is not an environment variable name' % (target, name))
        else:
            target = str(target) if target else DEFAULT_DIR + '/' + name
            if not target.startswith('/'):
                target = DEFAULT_DIR + '/' + target
            if '..' in target.split('/') or target in (DEFAULT_DIR, '/'):
                raise ValidationError('secrets: target %r of %s is not a file path in the container' % (target, name))
            target = os.path.normpath(target)
        mode = entry.get('mode', DEFAULT_MODE)
        try:
            mode = int(mode, 8) if isinstance(mode, str) else int(mode)
        except (TypeError, ValueError):
            raise ValidationError('secrets: mode of %s must be an octal mode such as "0400"' % name)
        if not 0 <= mode <= 0o777:
            raise ValidationError('secrets: mode of %s must be an octal mode such as "0400"' % name)
        if (kind, target) in targets:
            raise ValidationError('secrets: %s and %s both go to %s' % (targets[(kind, target)], name, target))
        targets[(kind, target)] = name
        normalised[name] = {'type': kind, 'target': target, 'mode': mode, 'digest': digest(key, name, secret)}
        values[name] = secret
    return normalised, values


def write(secrets_dir: str, config: dict[str, dict[str, Any]] | None, values: dict[str, str], uid: int, gid: int) -> None:
    """Put the values of ``config``'s secrets into the tmpfs store (exclusively created files, then renamed)."""
    os.makedirs(secrets_dir, mode=0o700, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    for name, entry in (config or {}).items():
        if name not in values:
            continue
        temp = os.path.join(secrets_dir, '.%s.%s' % (name, random.token_hex(6)))
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            data = values[name].encode('utf-8', 'surrogateescape')
            while data:
                data = data[os.write(fd, data):]
            os.fchown(fd, uid, gid)
            os.fchmod(fd, entry['mode'])
        except BaseException:
            os.close(fd)
            os.unlink(temp)
            raise
        os.close(fd)
        os.rename(temp, os.path.join(secrets_dir, name))


def missing(secrets_dir: str, config: dict[str, dict[str, Any]] | None) -> list[str]:
    """Names of ``config``'s secrets whose value is not in the tmpfs store (after a reboot, say)."""
    return sorted(name for name in (config or {}) if not os.path.isfile(os.path.join(secrets_dir, name)))


def env_values(secrets_dir: str, config: dict[str, dict[str, Any]] | None) -> dict[str, str]:
    """``{variable: value}`` of the environment secrets, read from the tmpfs store."""
    result = {}
    for name, entry in sorted((config or {}).items()):
        if entry['type'] != 'env':
            continue
        fd = os.open(os.path.join(secrets_dir, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RuncibleError('the secret %s in %s is not a regular file' % (name, secrets_dir))
            data = b''
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        result[entry['target']] = data.decode('utf-8', 'surrogateescape')
    return result


def env_names(config: dict[str, dict[str, Any]] | None) -> set[str]:
    return set(entry['target'] for entry in (config or {}).values() if entry['type'] == 'env')


def remove(secrets_dir: str) -> None:
    with contextlib.suppress(OSError):
        for name in os.listdir(secrets_dir):
            os.unlink(os.path.join(secrets_dir, name))
        os.rmdir(secrets_dir)
