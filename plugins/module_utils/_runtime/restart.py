# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart policies without a daemon: conmon's exit command.

Every container is launched with an exit command: when its process ends, conmon runs
``python3 -I ROOT/lib/VERSION/exit.py ROOT RUN_ROOT NAME ID`` (the runtime library installed by
:mod:`.payload`), which applies the container's ``restart_policy`` and exits. Nothing of ours runs
between events but that short-lived command (and, during a back-off, its sleep).

The rules:

* ``no`` never restarts; ``on-failure`` restarts a non-zero exit (or a kill), at most
  ``restart_retries`` times in a row when that is above 0; ``always`` and ``unless-stopped`` restart
  whatever the exit (they differ at boot only).
* A task's stop or removal wins: the engine records the stop intent (``Record.stopping``) before it
  signals, under the container's lock; the exit command takes the same lock, so it sees the intent, or
  no record at all, or another container of the same name (another id): then it does nothing.
* A crash loop backs off: the delay doubles from BACKOFF_START with each restart in a row (a process
  that ran RESET_AFTER seconds starts the streak again), up to BACKOFF_MAX; the lock is not held
  while waiting, and everything is checked again after it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

from .errors import RuncibleError

if TYPE_CHECKING:
    from typing import Any

POLICIES = ('no', 'on-failure', 'always', 'unless-stopped')
BACKOFF_START = 0.1
BACKOFF_MAX = 30.0
RESET_AFTER = 10.0  # seconds a process must have run for its exit to start a new streak


def wants_restart(policy: str, retries: int, exit_code: int | None, streak: int) -> bool:
    """Does a container with this policy restart after a process that ended with ``exit_code`` (None: killed with
    its conmon, no code), the ``streak``-th restart in a row?"""
    if policy in ('always', 'unless-stopped'):
        return True
    if policy == 'on-failure':
        return exit_code != 0 and (not retries or streak < retries)
    return False


def backoff(streak: int) -> float:
    """Seconds to wait before the restart that continues a streak of ``streak`` restarts in a row."""
    if streak <= 0:
        return 0.0
    return min(BACKOFF_START * (2 ** (streak - 1)), BACKOFF_MAX)


def exit_command(lib: str, root: str, run_root: str, name: str, container_id: str) -> tuple[str, list[str]]:
    """-> (program, arguments) of the exit command conmon runs for this container."""
    from .payload import LAUNCHER  # pylint: disable=import-outside-toplevel
    return sys.executable, ['-I', '-B', os.path.join(lib, LAUNCHER), root, run_root, name, container_id]


def _ran_seconds(record: Any, live: dict[str, Any]) -> float | None:
    """How long the process that ended ran (its start in the record, its end in conmon's exit file)."""
    from .store import parse_iso  # pylint: disable=import-outside-toplevel
    started = parse_iso(record.get('started_at'))
    finished = parse_iso(live.get('finished_at')) or parse_iso(record.get('finished_at'))
    if started is None or finished is None:
        return None
    return max(finished - started, 0.0)


def _locked_record(root: str, name: str, container_id: str) -> Any:
    """Lock the container's lock file without making any directory (a removed store stays removed); -> the fd
    and the record, or (None, None) when the container is gone or is another one now."""
    from .files import lock_file  # pylint: disable=import-outside-toplevel
    from .store import Store  # pylint: disable=import-outside-toplevel
    path = os.path.join(root, 'locks', name + '.lock')
    try:
        fd = lock_file(path, 'the lock of container %s' % name, timeout=600, create_dirs=False)
    except (OSError, RuncibleError):
        return None, None  # its store or lock directory is gone, or a task held it for ten minutes
    try:
        held, now = os.fstat(fd), os.stat(path)
        if (held.st_dev, held.st_ino) != (now.st_dev, now.st_ino):
            raise OSError('lock file replaced')
        record = Store(root, '/nonexistent').load(name)
    except (OSError, RuncibleError):
        os.close(fd)
        return None, None
    if record is None or record.get('id') != container_id:
        if record is None:  # removed while we waited: the lock file is ours to drop (store.forget's rule)
            try:
                os.unlink(path)
            except OSError:
                pass
        os.close(fd)
        return None, None
    return fd, record


def handle_exit(root: str, run_root: str, name: str, container_id: str, sleep: Any = time.sleep) -> str:
    """What the exit command does; -> what it did, in words (for its log and the tests)."""
    from .store import Store, derive_status  # pylint: disable=import-outside-toplevel
    store = Store(root, run_root)
    waited = False
    while True:
        fd, record = _locked_record(root, name, container_id)
        if record is None:
            return 'gone'
        try:
            if record.get('stopping'):
                return 'stopped by a task'
            live = derive_status(record, store.paths(name, container_id))
            if live['status'] != 'stopped':
                return 'running again'  # a task started it meanwhile
            config = record['config']
            policy = config.get('restart_policy') or 'no'
            ran = _ran_seconds(record, live)
            streak = int(record.get('restart_streak') or 0)
            if ran is not None and ran >= RESET_AFTER:
                streak = 0
            if not wants_restart(policy, int(config.get('restart_retries') or 0), live.get('exit_code'), streak):
                return 'no restart (%s, exit %s)' % (policy, live.get('exit_code'))
            delay = backoff(streak)
            if delay and not waited:
                os.close(fd)
                fd = None
                sleep(delay)  # not under the lock: a task may stop, remove or start it meanwhile
                waited = True
                continue
            from .engine import Engine  # pylint: disable=import-outside-toplevel
            record.update(restart_count=int(record.get('restart_count') or 0) + 1, restart_streak=streak + 1)
            Engine(root, run_root).start(record, live)  # saves the record
            return 'restarted (%s, exit %s, restart %d)' % (policy, live.get('exit_code'), record['restart_count'])
        finally:
            if fd is not None:
                os.close(fd)


def boot(root: str, run_root: str) -> list[str]:
    """After a boot: start the store's containers whose policy says so (``always``; ``unless-stopped`` unless a task
    stopped it), each under its lock, from the spec kept on disk; -> what was done, one line per container."""
    import json  # pylint: disable=import-outside-toplevel
    from .engine import Engine  # pylint: disable=import-outside-toplevel
    from .store import Store, derive_status  # pylint: disable=import-outside-toplevel
    store = Store(root, run_root)
    engine = Engine(root, run_root)
    # The boot unit is ours and ends: the conmons it starts go to scopes of their own (as a task's do), never stay
    # in its cgroup (the placement leaves them in the cgroup of a unit that runs a task, by INVOCATION_ID).
    os.environ.pop('INVOCATION_ID', None)
    done = []
    for name in store.names():
        record = store.load(name)
        policy = (record['config'].get('restart_policy') or 'no') if record is not None else 'no'
        if record is None or policy not in ('always', 'unless-stopped') or record['config'].get('systemd_unit'):
            continue  # a unit-managed container's own unit starts it (enabled), not this one
        fd, record = _locked_record(root, name, record['id'])
        if record is None:
            continue
        try:
            if record.get('stopping') and policy == 'unless-stopped':
                done.append('%s: stopped by a task, not started (unless-stopped)' % name)
                continue
            live = derive_status(record, store.paths(name, record['id']))
            if live['status'] != 'stopped':
                continue
            with open(store.paths(name, record['id']).saved_spec) as handle:
                spec = json.load(handle)
            engine.start(record, live, spec)
            done.append('%s: started (%s)' % (name, policy))
        except Exception as exc:  # pylint: disable=broad-except
            done.append('%s: not started: %s' % (name, exc))  # the others still start
        finally:
            os.close(fd)
    return done


LOG = 'restart.log'  # in the container's run dir: what its exit commands did (tmpfs, gone with the container)


def main(argv: list[str]) -> int:
    """conmon's exit command: ``ROOT RUN_ROOT NAME ID``. Its stdio is conmon's /dev/null: what it did goes to
    ``RUN_ROOT/containers/ID/restart.log``."""
    if len(argv) == 5 and argv[0] == '--health':  # a health timer's check (health.py, units.py)
        from . import health  # pylint: disable=import-outside-toplevel
        try:
            sys.stdout.write(health.run_scheduled(argv[1], argv[2], argv[3], argv[4]) + '\n')
        except Exception as exc:  # pylint: disable=broad-except
            sys.stdout.write('--health failed: %s: %s\n' % (type(exc).__name__, exc))
        return 0  # a failing check is a result in the record, never a failed (lingering) unit
    if len(argv) == 4 and argv[0] in ('--unit-start', '--unit-stop'):  # a unit-managed container's unit (units.py)
        from . import units  # pylint: disable=import-outside-toplevel
        try:
            return (units.unit_start if argv[0] == '--unit-start' else units.unit_stop)(argv[1], argv[2], argv[3])
        except Exception as exc:  # pylint: disable=broad-except
            sys.stdout.write('%s failed: %s: %s\n' % (argv[0], type(exc).__name__, exc))  # to the unit's journal
            return 1
    if argv[:1] == ['--port-proxy']:  # a container's proxy of its IPv6 loopback ports (port_proxy.py)
        from . import port_proxy  # pylint: disable=import-outside-toplevel
        return port_proxy.main(argv[1:])
    if len(argv) == 3 and argv[0] == '--boot':
        sys.stdout.write(''.join(line + '\n' for line in boot(argv[1], argv[2])))  # to the boot unit's journal
        return 0
    if len(argv) != 4:
        return 2
    root, run_root, name, container_id = argv
    # conmon waits for its exit command before it exits, and a restart must not wait for that conmon (it reaps a
    # container's old conmon first): the launcher forked already (before any import); a session of our own.
    os.setsid()
    try:
        outcome, code = handle_exit(root, run_root, name, container_id), 0
    except Exception as exc:  # pylint: disable=broad-except
        outcome, code = 'failed: %s: %s' % (type(exc).__name__, exc), 1
    _log(run_root, container_id, outcome)
    return code


def _log(run_root: str, container_id: str, outcome: str) -> None:
    import re  # pylint: disable=import-outside-toplevel
    from .store import utc_iso  # pylint: disable=import-outside-toplevel
    if not re.fullmatch(r'[0-9a-f]{64}', container_id):
        return
    directory = os.path.join(run_root, 'containers', container_id)
    try:
        fd = os.open(os.path.join(directory, LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except OSError:
        return  # removed meanwhile
    with os.fdopen(fd, 'a') as handle:
        handle.write('%s %s\n' % (utc_iso(), outcome.replace('\n', ' ')))
