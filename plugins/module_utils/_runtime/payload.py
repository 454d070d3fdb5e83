# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runtime library kept on the host between tasks, for conmon's exit command (restart policies).

A module runs from Ansible's payload, which is gone when the task ends; conmon runs its exit command
when a container's process ends, long after. So the runtime library (this package's sources) is
installed under the store, one directory per version named by the SHA-256 of its sources:
``ROOT/lib/HASH/`` holds ``ansible_collections/.../module_utils/_runtime/*.py`` and ``exit.py``, the
command conmon runs with the host's Python (``-I``: no environment variable or user site changes
what it imports). Installed once per version (a task checks that the directory is there); made in a
temporary directory of the same parent, every file created exclusively, root's only, then renamed into
place. An older version is removed when no container of the store refers to it (``Record.lib``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Iterable

PACKAGE = 'ansible_collections.runcible.oci.plugins.module_utils._runtime'
LAUNCHER = 'exit.py'
_LAUNCHER_SOURCE = '''# runcible.oci: conmon's exit command (installed by the collection; see _runtime/payload.py)
import os
import sys
if not sys.argv[1:2] or not sys.argv[1].startswith('--'):
    if os.fork() > 0:  # conmon waits for its exit command: it goes at once, the work goes on in the child
        os._exit(0)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ansible_collections.runcible.oci.plugins.module_utils._runtime import restart
sys.exit(restart.main(sys.argv[1:]))
'''
_cache: dict[str, str] = {}
_trusted: list[bool] = []  # [True] once check_interpreter() passed in this process


def sources() -> dict[str, bytes]:
    """{file name: bytes} of this package's modules, from the payload zip or the file system."""
    package = sys.modules[PACKAGE]
    directory = os.path.dirname(os.path.abspath(package.__file__ or ''))
    archive = _archive_of(directory)
    found: dict[str, bytes] = {}
    if archive:
        import zipfile  # pylint: disable=import-outside-toplevel
        prefix = os.path.relpath(directory, archive).replace(os.sep, '/') + '/'
        with zipfile.ZipFile(archive) as payload:
            for name in payload.namelist():
                rest = name[len(prefix):] if name.startswith(prefix) else None
                if rest and '/' not in rest and rest.endswith('.py'):
                    found[rest] = payload.read(name)
    else:
        for name in sorted(os.listdir(directory)):
            if name.endswith('.py'):
                with open(os.path.join(directory, name), 'rb') as handle:
                    found[name] = handle.read()
    return found


def _archive_of(directory: str) -> str | None:
    """The zip a package directory is inside (Ansible's payload, whoever's loader imported it), or None."""
    if os.path.isdir(directory):
        return None
    parent = directory
    while parent and parent != os.path.dirname(parent):
        parent = os.path.dirname(parent)
        if os.path.isfile(parent):
            return parent
    return None


def version(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b'\0' + hashlib.sha256(files[name]).digest())
    digest.update(_LAUNCHER_SOURCE.encode())
    return digest.hexdigest()[:24]


def installed(root: str) -> bool:
    """Is this version installed under ``root`` already (a launch then checks one directory only)?"""
    if root in _cache and os.path.isdir(_cache[root]):
        return True
    target = os.path.join(root, 'lib', version(sources()))
    if os.path.isdir(target):
        _cache[root] = target
        return True
    return False


def untrusted_path(path: str) -> str | None:
    """Why ``path`` (a program, a directory) is not safe for root to run later, or None: it and every directory
    above it must be root's and writable by nobody else (a sticky directory excepted: others cannot replace
    root's entries there)."""
    import stat  # pylint: disable=import-outside-toplevel
    current = os.path.realpath(path)
    while True:
        try:
            info = os.stat(current)
        except OSError as exc:
            return 'cannot stat %s: %s' % (current, exc.strerror)
        if info.st_uid != 0:
            return '%s belongs to uid %d' % (current, info.st_uid)
        sticky = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky:
            return '%s is writable by %s' % (current, 'its group' if not info.st_mode & stat.S_IWOTH else 'anyone')
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def check_interpreter() -> None:
    """What conmon's exit command, the units and the port proxy run as root long after this task is this Python
    (``sys.executable``) and its standard library: refuse them when a user other than root could change them
    meanwhile (a Python built in a user's home, say). (Its site-packages are not checked: a virtualenv made by root
    inside a user's directory would be refused, and so would this project's own test runs from a user's clone.)"""
    if _trusted:
        return
    for path in (sys.executable, os.path.dirname(os.__file__)):
        reason = untrusted_path(path)
        if reason:
            from .errors import ValidationError  # pylint: disable=import-outside-toplevel
            raise ValidationError('this task\'s Python (%s) would run as root after the task (restart policy, systemd '
                                  'unit, health timer or port proxy), but %s; set ansible_python_interpreter to a '
                                  'Python that only root can change, such as /usr/bin/python3' % (sys.executable, reason))
    _trusted.append(True)


def install(root: str) -> str:
    """-> the installed library's directory ``ROOT/lib/VERSION`` (made now when missing); the interpreter that will
    run it checked first (check_interpreter)."""
    check_interpreter()
    if root in _cache and os.path.isdir(_cache[root]):
        return _cache[root]
    files = sources()
    lib = os.path.join(root, 'lib')
    target = os.path.join(lib, version(files))
    if not os.path.isdir(target):
        os.makedirs(lib, mode=0o700, exist_ok=True)
        staging = tempfile.mkdtemp(prefix='.install-', dir=lib)  # 0700, ours
        try:
            package_dir = os.path.join(staging, *PACKAGE.split('.'))
            os.makedirs(package_dir, mode=0o700)
            parts = PACKAGE.split('.')
            for depth in range(1, len(parts)):
                _write(os.path.join(staging, *parts[:depth], '__init__.py'), b'')
            for name, data in files.items():
                _write(os.path.join(package_dir, name), data)
            _write(os.path.join(staging, LAUNCHER), _LAUNCHER_SOURCE.encode())
            # Compiled now, by the Python that will run it (the exit command runs with -B: it never writes here,
            # so a store removed meanwhile is never made again by a late __pycache__).
            import py_compile  # pylint: disable=import-outside-toplevel
            for name in files:
                with contextlib.suppress(py_compile.PyCompileError):
                    py_compile.compile(os.path.join(package_dir, name), doraise=True)
            try:
                os.rename(staging, target)
            except OSError:
                if not os.path.isdir(target):  # another task installed the same version meanwhile: fine
                    raise
        finally:
            if os.path.isdir(staging):
                shutil.rmtree(staging, ignore_errors=True)
    _link_current(lib, target)
    _cache[root] = target
    return target


def _link_current(lib: str, target: str) -> None:
    """``lib/current`` -> the newest version: what the boot unit runs (replaced atomically: a new link, renamed)."""
    current = os.path.join(lib, 'current')
    name = os.path.basename(target)
    with contextlib.suppress(OSError):
        if os.readlink(current) == name:
            return
    staging = os.path.join(lib, '.current-%d' % os.getpid())
    with contextlib.suppress(OSError):
        os.unlink(staging)
    os.symlink(name, staging)
    os.rename(staging, current)


UNIT_DIR = '/etc/systemd/system'
_UNIT = '''# runcible.oci: starts the containers of one store whose restart policy says so, once at boot.
# Installed by the collection (see its container module's restart_policy); removing it is safe.
[Unit]
Description=runcible.oci containers of %(root_text)s (restart policies after boot)
Wants=network-online.target
After=network-online.target local-fs.target
# Nothing to start before a container installed the runtime library (a unit installed by the runtime role).
ConditionPathExists=%(condition)s

[Service]
Type=oneshot
# The containers' conmons it starts leave for scopes of their own; never kill them with this unit.
KillMode=process
ExecStart=%(exec)s

[Install]
WantedBy=multi-user.target
'''


def boot_unit_name(root: str) -> str:
    return 'runcible-boot-%s.service' % hashlib.sha256(os.path.normpath(root).encode()).hexdigest()[:12]


# Set by the runtime role (runcible_runtime_boot_unit): true keeps the unit when no container needs it, false means
# the store has none (the modules never install it; containers come back by a task or the host's own init).
KEEP_MARKER = 'boot-unit.keep'
DISABLED_MARKER = 'boot-unit.disabled'


def remove_boot_unit(root: str, unit_dir: str = UNIT_DIR, unused: bool = False) -> bool:
    """Remove the store's boot unit and its link; -> whether there was one. ``unused``: because no container of
    the store needs it any more (kept when the runtime role installed it for good)."""
    if unused and os.path.exists(os.path.join(root, KEEP_MARKER)):
        return False
    name = boot_unit_name(root)
    found = False
    for path in (os.path.join(unit_dir, 'multi-user.target.wants', name), os.path.join(unit_dir, name)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            found = True
    if found and unit_dir == UNIT_DIR and os.path.isdir('/run/systemd/system'):
        import subprocess  # pylint: disable=import-outside-toplevel
        with contextlib.suppress(OSError, subprocess.SubprocessError):  # systemd forgets it (best effort)
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            subprocess.run(['systemctl', 'daemon-reload'], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60, check=False)
    return found


def ensure_boot_unit(root: str, run_root: str, unit_dir: str = UNIT_DIR) -> str | None:
    """On a systemd host, the store's boot unit, enabled (its link in multi-user.target.wants; read at the next
    boot, no reload needed); -> its path, or None without systemd. Written only when it differs."""
    if not os.path.isdir('/run/systemd/system') and unit_dir == UNIT_DIR:
        return None
    if os.path.exists(os.path.join(root, DISABLED_MARKER)):
        return None
    from .files import atomic_write  # pylint: disable=import-outside-toplevel
    name = boot_unit_name(root)
    path = os.path.join(unit_dir, name)
    from .units import exec_line, text_value  # pylint: disable=import-outside-toplevel
    root, run_root = os.path.normpath(root), os.path.normpath(run_root)
    launcher = os.path.join(root, 'lib', 'current', LAUNCHER)
    # Every value quoted as systemd reads it (a root with a space, a % or a $ is that path, nothing more).
    text = _UNIT % {'root_text': text_value(root), 'condition': text_value(launcher),
                    'exec': exec_line([sys.executable, '-I', '-B', launcher, '--boot', root, run_root])}
    try:
        with open(path) as handle:
            same = handle.read() == text
    except OSError:
        same = False
    if not same:
        os.makedirs(unit_dir, mode=0o755, exist_ok=True)
        atomic_write(path, text, mode=0o644)
    wants = os.path.join(unit_dir, 'multi-user.target.wants')
    link = os.path.join(wants, name)
    if not os.path.islink(link):
        os.makedirs(wants, mode=0o755, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.symlink(path, link)
    return path


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)


def collect(root: str, in_use: Iterable[str], keep: str | None = None) -> list[str]:
    """Remove the installed versions no container refers to (``in_use``: their lib directories) but ``keep``."""
    lib = os.path.join(root, 'lib')
    used = set(os.path.normpath(path) for path in in_use if path)
    removed = []
    with contextlib.suppress(OSError):
        for name in os.listdir(lib):
            path = os.path.join(lib, name)
            if path in used or path == keep or name.startswith('.') or name == 'current' or not os.path.isdir(path):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed
