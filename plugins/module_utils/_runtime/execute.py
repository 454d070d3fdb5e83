# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a process inside a running container with the OCI runtime's ``exec``.

Design: ``runtime exec --process FILE --pid-file FILE [--cgroup SUB] ID``, not conmon exec sessions.

* The process is a JSON OCI process spec made from the container's own config.json: its
  capabilities, noNewPrivileges, rlimits, AppArmor profile and environment (the runtime adds the
  container's seccomp filter), with the task's argv, env, user and working directory on top.
  Everything is exact, and the environment (which may hold secrets) is in a 0600 file in the
  container's run dir, removed afterwards; never on a command line.
* The process gets our pipes directly (the runtime passes its stdio through when there is no
  terminal): no copy loop in between, and one process (the runtime) per exec. A conmon exec
  session would add a conmon per exec, an attach socket and a copy of every byte.
* No leaks: the process runs in a sub-cgroup of the container made for this exec (v1 ``freezer``
  or the v2 unified hierarchy). When the command ends, or its timeout expires, whatever is still in
  that cgroup (background children, daemons that double-forked or called setsid) is frozen,
  SIGKILLed and thawed, then the cgroup is removed. Without such a cgroup the process's session
  (the runtime makes the exec'd process a session leader) and its descendants are killed instead.

The event loop of an attached exec is :mod:`.exec_loop`'s, shared with the connection plugin (:mod:`.stream`).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import secrets
import signal
import subprocess
import time
from typing import TYPE_CHECKING

from . import host, inroot
from .errors import RuntimeCommandError, ValidationError
from .exec_loop import KILL_WAIT, ExecLoop
from .oci_cli import _log_errors

if TYPE_CHECKING:
    from typing import Any, Iterable

    from .oci_cli import OCIRuntime

GLOB_CHARS = frozenset('*?[')


# -- the process spec ----------------------------------------------------------------------------

def merge_env(base: list[str] | None, extra: dict[str, str] | None) -> list[str]:
    """The container's ``KEY=value`` list with ``extra`` (a dict) set on top, in the container's order."""
    merged: dict[str, str] = {}
    for item in base or []:
        key, _sep, value = item.partition('=')
        merged[key] = value
    for key, value in (extra or {}).items():
        merged[key] = value
    return ['%s=%s' % item for item in merged.items()]


def build_process(base: dict[str, Any] | None, argv: Iterable[str], env: dict[str, str] | None = None, user: str | None = None,
                  cwd: str | None = None) -> dict[str, Any]:
    """The OCI process spec of one exec: the container's ``process`` with the task's values on top.

    ``user`` is ``"uid:gid"`` (already resolved) or None to keep the container's user. As for the
    container itself, a non-root user gets no effective, permitted or ambient capabilities (the
    bounding set stays); root gets the bounding set as effective and permitted.
    """
    process = json.loads(json.dumps(base or {}))
    process['terminal'] = False
    process.pop('consoleSize', None)
    process['args'] = list(argv)
    process['env'] = merge_env(process.get('env'), env)
    if cwd:
        process['cwd'] = cwd
    process.setdefault('cwd', '/')
    if user is not None:
        uid, gid = (int(part) for part in user.split(':'))
        process['user'] = {'uid': uid, 'gid': gid}
        caps = process.get('capabilities')
        if isinstance(caps, dict):
            if uid == 0:
                caps['effective'] = list(caps.get('bounding', []))
                caps['permitted'] = list(caps.get('bounding', []))
            else:
                caps['effective'] = []
                caps['permitted'] = []
                caps.pop('ambient', None)
    return process


def load_container_process(config_json: str) -> dict[str, Any]:
    """The ``process`` of a container's config.json."""
    try:
        with open(config_json, 'r') as handle:
            return json.load(handle)['process']
    except (IOError, OSError, ValueError, KeyError) as exc:
        raise RuntimeCommandError('cannot read the process spec of the container from %s: %s' % (config_json, exc))


# -- paths inside the container --------------------------------------------------------------------

def resolve_in_root(root: str, path: str) -> str:
    """Host path of ``path`` as a process whose root is ``root`` sees it (e.g. ``/proc/PID/root``), for messages.

    Symlinks are resolved inside ``root`` by :mod:`.inroot`'s walk: an absolute target starts again
    at ``root`` and ``..`` stops there, as in the container. A missing component ends the walk: the
    result then does not exist. Never open the result: the host would resolve it again, following
    links out of the container; :mod:`.inroot` opens paths inside a root.
    """
    try:
        inside = inroot.resolve_path(root, path)
    except OSError as exc:
        raise ValidationError('%s: %s inside the container' % (path, inroot.reason(exc)))
    return root.rstrip('/') + inside if inside != '/' else root


def path_exists_in_root(root: str, path: str) -> bool:
    """True when ``path`` (absolute, inside the container) exists; a glob in its last component matches any entry.

    Looked up inside ``root`` by :mod:`.inroot`: no symlink leads out of it. A symlink loop, or a
    path that cannot be looked up for another reason than being absent, raises ValidationError;
    an entry a glob matches counts when it leads somewhere (a loop, like a dangling link, does not).
    """
    directory, _sep, last = path.rstrip('/').rpartition('/')
    if GLOB_CHARS & set(directory):
        raise ValidationError('%s: a glob pattern is only supported in the last path component' % path)
    try:
        if not GLOB_CHARS & set(last):
            return inroot.exists(root, path)
        try:
            names = inroot.listdir(root, directory or '/')
        except (FileNotFoundError, NotADirectoryError):
            return False
        for name in names:
            if name.startswith('.') and not last.startswith('.'):
                continue
            if fnmatch.fnmatchcase(name, last) and _entry_exists(root, directory + '/' + name):
                return True
        return False
    except OSError as exc:
        raise ValidationError('%s: cannot tell whether it exists inside the container: %s' % (path, inroot.reason(exc)))


def _entry_exists(root: str, path: str) -> bool:
    """Does the entry a glob matched lead somewhere? A symlink loop, like a dangling link, does not."""
    try:
        return inroot.exists(root, path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return False
        raise


# -- keeping track of every process of an exec -------------------------------------------------------

def _read(path: str) -> str:
    with open(path, 'r') as handle:
        return handle.read()


def _write(path: str, text: str) -> None:
    with open(path, 'w') as handle:
        handle.write(text)


def _pids(procs_file: str) -> list[int]:
    try:
        return [int(line) for line in _read(procs_file).split()]
    except (IOError, OSError, ValueError):
        return []


class ExecCgroup(object):
    """A sub-cgroup of the container for one exec: every process the command starts stays in it."""

    def __init__(self, parent_dir: str, name: str, runtime_arg: str, freezer_v1: bool) -> None:
        self.parent_dir = parent_dir
        self.name = name
        self.dir = os.path.join(parent_dir, name)
        self.runtime_arg = runtime_arg
        self.freezer_v1 = freezer_v1
        self.created = False

    @classmethod
    def for_container(cls, container_pid: int, name: str, cgroup_root: str = '/sys/fs/cgroup') -> ExecCgroup | None:
        """The exec cgroup to use for the container whose init is ``container_pid``; None when there is none."""
        try:
            proc_cgroup = _read('/proc/%d/cgroup' % container_pid)
        except (IOError, OSError):
            return None
        return cls.from_proc_cgroup(proc_cgroup, name, cgroup_root)

    @classmethod
    def from_proc_cgroup(cls, proc_cgroup: str, name: str, cgroup_root: str = '/sys/fs/cgroup') -> ExecCgroup | None:
        """As for_container(), from the text of the container's /proc/PID/cgroup."""
        # The container's own cgroup, also when its init moved below it (systemd as PID 1: init.scope).
        groups = dict((controller, host.container_cgroup(path))
                      for controller, path in host.parse_cgroups(proc_cgroup).items())
        unified = groups.get('')
        v1 = dict((controller, path) for controller, path in groups.items() if controller)
        if 'freezer' in v1:
            parent = os.path.join(cgroup_root, 'freezer') + v1['freezer']
            if os.path.exists(os.path.join(parent, 'freezer.state')):
                return cls(parent, name, 'freezer:' + name, freezer_v1=True)
        if unified is not None and not v1 and os.path.exists(os.path.join(cgroup_root, 'cgroup.controllers')):
            parent = cgroup_root.rstrip('/') + unified
            if os.path.exists(os.path.join(parent, 'cgroup.procs')):
                return cls(parent, name, name, freezer_v1=False)
        return None

    def create(self) -> None:
        os.mkdir(self.dir, 0o755)
        self.created = True

    def pids(self) -> list[int]:
        return _pids(os.path.join(self.dir, 'cgroup.procs'))

    def kill_all(self, timeout: float = KILL_WAIT) -> None:
        """SIGKILL every process in the cgroup, frozen first so that none can fork meanwhile."""
        if not self.created or not self.pids():
            return
        deadline = time.monotonic() + timeout
        if not self.freezer_v1 and os.path.exists(os.path.join(self.dir, 'cgroup.kill')):
            with contextlib.suppress(IOError, OSError):
                _write(os.path.join(self.dir, 'cgroup.kill'), '1')
        else:
            self._freeze_and_kill(deadline)
        host.wait_until(self._kill_round, max(0.0, deadline - time.monotonic()), first_delay=0.001)

    def _kill_round(self) -> bool:
        """SIGKILL what is left in the cgroup; -> True when nothing is."""
        pids = self.pids()
        for pid in pids:
            host.kill(pid)
        return not pids

    def _freeze_and_kill(self, deadline: float) -> None:
        if self.freezer_v1:
            state_file, frozen, thawed = os.path.join(self.dir, 'freezer.state'), 'FROZEN', 'THAWED'
        else:
            state_file, frozen, thawed = os.path.join(self.dir, 'cgroup.freeze'), '1', '0'
        try:
            _write(state_file, frozen)
            if self.freezer_v1:
                # FREEZING until every task stopped; a task in uninterruptible sleep may hold it there.
                freeze_deadline = min(deadline, time.monotonic() + 1.0)
                while _read(state_file).strip() != 'FROZEN' and time.monotonic() < freeze_deadline:
                    time.sleep(0.001)
            for pid in self.pids():
                host.kill(pid)
        except (IOError, OSError):
            for pid in self.pids():
                host.kill(pid)
        finally:
            with contextlib.suppress(IOError, OSError):
                _write(state_file, thawed)

    def remove(self, timeout: float = KILL_WAIT) -> None:
        if not self.created:
            return
        busy: list[OSError] = []
        if not host.wait_until(lambda: self._try_rmdir(busy), timeout, first_delay=0.001):
            raise RuntimeCommandError('cannot remove the exec cgroup %s: %s' % (self.dir, busy[0]))
        self.created = False

    def _try_rmdir(self, busy: list[OSError]) -> bool:
        """-> True when the cgroup is gone; while it is busy (``busy`` then holds the error), kill what is in it."""
        try:
            os.rmdir(self.dir)
            return True
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return True
            if exc.errno != errno.EBUSY:
                raise RuntimeCommandError('cannot remove the exec cgroup %s: %s' % (self.dir, exc))
            busy[:] = [exc]
        for pid in self.pids():
            host.kill(pid)
        return False


def pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink('/proc/%d/ns/pid' % pid)
    except OSError:
        return None


def session_processes(leader: int, pidns: str) -> set[int]:
    """Pids in the session led by ``leader`` plus the descendants of ``leader`` (the no-cgroup fallback).

    Only processes in the pid namespace ``pidns`` (the container's) count: a reused pid outside the
    container is never taken for one of the exec.
    """
    found: set[int] = set()
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        pid = int(entry)
        fields = host.parent_and_session(pid)
        if fields is None:
            continue
        ppid, session = fields
        children.setdefault(ppid, []).append(pid)
        if session == leader:
            found.add(pid)
    stack = [leader]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                stack.append(child)
    if host.parent_and_session(leader) is not None:
        found.add(leader)
    return set(pid for pid in found if pid_namespace(pid) == pidns)


def kill_session(leader: int, pidns: str | None, timeout: float = KILL_WAIT) -> None:
    """Stop, then SIGKILL every process of the session led by ``leader`` and its descendants."""
    if not leader or not pidns:
        return
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while time.monotonic() < deadline:
        pids = session_processes(leader, pidns) - seen
        if not pids:
            break
        for pid in pids:
            host.kill(pid, signal.SIGSTOP)
        seen |= pids
    for pid in seen:
        host.kill(pid, signal.SIGKILL)
        host.kill(pid, signal.SIGCONT)
    host.wait_until(lambda: _kill_left(leader, pidns), max(0.0, deadline - time.monotonic()), first_delay=0.001)


def _kill_left(leader: int, pidns: str) -> bool:
    """SIGKILL what of the session still runs (zombies are dead already); -> True when nothing does."""
    left = [pid for pid in session_processes(leader, pidns) if host.process_alive(pid)]
    for pid in left:
        host.kill(pid)
    return not left


def kill_exec_processes(pid: int, cgroup: ExecCgroup | None, pidns: str | None) -> None:
    """SIGKILL every process of an exec: its cgroup's, or else the session ``pid`` leads and its descendants."""
    if cgroup is not None:
        cgroup.kill_all()
    else:
        kill_session(pid, pidns)


# -- running it ----------------------------------------------------------------------------------------

class ExecResult(object):
    __slots__ = ('rc', 'stdout', 'stderr', 'timed_out', 'pid', 'runtime_error', 'argv')

    def __init__(self, rc: int | None = None, stdout: bytes = b'', stderr: bytes = b'', timed_out: bool = False, pid: int = 0,
                 runtime_error: str | None = None, argv: list[str] | None = None) -> None:
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.pid = pid
        self.runtime_error = runtime_error
        self.argv = argv


DEFAULT_UMASK = 0o022  # what the runtime's init gives a container without one


class ExecFiles(object):
    """The process spec, pid file and runtime log of one exec, in the container's run dir."""

    def __init__(self, run_dir: str) -> None:
        token = secrets.token_hex(8)
        self.token = token
        self.process = os.path.join(run_dir, 'exec-%s.json' % token)
        self.pidfile = os.path.join(run_dir, 'exec-%s.pid' % token)
        self.log = os.path.join(run_dir, 'exec-%s.log' % token)
        # The exec's file mode creation mask: the runtime's exec keeps its caller's (runc ignores the spec's
        # process.user.umask there), so the runtime is run with the container's, or the default of its init.
        self.umask = DEFAULT_UMASK

    def write_process(self, process: dict[str, Any]) -> None:
        umask = (process.get('user') or {}).get('umask')
        self.umask = umask if isinstance(umask, int) and 0 <= umask <= 0o777 else DEFAULT_UMASK
        fd = os.open(self.process, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, 'w') as handle:
            json.dump(process, handle)

    def read_pid(self) -> int:
        try:
            return int(_read(self.pidfile).strip() or 0)
        except (IOError, OSError, ValueError):
            return 0

    def errors(self) -> list[str]:
        return _log_errors(self.log, 0)

    def remove(self) -> None:
        for path in (self.process, self.pidfile, self.log):
            with contextlib.suppress(OSError):
                os.unlink(path)


def exec_argv(runtime: OCIRuntime, container_id: str, files: ExecFiles, cgroup_arg: str | None = None,
              detach: bool = False) -> list[str]:
    argv = [runtime.path] + runtime.global_args(files.log)
    argv += ['exec', '--process', files.process, '--pid-file', files.pidfile]
    if cgroup_arg:
        argv += ['--cgroup', cgroup_arg]
    if detach:
        argv.append('--detach')
    argv.append(container_id)
    return argv


def run_detached(runtime: OCIRuntime, container_id: str, run_dir: str, process: dict[str, Any],
                 timeout: float = 60.0) -> ExecResult:
    """Start ``process`` in the background; -> ExecResult with its host ``pid`` (stdio is /dev/null)."""
    files = ExecFiles(run_dir)
    argv = exec_argv(runtime, container_id, files, detach=True)
    try:
        files.write_process(process)
        try:
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout, close_fds=True, check=False,
                                  umask=files.umask)
        except subprocess.TimeoutExpired:
            raise RuntimeCommandError('%s exec --detach did not return within %ss' % (runtime.name, timeout), argv=argv)
        except OSError as exc:
            raise RuntimeCommandError('cannot run %s: %s' % (runtime.path, exc), argv=argv)
        if proc.returncode != 0:
            return ExecResult(rc=proc.returncode, runtime_error='; '.join(files.errors()) or 'exit code %d' % proc.returncode,
                              argv=argv)
        return ExecResult(rc=0, pid=files.read_pid(), argv=argv)
    finally:
        files.remove()


def run_attached(runtime: OCIRuntime, container_id: str, run_dir: str, process: dict[str, Any], container_pid: int,
                 stdin: bytes | None = None, timeout: float | None = None, use_cgroup: bool = True) -> ExecResult:
    """Run ``process`` to its end with its stdio on our pipes; -> ExecResult (``rc`` is the process's).

    ``stdin`` (bytes) is fed then closed (EOF); without it stdin is /dev/null. ``timeout``: seconds,
    then every process of the exec is killed and ``timed_out`` is set. When the command ends,
    processes it left behind are killed too, so none outlives the call.
    """
    files = ExecFiles(run_dir)
    cgroup = ExecCgroup.for_container(container_pid, 'runcible-exec-' + files.token) if use_cgroup else None
    if cgroup is not None and cgroup.freezer_v1 and runtime.name != 'runc':
        # "controller:path" sub-cgroups on cgroup v1 are runc's syntax; elsewhere use the session fallback.
        cgroup = None
    pidns = pid_namespace(container_pid)
    try:
        files.write_process(process)
        if cgroup is not None:
            try:
                cgroup.create()
            except OSError:
                cgroup = None
        argv = exec_argv(runtime, container_id, files, cgroup_arg=cgroup.runtime_arg if cgroup else None, detach=True)
        exec_run = ExecLoop(argv, files, lambda pid: kill_exec_processes(pid, cgroup, pidns), stdin=stdin, timeout=timeout)
        exec_run.run()
        result = ExecResult(rc=exec_run.rc, stdout=b''.join(exec_run.out), stderr=b''.join(exec_run.err),
                            timed_out=exec_run.timed_out, pid=exec_run.pid, argv=argv)
        if exec_run.runtime_rc:
            # The runtime failed, so the command never ran: say why, in the runtime's words.
            result.runtime_error = exec_run.runtime_error(runtime.name)
            result.rc = exec_run.runtime_rc
        return result
    finally:
        try:
            if cgroup is not None:
                cgroup.kill_all()
                cgroup.remove()
        finally:
            files.remove()
