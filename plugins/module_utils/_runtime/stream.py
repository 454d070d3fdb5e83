# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming execs for the ``runcible.oci.oci`` connection plugin, on top of :mod:`.execute`.

:func:`.execute.run_attached` keeps a task's whole stdin and output in memory and kills whatever
the command leaves behind. A connection needs two other things:

* streams: a file copied into or out of a container goes through the exec's stdin or stdout in
  fixed-size chunks (``cat`` in the container, the local file on our side), so a file of any size
  costs one buffer of memory;
* Ansible's own semantics: processes a command starts in the background (async tasks, daemons
  started with ``nohup``) outlive it, as they do over ssh; only on an interruption (task timeout,
  Ctrl-C) is the command's session killed.

It also answers a privilege-escalation password prompt (``sudo -S``) before the real stdin.

The exec itself is the same as :mod:`.execute`'s: ``runtime exec --detach --process FILE`` with a
JSON process spec made from the container's own, the process writing straight into our pipes, and
us as its child subreaper to get its exact exit status.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time

from . import execute, inroot
from .errors import RuntimeCommandError

CHUNK_SIZE = 1 << 16
DRAIN_WAIT = 2.0
POLL_INTERVAL = 0.05


class BecomePrompt(object):
    """Privilege escalation that may ask for a password.

    ``check(output)`` -> ``'success'`` when ``output`` holds the success marker, ``'prompt'`` when it
    holds the password prompt, else None. ``password`` (bytes) answers the prompt once; the exec's real
    stdin is written only after the success marker. ``timeout``: seconds to wait for that marker.
    """

    def __init__(self, check, password, timeout=None):
        self.check = check
        self.password = password
        self.timeout = timeout


class StreamResult(object):
    __slots__ = ('rc', 'stdout', 'stderr', 'runtime_error', 'become_output')

    def __init__(self, rc, stdout, stderr, runtime_error=None, become_output=b''):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.runtime_error = runtime_error
        self.become_output = become_output


class BecomeFailed(RuntimeCommandError):
    """The process ended, or the timeout passed, before the become prompt or success marker showed."""


def passwd_entry(rootfs, uid):
    """(name, home) of ``uid`` in the container's /etc/passwd, or None.

    ``rootfs``: the container's root (``/proc/PID/root``, or an fd of it). The file is read inside it
    (:mod:`.inroot`): a symlink never leads to a host file; a file that is not regular, or is larger
    than 4 MiB, counts as absent.
    """
    try:
        data = inroot.read_file(rootfs, '/etc/passwd')
    except OSError:
        return None
    for line in data.decode('utf-8', 'replace').splitlines():
        fields = line.split(':')
        if len(fields) >= 6 and fields[2] == str(uid):
            return fields[0], fields[5]
    return None


def user_env(rootfs, user):
    """HOME, USER and LOGNAME of ``user`` (``"uid:gid"``) from the container's /etc/passwd, as a login would set them."""
    uid = int(user.split(':')[0])
    entry = passwd_entry(rootfs, uid)
    if entry is None:
        return {'HOME': '/'}
    name, home = entry
    return {'HOME': home or '/', 'USER': name, 'LOGNAME': name}


def run(runtime, container_id, run_dir, process, container_pid, stdin=None, stdout=None, become=None):
    """Run ``process`` in the container to its end; -> StreamResult.

    ``stdin``: None (``/dev/null``), bytes, or a binary file object read in chunks of CHUNK_SIZE.
    ``stdout``: None to collect it (``result.stdout`` is bytes), or a binary file object each chunk
    is written to as it comes (``result.stdout`` is then empty). stderr is always collected.
    ``become``: a BecomePrompt; stdin is held back until the process printed the success marker,
    and the password prompt, if it shows before, is answered.
    """
    files = execute.ExecFiles(run_dir)
    argv = execute.exec_argv(runtime, container_id, files, detach=True)
    exec_run = _StreamRun(argv, files, execute.pid_namespace(container_pid), stdin, stdout, become)
    try:
        files.write_process(process)
        with execute.ChildSubreaper():
            exec_run.start()
            try:
                exec_run.communicate()
            except BaseException:
                exec_run.abort()
                raise
        # Only a non-zero exit of the runtime is its failure (its log may hold lines of a successful exec).
        errors = files.errors() if exec_run.runtime_rc else []
    finally:
        files.remove()
    result = StreamResult(exec_run.rc, b''.join(exec_run.out), b''.join(exec_run.err),
                          become_output=exec_run.become_output)
    if exec_run.runtime_rc:
        result.runtime_error = '; '.join(errors) or exec_run.runtime_problem or (
            '%s exec exited with %d' % (runtime.name, exec_run.runtime_rc))
        result.rc = exec_run.runtime_rc
    elif exec_run.become_failure:
        raise BecomeFailed(exec_run.become_failure, argv=argv)
    return result


class _StreamRun(object):
    """One exec in flight: the runtime (until it started the process), the process, three pipes."""

    def __init__(self, argv, files, pidns, stdin, sink, become):
        self.argv = argv
        self.files = files
        self.pidns = pidns
        self.source = stdin if stdin is not None and not isinstance(stdin, (bytes, bytearray)) else None
        self.pending = memoryview(bytes(stdin)) if isinstance(stdin, (bytes, bytearray)) else memoryview(b'')
        # While privilege escalation is pending, the real stdin waits here; only the password is written.
        self.held = None
        if become is not None:
            self.held, self.pending = self.pending, memoryview(b'')
        self.password_sent = False
        self.prompt_offset = 0
        self.want_stdin = stdin is not None or become is not None
        self.sink = sink
        self.become = become
        self.become_deadline = (time.monotonic() + become.timeout) if become is not None and become.timeout else None
        self.become_output = b''
        self.become_failure = None
        self.out = []
        self.err = []
        self.selector = selectors.DefaultSelector()
        self.runtime = None
        self.runtime_rc = None
        self.runtime_problem = None
        self.pid = 0
        self.rc = None
        self.drain_deadline = None
        self._fds = {}
        self._pidfds = {}
        self._stdin_fd = None

    # -- set-up --------------------------------------------------------------------------------
    def start(self):
        try:
            self.runtime = subprocess.Popen(self.argv, stdin=subprocess.PIPE if self.want_stdin else subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True)
        except OSError as exc:
            raise RuntimeCommandError('cannot run %s: %s' % (self.argv[0], exc), argv=self.argv)
        self._fds = {self.runtime.stdout.fileno(): 1, self.runtime.stderr.fileno(): 2}
        for fd in self._fds:
            self.selector.register(fd, selectors.EVENT_READ)
        if self.want_stdin:
            self._stdin_fd = self.runtime.stdin.fileno()
            os.set_blocking(self._stdin_fd, False)
            self._refill()
        self._watch('runtime', self.runtime.pid)

    def _watch(self, what, pid):
        if hasattr(os, 'pidfd_open'):
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                return
            self._pidfds[fd] = what
            self.selector.register(fd, selectors.EVENT_READ)

    # -- stdin -----------------------------------------------------------------------------------
    def _refill(self):
        """Make sure there is something to write, or close stdin at the end of the source."""
        if self._stdin_fd is None:
            return
        if not self.pending and self.source is not None:
            chunk = self.source.read(CHUNK_SIZE)
            if chunk:
                self.pending = memoryview(chunk)
            else:
                self.source = None
        if self.pending:
            if self._stdin_fd not in self.selector.get_map():
                self.selector.register(self._stdin_fd, selectors.EVENT_WRITE)
        elif self.become is not None:
            # The password is written; stdin stays open for the real input after the success marker.
            if self._stdin_fd in self.selector.get_map():
                self.selector.unregister(self._stdin_fd)
        else:
            self._close_stdin()

    def _write_stdin(self):
        try:
            written = os.write(self._stdin_fd, self.pending[:CHUNK_SIZE])
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

    def _close_stdin(self):
        if self._stdin_fd is None:
            return
        if self._stdin_fd in self.selector.get_map():
            self.selector.unregister(self._stdin_fd)
        with contextlib.suppress(OSError):
            self.runtime.stdin.close()
        self._stdin_fd = None

    # -- output ----------------------------------------------------------------------------------
    def _read(self, fd):
        data = os.read(fd, CHUNK_SIZE)
        if not data:
            self.selector.unregister(fd)
            return
        stream = self._fds[fd]
        if self.become is not None:
            self._become_output(stream, data)
        elif stream == 1 and self.sink is not None:
            self.sink.write(data)
        else:
            (self.out if stream == 1 else self.err).append(data)

    def _become_output(self, stream, data):
        """Until the success marker: hold the output back, answer the password prompt once."""
        (self.out if stream == 1 else self.err).append(data)
        self.become_output += data
        outcome = self.become.check(self.become_output[self.prompt_offset:])
        if outcome == 'prompt':
            if self.password_sent:
                raise BecomeFailed('privilege escalation asked for the password again: the become password is wrong? %s'
                                   % _tail(self.become_output), argv=self.argv)
            # The prompt is not the command's output: drop it, answer it.
            self.password_sent = True
            self.prompt_offset = len(self.become_output)
            self.out, self.err = [], []
            self.pending = memoryview(self.become.password + b'\n')
            self._refill()
        elif outcome == 'success':
            self.become = None
            if self.sink is not None and self.out:
                self.sink.write(b''.join(self.out))
                self.out = []
            self.pending = self.held
            self.held = None
            self._refill()

    # -- the processes ---------------------------------------------------------------------------
    def _reap_runtime(self):
        """The runtime exited: the process started (its pid is in the pid file) or it failed."""
        self.runtime_rc = self.runtime.poll()
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
        self.rc = self.runtime_rc
        self._finished()

    def _reap_process(self):
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, None
        if pid == 0:
            return False
        self.rc = execute.exit_code(status) if status is not None else 255
        self._finished()
        return True

    def _finished(self):
        # Background processes the command started keep running (as over ssh); they may hold our
        # pipes, so output is read only until EOF or DRAIN_WAIT.
        self._close_stdin()
        self.drain_deadline = time.monotonic() + DRAIN_WAIT

    # -- the loop --------------------------------------------------------------------------------
    def communicate(self):
        try:
            while self.rc is None or any(fd in self.selector.get_map() for fd in self._fds):
                now = time.monotonic()
                waits = [POLL_INTERVAL] if not self._pidfds and self.rc is None else []
                if self.drain_deadline is not None:
                    waits.append(self.drain_deadline - now)
                if self.become_deadline is not None and self.become is not None:
                    waits.append(self.become_deadline - now)
                for key, _mask in self.selector.select(max(0.0, min(waits)) if waits else None):
                    self._event(key.fd)
                if not self._pidfds and self.rc is None:
                    # No pidfd (kernel < 5.3): poll.
                    if self.runtime_rc is None and self.runtime.poll() is not None:
                        self._reap_runtime()
                    elif self.pid:
                        self._reap_process()
                now = time.monotonic()
                if self.become is not None and self.become_deadline is not None and now >= self.become_deadline:
                    raise BecomeFailed('timed out after %ss waiting for privilege escalation to succeed: %s'
                                       % (self.become.timeout, _tail(self.become_output)), argv=self.argv)
                if self.drain_deadline is not None and now >= self.drain_deadline:
                    break
        finally:
            self._close()
        if self.become is not None:
            self.become_failure = ('the command ended (exit code %s) before privilege escalation reported success: %s'
                                   % (self.rc, _tail(self.become_output)))

    def _event(self, fd):
        if fd in self._pidfds:
            self.selector.unregister(fd)
            os.close(fd)
            what = self._pidfds.pop(fd)
            if what == 'runtime':
                self.runtime.wait()
                self._reap_runtime()
            elif self.rc is None:
                self._reap_process()
        elif fd in self._fds:
            self._read(fd)
        elif fd == self._stdin_fd:
            self._write_stdin()

    def abort(self):
        """Interrupted (task timeout, Ctrl-C): kill the command's session and reap what we started."""
        if self.pid and self.rc is None:
            execute.kill_session(self.pid, self.pidns)
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        if self.runtime is not None and self.runtime.poll() is None:
            self.runtime.kill()
            self.runtime.wait()
        if self.pid and self.rc is None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)

    def _close(self):
        self._close_stdin()
        for fd in list(self._pidfds):
            os.close(fd)
        self._pidfds = {}
        self.selector.close()
        if self.runtime is not None:
            if self.runtime.poll() is None:
                self.runtime.wait()
            for stream in (self.runtime.stdout, self.runtime.stderr):
                stream.close()


def _tail(data, limit=2000):
    text = data.decode('utf-8', 'replace').strip()
    return text[-limit:] if text else '(no output)'
