# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource limits: normalisers, spec mappers and the rules that compare them with the live cgroup.

Every limit here updates live (``runtime update``) and is read back from the container's cgroup
(``cgroups.read_live``), where the kernel may say it differently: byte limits rounded down to whole
pages, a CPU quota per period, v2's ``cpu.weight`` for v1's shares. A matcher says whether the live
value means the wanted one.
"""

from __future__ import annotations

import math
import os
import stat
from typing import TYPE_CHECKING

from .._runtime import cgroups
from .._runtime.errors import ValidationError
from .._runtime.parsers import parse_size
from .process import non_negative_int

if TYPE_CHECKING:
    from typing import Any, Callable, Optional

    from .base import Context

    # (an alias is an expression, not an annotation: no X | None in it for Python 3.9)
    Matcher = Callable[[Any, dict[str, Any]], Optional[bool]]  # (wanted, live values) -> True, False or None

CPU_PERIOD = cgroups.CPU_PERIOD
MIN_CPUS = 0.01


# -- normalisers ---------------------------------------------------------------------------------------

def size(option: str) -> Callable[[object, Context], int]:
    def normalise(value: object, context: Context) -> int:
        return parse_size(value, option)
    return normalise


memory = size('memory')
memory_reservation = size('memory_reservation')


def memory_swap(value: object, context: Context) -> int:
    """Memory plus swap; -1 is unlimited swap (checked against ``memory`` by the group check ``memory``)."""
    if str(value).strip() == '-1':
        return -1
    return parse_size(value, 'memory_swap')


def cpus(value: float, context: Context) -> float:
    try:
        count = float(value)
    except (TypeError, ValueError):
        raise ValidationError('cpus: %r is not a number of CPUs (e.g. 0.5 or 2)' % (value,))
    if not math.isfinite(count) or count < 0:
        raise ValidationError('cpus: %r must be 0 (no limit) or a positive number of CPUs' % (value,))
    if 0 < count < MIN_CPUS:
        raise ValidationError('cpus: %r is below the smallest limit the kernel takes (%s CPUs: a 1 ms quota per '
                              '100 ms period)' % (value, MIN_CPUS))
    return count


def cpu_shares(value: int, context: Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value != 0 and not 2 <= value <= 262144:
        raise ValidationError('cpu_shares: %r must be 0 (default) or from 2 to 262144' % (value,))
    return value


def cpuset(option: str) -> Callable[[str, Context], str | None]:
    def normalise(value: str, context: Context) -> str | None:
        try:
            return cgroups.normalise_cpuset(value)
        except ValidationError as exc:
            raise ValidationError('%s: %s' % (option, exc.msg))
    return normalise


cpuset_cpus = cpuset('cpuset_cpus')
cpuset_mems = cpuset('cpuset_mems')


pids_limit = non_negative_int('pids_limit')


def blkio_weight(value: int, context: Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value != 0 and not 10 <= value <= 1000:
        raise ValidationError('blkio_weight: %r must be 0 (default) or from 10 to 1000' % (value,))
    if value and not cgroups.blkio_weight_supported():
        raise ValidationError('blkio_weight: this host has no block I/O weight controller (blkio.weight, or '
                              'io.weight with the BFQ scheduler); leave blkio_weight out here')
    return value


def cpu_quota(value: int, context: Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value != 0 and not 1000 <= value <= 2 ** 40:
        raise ValidationError('cpu_quota: %r must be 0 (no limit) or microseconds of CPU time per period, at least 1000'
                              % (value,))
    return value


def cpu_period(value: int, context: Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value != 0 and not 1000 <= value <= 1000000:
        raise ValidationError('cpu_period: %r must be 0 (the default, 100000) or from 1000 to 1000000 microseconds'
                              % (value,))
    return value


def memory_swappiness(value: int, context: Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 100:
        raise ValidationError('memory_swappiness: %r must be from 0 to 100, or -1 for the host\'s' % (value,))
    if value >= 0 and cgroups.cgroup_mode() == 'unified':
        raise ValidationError('memory_swappiness: cgroup v2 has no per-container swappiness (this host runs cgroup v2); '
                              'leave it out, or use memory_swap to limit swap')
    return value


# Block device I/O limits: "device:rate" entries -> "device:number", the rate per second on that block device.
def _device_limit(option: str, in_bytes: bool) -> Callable[[object, Context], list[str]]:
    def normalise(value: object, context: Context) -> list[str]:
        if not isinstance(value, list):
            raise ValidationError('%s: give a list such as ["/dev/sda:%s"]' % (option, '10m' if in_bytes else '1000'))
        result = {}
        for item in value:
            if isinstance(item, dict):
                path, rate = item.get('path'), item.get('rate')
            else:
                path, _sep, rate = str(item).rpartition(':')
            if not path or rate in (None, ''):
                raise ValidationError('%s: %r must be "DEVICE:RATE" or {path, rate}' % (option, item))
            path = str(path)
            if not os.path.isabs(path):
                raise ValidationError('%s: %r is not the absolute path of a block device' % (option, path))
            try:
                mode = os.stat(path).st_mode
            except OSError:
                mode = 0
            if not stat.S_ISBLK(mode):
                raise ValidationError('%s: %s is not a block device of this host' % (option, path))
            if in_bytes:
                number = parse_size(rate, option)
            elif str(rate).strip().isdigit():
                number = int(str(rate).strip())
            else:
                raise ValidationError('%s: %r is not a number of operations per second' % (option, rate))
            if number <= 0:
                raise ValidationError('%s: the rate of %s must be above 0 (leave the device out for no limit)'
                                      % (option, path))
            result[path] = number
        return ['%s:%d' % item for item in sorted(result.items())]
    return normalise


device_read_bps = _device_limit('device_read_bps', True)
device_write_bps = _device_limit('device_write_bps', True)
device_read_iops = _device_limit('device_read_iops', False)
device_write_iops = _device_limit('device_write_iops', False)


# -- spec mappers (also make the runtime update document) -----------------------------------------------

def _resources(spec: dict[str, Any]) -> dict[str, Any]:
    return spec['linux']['resources']


def _mapper(section: str, key: str) -> Callable[[dict[str, Any], Any, dict[str, Any]], None]:
    """The mapper of a limit that is one key of linux.resources; 0 or empty: no limit, nothing written."""
    def map_limit(spec: dict[str, Any], value: Any, config: dict[str, Any]) -> None:
        if value:
            _resources(spec).setdefault(section, {})[key] = value
    return map_limit


map_memory = _mapper('memory', 'limit')
map_memory_reservation = _mapper('memory', 'reservation')
map_memory_swap = _mapper('memory', 'swap')  # OCI's memory.swap is memory + swap; -1 is unlimited swap
map_cpu_shares = _mapper('cpu', 'shares')
map_cpuset_cpus = _mapper('cpu', 'cpus')
map_cpuset_mems = _mapper('cpu', 'mems')
map_pids_limit = _mapper('pids', 'limit')
map_blkio_weight = _mapper('blockIO', 'weight')


def map_cpus(spec: dict[str, Any], value: float | None, config: dict[str, Any]) -> None:
    if value:
        _resources(spec).setdefault('cpu', {}).update(quota=int(round(value * CPU_PERIOD)), period=CPU_PERIOD)


map_cpu_quota = _mapper('cpu', 'quota')
map_cpu_period = _mapper('cpu', 'period')


def map_memory_swappiness(spec: dict[str, Any], value: int | None, config: dict[str, Any]) -> None:
    if value is not None and value >= 0:
        _resources(spec).setdefault('memory', {})['swappiness'] = value


def _throttle_mapper(key: str) -> Callable[[dict[str, Any], Any, dict[str, Any]], None]:
    """linux.resources.blockIO.KEY: the device's major and minor number, looked up when the spec is made."""
    def map_throttle(spec: dict[str, Any], value: list[str] | None, config: dict[str, Any]) -> None:
        entries = []
        for item in value or []:
            path, _sep, rate = item.rpartition(':')
            try:
                device = os.stat(path).st_rdev
            except OSError:
                raise ValidationError('%s: the block device %s is not on this host any more' % (key, path))
            entries.append({'major': os.major(device), 'minor': os.minor(device), 'rate': int(rate)})
        if entries:
            _resources(spec).setdefault('blockIO', {})[key] = entries
    return map_throttle


map_device_read_bps = _throttle_mapper('throttleReadBpsDevice')
map_device_write_bps = _throttle_mapper('throttleWriteBpsDevice')
map_device_read_iops = _throttle_mapper('throttleReadIOPSDevice')
map_device_write_iops = _throttle_mapper('throttleWriteIOPSDevice')


# -- live matchers: (wanted, live values) -> True / False / None (not readable here) ---------------------

def _bytes(name: str) -> Matcher:
    def match(wanted: int, live: dict[str, Any]) -> bool | None:
        if name not in live:
            return None
        if wanted and wanted > 0:
            # The kernel rounds byte limits down to whole pages.
            page = os.sysconf('SC_PAGE_SIZE')
            return live[name] == wanted // page * page
        return live[name] == wanted
    return match


match_memory = _bytes('memory')
match_memory_reservation = _bytes('memory_reservation')


def match_memory_swap(wanted: int, live: dict[str, Any]) -> bool | None:
    if not wanted:
        return True  # no swap limit asked: whatever the kernel says
    return _bytes('memory_swap')(wanted, live)


def match_cpus(wanted: float, live: dict[str, Any]) -> bool | None:
    if not wanted:
        return True  # no limit asked through cpus (cpu_quota may set one: it is read back on its own)
    if 'cpus' not in live:
        return None
    return int(round(live['cpus'] * CPU_PERIOD)) == int(round(wanted * CPU_PERIOD))


def match_cpu_shares(wanted: int, live: dict[str, Any]) -> bool | None:
    if not wanted:
        return True
    if 'cpu_shares' in live:
        return live['cpu_shares'] == wanted
    if 'cpu_weight' in live:
        return live['cpu_weight'] == cgroups.shares_to_weight(wanted)  # cgroup v2
    return None


def _unless_unset(name: str) -> Matcher:
    def match(wanted: object, live: dict[str, Any]) -> bool | None:
        if not wanted:
            return True  # nothing asked: whatever the parent cgroup gives is right
        return live[name] == wanted if name in live else None
    return match


match_cpuset_cpus = _unless_unset('cpuset_cpus')
match_cpuset_mems = _unless_unset('cpuset_mems')
match_blkio_weight = _unless_unset('blkio_weight')


def match_pids_limit(wanted: int, live: dict[str, Any]) -> bool | None:
    return live['pids_limit'] == wanted if 'pids_limit' in live else None


match_cpu_quota = _unless_unset('cpu_quota')
match_cpu_period = _unless_unset('cpu_period')
