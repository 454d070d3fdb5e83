# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One ``runtime exec --detach`` in flight: the event loop under container_exec and the connection plugin.

``runtime exec --detach`` starts the process with our pipes as its stdio and exits once it runs; the
process, its child, is then re-parented to us (a child subreaper while the loop runs), so we wait for
it ourselves: its exact exit status, no zombie. One loop watches the runtime, then the process (pidfds
where the kernel has them, Linux 5.3; else a poll every POLL_INTERVAL), writes stdin (bytes or a
binary file, in CHUNK_SIZE pieces, without blocking, then EOF) and reads stdout and stderr (collected,
or stdout written to a sink chunk by chunk). After the process ended, output is read until EOF or
DRAIN_WAIT, whichever comes first: a background process may hold the pipes open.

What differs between its users is a parameter of :class:`ExecLoop`:

* ``kill_when_done``: container_exec (:mod:`.execute`) kills whatever the command leaves behind when it
  ends; the connection plugin (:mod:`.stream`) leaves background processes running, as ssh does.
* ``kill_processes(pid)``: how every process of the exec is killed: its cgroup, or its session.
* ``timeout``: container_exec's task timeout; then everything is killed and ``timed_out`` is set.
* ``hold_stdin``, and the hooks :meth:`ExecLoop._output` and :meth:`ExecLoop._deadline`: privilege
  escalation in :mod:`.stream` answers a password prompt before the real stdin is written.

Interrupted (an exception, Ctrl-C, Ansible's task timeout), the loop kills first and only then waits,
at most KILL_WAIT seconds: the runtime may never exit on its own (runc's init blocked opening a FIFO in
the container), so it is killed with its children (that init) before anything waits for it. A timeout
kills it the same way. What was killed with it is re-parented to us, and reaped before run() returns.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from typing import TYPE_CHECKING

from . import host, libc
from .errors import RuntimeCommandError

if TYPE_CHECKING:
    from typing import IO, Callable, Literal

    from .execute import ExecFiles

CHUNK_SIZE = 1 << 16
DRAIN_WAIT = 2.0
KILL_WAIT = 10.0
POLL_INTERVAL = 0.05


class ChildSubreaper(object):
    """Make this process a child subreaper while an exec runs, then restore what it was.

    ``runtime exec --detach`` exits once the process started; the process, its child, is then
    re-parented to the nearest subreaper among its ancestors: us. So we wait for it ourselves
    (exact exit status, no zombie) while it writes straight into our pipes.
    """

    def __init__(self) -> None:
        self.previous: int | None = None

    def __enter__(self) -> ChildSubreaper:
        try:
            self.previous = libc.child_subreaper()
        except OSError as exc:
            raise RuntimeCommandError('prctl(PR_GET_CHILD_SUBREAPER) failed: %s' % exc.strerror)
        if not self.previous:
            try:
                libc.set_child_subreaper(True)
            except OSError as exc:
                raise RuntimeCommandError('prctl(PR_SET_CHILD_SUBREAPER) failed: %s' % exc.strerror)
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        if not self.previous:
            with contextlib.suppress(OSError):
                libc.set_child_subreaper(False)
        return False


def exit_code(status: int) -> int:
    """A wait status -> the exit code, or 128 + the signal number for a process killed by a signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class ExecLoop(object):
    """One exec in flight: the runtime (until it started the process), the process, three pipes.

    ``argv``: the runtime's ``exec --detach`` command line; ``files``: its :class:`.execute.ExecFiles`.
    ``kill_processes(pid)``: SIGKILLs every process of the exec (``pid`` is the process's, 0 while the
    runtime has not started it). ``stdin``: None (``/dev/null``), bytes, or a binary file object;
    ``hold_stdin``: write none of it before :meth:`_release_stdin` (stdin stays open meanwhile).
    ``sink``: None to collect stdout in ``out``, or a binary file object each chunk is written to.
    ``kill_when_done``: kill what the command leaves behind when it ends (else only on interruption).
    ``timeout``: seconds, then every process of the exec is killed and ``timed_out`` is set.

    After :meth:`run`: ``rc`` (the process's exit code, or the runtime's when it failed),
    ``runtime_rc``, ``out`` and ``err`` (lists of chunks), ``pid``, ``timed_out``.
    """

    def __init__(self, argv: list[str], files: ExecFiles, kill_processes: Callable[[int], None],
                 stdin: bytes | bytearray | IO[bytes] | None = None, sink: IO[bytes] | None = None, hold_stdin: bool = False,
                 kill_when_done: bool = True, timeout: float | None = None) -> None:
        self.argv = argv
        self.files = files
        self.kill_processes = kill_processes
        self.kill_when_done = kill_when_done
        self.source = stdin if stdin is not None and not isinstance(stdin, (bytes, bytearray)) else None
        self.pending = memoryview(stdin) if isinstance(stdin, (bytes, bytearray)) else memoryview(b'')
        # While held, the real stdin waits here (and a source is not read); only what _send() gives is written.
        self.held: memoryview | None = None
        if hold_stdin:
            self.held, self.pending = self.pending, memoryview(b'')
        self.want_stdin = stdin is not None or hold_stdin
        self.sink = sink
        self.deadline = time.monotonic() + timeout if timeout else None
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.selector = selectors.DefaultSelector()
        self.runtime: subprocess.Popen[bytes] | None = None  # from _start() on
        self.runtime_rc: int | None = None
        self.runtime_problem: str | None = None
        self.pid = 0
        self.rc: int | None = None
        self.timed_out = False
        self.drain_deadline: float | None = None
        self._fds: dict[int, int] = {}  # stdout and stderr: fd -> 1 or 2
        self._pidfds: dict[int, str] = {}  # pidfd -> 'runtime' or 'process'
        self._stdin_fd: int | None = None
        self._to_reap: set[int] = set()

    def run(self) -> None:
        """Run the exec to its end; on an interruption kill everything first, then wait (bounded), then raise."""
        with ChildSubreaper():
            try:
                self._start()
                self._loop()
            except BaseException:
                self._abort()
                raise
            finally:
                self._close()
                # What was killed with the runtime (on a timeout or an interruption) is ours now: no zombie.
                if self._to_reap:
                    host.wait_until(self._reap_ended, KILL_WAIT)

    def runtime_error(self, runtime_name: str) -> str | None:
        """Why the runtime failed (the command never ran), in its words; None when it did not. Before files.remove()."""
        if not self.runtime_rc:
            return None
        # Only a non-zero exit of the runtime is its failure (its log may hold lines of a successful exec).
        return '; '.join(self.files.errors()) or self.runtime_problem or (
            '%s exec exited with %d' % (runtime_name, self.runtime_rc))

    # -- hooks -----------------------------------------------------------------------------------
    def _output(self, stream: int, data: bytes) -> None:
        """A chunk of stdout (``stream`` 1) or stderr (2)."""
        if stream == 1 and self.sink is not None:
            self.sink.write(data)
        else:
            (self.out if stream == 1 else self.err).append(data)

    def _deadline(self) -> float | None:
        """A deadline (time.monotonic()) besides the timeout, or None; when it passes, _deadline_passed() raises."""
        return None

    def _deadline_passed(self) -> None:
        """Called once _deadline() has passed: raise."""

    # -- set-up ----------------------------------------------------------------------------------
    def _start(self) -> None:
        try:
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            self.runtime = subprocess.Popen(self.argv, stdin=subprocess.PIPE if self.want_stdin else subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                                            umask=getattr(self.files, 'umask', -1))
        except OSError as exc:
            raise RuntimeCommandError('cannot run %s: %s' % (self.argv[0], exc), argv=self.argv)
        self._fds = {host.child_pipe(self.runtime.stdout).fileno(): 1, host.child_pipe(self.runtime.stderr).fileno(): 2}
        for fd in self._fds:
            self.selector.register(fd, selectors.EVENT_READ)
        if self.want_stdin:
            self._stdin_fd = host.child_pipe(self.runtime.stdin).fileno()
            os.set_blocking(self._stdin_fd, False)
            self._refill()
        self._watch('runtime', self.runtime.pid)

    def _started(self) -> subprocess.Popen[bytes]:
        """The runtime's process (from _start() on)."""
        if self.runtime is None:
            raise ValueError('the exec has not started')
        return self.runtime

    def _watch(self, what: str, pid: int) -> None:
        if hasattr(os, 'pidfd_open'):
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                return
            self._pidfds[fd] = what
            self.selector.register(fd, selectors.EVENT_READ)

    # -- stdin -----------------------------------------------------------------------------------
    def _refill(self) -> None:
        """Make sure there is something to write, or close stdin at the end of the source."""
        if self._stdin_fd is None:
            return
        if not self.pending and self.source is not None and self.held is None:
            chunk = self.source.read(CHUNK_SIZE)
            if chunk:
                self.pending = memoryview(chunk)
            else:
                self.source = None
        if self.pending:
            if self._stdin_fd not in self.selector.get_map():
                self.selector.register(self._stdin_fd, selectors.EVENT_WRITE)
        elif self.held is not None:
            # What _send() gave is written; stdin stays open for the real input, once released.
            if self._stdin_fd in self.selector.get_map():
                self.selector.unregister(self._stdin_fd)
        else:
            self._close_stdin()

    def _send(self, data: bytes) -> None:
        """Write ``data`` to stdin next (while the real stdin is held: a password)."""
        self.pending = memoryview(data)
        self._refill()

    def _release_stdin(self) -> None:
        """Write the real stdin now."""
        if self.held is not None:
            self.pending, self.held = self.held, None
        self._refill()

    def _write_stdin(self, fd: int) -> None:
        try:
            written = os.write(fd, self.pending[:CHUNK_SIZE])
        except BlockingIOError:
            return
        except OSError:
            # EPIPE: the process closed its stdin (or ended); the rest is not wanted.
            self.pending = memoryview(b'')
            self.source = None
            self._close_stdin()
            return
        self.pending = self.pending[written:]
        if not self.pending:
            self._refill()

    def _close_stdin(self) -> None:
        if self._stdin_fd is None:
            return
        if self._stdin_fd in (self.selector.get_map() or {}):
            self.selector.unregister(self._stdin_fd)
        with contextlib.suppress(OSError):
            if self.runtime is not None and self.runtime.stdin is not None:  # (always, with a _stdin_fd)
                self.runtime.stdin.close()
        self._stdin_fd = None

    # -- the processes ---------------------------------------------------------------------------
    def _reap_runtime(self) -> None:
        """The runtime exited: the process started (its pid is in the pid file) or it failed."""
        self.runtime_rc = self._started().poll()
        # The runtime has read the process spec (it may hold secrets in env): remove it now.
        with contextlib.suppress(OSError):
            os.unlink(self.files.process)
        if self.runtime_rc == 0:
            self.pid = self.files.read_pid()
            if self.pid:
                self._watch('process', self.pid)
                self._reap_process()
                return
            self.runtime_rc = 255
            self.runtime_problem = 'the runtime reported success but wrote no pid file (%s)' % self.files.pidfile
        # Nothing runs: the runtime failed before or while starting the process.
        self.rc = self.runtime_rc
        self._finished()

    def _reap_process(self) -> bool:
        """-> True when the process ended (it is our child once the runtime exited: we are a subreaper)."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, None
        if pid == 0:
            return False
        self.rc = exit_code(status) if status is not None else 255
        self._finished()
        return True

    def _finished(self) -> None:
        # What the command left behind could hold our pipes open forever: it is killed (container_exec),
        # or keeps running (the connection, as over ssh); either way output is read until EOF or DRAIN_WAIT.
        self._close_stdin()
        if self.kill_when_done:
            self._kill_everything()
        self.drain_deadline = time.monotonic() + DRAIN_WAIT

    def _kill_everything(self) -> None:
        self.kill_processes(self.pid)
        if self.pid and self.rc is None:
            host.kill(self.pid)

    def _kill_runtime(self) -> None:
        """SIGKILL the runtime and its children: its init may be blocked for ever, or about to start the command.

        The children are re-parented to us when the runtime is gone (we are a subreaper): reaped at the end.
        """
        if self.runtime is None or self.runtime.poll() is not None:
            return
        for pid in host.child_pids(self.runtime.pid):
            host.kill(pid)
            self._to_reap.add(pid)
        self.runtime.kill()

    def _reap_ended(self) -> bool:
        """Reap what ended of the processes in _to_reap; -> True when none is left."""
        for pid in list(self._to_reap):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            except ChildProcessError:
                pass  # not, or no longer, our child
            self._to_reap.discard(pid)
        return not self._to_reap

    # -- the loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        while self.rc is None or any(fd in self.selector.get_map() for fd in self._fds):
            now = time.monotonic()
            waits = [POLL_INTERVAL] if not self._pidfds and self.rc is None else []
            for deadline in (self.deadline if self.rc is None else None, self.drain_deadline, self._deadline()):
                if deadline is not None:
                    waits.append(deadline - now)
            for key, _mask in self.selector.select(max(0.0, min(waits)) if waits else None):
                self._event(key.fd)
            if not self._pidfds and self.rc is None:
                # No pidfd (kernel < 5.3): poll.
                if self.runtime_rc is None and self._started().poll() is not None:
                    self._reap_runtime()
                elif self.pid:
                    self._reap_process()
            now = time.monotonic()
            self._check_timeout(now)
            deadline = self._deadline()
            if deadline is not None and now >= deadline:
                self._deadline_passed()
            if self.drain_deadline is not None and now >= self.drain_deadline:
                break

    def _event(self, fd: int) -> None:
        if fd in self._pidfds:
            self.selector.unregister(fd)
            os.close(fd)
            what = self._pidfds.pop(fd)
            if what == 'runtime':
                self._started().wait()
                self._reap_runtime()
            elif self.rc is None:
                self._reap_process()
        elif fd in self._fds:
            data = os.read(fd, CHUNK_SIZE)
            if data:
                self._output(self._fds[fd], data)
            else:
                self.selector.unregister(fd)
        elif fd == self._stdin_fd:
            self._write_stdin(fd)

    def _check_timeout(self, now: float) -> None:
        if self.deadline is None or self.rc is not None or now < self.deadline:
            return
        if self.timed_out:
            raise RuntimeCommandError('the process of the exec did not end within %ss of SIGKILL' % KILL_WAIT,
                                      argv=self.argv)
        self.timed_out = True
        self._close_stdin()
        self._kill_everything()
        if self.runtime_rc is None:
            self._kill_runtime()
        self.deadline = now + KILL_WAIT

    # -- the end ---------------------------------------------------------------------------------
    def _abort(self) -> None:
        """Interrupted: kill first (the command's processes, the runtime and its init), then wait, within KILL_WAIT."""
        if self.kill_when_done or self.rc is None:
            self._kill_everything()
        self._kill_runtime()
        if self.runtime is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.runtime.wait(timeout=KILL_WAIT)
        if self.pid and self.rc is None:
            self._to_reap.add(self.pid)

    def _close(self) -> None:
        self._close_stdin()
        for fd in list(self._pidfds):
            os.close(fd)
        self._pidfds = {}
        self.selector.close()
        if self.runtime is not None:
            for stream in (self.runtime.stdout, self.runtime.stderr):
                if stream is not None:  # (never: both are pipes)
                    stream.close()
