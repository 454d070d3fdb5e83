# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the container's process: command, entrypoint, env, labels, working dir, user, groups, host name,
signals, limits, its init and umask."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from .._runtime.errors import ValidationError
from .._runtime.parsers import absolute_path, parse_signal, parse_size, split_command, string_dict

if TYPE_CHECKING:
    from typing import Any, Callable

    from .base import Context

HOSTNAME_MAX = 64  # the kernel's limit (HOST_NAME_MAX)
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
_HOSTNAME = r'[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*'


# -- normalisers: (value, context) -> normalised value ---------------------------------------------------

def command(value: object, context: Context) -> list[str] | None:
    return split_command(value)


def entrypoint(value: object, context: Context) -> list[str] | None:
    if value in ('', []):
        return []
    return split_command(value, 'entrypoint')


def env(value: dict[str, Any], context: Context) -> dict[str, str] | None:
    return string_dict(value, 'env')


def labels(value: dict[str, Any], context: Context) -> dict[str, str] | None:
    return string_dict(value, 'labels')


def workdir(value: str, context: Context) -> str:
    return absolute_path(value, 'workdir')


def user(value: str, context: Context) -> str:
    """``uid[:gid]`` or ``name[:group]``, syntax only: names are resolved by the group check ``user``."""
    text = str(value).strip()
    if not text:
        raise ValidationError('user: must not be empty')
    return text


def hostname(value: str, context: Context) -> str:
    value = str(value)
    if len(value) > HOSTNAME_MAX or not re.fullmatch(_HOSTNAME, value):
        raise ValidationError('hostname: %r is not a valid host name (up to %d letters, digits, "-" and ".")'
                              % (value, HOSTNAME_MAX))
    return value


def default_hostname(context: Context) -> str:
    """The container name made a valid host name: '_' -> '-', empty or dashed labels cleaned."""
    parts = [label.strip('-') for label in context.name.replace('_', '-').split('.')]
    return '.'.join(label for label in parts if label)[:HOSTNAME_MAX - 1].strip('.-') or 'container'


def stop_signal(value: object, context: Context) -> int:
    return parse_signal(value, 'stop_signal')


def log_size_max(value: object, context: Context) -> int:
    return parse_size(value, 'log_size_max')


def non_negative_int(option: str) -> Callable[[int, Context], int]:
    def normalise(value: int, context: Context) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError('%s: %r must be a whole number of 0 or more' % (option, value))
        return value
    return normalise


stop_timeout = non_negative_int('stop_timeout')
restart_retries = non_negative_int('restart_retries')

# ulimits: the names docker and podman take, and their RLIMIT_*.
ULIMITS = ('as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss',
           'rtprio', 'rttime', 'sigpending', 'stack')
UNLIMITED = -1  # RLIM_INFINITY, as the spec writes it (the runtime takes it as 2**64-1)


def _limit_value(value: object, name: str) -> int:
    text = str(value).strip().lower()
    if text in ('unlimited', '-1', 'infinity'):
        return UNLIMITED
    if not text.isdigit():
        raise ValidationError('ulimits: %s: %r is not a number or unlimited' % (name, value))
    return int(text)


def ulimits(value: dict[str, Any], context: Context) -> dict[str, dict[str, int]]:
    """{name: "soft[:hard]" | number | {soft, hard}} -> {name: {soft, hard}}, within the host's hard limits."""
    import resource  # pylint: disable=import-outside-toplevel
    if not isinstance(value, dict):
        raise ValidationError('ulimits: give a dictionary such as {nofile: "1024:4096"}')
    result = {}
    for key, item in value.items():
        name = str(key).lower()
        name = name[len('rlimit_'):] if name.startswith('rlimit_') else name
        if name not in ULIMITS:
            raise ValidationError('ulimits: %r is not a limit; known: %s' % (key, ', '.join(ULIMITS)))
        if isinstance(item, dict):
            soft, hard = item.get('soft'), item.get('hard', item.get('soft'))
        else:
            soft, _sep, hard = str(item).partition(':')
            hard = hard or soft
        soft_value, hard_value = _limit_value(soft, name), _limit_value(hard, name)
        if hard_value != UNLIMITED and (soft_value == UNLIMITED or soft_value > hard_value):
            raise ValidationError('ulimits: %s: the soft limit %s is above the hard limit %s' % (name, soft, hard))
        _host_soft, host_hard = resource.getrlimit(getattr(resource, 'RLIMIT_' + name.upper()))
        for kind, wanted in (('hard', hard_value), ('soft', soft_value)):
            if host_hard != resource.RLIM_INFINITY and (wanted == UNLIMITED or wanted > host_hard):
                raise ValidationError('ulimits: %s %s limit %s is above this host\'s hard limit %d (the runtime would fail '
                                      'with "operation not permitted"): give at most %d'
                                      % (name, kind, 'unlimited' if wanted == UNLIMITED else wanted, host_hard, host_hard))
        result[name] = {'soft': soft_value, 'hard': hard_value}
    return result


# sysctls a container may set: those of its own IPC and network namespaces (sysctl keys, dots or slashes).
_SYSCTL_IPC = ('kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
               'kernel.shmmni', 'kernel.shm_rmid_forced')
_SYSCTL_KEY = r'[a-z0-9_]+(\.[a-zA-Z0-9_:-]+)+'


def sysctls(value: dict[str, Any], context: Context) -> dict[str, str]:
    """Namespaced kernel settings only: the IPC ones, ``fs.mqueue.*`` and ``net.*`` (with a network of its own)."""
    if not isinstance(value, dict):
        raise ValidationError('sysctls: give a dictionary such as {net.ipv4.ping_group_range: "0 2147483647"}')
    result = {}
    for key, item in value.items():
        name = str(key).strip().replace('/', '.')
        if not re.fullmatch(_SYSCTL_KEY, name):
            raise ValidationError('sysctls: %r is not a kernel setting name' % key)
        if not (name in _SYSCTL_IPC or name.startswith('fs.mqueue.') or name.startswith('net.')):
            raise ValidationError('sysctls: %s is not a setting of the container\'s own namespaces (allowed: %s, '
                                  'fs.mqueue.*, net.*); a host-wide setting belongs on the host' % (name, ', '.join(_SYSCTL_IPC)))
        text = str(item)
        if '\n' in text or '\0' in text:
            raise ValidationError('sysctls: the value of %s must be one line' % name)
        result[name] = text
    return result


# env_file: docker's --env-file format (opts/envfile): no quotes, no expansion, the value verbatim.
ENV_FILE_MAX = 1024 * 1024
_ENV_NAME_SPACE = re.compile(r'\s')


def env_file(value: object, context: Context) -> dict[str, str]:
    """Files on the managed node, read now -> {name: value} (later files win; ``env`` wins over them all).

    Each line ``NAME=value`` (the value verbatim: quotes and spaces kept, as ``docker run --env-file``
    reads it); a line ``NAME`` alone takes the variable from the module's environment when it has it;
    blank lines and lines starting with ``#`` are skipped.
    """
    if value in ({}, []):
        return {}  # none (the default)
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list) or not all(isinstance(path, str) and path for path in paths):
        raise ValidationError('env_file: give a path or a list of paths of files on the managed node')
    result: dict[str, str] = {}
    for path in paths:
        if not os.path.isabs(path):
            raise ValidationError('env_file: %r must be an absolute path on the managed node' % path)
        try:
            with open(path, 'rb') as handle:
                data = handle.read(ENV_FILE_MAX + 1)
        except OSError as exc:
            raise ValidationError('env_file: cannot read %s on the managed node: %s' % (path, exc.strerror or exc))
        if len(data) > ENV_FILE_MAX:
            raise ValidationError('env_file: %s is larger than %d bytes; is it an environment file?' % (path, ENV_FILE_MAX))
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError:
            raise ValidationError('env_file: %s is not UTF-8 text' % path)
        for number, line in enumerate(text.lstrip('\ufeff').splitlines(), 1):
            line = line.lstrip()
            if not line or line.startswith('#'):
                continue
            name, equals, item = line.partition('=')
            if not name or _ENV_NAME_SPACE.search(name) or '\0' in line:
                raise ValidationError('env_file: %s line %d: %r is not a variable name (no spaces; NAME=value)'
                                      % (path, number, name))
            if equals:
                result[name] = item
            elif name in os.environ:
                result[name] = os.environ[name]
    return result


def umask(value: object, context: Context) -> int:
    """An octal mask (``"0022"``, ``"027"``, or the number 18) -> the number."""
    text = str(value).strip()
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif re.fullmatch(r'0?[0-7]{1,3}|0o[0-7]{1,3}', text):
        number = int(text.replace('0o', ''), 8)
    else:
        raise ValidationError('umask: %r is not an octal mask such as "0022" or "0027"' % (value,))
    if not 0 <= number <= 0o777:
        raise ValidationError('umask: %r is not an octal mask from 0000 to 0777' % (value,))
    return number


def oom_score_adj(value: int, context: Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -1000 <= value <= 1000:
        raise ValidationError('oom_score_adj: %r must be a whole number from -1000 (never killed) to 1000 '
                              '(killed first)' % (value,))
    return value


def group_add(value: list[Any], context: Context) -> list[str]:
    """Group names or gids, syntax only: names are resolved by the group check ``user``."""
    result = []
    for item in value or []:
        text = str(item).strip()
        if not text or ':' in text or '\n' in text:
            raise ValidationError('group_add: %r is not a group name or gid' % (item,))
        result.append(text)
    return result


def _seconds(value: object, where: str) -> float:
    """``30``, ``"30s"``, ``"1m30s"``, ``"500ms"``, ``"2h"`` -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        parts = re.findall(r'(\d+(?:\.\d+)?)(ms|s|m|h)', text)
        if not parts or ''.join(number + unit for number, unit in parts) != text.replace(' ', ''):
            raise ValidationError('%s: %r is not a duration such as 30, 30s, 1m30s or 500ms' % (where, value))
        seconds = sum(float(number) * {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600}[unit] for number, unit in parts)
    if seconds < 0:
        raise ValidationError('%s: %r must not be negative' % (where, value))
    return seconds


HEALTH_DEFAULTS = {'interval': 30.0, 'timeout': 30.0, 'retries': 3, 'start_period': 0.0}


def healthcheck(value: object, context: Context) -> dict[str, Any]:
    """``{test, interval, timeout, retries, start_period}`` -> normalised; test as argv (a string: run by
    ``/bin/sh -c``; docker's ``[CMD, ...]``, ``[CMD-SHELL, ...]`` and ``[NONE]`` understood); {} for none."""
    if value in ({}, None):
        return {}
    if not isinstance(value, dict):
        raise ValidationError('healthcheck: give a dictionary with test (and interval, timeout, retries, start_period)')
    unknown = sorted(set(value) - set(HEALTH_DEFAULTS) - {'test'})
    if unknown:
        raise ValidationError('healthcheck: unknown keys %s; known: test, %s' % (', '.join(unknown), ', '.join(HEALTH_DEFAULTS)))
    test = value.get('test')
    if isinstance(test, list) and test and test[0] == 'NONE':
        return {}
    if isinstance(test, list) and test and test[0] in ('CMD', 'CMD-SHELL'):
        test = test[1:] if test[0] == 'CMD' else ' '.join(str(part) for part in test[1:])
    if isinstance(test, str) and test.strip():
        argv = ['/bin/sh', '-c', test]
    elif isinstance(test, list) and test and all(isinstance(part, (str, int, float)) for part in test):
        argv = [str(part) for part in test]
    else:
        raise ValidationError('healthcheck: test must be a command (a list of arguments, or a string for /bin/sh -c)')
    result: dict[str, Any] = {'test': argv}
    for key, default in HEALTH_DEFAULTS.items():
        given = value.get(key)
        if key == 'retries':
            retries = default if given is None else given
            if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
                raise ValidationError('healthcheck: retries must be a whole number of 1 or more')
            result[key] = retries
        else:
            result[key] = default if given is None else _seconds(given, 'healthcheck ' + key)
    if result['interval'] < 0.1 or result['timeout'] < 0.1:
        raise ValidationError('healthcheck: interval and timeout must be at least 0.1 s')
    return result


# init: a minimal init as PID 1, from the host, bind-mounted read-only (static binaries: they run in any root).
INIT_BINARIES = ('/usr/bin/catatonit', '/usr/libexec/podman/catatonit', '/usr/bin/tini-static', '/sbin/tini-static')
INIT_PATH = '/run/runcible-init'


def host_init() -> str | None:
    for path in INIT_BINARIES:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def init(value: bool, context: Context) -> bool:
    if value and host_init() is None:
        raise ValidationError('init: no init for containers on this host: install the catatonit package '
                              '(or tini, whose tini-static is used)')
    return bool(value)


# -- spec mappers: (spec, value, config) -> None -----------------------------------------------------------

def map_command(spec: dict[str, Any], value: list[str], config: dict[str, Any]) -> None:
    spec['process']['args'] = list(config.get('entrypoint') or []) + list(value)


def map_env(spec: dict[str, Any], value: dict[str, str] | None, config: dict[str, Any]) -> None:
    variables = {'PATH': DEFAULT_PATH, 'HOSTNAME': spec['hostname'], 'container': 'runcible'}
    variables.update((config.get('image_config') or {}).get('env') or {})  # the image's Env, under the task's
    variables.update(config.get('env_file') or {})  # then the env files'
    variables.update(value or {})
    spec['process']['env'] = ['%s=%s' % item for item in sorted(variables.items())]


def map_workdir(spec: dict[str, Any], value: str, config: dict[str, Any]) -> None:
    spec['process']['cwd'] = value


def map_user(spec: dict[str, Any], value: str, config: dict[str, Any]) -> None:
    uid, gid = (int(part) for part in value.split(':'))
    spec['process']['user'] = {'uid': uid, 'gid': gid}
    # Its capabilities (a non-root user gets only the added ones): security.map_capabilities, after this.


def map_ulimits(spec: dict[str, Any], value: dict[str, dict[str, int]], config: dict[str, Any]) -> None:
    """The given limits replace the base spec's (RLIMIT_NOFILE, RLIMIT_NPROC) and join them."""
    rlimits = dict((limit['type'], limit) for limit in spec['process'].get('rlimits') or [])
    for name, limit in sorted((value or {}).items()):
        kind = 'RLIMIT_' + name.upper()
        rlimits[kind] = {'type': kind, 'soft': _rlim(limit['soft']), 'hard': _rlim(limit['hard'])}
    spec['process']['rlimits'] = [rlimits[kind] for kind in sorted(rlimits)]


def _rlim(value: int) -> int:
    return (1 << 64) - 1 if value == UNLIMITED else value


def map_sysctls(spec: dict[str, Any], value: dict[str, str], config: dict[str, Any]) -> None:
    if value:
        spec['linux']['sysctl'] = dict(value)


def map_hostname(spec: dict[str, Any], value: str, config: dict[str, Any]) -> None:
    spec['hostname'] = value


def map_read_only(spec: dict[str, Any], value: bool, config: dict[str, Any]) -> None:
    spec['root']['readonly'] = bool(value)


def map_labels(spec: dict[str, Any], value: dict[str, str] | None, config: dict[str, Any]) -> None:
    merged = dict((config.get('image_config') or {}).get('labels') or {})  # the image's Labels, under the task's
    merged.update(value or {})
    for key, item in merged.items():
        spec['annotations']['io.runcible.label.' + key] = item


def map_umask(spec: dict[str, Any], value: int | None, config: dict[str, Any]) -> None:
    if value is not None:
        spec['process']['user']['umask'] = value


def map_oom_score_adj(spec: dict[str, Any], value: int | None, config: dict[str, Any]) -> None:
    if value is not None:
        spec['process']['oomScoreAdj'] = value


def map_group_add(spec: dict[str, Any], value: list[str], config: dict[str, Any]) -> None:
    """The given groups (resolved to gids) and the user's own supplementary groups of the root's /etc/group."""
    gids = [int(item) for item in value or [] if item.isdigit()] + list(config.get('user_groups') or [])
    primary = spec['process']['user']['gid']
    gids = sorted(set(gid for gid in gids if gid != primary))
    if gids:
        spec['process']['user']['additionalGids'] = gids


def map_init(spec: dict[str, Any], value: bool, config: dict[str, Any]) -> None:
    """The host's init bind-mounted read-only, and put before the command: it reaps zombies and forwards signals."""
    if not value:
        return
    binary = host_init()
    if binary is None:
        raise ValidationError('init: the container has init: true but this host has no catatonit or tini-static '
                              'any more: install the catatonit package')
    spec['mounts'].append({'destination': INIT_PATH, 'type': 'bind', 'source': binary,
                           'options': ['bind', 'ro', 'nosuid', 'nodev']})
    spec['process']['args'] = [INIT_PATH, '--'] + list(spec['process']['args'])


def map_tty(spec: dict[str, Any], value: bool, config: dict[str, Any]) -> None:
    """A pseudo-terminal as the process's stdin, stdout and stderr (conmon holds its other side and logs it)."""
    spec['process']['terminal'] = bool(value)


# -- systemd as PID 1 ------------------------------------------------------------------------------

# podman's --systemd=always: what systemd as a container's PID 1 needs (besides `container` in its
# environment, which every container has) and what it is stopped with.
SYSTEMD_TMPFS = (
    ('/run', ['rw', 'nosuid', 'nodev', 'mode=755']),
    ('/run/lock', ['rw', 'nosuid', 'nodev', 'noexec', 'mode=1777']),
    ('/tmp', ['rw', 'nosuid', 'nodev', 'mode=1777']),
    ('/var/log/journal', ['rw', 'nosuid', 'nodev', 'noexec', 'mode=755']),
)
SYSTEMD_COMMAND = ['/sbin/init']
SYSTEMD_STOP_SIGNAL = 'SIGRTMIN+3'  # systemd's orderly shutdown


def cgroup2_nsdelegate(mountinfo: str = '/proc/self/mountinfo', cgroup_root: str = '/sys/fs/cgroup') -> bool:
    """Is the host's cgroup2 at ``cgroup_root`` mounted with nsdelegate? Then a process in a cgroup namespace
    cannot write the control files of its namespace's root cgroup: its own limits stay the host's to set."""
    with open(mountinfo) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 4 and fields[4] == cgroup_root and ' - cgroup2 ' in line:
                return 'nsdelegate' in line.split(' - ', 1)[1].split()[-1].split(',')
    return False


def check_systemd(values: dict[str, Any], context: Context, complete: bool) -> None:
    """``systemd: true`` runs /sbin/init and stops it with SIGRTMIN+3 unless ``command``/``stop_signal`` say
    otherwise (finished here, so they are recorded and compared as given); and it needs a cgroup tree of its
    own that it may write, which the host must be able to give without handing over the container's limits."""
    if not values.get('systemd'):
        return
    if not complete:
        values.setdefault('command', list(SYSTEMD_COMMAND))
        values.setdefault('stop_signal', parse_signal(SYSTEMD_STOP_SIGNAL))
    if context.effective(values, 'privileged'):
        return  # the cgroup tree is writable already
    from .._runtime.host import cgroup_mode  # pylint: disable=import-outside-toplevel
    mode = cgroup_mode()
    if mode == 'unified':
        if context.effective(values, 'cgroupns', 'private') != 'private':
            raise ValidationError('systemd: true on this cgroup v2 host needs cgroupns: private (its cgroup tree is '
                                  'then its own); drop cgroupns: host')
        if not cgroup2_nsdelegate():
            raise ValidationError('systemd: true needs the host cgroup2 mounted with nsdelegate (as systemd mounts it), '
                                  'so that the container cannot raise its own limits; remount it with nsdelegate, or '
                                  'accept that with privileged: true')
    elif not os.path.isdir('/sys/fs/cgroup/systemd'):
        raise ValidationError('systemd: true on this cgroup v1 host needs the name=systemd hierarchy at '
                              '/sys/fs/cgroup/systemd; mount it (mount -t cgroup -o none,name=systemd cgroup '
                              '/sys/fs/cgroup/systemd), or use privileged: true')


def map_systemd(spec: dict[str, Any], value: bool, config: dict[str, Any]) -> None:
    """After the mounts: systemd's tmpfs where no mount is, and a cgroup tree it can write, the container's own:
    cgroup v2 in its cgroup namespace; v1 its cgroup of the name=systemd hierarchy."""
    if not value:
        return
    _systemd_tmpfs(spec)
    if config.get('privileged'):
        return  # the cgroup tree is writable already
    from .._runtime.host import cgroup_mode  # pylint: disable=import-outside-toplevel
    if cgroup_mode() == 'unified':
        for mount in spec['mounts']:
            if mount['destination'] == '/sys/fs/cgroup':
                mount['options'] = [option for option in mount['options'] if option != 'ro'] + ['rw']
        return
    targets = set(mount['destination'] for mount in spec['mounts'])
    if '/sys/fs/cgroup/systemd' not in targets:
        # The container's own cgroup of the name=systemd hierarchy (the runtime makes it in every hierarchy before
        # it mounts anything), never the host's whole tree: no other unit's cgroup, no release_agent (the root's).
        from .._runtime.cgroups import DEFAULT_CGROUPFS_PARENT, Placement  # pylint: disable=import-outside-toplevel
        placement = Placement(config.get('cgroup_manager') or 'cgroupfs',
                              config.get('cgroup_parent') or DEFAULT_CGROUPFS_PARENT,
                              spec['annotations']['io.runcible.container.id'])
        spec['mounts'].append({'destination': '/sys/fs/cgroup/systemd', 'type': 'bind',
                               'source': '/sys/fs/cgroup/systemd' + placement.cgroup_path,
                               'options': ['bind', 'nosuid', 'noexec', 'nodev', 'rw']})


def _systemd_tmpfs(spec: dict[str, Any]) -> None:
    targets = set(mount['destination'] for mount in spec['mounts'])
    for target, options in SYSTEMD_TMPFS:
        if target in targets:
            continue
        entry = {'destination': target, 'type': 'tmpfs', 'source': 'tmpfs', 'options': list(options)}
        below = [index for index, mount in enumerate(spec['mounts'])
                 if mount['destination'].startswith(target + '/')]
        spec['mounts'].insert(below[0] if below else len(spec['mounts']), entry)
