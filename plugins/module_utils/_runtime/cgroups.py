# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup placement (cgroupfs or systemd), conmon's own cgroup, and live resource values read back.

* cgroupfs: the container in ``<parent>/runcible-<id>``, conmon in ``<parent>/conmon`` (every
  hierarchy: v1 controllers, the v2 unified one, or both on a hybrid host).
* systemd: the container in ``runcible-<id>.scope`` (the runtime's systemd cgroup driver), conmon in
  a transient ``runcible-conmon-<id>.scope`` made over D-Bus (``StartTransientUnit`` with
  ``Delegate`` and ``PIDs=[conmon]``), both under the chosen slice.
* Live values: the container's cgroup is found from ``/proc/<pid>/cgroup`` and its limit files are
  read back (v1 and v2 spellings), normalised like the options, so drift is seen exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import errno
import os
import re
import subprocess
import time

from .errors import RuncibleError, ValidationError
from .host import cgroup_mode, container_cgroup, find_program, process_cgroups

if TYPE_CHECKING:
    from typing import Any

CGROUP_ROOT = '/sys/fs/cgroup'
DEFAULT_CGROUPFS_PARENT = '/runcible'
DEFAULT_SLICE = 'machine.slice'
CPU_PERIOD = 100000
RACE_RETRIES = 5
V1_UNLIMITED = 0x7FFFFFFFFFFFF000  # what v1 memory files say for "no limit" (page-aligned LONG_MAX)


def systemd_available() -> bool:
    """systemd is PID 1 and its bus is reachable (with busctl to speak to it)."""
    try:
        with open('/proc/1/comm') as handle:
            pid1 = handle.read().strip()
    except OSError:
        pid1 = ''
    return (pid1 == 'systemd' and os.path.isdir('/run/systemd/system')
            and os.path.exists('/run/dbus/system_bus_socket') and find_program('busctl') is not None)


def resolve_manager(requested: str | None) -> str:
    """``auto`` -> ``systemd`` when systemd is PID 1 and reachable over D-Bus, else ``cgroupfs``."""
    if requested in (None, '', 'auto'):
        return 'systemd' if systemd_available() else 'cgroupfs'
    if requested == 'systemd' and not systemd_available():
        raise ValidationError('cgroup_manager: systemd needs systemd as PID 1 with its D-Bus reachable (and busctl); '
                              'this host has neither: use cgroup_manager: cgroupfs')
    return requested


def validate_parent(manager: str, parent: str | None) -> str:
    """-> the cgroup parent for ``manager``: a path for cgroupfs, a .slice name for systemd."""
    if manager == 'systemd':
        parent = parent or DEFAULT_SLICE
        if '/' in parent or not parent.endswith('.slice') or not re.match(r'^[a-zA-Z0-9:_.\\-]+\.slice$', parent):
            raise ValidationError('cgroup_parent: %r is not a systemd slice name; with cgroup_manager systemd use a '
                                  'name such as machine.slice' % parent)
        return parent
    parent = parent or DEFAULT_CGROUPFS_PARENT
    if parent.endswith('.slice'):
        raise ValidationError('cgroup_parent: %r is a systemd slice, but the cgroup manager is cgroupfs: give a '
                              'path such as /runcible, or use cgroup_manager: systemd' % parent)
    if not parent.startswith('/') or '..' in parent.split('/'):
        raise ValidationError('cgroup_parent: %r must be an absolute cgroup path such as /runcible' % parent)
    return os.path.normpath(parent)


def slice_path(slice_name: str) -> str:
    """The cgroup path of a systemd slice: ``a-b.slice`` -> ``/a.slice/a-b.slice`` (``-.slice`` is the root)."""
    if slice_name == '-.slice':
        return ''
    parts = slice_name[:-len('.slice')].split('-')
    return ''.join('/%s.slice' % '-'.join(parts[:index + 1]) for index in range(len(parts)))


def container_cgroups_path(manager: str, parent: str, container_id: str) -> str:
    if manager == 'systemd':
        return '%s:runcible:%s' % (parent, container_id)
    return '%s/runcible-%s' % (parent.rstrip('/'), container_id)


# -- hierarchies ----------------------------------------------------------------------------------------

def hierarchies(root: str = CGROUP_ROOT) -> list[str]:
    """Mount points of every cgroup hierarchy: the unified one (v2 or the hybrid's), and the v1 ones."""
    mode = cgroup_mode(root)
    if mode == 'unified':
        return [root]
    found = []
    for entry in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        path = os.path.join(root, entry)
        if os.path.islink(path) or not os.path.exists(os.path.join(path, 'cgroup.procs')):
            continue
        if entry == 'unified' and not os.path.exists(os.path.join(path, 'cgroup.controllers')):
            continue
        found.append(path)
    return found


def _copy_cpuset(directory: str) -> None:
    """A new v1 cpuset cgroup takes no task until cpus and mems are set: inherit the parent's."""
    for name in ('cpuset.cpus', 'cpuset.mems'):
        target = os.path.join(directory, name)
        if not os.path.exists(target):
            continue
        with open(target) as handle:
            if handle.read().strip():
                continue
        parent = os.path.dirname(directory)
        if os.path.exists(os.path.join(parent, name)):
            _copy_cpuset(parent)
            with open(os.path.join(parent, name)) as handle:
                value = handle.read().strip()
            with open(target, 'w') as handle:
                handle.write(value)


def place_in_cgroupfs(pid: int, relative: str, root: str = CGROUP_ROOT) -> list[str]:
    """Move ``pid`` into the cgroup ``relative`` (e.g. /runcible/conmon) of every hierarchy; -> dirs."""
    placed = []
    for hierarchy in hierarchies(root):
        directory = os.path.join(hierarchy, relative.lstrip('/'))
        for attempt in range(RACE_RETRIES):
            # The removal of another container may rmdir these (empty) dirs between our mkdir and write.
            try:
                os.makedirs(directory, exist_ok=True)
                if os.path.basename(hierarchy) == 'cpuset' or os.path.exists(os.path.join(directory, 'cpuset.cpus')):
                    _copy_cpuset(directory)
                with open(os.path.join(directory, 'cgroup.procs'), 'w') as handle:
                    handle.write(str(pid))
                break
            except OSError as exc:
                # ENODEV: the directory was there, but its cgroup was being removed (rmdir) as we wrote.
                if exc.errno in (errno.ENOENT, errno.ENODEV) and attempt + 1 < RACE_RETRIES:
                    continue
                raise RuncibleError('cannot move conmon (pid %d) into %s: %s' % (pid, directory, exc))
        placed.append(directory)
    return placed


def remove_empty(relative: str, root: str = CGROUP_ROOT) -> None:
    """rmdir ``relative`` and then its parents in every hierarchy, as long as they are empty."""
    for hierarchy in hierarchies(root):
        directory = os.path.join(hierarchy, relative.lstrip('/'))
        while os.path.normpath(directory) != os.path.normpath(hierarchy):
            try:
                os.rmdir(directory)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT,):
                    break
            directory = os.path.dirname(directory)


SYSTEMD_BUS = ['org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager']
SCOPE_TIMEOUT = 60.0  # seconds for systemd to run the scope's start job (milliseconds on real hardware)


def transient_scope_call(unit: str, slice_name: str, pid: int) -> list[str]:
    """The busctl argv of StartTransientUnit for ``unit`` holding ``pid`` (Delegate, in ``slice_name``)."""
    return ['busctl', 'call', '--system'] + SYSTEMD_BUS + [
        'StartTransientUnit', 'ssa(sv)a(sa(sv))',
        unit, 'fail', '4',
        'PIDs', 'au', '1', str(pid),
        'Delegate', 'b', 'true',
        'Slice', 's', slice_name,
        'Description', 's', 'runcible.oci conmon of %s' % unit,
        '0']


def unit_object_path(unit: str) -> str:
    """systemd's D-Bus object path of ``unit`` (sd-bus label escaping: ``-`` -> ``_2d``, ``.`` -> ``_2e``)."""
    escaped = []
    for index, char in enumerate(unit):
        if ('a' <= char <= 'z') or ('A' <= char <= 'Z') or (index > 0 and '0' <= char <= '9'):
            escaped.append(char)
        else:
            escaped.extend('_%02x' % byte for byte in char.encode('utf-8'))
    return '/org/freedesktop/systemd1/unit/' + ''.join(escaped)


def _busctl(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    argv = [find_program('busctl') or 'busctl'] + list(argv[1:])
    # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
    # pylint: disable-next=ansible-bad-function
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30, check=False)


def unit_active_state(unit: str) -> str | None:
    """``active``, ``failed``, ... of a loaded unit; None when systemd does not know it (or cannot say)."""
    proc = _busctl(['busctl', 'get-property', '--system', SYSTEMD_BUS[0], unit_object_path(unit),
                    'org.freedesktop.systemd1.Unit', 'ActiveState'])
    match = re.match(r'^s "(.*)"$', proc.stdout.decode('utf-8', 'replace').strip())
    return match.group(1) if proc.returncode == 0 and match else None


def systemd_cgroup_of(pid: int) -> str | None:
    """The cgroup systemd sees ``pid`` in (v2 path, or v1's name=systemd one); None when ``pid`` is gone."""
    groups = process_cgroups(pid)
    if not groups:
        return None
    return groups.get('systemd', groups.get(''))


def wait_in_unit(pid: int, unit: str, timeout: float = SCOPE_TIMEOUT) -> None:
    """Wait until systemd has moved ``pid`` into ``unit``'s cgroup.

    StartTransientUnit only queues a start job: it returns before systemd moves the process. conmon must
    be in its scope before it is released from the start pipe, because it forks then and its child (the
    conmon that stays) inherits the cgroup of that moment.
    """
    deadline = time.monotonic() + timeout
    delay = 0.002
    next_state_check = time.monotonic() + 0.5
    while True:
        group = systemd_cgroup_of(pid)
        if group is None:
            raise RuncibleError('conmon (pid %d) exited before systemd moved it into its scope %s' % (pid, unit))
        if group.rstrip('/').endswith('/' + unit):
            return
        now = time.monotonic()
        if now >= next_state_check or now >= deadline:
            # Until its job runs the scope is inactive (or not loaded yet); failed is final.
            state = unit_active_state(unit)
            if state == 'failed' or now >= deadline:
                raise RuncibleError('systemd did not move conmon (pid %d) into its scope %s (the scope is %s; '
                                    'conmon is in %s): see journalctl -u %s'
                                    % (pid, unit, state or 'unknown', group, unit))
            next_state_check = now + 0.5
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def place_in_scope(pid: int, unit: str, slice_name: str, timeout: float = SCOPE_TIMEOUT) -> None:
    """Move ``pid`` into a new transient scope ``unit`` in ``slice_name``; returns once it is there."""
    argv = transient_scope_call(unit, slice_name, pid)
    proc = _busctl(argv)
    if _scope_exists(proc):
        # A failed scope of an earlier conmon of this container stays loaded until it is reset.
        _busctl(['busctl', 'call', '--system'] + SYSTEMD_BUS + ['ResetFailedUnit', 's', unit])
        proc = _busctl(argv)
    if _scope_exists(proc):
        # An active one holds what is left of the earlier conmon: its exit command (restart.py), which may be
        # the very process launching this conmon, or one waiting for the container's lock (held by the task
        # launching this conmon) or sleeping out a back-off. The new conmon joins that scope; the old exit
        # command then ends on its own (it finds the container running again).
        proc = _busctl(['busctl', 'call', '--system'] + SYSTEMD_BUS + ['AttachProcessesToUnit', 'ssau', unit, '',
                                                                       '1', str(pid)])
        if proc.returncode != 0:
            proc = _busctl(argv)  # it emptied and went meanwhile: a new one of that name, then
    if proc.returncode != 0:
        raise RuncibleError('cannot create the systemd scope %s for conmon over D-Bus: %s'
                            % (unit, proc.stderr.decode('utf-8', 'replace').strip()))
    wait_in_unit(pid, unit, timeout)


def _scope_exists(proc: subprocess.CompletedProcess[bytes]) -> bool:
    """Did StartTransientUnit fail because a unit of that name is loaded? (systemd says it in two ways.)"""
    return proc.returncode != 0 and (b'already exists' in proc.stderr or b'already loaded' in proc.stderr)


class Placement(object):
    """Where a container and its conmon go; made from the record's (resolved) config."""

    def __init__(self, manager: str, parent: str, container_id: str) -> None:
        self.manager = manager
        self.parent = parent
        self.container_id = container_id

    @property
    def cgroups_path(self) -> str:
        return container_cgroups_path(self.manager, self.parent, self.container_id)

    @property
    def conmon_unit(self) -> str:
        return 'runcible-conmon-%s.scope' % self.container_id

    @property
    def cgroup_path(self) -> str:
        """The cgroup (v2 path, or v1 path in each hierarchy) runc makes for the container."""
        if self.manager == 'systemd':
            return '%s/runcible-%s.scope' % (slice_path(self.parent), self.container_id)
        return '%s/runcible-%s' % (self.parent.rstrip('/'), self.container_id)

    def place_conmon(self, pid: int) -> str | None:
        """-> a note for ``actions`` when conmon was left where it is."""
        if os.environ.get('INVOCATION_ID'):
            return 'conmon left in the cgroup of the systemd unit running this task (INVOCATION_ID is set)'
        if self.manager == 'systemd':
            place_in_scope(pid, self.conmon_unit, self.parent)
        else:
            place_in_cgroupfs(pid, self.parent.rstrip('/') + '/conmon')
        return None

    def cleanup(self) -> None:
        if self.manager == 'cgroupfs':
            remove_empty(self.parent.rstrip('/') + '/runcible-' + self.container_id)
            remove_empty(self.parent.rstrip('/') + '/conmon')


# -- live values ----------------------------------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def normalise_cpuset(value: Any) -> str | None:
    """``"0,1,2"``, ``"2,0-1"`` -> ``"0-2"``; '' stays ''."""
    if value is None:
        return None
    text = str(value).replace(' ', '')
    if not text:
        return ''
    numbers: set[int] = set()
    for part in text.split(','):
        match = re.match(r'^(\d+)(?:-(\d+))?$', part)
        if not match:
            raise ValidationError('cpuset: %r is not a list of numbers and ranges such as "0-2,4"' % value)
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if high < low:
            raise ValidationError('cpuset: range %r runs backwards' % part)
        numbers.update(range(low, high + 1))
    ordered = sorted(numbers)
    ranges, start, previous = [], ordered[0], ordered[0]
    for number in ordered[1:] + [None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        ranges.append(str(start) if start == previous else '%d-%d' % (start, previous))
        if number is not None:
            start = previous = number
    return ','.join(ranges)


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _v1_bytes(text: str | None) -> int | None:
    value = _int(text)
    if value is None:
        return None
    return 0 if value >= V1_UNLIMITED else value


def _v2_max(text: str | None) -> int | None:
    if text is None:
        return None
    return 0 if text == 'max' else _int(text)


def shares_to_weight(shares: int) -> int:
    """runc's conversion of cgroup v1 cpu.shares to v2 cpu.weight."""
    return 1 + ((shares - 2) * 9999) // 262142


def read_live(pid: int, root: str = CGROUP_ROOT) -> dict[str, Any]:
    """The live resource values of the container whose init is ``pid``, named and normalised like the options.

    Keys missing from the result could not be read here (no such controller or file).
    """
    groups = dict((name, container_cgroup(path)) for name, path in (process_cgroups(pid) or {}).items())
    if not groups:
        return {}
    live: dict[str, Any] = {}
    if cgroup_mode(root) == 'unified':
        base = os.path.join(root, groups.get('', '/').lstrip('/'))
        live['memory'] = _v2_max(_read(os.path.join(base, 'memory.max')))
        live['memory_reservation'] = _v2_max(_read(os.path.join(base, 'memory.low')))
        cpu_max = _read(os.path.join(base, 'cpu.max'))
        if cpu_max:
            quota, _sep, period = cpu_max.partition(' ')
            live['cpus'] = 0.0 if quota == 'max' else round(int(quota) / float(int(period or CPU_PERIOD)), 5)
            live['cpu_quota'] = 0 if quota == 'max' else int(quota)
            live['cpu_period'] = int(period or CPU_PERIOD)
        live['cpu_weight'] = _int(_read(os.path.join(base, 'cpu.weight')))
        live['cpuset_cpus'] = _read(os.path.join(base, 'cpuset.cpus'))
        live['cpuset_mems'] = _read(os.path.join(base, 'cpuset.mems'))
        live['pids_limit'] = _v2_max(_read(os.path.join(base, 'pids.max')))
        weight = _read(os.path.join(base, 'io.bfq.weight')) or _read(os.path.join(base, 'io.weight'))
        if weight:
            live['blkio_weight'] = _int(weight.split()[-1])
    else:
        def v1(controller: str, name: str) -> str | None:
            if controller not in groups:
                return None
            return _read(os.path.join(root, controller, groups[controller].lstrip('/'), name))
        live['memory'] = _v1_bytes(v1('memory', 'memory.limit_in_bytes'))
        live['memory_reservation'] = _v1_bytes(v1('memory', 'memory.soft_limit_in_bytes'))
        swap = v1('memory', 'memory.memsw.limit_in_bytes')
        if swap is not None:
            live['memory_swap'] = -1 if _v1_bytes(swap) == 0 else _int(swap)
        quota_us, period_us = _int(v1('cpu', 'cpu.cfs_quota_us')), _int(v1('cpu', 'cpu.cfs_period_us'))
        if quota_us is not None and period_us:
            live['cpus'] = 0.0 if quota_us < 0 else round(quota_us / float(period_us), 5)
            live['cpu_quota'] = max(quota_us, 0)
            live['cpu_period'] = period_us
        live['cpu_shares'] = _int(v1('cpu', 'cpu.shares'))
        live['cpuset_cpus'] = v1('cpuset', 'cpuset.cpus')
        live['cpuset_mems'] = v1('cpuset', 'cpuset.mems')
        pids = v1('pids', 'pids.max')
        live['pids_limit'] = _v2_max(pids) if pids is not None else None
        weight = v1('blkio', 'blkio.weight') or v1('blkio', 'blkio.bfq.weight')
        if weight:
            live['blkio_weight'] = _int(weight.split()[-1])
    for key in ('cpuset_cpus', 'cpuset_mems'):
        if live.get(key) is not None:
            live[key] = normalise_cpuset(live[key])
    return dict((key, value) for key, value in live.items() if value is not None)


def blkio_weight_supported(root: str = CGROUP_ROOT) -> bool:
    if cgroup_mode(root) == 'unified':
        return any(os.path.exists(os.path.join(root, name)) for name in ('io.bfq.weight', 'io.weight')) or \
            'io' in (_read(os.path.join(root, 'cgroup.controllers')) or '').split()
    return any(os.path.exists(os.path.join(root, 'blkio', name)) for name in ('blkio.weight', 'blkio.bfq.weight'))


__all__ = ['Placement', 'read_live', 'resolve_manager', 'validate_parent', 'normalise_cpuset', 'hierarchies',
           'transient_scope_call', 'shares_to_weight', 'slice_path']
