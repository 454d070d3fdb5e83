# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one ``runcible.oci.container_info`` task does: read records, live status and logs; change nothing.

``run(params)`` is the Python API the module wraps. No lock is taken and nothing is written:
records are replaced atomically, so a concurrent change shows either the old or the new one.
"""

from __future__ import annotations

from ._runtime.store import Store
from ._runtime.errors import ValidationError
from ._runtime.parsers import validate_name
from ._task import common_argument_spec, with_defaults


def argument_spec():
    spec = dict(
        name=dict(type='raw'),
        logs_tail=dict(type='int', default=0),
        logs_since=dict(type='str'),
        check_health=dict(type='bool', default=False),
    )
    spec.update(common_argument_spec())
    return spec


def task_names(value):
    """``name`` -> (list of names or None for all, True when a single name was asked)."""
    if value is None:
        return None, False
    if isinstance(value, str):
        return [validate_name(value)], True
    if isinstance(value, (list, tuple)):
        names = []
        for item in value:
            if not isinstance(item, str):
                raise ValidationError('name: %r is not a container name (a string)' % (item,))
            if item not in names:
                names.append(validate_name(item))
        return names, len(names) == 1
    raise ValidationError('name: expected a container name or a list of them, got %r' % (value,))


class InfoTask(object):
    def __init__(self, params, check_mode=False):
        """``params``: complete, as ``_task.with_defaults(argument_spec(), ...)`` gives them. Reads only, in check
        mode too (``check_mode`` is accepted as every task accepts it)."""
        self.params = params
        self.check_mode = check_mode
        self.names, self.single = task_names(params['name'])
        tail = params['logs_tail']
        if isinstance(tail, bool) or not isinstance(tail, int) or tail < -1:
            raise ValidationError('logs_tail: %r must be 0 (no logs), a number of lines, or -1 (all lines)' % (tail,))
        self.since_ns = None
        if params['logs_since'] is not None:
            from ._runtime.logs import parse_since  # pylint: disable=import-outside-toplevel
            self.since_ns = parse_since(params['logs_since'])
        self.want_logs = tail != 0 or self.since_ns is not None
        self.tail = None if tail in (0, -1) else tail
        self.store = Store(params['root'], params['run_root'])
        self.acted = []

    def _check_health(self, name, record, live):
        """Run the container's health check when one is due (its interval since the last), under its lock; an
        unhealthy container gets its health_on_failure (a change)."""
        from ._runtime import health  # pylint: disable=import-outside-toplevel
        if not health.due(record):
            return record, live
        from ._runtime.engine import Engine  # pylint: disable=import-outside-toplevel
        engine = Engine(self.params['root'], self.params['run_root'])
        with self.store.lock(name):
            record, live = self.store.inspect(name)
            if record is None or live['status'] != 'running' or not health.due(record):
                return record, live
            state = health.check(engine, record, live)
            if state['status'] == health.UNHEALTHY:
                done = health.act_on_failure(engine, record, live)
                if done:
                    self.acted.append('%s %s' % (name, done))
            return self.store.inspect(name)

    def run(self):
        names = self.names if self.names is not None else self.store.names()
        containers = []
        warnings = []
        for name in names:
            record, live = self.store.inspect(name)
            if record is None:
                continue
            if self.params.get('check_health') and not self.check_mode and live['status'] == 'running':
                record, live = self._check_health(name, record, live)
                if record is None:
                    continue
            view = self.store.view(record, live)
            if self.want_logs:
                from ._runtime.logs import container_logs  # pylint: disable=import-outside-toplevel
                entries, warning = container_logs(record, self.store.paths(record['name'], record['id']).log,
                                                  self.tail, self.since_ns)
                if warning:
                    warnings.append(warning)
                view['logs'] = [entry.message for entry in entries]
                view['log_entries'] = [entry.as_dict() for entry in entries]
            containers.append(view)
        result = {'changed': bool(self.acted), 'containers': containers}
        if self.acted:
            result['actions'] = self.acted
        if self.single:
            result['exists'] = bool(containers)
        if warnings:
            result['warnings'] = warnings
        return result


def run(params):
    """Read containers; -> the module result (raises RuncibleError subclasses on bad input)."""
    return InfoTask(with_defaults(argument_spec(), params)).run()
