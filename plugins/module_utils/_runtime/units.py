# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit-managed containers (the quadlet idea): a container run *by* a systemd service of its own.

``runcible-NAME.service`` (NAME escaped as systemd escapes unit names) is written by the task layer
(``_container_unit.py``); its ``ExecStart``/``ExecStop``/``ExecStopPost`` run the runtime library
installed under the store (:mod:`.payload`, ``ROOT/lib/current/exit.py``, the same launcher as
conmon's exit command and the boot unit) with ``--unit-start`` / ``--unit-stop``, handled here:

* ``--unit-start`` starts the container through the engine (its conmon stays in the service's cgroup:
  ``INVOCATION_ID`` is set, see ``cgroups.Placement.place_conmon``), then tells systemd
  ``MAINPID=<conmon>`` and ``READY=1`` (python-systemd's ``daemon.notify``) -- at once
  (``sdnotify: conmon``), or when the container itself sent ``READY=1`` on the socket bind-mounted at
  ``/run/notify/notify.sock`` (``sdnotify: container``: we relay it). ``sdnotify: ignore`` is a
  ``Type=forking`` unit whose main process is conmon's pid file: nothing is notified.
* ``--unit-stop`` stops the container (stop signal, ``stop_timeout``, SIGKILL) and releases what it held.

Both take the container's lock, unless the task that holds it waits for this very unit (it wrote the
hand-off file ``ROOT/locks/NAME.unit-task`` with its pid before calling ``systemctl``): a task's
``systemctl start`` under the lock would otherwise wait for a unit that waits for the task.

Every value that goes into a unit file is checked and quoted for systemd (``exec_arg``): no control
character, ``%`` and ``$`` doubled, arguments double-quoted; nothing passes through a shell.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from .errors import MissingLibraryError, RuncibleError, ValidationError

if TYPE_CHECKING:
    from typing import Any, Iterator

    from .engine import Engine
    from .record import Record

UNIT_DIR = '/etc/systemd/system'
SDNOTIFY = ('conmon', 'container', 'ignore')
NOTIFY_DIR = 'notify'  # in the container's run dir; bind-mounted at CONTAINER_NOTIFY_DIR (sdnotify: container)
CONTAINER_NOTIFY_DIR = '/run/notify'
CONTAINER_NOTIFY_SOCKET = CONTAINER_NOTIFY_DIR + '/notify.sock'
HANDOFF_SUFFIX = '.unit-task'
STORE_MARK = '# runcible-store: '
RESTART = {'no': 'no', 'on-failure': 'on-failure', 'always': 'always', 'unless-stopped': 'always'}
SYSTEMCTL_TIMEOUT = 900


def systemd_booted() -> bool:
    """Is systemd PID 1 here (sd_booted()'s test)?"""
    return os.path.isdir('/run/systemd/system')


def require_systemd(option: str = 'systemd_unit') -> None:
    if not systemd_booted():
        raise ValidationError('%s: this host does not run systemd as PID 1 (/run/systemd/system is missing), so no '
                              'unit can run the container: leave %s out (the container is then run by tasks, and '
                              'restart_policy restarts it without systemd)' % (option, option))


def require_python_systemd() -> None:
    """python-systemd's ``daemon.notify`` tells systemd the container is ready: the unit's Python must have it."""
    import importlib.util  # pylint: disable=import-outside-toplevel
    try:
        found = importlib.util.find_spec('systemd.daemon') is not None
    except (ImportError, ValueError) as exc:
        found, trace = False, str(exc)
    else:
        trace = '' if found else 'No module named systemd.daemon'
    if not found:
        raise MissingLibraryError('systemd-python', 'for systemd_unit (the unit tells systemd when the container is '
                                  'ready): install the Debian package python3-systemd', trace)


def escape(name: str) -> str:
    """``name`` as a part of a unit name: what systemd allows stays, anything else becomes ``\\xNN`` (as
    ``systemd-escape``), a leading dot too."""
    out = []
    for index, char in enumerate(name):
        if re.match(r'[A-Za-z0-9:_.-]', char) and not (index == 0 and char == '.'):
            out.append(char)
        else:
            out.extend('\\x%02x' % byte for byte in char.encode('utf-8'))
    return ''.join(out)


def service_name(name: str) -> str:
    from .parsers import validate_name  # pylint: disable=import-outside-toplevel
    return 'runcible-%s.service' % escape(validate_name(name))


def socket_name(name: str) -> str:
    return service_name(name)[:-len('.service')] + '.socket'


def _check_text(value: str, what: str) -> str:
    if not isinstance(value, str) or any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValidationError('%s %r cannot go into a systemd unit (control characters)' % (what, value))
    return value


def exec_arg(value: str) -> str:
    """One argument of an ``Exec*=`` line: double-quoted, ``\\`` and ``"`` escaped, specifiers (``%``) and
    variables (``$``) doubled, so systemd passes exactly ``value``."""
    _check_text(value, 'the argument')
    quoted = value.replace('\\', '\\\\').replace('"', '\\"').replace('%', '%%').replace('$', '$$')
    return '"%s"' % quoted


def text_value(value: str) -> str:
    """A value of a setting that expands specifiers (``Description=``, ``PIDFile=``)."""
    return _check_text(value, 'the value').replace('%', '%%')


def launcher_argv(root: str, run_root: str, verb: str, *args: str) -> list[str]:
    """The argv a unit runs: the host's Python, isolated, the store's installed runtime library (lib/current)."""
    from .payload import LAUNCHER  # pylint: disable=import-outside-toplevel
    root, run_root = os.path.normpath(root), os.path.normpath(run_root)
    return [sys.executable, '-I', '-B', os.path.join(root, 'lib', 'current', LAUNCHER), verb, root, run_root] + list(args)


def exec_line(argv: list[str]) -> str:
    return ' '.join(exec_arg(arg) for arg in argv)


def render_service(name: str, root: str, run_root: str, config: dict[str, Any], container_id: str) -> str:
    """The text of ``runcible-NAME.service`` for a container with ``config``."""
    sdnotify = config.get('sdnotify') or 'conmon'
    if sdnotify not in SDNOTIFY:
        raise ValidationError('sdnotify: %r is not one of %s' % (sdnotify, ', '.join(SDNOTIFY)))
    root, run_root = os.path.normpath(root), os.path.normpath(run_root)
    lines = ['# runcible.oci: container %s, run by this unit (the container module\'s systemd_unit).' % name,
             '# Written by the collection; its next task overwrites edits, state absent removes it.',
             STORE_MARK + text_value(root),
             '[Unit]',
             'Description=%s' % text_value('runcible.oci container %s (%s)' % (name, root)),
             'Wants=network-online.target',
             'After=network-online.target local-fs.target']
    if config.get('systemd_socket'):
        lines += ['Requires=%s' % socket_name(name), 'After=%s' % socket_name(name)]
    lines += ['', '[Service]']
    if sdnotify == 'ignore':
        from .store import ContainerPaths  # pylint: disable=import-outside-toplevel
        lines += ['Type=forking',
                  'PIDFile=%s' % text_value(ContainerPaths(root, run_root, name, container_id).conmon_pidfile)]
    else:
        lines += ['Type=notify', 'NotifyAccess=all']
    stop_timeout = int(config.get('stop_timeout', 10) or 0)
    lines += ['ExecStart=' + exec_line(launcher_argv(root, run_root, '--unit-start', name)),
              'ExecStop=' + exec_line(launcher_argv(root, run_root, '--unit-stop', name)),
              'ExecStopPost=' + exec_line(launcher_argv(root, run_root, '--unit-stop', name)),
              'Restart=%s' % RESTART[config.get('restart_policy') or 'no'],
              'RestartSec=1',
              'TimeoutStartSec=300',
              'TimeoutStopSec=%d' % (stop_timeout + 60),
              '', '[Install]', 'WantedBy=multi-user.target', '']
    return '\n'.join(lines)


def render_socket(name: str, root: str, listen: list[str]) -> str:
    """``runcible-NAME.socket``: systemd listens on ``listen`` (``ListenStream=`` values) and starts the service
    on the first connection, handing it the sockets (``LISTEN_FDS``)."""
    lines = ['# runcible.oci: the sockets of container %s (the container module\'s systemd_socket).' % name,
             STORE_MARK + text_value(os.path.normpath(root)),
             '[Unit]',
             'Description=%s' % text_value('runcible.oci sockets of container %s' % name),
             '', '[Socket]']
    lines += ['ListenStream=%s' % text_value(item) for item in listen]
    lines += ['', '[Install]', 'WantedBy=sockets.target', '']
    return '\n'.join(lines)


def unit_store(path: str) -> str | None:
    """The store a unit file of ours names (``# runcible-store: ROOT``); None: no such file, or not ours."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(STORE_MARK):
                    return line[len(STORE_MARK):].rstrip('\n').replace('%%', '%')
    except OSError:
        return None
    return None


def read_unit(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    argv = ['systemctl'] + list(args)
    try:
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=SYSTEMCTL_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuncibleError('cannot run %s: %s' % (' '.join(argv), exc))
    if check and proc.returncode != 0:
        error = proc.stderr.decode('utf-8', 'replace').strip()
        raise RuncibleError('%s failed (exit %d): %s' % (' '.join(argv), proc.returncode, error))
    return proc


def unit_state(unit: str) -> dict[str, str]:
    """``ActiveState``, ``UnitFileState``, ``LoadState`` of ``unit`` (``systemctl show``)."""
    out = systemctl('show', '-p', 'ActiveState', '-p', 'UnitFileState', '-p', 'LoadState', '--', unit).stdout
    return dict(line.split('=', 1) for line in out.decode('utf-8', 'replace').splitlines() if '=' in line)


def journal_tail(unit: str, lines: int = 15) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        proc = subprocess.run(['journalctl', '--no-pager', '-q', '-o', 'cat', '-n', str(lines), '-u', unit],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=60, check=False)
        return proc.stdout.decode('utf-8', 'replace').strip()
    return ''


# -- health checks on a schedule: a transient timer per container ------------------------------------------
HEALTH_PREFIX = 'runcible-health-'


def health_unit(container_id: str) -> str:
    """The transient units' name (``.timer`` and ``.service``): unique per container (its random id)."""
    if not re.fullmatch(r'[0-9a-f]{64}', container_id or ''):
        raise ValidationError('not a container id: %r' % (container_id,))
    return HEALTH_PREFIX + container_id[:32]


def start_health_timer(root: str, run_root: str, name: str, container_id: str, interval: float) -> str:
    """``systemd-run`` a transient timer that runs ``exit.py --health`` every ``interval`` seconds after the last
    check ended (the first one ``interval`` after now); -> its unit name. One that runs already is kept."""
    unit = health_unit(container_id)
    argv = ['systemd-run', '--unit=' + unit, '--quiet', '--collect',
            '--on-active=%dms' % int(interval * 1000), '--on-unit-inactive=%dms' % int(interval * 1000),
            '--timer-property=AccuracySec=100ms', '--description=runcible.oci health check of container ' + name,
            '--'] + launcher_argv(root, run_root, '--health', name, container_id)
    try:
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuncibleError('cannot run systemd-run for the health timer of container %s: %s' % (name, exc))
    if proc.returncode != 0 and unit_state(unit + '.timer').get('ActiveState') != 'active':
        raise RuncibleError('systemd-run could not make the health timer of container %s: %s'
                            % (name, proc.stderr.decode('utf-8', 'replace').strip()))
    return unit


def stop_health_timer(unit: str) -> None:
    """Stop the timer and its service (transient: then they are gone), and forget a failed one."""
    if not unit.startswith(HEALTH_PREFIX) or not systemd_booted():
        return
    systemctl('stop', '--', unit + '.timer', unit + '.service', check=False)
    systemctl('reset-failed', '--', unit + '.timer', unit + '.service', check=False)


def ensure_health_timer(engine: Engine, record: Record, replace: bool = False) -> None:
    """On systemd hosts, the transient timer that runs a running container's health check; kept while the
    container exists (a restart keeps it), ``replace``d when the check changed, stopped when it has none."""
    settings = record['config'].get('healthcheck') or {}
    if not systemd_booted() or not (settings.get('test') or record.get('health_timer')):
        return
    if record.get('health_timer') and (replace or not settings.get('test')):
        stop_health_timer(record['health_timer'])
        record['health_timer'] = None
    if settings.get('test'):
        from . import payload  # pylint: disable=import-outside-toplevel
        payload.install(engine.store.root)  # lib/current, what the timer runs
        try:
            record['health_timer'] = start_health_timer(engine.store.root, engine.store.run_root, record['name'],
                                                        record['id'], float(settings['interval']))
        except RuncibleError as exc:
            engine.warnings.append('%s; its health is evaluated on demand only' % exc)
    engine.store.save(record)


# -- the hand-off: a task that holds the container's lock waits for the unit ---------------------------------
def handoff_path(root: str, name: str) -> str:
    return os.path.join(root, 'locks', name + HANDOFF_SUFFIX)


@contextlib.contextmanager
def handoff(root: str, name: str) -> Iterator[None]:
    """Around a task's ``systemctl`` call under the container's lock: the unit's commands may go on without it."""
    from .files import atomic_write  # pylint: disable=import-outside-toplevel
    from .host import read_proc_stat  # pylint: disable=import-outside-toplevel
    path = handoff_path(root, name)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    stat = read_proc_stat(os.getpid())
    if not stat:  # without its start time a later process of the same pid would pass for this task
        raise RuncibleError('cannot read the start time of this task (/proc/%d/stat): the unit cannot be driven '
                            'while the task holds the lock of container %s' % (os.getpid(), name))
    atomic_write(path, '%d %s\n' % (os.getpid(), stat[1]), mode=0o600)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _handed_off(root: str, name: str) -> bool:
    from .host import process_alive  # pylint: disable=import-outside-toplevel
    try:
        with open(handoff_path(root, name)) as handle:
            pid, start = (int(part) for part in handle.read().split())
    except (OSError, ValueError):
        return False
    return bool(start) and process_alive(pid, start)


@contextlib.contextmanager
def container_lock(root: str, name: str, timeout: float = 600.0) -> Iterator[None]:
    """The container's lock for a unit's command, or none while a task holding it waits for this unit."""
    path = os.path.join(root, 'locks', name + '.lock')
    deadline = time.monotonic() + timeout
    while True:
        fd = None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except FileNotFoundError:
            yield  # no lock file: no container of that name now (the caller finds no record)
            return
        except BlockingIOError:
            os.close(fd)  # type: ignore[arg-type]
            if _handed_off(root, name):
                yield
                return
            if time.monotonic() > deadline:
                raise RuncibleError('timed out waiting for the lock of container %s' % name)
            time.sleep(0.1)
            continue
        # The file may have been removed (and made again by a new task) while we waited: a lock on the old inode
        # would exclude nobody. The same check as Store.lock's.
        try:
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        try:
            yield
        finally:
            os.close(fd)
        return


# -- the unit's commands (ExecStart, ExecStop), run by the launcher with the host's Python ---------------------
def _out(text: str) -> None:
    sys.stdout.write(text.rstrip('\n') + '\n')  # to the unit's journal
    sys.stdout.flush()


def _notify(socket_path: str | None, message: str) -> None:
    """Tell systemd (python-systemd's ``daemon.notify``, which reads ``NOTIFY_SOCKET``)."""
    if not socket_path:
        return
    try:
        from systemd import daemon  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise MissingLibraryError('systemd-python', 'to tell systemd the container is ready', str(exc))
    os.environ['NOTIFY_SOCKET'] = socket_path
    try:
        daemon.notify(message)
    finally:
        os.environ.pop('NOTIFY_SOCKET', None)


STATUS_INTERVAL = 0.5  # seconds between two STATUS= lines relayed to systemd
STATUS_MAX = 200  # characters of one


class NotifyRelay(object):
    """``sdnotify: container``: the datagram socket the container's ``NOTIFY_SOCKET`` names (its directory,
    ``RUN_DIR/notify``, is bind-mounted at /run/notify; ``bundle/notify`` links to it), owned by the container's
    user, mode 0600; we read it until the container says ``READY=1``."""

    def __init__(self, run_dir: str, bundle: str, user: str) -> None:
        import socket  # pylint: disable=import-outside-toplevel
        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        directory = os.path.join(run_dir, NOTIFY_DIR)
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o711)  # root's; the container's user only passes through to its socket
        path = os.path.join(directory, 'notify.sock')
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            # Through the directory's fd: a run dir's path may be longer than a socket address allows (108 bytes).
            self.socket.bind('/proc/self/fd/%d/notify.sock' % dir_fd)
        finally:
            os.close(dir_fd)
            os.umask(old)
        uid, gid = (int(part) for part in (user or '0:0').split(':'))
        os.chown(path, uid, gid)
        link = os.path.join(bundle, NOTIFY_DIR)
        if os.path.islink(link) and os.readlink(link) == directory:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        os.symlink(directory, link)

    def wait_ready(self, alive: Any, status: Any, interval: float = 0.5) -> bool:
        """Until the container sends ``READY=1`` (True) or ``alive()`` says it is gone (False); ``STATUS=`` lines
        go to ``status(text)``."""
        import select  # pylint: disable=import-outside-toplevel
        last_status = 0.0
        while True:
            ready, _w, _x = select.select([self.socket], [], [], interval)
            if ready:
                data = self.socket.recv(65536)
                for line in data.decode('utf-8', 'replace').split('\n'):
                    if line == 'READY=1':
                        return True
                    # A container may flood: at most one STATUS= every STATUS_INTERVAL seconds reaches systemd
                    # (each is a D-Bus signal to every listener), cut to STATUS_MAX characters, no NUL.
                    now = time.monotonic()
                    if line.startswith('STATUS=') and now - last_status >= STATUS_INTERVAL:
                        last_status = now
                        status(line[:STATUS_MAX].replace('\0', ''))
            elif not alive():
                return False

    def close(self) -> None:
        self.socket.close()


def listen_fd_count(fds: str | None, pid: str | None) -> int:
    """sd_listen_fds(): the sockets systemd passed (fds 3..), when they are meant for this process."""
    if not fds or not pid or not fds.isdigit() or pid != str(os.getpid()):
        return 0
    count = int(fds)
    for fd in range(3, 3 + count):
        os.fstat(fd)  # there, or OSError: a broken hand-over fails the start
    return count


def unit_start(root: str, run_root: str, name: str) -> int:
    """``ExecStart``: start the container; tell systemd its main pid (conmon) and that it is ready."""
    import json  # pylint: disable=import-outside-toplevel
    from .engine import Engine  # pylint: disable=import-outside-toplevel
    from .host import process_alive  # pylint: disable=import-outside-toplevel
    from .store import Store  # pylint: disable=import-outside-toplevel
    notify_socket = os.environ.pop('NOTIFY_SOCKET', None)  # never to conmon or the runtime: we tell systemd
    listen_fds = listen_fd_count(os.environ.pop('LISTEN_FDS', None), os.environ.pop('LISTEN_PID', None))
    os.environ.pop('LISTEN_FDNAMES', None)
    store = Store(root, run_root)
    relay = None
    with container_lock(root, name):
        record, live = store.inspect(name)
        if record is None or live is None or not record['config'].get('systemd_unit'):
            _out('container %s of %s does not exist or is not run by a unit: nothing to start' % (name, root))
            return 1
        config = record['config']
        paths = store.paths(name, record['id'])
        if config.get('sdnotify') == 'container' and live['status'] != 'running':
            relay = NotifyRelay(paths.run_dir, paths.bundle, str(config.get('user') or '0:0'))
        spec = None
        if not os.path.exists(paths.config_json) and os.path.exists(paths.saved_spec):
            with open(paths.saved_spec) as handle:
                spec = json.load(handle)
        engine = Engine(root, run_root)
        engine.listen_fds = listen_fds if live['status'] == 'stopped' else 0
        engine.start(record, live, spec)
        for warning in engine.warnings:
            _out('warning: ' + warning)
        record, live = store.inspect(name)
    if record is None or live is None or live['status'] != 'running':
        _out('container %s exited before it sent READY=1' % name if relay is not None else
             'container %s is %s after its start' % (name, live['status'] if live else 'gone'))
        return 1
    conmon_pid = int(record.get('conmon_pid') or 0)
    if relay is not None:
        _out('container %s started (pid %s): waiting for its READY=1 (sdnotify: container)' % (name, record['pid']))
        ready = relay.wait_ready(lambda: process_alive(record.get('pid'), record.get('pid_start')),
                                 lambda line: _notify(notify_socket, line))
        relay.close()
        if not ready:
            _out('container %s exited before it sent READY=1' % name)
            return 1
    if (config.get('sdnotify') or 'conmon') != 'ignore':
        _notify(notify_socket, 'MAINPID=%d\nREADY=1' % conmon_pid)
    _out('container %s is running (pid %s, conmon %d)' % (name, record['pid'], conmon_pid))
    return 0


def unit_stop(root: str, run_root: str, name: str) -> int:
    """``ExecStop``/``ExecStopPost``: stop the container (stop signal, its stop_timeout, SIGKILL) and release its
    runtime state and mounts; a container that ended on its own is only released."""
    from .engine import Engine  # pylint: disable=import-outside-toplevel
    from .store import Store  # pylint: disable=import-outside-toplevel
    store = Store(root, run_root)
    with container_lock(root, name):
        record, live = store.inspect(name)
        if record is None:
            return 0
        Engine(root, run_root).stop(record, live)
    return 0


__all__ = ['service_name', 'socket_name', 'render_service', 'render_socket', 'exec_arg', 'escape', 'systemctl',
           'unit_state', 'container_lock', 'handoff', 'require_systemd', 'require_python_systemd', 'unit_start',
           'unit_stop']
