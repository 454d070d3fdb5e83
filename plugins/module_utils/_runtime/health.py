# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks: a container's ``healthcheck`` command run through the exec path, its results in its record.

A check runs when a task asks (``state: healthy`` waits for health; ``container_info`` with ``check_health``
runs the checks that are due), and on systemd hosts also on a schedule: a transient timer per container
(``units.start_health_timer``, made when it is launched, gone with it) runs ``exit.py --health``
(``run_scheduled``). Without systemd, health stays on demand. A result is kept in the
record's ``health``: ``status`` (``starting``, ``healthy``, ``unhealthy``), ``failing_streak`` and the
last LOG_KEEP results with their output. Failures within ``start_period`` of the process's start keep it
``starting``; ``retries`` failures in a row make it ``unhealthy``, and then ``health_on_failure`` acts:
``kill`` (SIGKILL: its restart policy decides what follows) or ``restart`` (a new process of the same
container). Every change of the record is made under the container's lock by the caller.
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

from .store import parse_iso, utc_iso

KILL_WAIT = 10.0  # seconds a killed unhealthy container is given to be seen stopped

if TYPE_CHECKING:
    from typing import Any

    from .engine import Engine
    from .record import Record

LOG_KEEP = 5
OUTPUT_MAX = 4096
STARTING = 'starting'
HEALTHY = 'healthy'
UNHEALTHY = 'unhealthy'


def current(record: Record) -> dict[str, Any] | None:
    """The record's health (None for a container without a health check)."""
    if not (record['config'].get('healthcheck') or {}).get('test'):
        return None
    return record.get('health') or {'status': STARTING, 'failing_streak': 0, 'log': []}


def due(record: Record, now: float | None = None) -> bool:
    """Is a check due (none yet since its start, or the last one ``interval`` ago)?"""
    health = current(record)
    if health is None:
        return False
    if not health['log']:
        return True
    last = parse_iso(health['log'][-1]['end'])
    return last is None or (now or time.time()) - last >= float(record['config']['healthcheck']['interval'])


def check(engine: Engine, record: Record, live: dict[str, Any]) -> dict[str, Any]:
    """Run the check once in the running container, record the result; -> the new health."""
    from . import execute  # pylint: disable=import-outside-toplevel
    settings = record['config']['healthcheck']
    paths = engine.paths(record)
    process = execute.build_process(execute.load_container_process(paths.config_json), settings['test'])
    started = time.time()
    outcome = execute.run_attached(engine.runtime_for(record), record['id'], paths.run_dir, process, live['pid'],
                                   timeout=float(settings['timeout']))
    output = (outcome.stdout + outcome.stderr).decode('utf-8', 'replace')[-OUTPUT_MAX:]
    if outcome.timed_out:
        code, output = -1, (output + '\nthe check did not end within %ss' % settings['timeout']).strip()
    elif getattr(outcome, 'runtime_error', None):
        code, output = -1, 'the runtime could not run the check: %s' % outcome.runtime_error
    else:
        code = outcome.rc if outcome.rc is not None else -1
    return record_result(engine, record, {'start': utc_iso(started), 'end': utc_iso(), 'exit_code': code,
                                          'output': output})


def record_result(engine: Engine, record: Record, result: dict[str, Any]) -> dict[str, Any]:
    """Add one result to the record's health (and save it); -> the new health."""
    settings = record['config']['healthcheck']
    health = dict(current(record) or {})
    health['log'] = (list(health.get('log') or []) + [result])[-LOG_KEEP:]
    if result['exit_code'] == 0:
        health.update(status=HEALTHY, failing_streak=0)
    else:
        started = parse_iso(record.get('started_at'))
        in_start_period = started is not None and (parse_iso(result['end']) or 0) - started < float(settings['start_period'])
        if not in_start_period:
            health['failing_streak'] = int(health.get('failing_streak') or 0) + 1
            if health['failing_streak'] >= int(settings['retries']):
                health['status'] = UNHEALTHY
    record['health'] = health
    engine.store.save(record)
    return health


def act_on_failure(engine: Engine, record: Record, live: dict[str, Any]) -> str | None:
    """``health_on_failure`` of an unhealthy container; -> what was done (an action word), or None."""
    action = record['config'].get('health_on_failure') or 'none'
    if action == 'kill':
        engine.runtime_for(record).kill(record['id'], signal.SIGKILL, all_processes=True)
        # Said done once it is: the task's result (and the next task) see it stopped, its exit code written.
        from .host import wait_until  # pylint: disable=import-outside-toplevel
        wait_until(lambda: (engine.inspect(record['name'])[1] or {}).get('status') == 'stopped', KILL_WAIT)
        return 'killed (unhealthy)'
    if action == 'restart':
        stopped = engine.stop(record, live)
        engine.start(record, stopped)
        return 'restarted (unhealthy)'
    return None


def run_scheduled(root: str, run_root: str, name: str, container_id: str) -> str:
    """The health timer's command: one check of a running container under its lock, and ``health_on_failure``;
    -> what was done (for the journal). Never fails: a failing check is a result, not a failed unit."""
    import os  # pylint: disable=import-outside-toplevel
    from .engine import Engine  # pylint: disable=import-outside-toplevel
    from .restart import _locked_record  # pylint: disable=import-outside-toplevel
    from .store import Store, derive_status  # pylint: disable=import-outside-toplevel
    # What it launches (a restart) must not stay in the timer's service, which systemd ends after the check.
    os.environ.pop('INVOCATION_ID', None)
    fd, record = _locked_record(root, name, container_id)
    if record is None:
        return 'gone'
    try:
        live = derive_status(record, Store(root, run_root).paths(name, container_id))
        if live['status'] != 'running' or not (record['config'].get('healthcheck') or {}).get('test'):
            return 'not checked: %s' % live['status']
        engine = Engine(root, run_root)
        state = check(engine, record, live)
        done = None
        if state['status'] == UNHEALTHY:
            if record['config'].get('systemd_unit') and record['config'].get('health_on_failure') == 'restart':
                from . import units  # pylint: disable=import-outside-toplevel
                units.systemctl('restart', '--no-block', '--', units.service_name(name), check=False)
                done = 'restarted by its unit (unhealthy)'
            else:
                done = act_on_failure(engine, record, live)
        return '%s (exit %s)%s' % (state['status'], state['log'][-1]['exit_code'], ', ' + done if done else '')
    finally:
        os.close(fd)
