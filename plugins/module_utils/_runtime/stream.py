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

The exec itself is the same as :mod:`.execute`'s, run by the same loop (:mod:`.exec_loop`):
``runtime exec --detach --process FILE`` with a JSON process spec made from the container's own, the
process writing straight into our pipes, and us as its child subreaper to get its exact exit status.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from . import exec_loop, execute, inroot
from .errors import RuntimeCommandError

if TYPE_CHECKING:
    from typing import IO, Any, Callable, NoReturn

    from .oci_cli import OCIRuntime


class BecomePrompt(object):
    """Privilege escalation that may ask for a password.

    ``check(output)`` -> ``'success'`` when ``output`` holds the success marker, ``'prompt'`` when it
    holds the password prompt, else None. ``password`` (bytes) answers the prompt once; the exec's real
    stdin is written only after the success marker. ``timeout``: seconds to wait for that marker.
    """

    def __init__(self, check: Callable[[bytes], str | None], password: bytes, timeout: float | None = None) -> None:
        self.check = check
        self.password = password
        self.timeout = timeout


class StreamResult(object):
    __slots__ = ('rc', 'stdout', 'stderr', 'runtime_error', 'become_output')

    def __init__(self, rc: int | None, stdout: bytes, stderr: bytes, runtime_error: str | None = None,
                 become_output: bytes = b'') -> None:
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.runtime_error = runtime_error
        self.become_output = become_output


class BecomeFailed(RuntimeCommandError):
    """The process ended, or the timeout passed, before the become prompt or success marker showed."""


def passwd_entry(rootfs: str | int, uid: int) -> tuple[str, str] | None:
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


def user_env(rootfs: str | int, user: str) -> dict[str, str]:
    """HOME, USER and LOGNAME of ``user`` (``"uid:gid"``) from the container's /etc/passwd, as a login would set them."""
    uid = int(user.split(':')[0])
    entry = passwd_entry(rootfs, uid)
    if entry is None:
        return {'HOME': '/'}
    name, home = entry
    return {'HOME': home or '/', 'USER': name, 'LOGNAME': name}


def run(runtime: OCIRuntime, container_id: str, run_dir: str, process: dict[str, Any], container_pid: int,
        stdin: bytes | IO[bytes] | None = None, stdout: IO[bytes] | None = None, become: BecomePrompt | None = None) -> StreamResult:
    """Run ``process`` in the container to its end; -> StreamResult.

    ``stdin``: None (``/dev/null``), bytes, or a binary file object read in chunks of
    :data:`.exec_loop.CHUNK_SIZE`. ``stdout``: None to collect it (``result.stdout`` is bytes), or a
    binary file object each chunk is written to as it comes (``result.stdout`` is then empty). stderr
    is always collected. ``become``: a BecomePrompt; stdin is held back until the process printed the
    success marker, and the password prompt, if it shows before, is answered.
    """
    files = execute.ExecFiles(run_dir)
    argv = execute.exec_argv(runtime, container_id, files, detach=True)
    pidns = execute.pid_namespace(container_pid)
    exec_run = _StreamRun(argv, files, lambda pid: execute.kill_session(pid, pidns), stdin, stdout, become)
    try:
        files.write_process(process)
        exec_run.run()
        runtime_error = exec_run.runtime_error(runtime.name)
    finally:
        files.remove()
    result = StreamResult(exec_run.rc, b''.join(exec_run.out), b''.join(exec_run.err),
                          become_output=exec_run.become_output)
    if exec_run.runtime_rc:
        result.runtime_error = runtime_error
        result.rc = exec_run.runtime_rc
    elif exec_run.become_failure:
        raise BecomeFailed(exec_run.become_failure, argv=argv)
    return result


class _StreamRun(exec_loop.ExecLoop):
    """The connection's exec: background processes outlive the command; a become prompt is answered first.

    Only an interruption kills the command's session. The real stdin is written after the success marker.
    """

    def __init__(self, argv: list[str], files: execute.ExecFiles, kill_processes: Callable[[int], None],
                 stdin: bytes | IO[bytes] | None, sink: IO[bytes] | None, become: BecomePrompt | None) -> None:
        super(_StreamRun, self).__init__(argv, files, kill_processes, stdin=stdin, sink=sink,
                                         hold_stdin=become is not None, kill_when_done=False)
        self.become = become
        self.become_deadline = (time.monotonic() + become.timeout) if become is not None and become.timeout else None
        self.become_output = b''
        self.become_failure: str | None = None
        self.password_sent = False
        self.prompt_offset = 0

    def run(self) -> None:
        super(_StreamRun, self).run()
        if self.become is not None:
            self.become_failure = ('the command ended (exit code %s) before privilege escalation reported success: %s'
                                   % (self.rc, _tail(self.become_output)))

    def _output(self, stream: int, data: bytes) -> None:
        if self.become is None:
            super(_StreamRun, self)._output(stream, data)
            return
        # Until the success marker: hold the output back, answer the password prompt once.
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
            self._send(self.become.password + b'\n')
        elif outcome == 'success':
            self.become = None
            if self.sink is not None and self.out:
                self.sink.write(b''.join(self.out))
                self.out = []
            self._release_stdin()

    def _deadline(self) -> float | None:
        return self.become_deadline if self.become is not None else None

    def _deadline_passed(self) -> NoReturn:
        timeout = self.become.timeout if self.become is not None else None  # (a deadline passes only while it waits)
        raise BecomeFailed('timed out after %ss waiting for privilege escalation to succeed: %s'
                           % (timeout, _tail(self.become_output)), argv=self.argv)


def _tail(data: bytes, limit: int = 2000) -> str:
    text = data.decode('utf-8', 'replace').strip()
    return text[-limit:] if text else '(no output)'
