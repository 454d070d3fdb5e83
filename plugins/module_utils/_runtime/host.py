# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host primitives: processes (/proc, signals), the boot id, a process's cgroups and freezer state, the cgroup
mode, programs on the PATH.

Small, dependency-free readers every layer of the runtime uses, and kill(); none of them starts a process.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import IO, Callable, TypeVar

    T = TypeVar('T')

BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id'
CGROUP_ROOT = '/sys/fs/cgroup'

_boot_id_cache: dict[str, str] = {}


def current_boot_id(path: str = BOOT_ID_PATH) -> str:
    """The kernel's boot id (changes with every boot); '' when unreadable."""
    if path not in _boot_id_cache:
        try:
            with open(path, 'r') as handle:
                _boot_id_cache[path] = handle.read().strip()
        except (IOError, OSError):
            _boot_id_cache[path] = ''
    return _boot_id_cache[path]


def proc_stat_fields(pid: int | None) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (index 0 is the state letter), or None."""
    if not pid:
        return None
    try:
        with open('/proc/%d/stat' % pid, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    # comm may hold spaces and parentheses: the fields start after the last ')'.
    return data[data.rindex(b')') + 2:].split()


def read_proc_stat(pid: int | None) -> tuple[str, int] | None:
    """-> (state letter, start time in clock ticks) of ``pid``, or None when it does not exist."""
    fields = proc_stat_fields(pid)
    if fields is None:
        return None
    return fields[0].decode(), int(fields[19])


def parent_and_session(pid: int) -> tuple[int, int] | None:
    """-> (parent pid, session id) of ``pid`` from /proc/PID/stat, or None when it does not exist."""
    fields = proc_stat_fields(pid)
    if fields is None:
        return None
    return int(fields[1]), int(fields[3])


def child_pids(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc; thread-group leaders, as /proc lists them)."""
    children = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            ids = parent_and_session(int(entry))
            if ids is not None and ids[0] == pid:
                children.append(int(entry))
    return children


def child_pipe(stream: IO[bytes] | None) -> IO[bytes]:
    """A child's stdin, stdout or stderr that subprocess opened as a pipe (``subprocess.PIPE``): never None then."""
    if stream is None:
        raise ValueError('the child process has no such pipe (it was not started with subprocess.PIPE)')
    return stream


def kill(pid: int, signal_number: int = signal.SIGKILL) -> None:
    """Send ``signal_number`` to ``pid``; a process that is already gone is no error.

    Only a real pid: 0 or a negative number would signal a whole process group.
    """
    if pid <= 0:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal_number)


def process_alive(pid: int | None, start_time: int | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, if given, started at ``start_time`` (no pid reuse)."""
    stat = read_proc_stat(pid)
    if stat is None or stat[0] in ('Z', 'X'):
        return False
    return start_time is None or stat[1] == start_time


def process_cgroups(pid: int) -> dict[str, str]:
    """-> {controller: path} from /proc/<pid>/cgroup ('' is the v2 unified hierarchy); {} when gone."""
    try:
        with open('/proc/%d/cgroup' % pid) as handle:
            return parse_cgroups(handle.read())
    except OSError:
        return {}


def parse_cgroups(text: str) -> dict[str, str]:
    """The text of a /proc/<pid>/cgroup -> {controller: path} ('' is the v2 unified hierarchy)."""
    result = {}
    for line in text.splitlines():
        parts = line.split(':', 2)
        if len(parts) == 3:
            for controller in parts[1].split(','):
                result[controller.replace('name=', '')] = parts[2]
    return result


def frozen(pid: int, root: str = CGROUP_ROOT) -> bool:
    """Is the cgroup of ``pid`` frozen (the runtime's ``pause``)? v1 freezer.state, or v2 cgroup.events."""
    groups = process_cgroups(pid)
    if 'freezer' in groups:
        try:
            with open(os.path.join(root, 'freezer', groups['freezer'].lstrip('/'), 'freezer.state')) as handle:
                return handle.read().strip() in ('FROZEN', 'FREEZING')
        except OSError:
            return False
    if '' in groups:
        try:
            with open(os.path.join(root, groups[''].lstrip('/'), 'cgroup.events')) as handle:
                return 'frozen 1' in handle.read().splitlines()
        except OSError:
            return False
    return False


def wait_until(predicate: Callable[[], T], timeout: float, first_delay: float = 0.002, max_delay: float = 0.05) -> T:
    """Call ``predicate()`` until it returns a true value or ``timeout`` seconds passed (backing off from
    ``first_delay`` to ``max_delay``); -> its last value."""
    deadline = time.monotonic() + timeout
    delay = first_delay
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, max_delay)


def capability_set(field: str, status_path: str = '/proc/self/status') -> int | None:
    """A capability set of a process as a bit mask (``field``: ``CapEff``, ``CapBnd``...), or None when unreadable."""
    try:
        with open(status_path) as handle:
            for line in handle:
                if line.startswith(field + ':'):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


# The leaf of a container's own cgroup: runcible-ID (cgroupfs) or runcible-ID.scope (systemd).
CONTAINER_LEAF = re.compile(r'^runcible-[0-9a-f]{64}(?:\.scope)?$')


def container_cgroup(path: str) -> str:
    """The container's own cgroup from its init's ``path``: its init may have moved into a cgroup below it
    (systemd as PID 1 lives in ``init.scope``), whose limit files are not the container's."""
    parts = path.split('/')
    for index in range(len(parts) - 1, -1, -1):
        if CONTAINER_LEAF.match(parts[index]):
            return '/'.join(parts[:index + 1]) or '/'
    return path


def cgroup_mode(cgroup_root: str = '/sys/fs/cgroup') -> str:
    """``unified`` (cgroup v2 only), ``hybrid`` (v1 controllers, v2 at unified/) or ``legacy`` (v1 only)."""
    if os.path.exists(os.path.join(cgroup_root, 'cgroup.controllers')):
        return 'unified'
    if os.path.exists(os.path.join(cgroup_root, 'unified', 'cgroup.controllers')):
        return 'hybrid'
    return 'legacy'


def find_program(name: str, package: str | None = None) -> str | None:
    """Absolute path of ``name`` on PATH (plus the sbin dirs a non-login PATH may lack), or None."""
    search = os.environ.get('PATH', '') + ':/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    return shutil.which(name, path=search)
