# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start conmon, the container monitor, and read the container's pid back from it.

The handshake is libpod's: conmon gets the sync pipe on fd 3 (``_OCI_SYNCPIPE``) and the start pipe
on fd 4 (``_OCI_STARTPIPE``). conmon blocks on the start pipe until we release it (the moment to
place it in a cgroup), forks, the intermediate process exits and we reap it, then conmon runs
``runtime create`` and writes ``{"data": PID}`` to the sync pipe, or a negative ``data`` with a
``message`` when the runtime failed. conmon's stdio is /dev/null, never ours: an Ansible module whose
stdout stays open in a daemon never returns.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import time
from typing import TYPE_CHECKING

from .errors import RuntimeCommandError

if TYPE_CHECKING:
    from typing import Any, Callable, Iterable

    from .oci_cli import OCIRuntime

CONMON_PACKAGE_HINT = 'conmon not found: install the Debian package "conmon"'
DEFAULT_TIMEOUT = 120.0

_help_cache: dict[str, str] = {}


def conmon_supports(conmon_path: str, flag: str) -> bool:
    """True when the installed conmon knows ``flag`` (asked once per process; old conmons lack some)."""
    if conmon_path not in _help_cache:
        try:
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            out = subprocess.run([conmon_path, '--help'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=10, check=False).stdout.decode('utf-8', 'replace')
        except (OSError, subprocess.SubprocessError):
            out = ''
        _help_cache[conmon_path] = out
    return flag in _help_cache[conmon_path]


class ConmonLaunch(object):
    """Everything conmon needs for one container (or a restore of one)."""

    def __init__(self, conmon_path: str, runtime: OCIRuntime, container_id: str, name: str, bundle: str, pidfile: str,
                 conmon_pidfile: str, exit_dir: str, persist_dir: str | None, socket_dir: str, log_path: str,
                 log_driver: str = 'k8s-file', log_size_max: int | None = None, runtime_log: str | None = None,
                 restore_path: str | None = None, restore_args: Iterable[str] | None = None, extra_fds: Iterable[int] = (),
                 systemd_cgroup: bool = False, terminal: bool = False,
                 exit_command: tuple[str, list[str]] | None = None, listen_fds: int = 0) -> None:
        self.conmon_path = conmon_path
        self.runtime = runtime
        self.container_id = container_id
        self.name = name
        self.bundle = bundle
        self.pidfile = pidfile
        self.conmon_pidfile = conmon_pidfile
        self.exit_dir = exit_dir
        self.persist_dir = persist_dir
        self.socket_dir = socket_dir
        self.log_path = log_path
        self.log_driver = log_driver
        self.log_size_max = log_size_max
        self.runtime_log = runtime_log
        self.restore_path = restore_path
        self.restore_args = list(restore_args or [])
        self.extra_fds = list(extra_fds)
        self.systemd_cgroup = systemd_cgroup
        # A pseudo-terminal for the process (spec process.terminal): conmon makes the console socket, holds the
        # master side and logs what the process writes to it, as stdout.
        self.terminal = terminal
        # (program, arguments) conmon runs when the process ends (restart.py applies the restart policy).
        self.exit_command = exit_command
        # Socket activation (units.py): this process's fds 3.. are systemd's sockets; they go to conmon at 3..,
        # with LISTEN_FDS and --replace-listen-pid, and the runtime hands them to the container (LISTEN_PID=1).
        self.listen_fds = listen_fds

    def argv(self) -> list[str]:
        args = [self.conmon_path, '--api-version', '1',
                '-c', self.container_id, '-u', self.container_id, '-n', self.name,
                '-r', self.runtime.path, '-b', self.bundle, '-p', self.pidfile,
                '--exit-dir', self.exit_dir, '--socket-dir-path', self.socket_dir,
                '--conmon-pidfile', self.conmon_pidfile, '--log-level', 'error']
        if self.log_driver == 'none':
            args += ['-l', 'none:']
        elif self.log_driver == 'journald':
            args += ['-l', 'journald:', '--log-tag', self.name]
        else:
            args += ['-l', 'k8s-file:' + self.log_path]
        if self.log_size_max:
            args += ['--log-size-max', str(self.log_size_max)]
        if self.persist_dir and conmon_supports(self.conmon_path, '--persist-dir'):
            args += ['--persist-dir', self.persist_dir]
        if self.systemd_cgroup:
            args += ['--systemd-cgroup']
        if self.terminal:
            args.append('--terminal')
        if self.listen_fds:
            args.append('--replace-listen-pid')
        if self.exit_command is not None:
            program, arguments = self.exit_command
            args += ['--exit-command', program]
            for arg in arguments:
                args += ['--exit-command-arg', arg]
        for arg in self.runtime.global_args(self.runtime_log):
            args += ['--runtime-arg', arg]
        if self.restore_path:
            args += ['--restore', self.restore_path]
            for arg in self.restore_args:
                args += ['--runtime-opt', arg]
        return args


def _read_sync_message(fd: int, deadline: float) -> dict[str, Any] | None:
    """Read one JSON message from the sync pipe before ``deadline``; None on EOF."""
    buffer = b''
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError()
        ready, _w, _x = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return json.loads(buffer) if buffer.strip() else None
        buffer += chunk
        text = buffer.strip()
        if text.endswith(b'}'):
            try:
                return json.loads(text.splitlines()[-1] if b'\n' in text else text)
            except ValueError:
                continue


def _read_pidfile(path: str) -> int:
    try:
        with open(path, 'r') as handle:
            return int(handle.read().strip() or 0)
    except (IOError, OSError, ValueError):
        return 0


def place_child_fds(child_fds: list[int]) -> None:
    """In a child between fork and exec: ``child_fds`` at 3, 4, ... (inheritable) and every other inheritable
    fd closed (the rest are close-on-exec), so the program gets exactly these.

    Each is first copied above the targets (F_DUPFD), so a source that already sits at a target number is
    never overwritten or closed; and no fd number that may be free in the parent is named before it exists
    here (``pass_fds`` would: with threads closing fds, 3.. need not be open at the fork, and the child
    failed with EBADF).
    """
    count = len(child_fds)
    temp = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3 + count) for fd in child_fds]
    for index, fd in enumerate(temp):
        os.dup2(fd, 3 + index)  # inheritable
        os.close(fd)
    for name in os.listdir('/proc/self/fd'):
        fd = int(name)
        if fd >= 3 + count:
            try:
                if os.get_inheritable(fd):
                    os.close(fd)
            except OSError:
                pass  # the listing's own fd, closed by now


def launch(spec: ConmonLaunch, timeout: float = DEFAULT_TIMEOUT,
           before_start: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Start conmon for ``spec``; -> (container pid, conmon pid). Raises RuntimeCommandError on failure.

    ``before_start(conmon_pid)`` runs while conmon waits on the start pipe (e.g. cgroup placement).
    On any failure conmon is killed, so nothing is left running.
    """
    sync_r, sync_w = os.pipe()
    start_r, start_w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDWR)
    # fd 3 = sync pipe, fd 4 = start pipe, then the extra fds (reserved ports) from 5 on; with socket activation
    # systemd's sockets (our fds 3..) come first and the rest after them.
    listen = list(range(3, 3 + spec.listen_fds))
    child_fds = listen + [sync_w, start_r] + list(spec.extra_fds)
    env = {'PATH': os.environ.get('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'),
           '_OCI_SYNCPIPE': str(3 + len(listen)), '_OCI_STARTPIPE': str(4 + len(listen))}
    if listen:
        env.update(LISTEN_FDS=str(len(listen)), LISTEN_PID='1')  # conmon puts the runtime's pid in
    if spec.extra_fds:
        env['_OCI_EXTRA_FDS'] = str(len(spec.extra_fds))

    def place_fds() -> None:
        place_child_fds(child_fds)
        os.setsid()

    argv = spec.argv()
    try:
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        proc = subprocess.Popen(argv, stdin=devnull, stdout=devnull, stderr=devnull, env=env,
                                cwd=spec.bundle, preexec_fn=place_fds, close_fds=False)
    except OSError as exc:
        for fd in (sync_r, sync_w, start_r, start_w, devnull):
            os.close(fd)
        raise RuntimeCommandError('cannot start conmon (%s): %s' % (spec.conmon_path, exc), argv=argv)
    os.close(sync_w)
    os.close(start_r)
    os.close(devnull)
    deadline = time.monotonic() + timeout
    conmon_pid = 0
    try:
        try:
            if before_start is not None:
                before_start(proc.pid)
        except BaseException:
            # conmon must not go on to create the container: kill it while it still waits on the start pipe.
            proc.kill()
            proc.wait()
            os.close(start_w)
            raise
        try:
            os.write(start_w, b'0')
        except BrokenPipeError:
            pass  # conmon is gone already; its exit code says why, below
        finally:
            os.close(start_w)
        try:
            rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise RuntimeCommandError('conmon did not daemonize within %ss' % timeout, argv=argv)
        if rc != 0:
            raise RuntimeCommandError('conmon exited with code %d before starting the container; check that %s '
                                      'and its arguments work' % (rc, spec.conmon_path), argv=argv)
        try:
            message = _read_sync_message(sync_r, deadline)
        except TimeoutError:
            conmon_pid = _read_pidfile(spec.conmon_pidfile)
            raise RuntimeCommandError('%s create did not report a pid within %ss: the runtime hangs; conmon was '
                                      'stopped' % (spec.runtime.name, timeout), argv=argv)
        conmon_pid = _read_pidfile(spec.conmon_pidfile)
        if message is None:
            raise RuntimeCommandError('conmon closed its sync pipe without a pid: the runtime failed (see %s)'
                                      % spec.runtime_log, argv=argv)
        pid = message.get('data', message.get('pid'))
        if not isinstance(pid, int) or pid <= 0:
            text = message.get('message') or 'no message'
            raise RuntimeCommandError('%s failed to %s the container: %s' % (
                spec.runtime.name, 'restore' if spec.restore_path else 'create', text.strip()),
                argv=argv, conmon_message=message)
        return pid, conmon_pid
    except BaseException:
        conmon_pid = conmon_pid or _read_pidfile(spec.conmon_pidfile)
        if conmon_pid:
            try:
                os.kill(conmon_pid, signal.SIGKILL)
            except OSError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    finally:
        os.close(sync_r)
