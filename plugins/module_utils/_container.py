# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one ``runcible.oci.container`` task does: wanted config vs the live container -> actions.

    params -> given options (validated, normalised)     nothing changed yet; bad input raises here
    record -> actual config + live status                 no subprocess: exit file and /proc
    compare -> nothing | record update | recreate | start / stop / pause
    apply   -> engine calls (skipped in check mode)
    result  -> changed, actions, diff, container

``run(params, check_mode)`` is the Python API the module wraps.
"""

from __future__ import annotations

import contextlib
import os

from ._container_options import api as options
from ._container_options.api import PULL_POLICIES
from ._runtime.store import Store
from ._runtime.record import Record
from ._runtime.errors import RuncibleError, ValidationError
from ._runtime.parsers import validate_name
from ._task import common_argument_spec, with_defaults

STATES = ('created', 'started', 'stopped', 'paused', 'restarted', 'healthy', 'absent')
MAX_WAIT = 86400
LOG_LINES = 20  # of a container that exited while the task waited, in the failure's message
WANTED_STATUS = {'started': 'running', 'restarted': 'running', 'healthy': 'running', 'paused': 'paused',
                 'stopped': 'stopped', 'created': 'created'}


def argument_spec():
    """The option table's entries, the task's own options, and the common ones (``runtime`` is both an
    option of the table, compared with the container's, and a common option: the two entries are equal)."""
    spec = options.argument_spec()
    spec.update(
        name=dict(type='str', required=True),
        state=dict(type='str', default='started', choices=list(STATES)),
        recreate=dict(type='bool', default=False),
        force_restart=dict(type='bool', default=False),
        keep_volumes=dict(type='bool', default=True),
        wait=dict(type='float', default=0),
        wait_timeout=dict(type='float', default=60),
        pull=dict(type='str', default='missing', choices=list(PULL_POLICIES)),
        tls_verify=dict(type='bool', default=True),
        auth_file=dict(type='path'),
        comparisons=dict(type='dict'),
    )
    spec.update(common_argument_spec())
    return spec


class Task(object):
    def __init__(self, params, check_mode=False):
        """``params``: complete, as ``_task.with_defaults(argument_spec(), ...)`` gives them."""
        self.params = params
        self.check_mode = check_mode
        self.name = validate_name(params['name'])
        self.state = params['state']
        if self.state not in STATES:
            raise ValidationError('state: %r is not one of %s' % (self.state, ', '.join(STATES)))
        # The store reads (an unchanged container needs nothing else); the engine is loaded for a change.
        self.store = Store(params['root'], params['run_root'])
        self._engine = None
        self.secret_values = {}
        # Restart a running container even when nothing changed (state restarted; force_restart with started).
        self.restart = self.state == 'restarted' or bool(params.get('force_restart')) and self.state == 'started'
        self.wait = params.get('wait') or 0
        if not 0 <= self.wait <= MAX_WAIT:
            raise ValidationError('wait: %r must be from 0 to %d seconds' % (params.get('wait'), MAX_WAIT))
        if params['pull'] not in PULL_POLICIES:
            raise ValidationError('pull: %r is not one of %s' % (params['pull'], ', '.join(PULL_POLICIES)))
        self.images = None  # the image stage, only for a container that has or gets an image
        self.unit = None  # a unit-managed container's unit (_container_unit.UnitControl)
        self.removed_volumes = []
        self.warnings = []
        self.actions = []
        self.before = {}
        self.after = {}

    @property
    def engine(self):
        if self._engine is None:
            from ._runtime.engine import Engine  # pylint: disable=import-outside-toplevel
            self._engine = Engine(self.params['root'], self.params['run_root'], self.params['runtime'])
        self._engine.pending_secrets = self.secret_values
        return self._engine

    def run(self):
        # Validate before taking the lock (which creates files): bad input changes nothing at all.
        # An unlocked read is safe, records are replaced atomically; the lock then guards the change.
        record = self.store.load(self.name)
        if self.params.get('image') or (record is not None and record['config'].get('image')):
            from ._container_options.images import ContainerImages  # pylint: disable=import-outside-toplevel
            self.images = ContainerImages(self.store.root, self.params['pull'],
                                          tls_verify=self.params['tls_verify'] is not False,
                                          auth_file=self.params['auth_file'])
        validated = self._validated(record)
        if validated[1].get('systemd_unit') or record is not None and record['config'].get('systemd_unit'):
            from ._container_unit import unit_for  # pylint: disable=import-outside-toplevel
            self.unit = unit_for(self, record, validated[1])
        if record is None and self.state == 'absent':
            if self.params.get('keep_volumes') is False:
                self._remove_image_volumes(None)  # of a container removed before with its volumes kept
            return self.result(None, None)  # nothing to remove, and no lock file left behind
        lock = contextlib.nullcontext() if self.check_mode else self.store.lock(self.name)
        if self.params.get('secrets') and not self.check_mode:
            from ._runtime.secrets import store_key  # pylint: disable=import-outside-toplevel
            store_key(self.store.root, create=True)
        session = self.images.session(apply=not self.check_mode) if self.images else contextlib.nullcontext()
        with lock, session:
            record, live = self.store.inspect(self.name)
            if record is not None and not self.check_mode:
                self.store.repair(record, live)
            if _config_of(record) != validated[0] or self.params.get('secrets') or self.images is not None:
                # Changed meanwhile, secrets (hashed with the store's key, made only now), or an image (pulled
                # only now, under the lock, and its users resolved in it): normalise again.
                validated = self._validated(record)
            given, modes = validated[1:]
            if self.state == 'absent':
                record, live = self._absent(record, live)
            elif record is None:
                record, live = self._create(given)
            else:
                record, live = self._converge(record, live, given, modes)
            if self.wait and not self.check_mode and set(self.actions) & {'started', 'restarted'}:
                record, live = self._watch(record)
            if self.state == 'healthy':
                record, live = self._healthy(record, live)
        return self.result(record, live)

    def _healthy(self, record, live):
        """state healthy: run the container's health check until it passes (``wait_timeout``), as often as its
        interval allows (at most once a second while waiting); fail with the last check's output."""
        if not (record['config'].get('healthcheck') or {}).get('test'):
            raise ValidationError('state: healthy needs a healthcheck (container %s has none)' % self.name)
        if self.check_mode:
            return record, live
        import time  # pylint: disable=import-outside-toplevel
        from ._runtime import health  # pylint: disable=import-outside-toplevel
        deadline = time.monotonic() + max(float(self.params.get('wait_timeout') or 0), 0)
        interval = min(float(record['config']['healthcheck']['interval']), 1.0)
        while True:
            record, live = self.store.inspect(self.name)
            if live['status'] != 'running':
                raise RuncibleError('container %s is %s (exit %s), not running: not healthy%s'
                                    % (self.name, live['status'], live.get('exit_code'), self._last_logs(record)))
            state = health.check(self.engine, record, live)
            if state['status'] == health.HEALTHY:
                return self.store.inspect(self.name)
            last = state['log'][-1]
            if state['status'] == health.UNHEALTHY or time.monotonic() + interval > deadline:
                done = health.act_on_failure(self.engine, record, live) if state['status'] == health.UNHEALTHY else None
                raise RuncibleError('container %s is %s after %d failed checks%s; its last check exited with %s: %s'
                                    % (self.name, state['status'], state['failing_streak'],
                                       ' (%s)' % done if done else '', last['exit_code'], last['output'].strip()))
            time.sleep(interval)

    def _watch(self, record):
        """``wait`` after a start: the new process must still run when it is over, else the task fails with its
        exit code and its last log lines (the container stays, stopped; a re-run starts it again)."""
        import time  # pylint: disable=import-outside-toplevel
        deadline = time.monotonic() + self.wait
        while True:
            record, live = self.store.inspect(self.name)
            if live['status'] not in ('running', 'paused'):
                self.engine.stop(record, live)  # release its mount and runtime state
                raise RuncibleError('container %s exited with %s within %g s of its start (wait)%s'
                                    % (self.name, live.get('exit_code'), self.wait, self._last_logs(record)))
            left = deadline - time.monotonic()
            if left <= 0:
                return record, live
            time.sleep(min(0.05, left))

    def _wait_for_exit(self, record, live):
        """``wait`` before a stop: give the process that long to end on its own; -> its live status then."""
        import time  # pylint: disable=import-outside-toplevel
        deadline = time.monotonic() + self.wait
        while live['status'] in ('running', 'paused', 'created') and time.monotonic() < deadline:
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
            live = self.store.inspect(self.name)[1]
        return live

    def _last_logs(self, record):
        from ._runtime.logs import container_logs  # pylint: disable=import-outside-toplevel
        try:
            entries, _warning = container_logs(record, self.store.paths(record['name'], record['id']).log, LOG_LINES)
        except (OSError, RuncibleError):
            return ''
        return ('; its last log lines:\n' + '\n'.join(entry.message for entry in entries)) if entries else ''

    def _validated(self, record):
        """-> (the record's config it was made from, given options normalised, comparison modes).

        Raises ValidationError on bad input.
        """
        modes = options.comparison_modes(self.params.get('comparisons'))
        if self.state == 'absent':
            return _config_of(record), {}, modes
        self.context = options.Context(self.name, self.store.root, record['config'] if record else {},
                                       images=self.images)
        given = options.normalise(self.params, self.context)
        self.secret_values = self.context.secret_values
        if record is None and 'image' not in given:
            missing = [option for option in ('rootfs', 'command') if option not in given]
            if missing:
                raise ValidationError('container %s does not exist; creating it needs %s (or image)'
                                      % (self.name, ' and '.join(missing)))
        return _config_of(record), given, modes

    # -- the cases -------------------------------------------------------------------------------
    def _absent(self, record, live):
        if record is None:
            return None, None
        self.actions.append('removed')
        self.before = {'status': live['status']}
        self.after = {'status': 'absent'}
        if self.unit is not None and record['config'].get('systemd_unit'):
            self.actions.append('unit removed')
            self.unit.remove(record)  # stops it (its ExecStop), disables it, removes its files
        if not self.check_mode:
            self.engine.remove(record)
        if self.params.get('keep_volumes') is False:
            self._remove_image_volumes(record)
        return None, None

    def _remove_image_volumes(self, record):
        """keep_volumes false: the volumes made for the image's declared Volumes of this container, found by their
        label and their name (``anonymous_name(container, path)``), never a named volume of its mounts."""
        if not os.path.isdir(os.path.join(self.store.root, 'volumes')):
            return
        from ._runtime import volumes as store_volumes  # pylint: disable=import-outside-toplevel
        mounts = record['config'].get('mounts') or [] if record is not None else []
        mounted = set(mount.get('source') for mount in mounts if mount.get('type') == 'volume')
        names = sorted(volume['name'] for volume in store_volumes.list_volumes(
            self.store.root, labels={'io.runcible.container': self.name})
            if volume['name'] == store_volumes.anonymous_name(self.name, (volume.get('labels') or {}).get(
                'io.runcible.path', '')) and volume['name'] not in mounted)
        if not names:
            return
        self.before['volumes'] = names
        self.after['volumes'] = []
        self.before.setdefault('status', 'absent')
        self.after.setdefault('status', 'absent')
        self.actions.append('volumes removed')
        if not self.check_mode:
            for name in names:
                store_volumes.remove(self.store.root, name)
        self.removed_volumes = names

    def _create(self, given):
        config = options.complete(given, self.context)
        if self.images is not None:
            self.images.complete(config, given, name=self.name)
        # Fail now, in check mode too, when the runtime or conmon is missing.
        config['runtime'] = self.engine.select_runtime()[1]
        self.engine.conmon_path()
        start = WANTED_STATUS[self.state] in ('running', 'paused')
        self.actions.append('created')
        if start:
            self.actions.append('started')
        if self.state == 'paused':
            self.actions.append('paused')
        self.before = {'status': 'absent'}
        self.after = dict(config, status=WANTED_STATUS[self.state])
        if config.get('systemd_unit'):
            self.actions.insert(1, 'unit written')
        if self.check_mode:
            return Record(id=None, name=self.name, config=config), _planned_live(WANTED_STATUS[self.state])
        container_id = self.engine.new_id()
        config = options.reserve(config, self.store.root, container_id, self.store.configs)
        if config.get('systemd_unit'):
            return self._create_unit_managed(config, container_id, start)
        record = self.engine.create(self.name, config, options.build_spec(config, container_id), container_id,
                                    start=start, launch=self.state != 'stopped')
        if self.state == 'paused':
            self.engine.pause(record)
        return self.store.inspect(self.name)

    def _create_unit_managed(self, config, container_id, start):
        """A new unit-managed container: recorded with its bundle (not launched), its unit written, enabled and
        started when it should run. A failure removes both: no unit is left behind."""
        record = self.engine.create(self.name, config, options.build_spec(config, container_id), container_id,
                                    start=False, launch=False)
        try:
            self.unit.write(record)
            self.unit.set_enabled(record, start)
            if start:
                self.unit.start(record)
        except BaseException:
            with contextlib.suppress(Exception):
                self.unit.remove(record)
            with contextlib.suppress(Exception):
                self.engine.remove(self.store.load(self.name) or record, stop_timeout=0)
            raise
        return self.store.inspect(self.name)

    def _converge(self, record, live, given, modes):
        changes = options.differences(given, record['config'], modes)
        if live['status'] in ('running', 'paused', 'created') and live.get('pid'):
            changes = self._with_drift(changes, given, modes, live['pid'])
        recreate = self.params.get('recreate') or any(change.update == 'recreate' for change in changes)
        networks = any(change.update == 'network' for change in changes) and live['status'] != 'stopped'
        if networks and not recreate:
            from ._runtime.network_registry import live_change  # pylint: disable=import-outside-toplevel
            after = dict(record['config'])
            after.update((change.name, change.after) for change in changes)
            recreate = live_change(record['config'], after) is not None
        for change in changes:
            self.before[change.name] = change.before
            self.after[change.name] = change.after
        self.before['status'] = live['status']
        if recreate:
            return self._recreate(record, live, given, changes)
        policy = [change for change in changes if change.name == 'restart_policy' and (change.before or 'no') == 'no']
        if policy and live['status'] in ('running', 'paused', 'created'):
            self.warnings.append('container %s was started without a restart policy: restart_policy %s applies from its '
                                 'next start (state: restarted now, or the next recreate)' % (self.name, policy[0].after))
        if changes:
            self.actions.append('updated')
            config = dict(record['config'])
            config.update((change.name, change.after) for change in changes)
            if self.check_mode:
                record = record.replace(config=config)
            else:
                if networks:
                    self.engine.update_networks(record, config)  # attached and detached live
                if any(change.update == 'live' for change in changes):
                    self.engine.update_resources(record, config, live, options.build_spec(config, record['id']),
                                                 options.update_resources(config))
                else:
                    self.engine.update_record(record, config)
        if not self.check_mode and live['status'] in ('running', 'paused') \
                and any(change.name == 'healthcheck' for change in changes):
            from ._runtime.units import ensure_health_timer  # pylint: disable=import-outside-toplevel
            ensure_health_timer(self.engine, record, replace=True)  # its timer runs the new check, at its interval
        if self.unit is not None and self.unit.write(record):
            self.actions.append('unit written')
        return self._reach_status(record, live)

    @staticmethod
    def _with_drift(changes, given, modes, pid):
        """Compare live-updatable limits with what the container's cgroup really says (hand edits show)."""
        if not options.live_options(given, modes):
            return changes
        from ._runtime.cgroups import read_live  # pylint: disable=import-outside-toplevel
        return options.with_drift(changes, given, modes, read_live(pid))

    def _recreate(self, record, live, given, changes):
        config = dict(record['config'])
        config.update(given)
        if self.images is not None:
            self.images.complete(config, given, previous=record['config'], name=self.name)
        self.actions.append('recreated')
        wanted = WANTED_STATUS[self.state]
        if wanted == 'created':
            # "created" never stops a container: the new one runs when the old one ran.
            wanted = 'running' if live['status'] in ('running', 'paused') else 'created'
        if wanted in ('running', 'paused'):
            self.actions.append('started')
        if wanted == 'paused':
            self.actions.append('paused')
        self.after['status'] = wanted
        if config.get('systemd_unit') or record['config'].get('systemd_unit'):
            self.actions.append('unit written' if config.get('systemd_unit') else 'unit removed')
        if self.check_mode:
            return record.replace(config=config), _planned_live(wanted)
        container_id = self.engine.new_id()
        config = options.reserve(config, self.store.root, container_id, self.store.configs)
        spec = options.build_spec(config, container_id)  # before the old one goes: a spec that fails keeps it
        if self.unit is not None and record['config'].get('systemd_unit'):
            if config.get('systemd_unit'):
                self.unit.stop(record)
            else:
                self.unit.remove(record)
            record = self.store.load(self.name) or record
        self.engine.remove(record)
        if config.get('systemd_unit'):
            return self._create_unit_managed(config, container_id, wanted in ('running', 'paused'))
        new = self.engine.create(self.name, config, spec, container_id,
                                 start=wanted in ('running', 'paused'), launch=wanted != 'stopped')
        if wanted == 'paused':
            self.engine.pause(new)
        return self.store.inspect(self.name)

    def _reach_unit_status(self, record, live):
        """A unit-managed container: its unit starts and stops it (the socket unit, when it has one, starts it at the
        first connection); the unit is enabled while the container should run."""
        status = live['status']
        run = WANTED_STATUS[self.state] == 'running'
        socket = bool(record['config'].get('systemd_socket'))
        steps = []
        if run:
            if status == 'running' and self.restart:
                steps = ['restarted']
            elif not self.unit.active(record) or not socket and status != 'running':
                steps = ['started']
        elif status != 'stopped' or self.unit.active(record):
            steps = ['stopped']
        if self.unit.enabled(record) != run:
            self.actions.append('unit enabled' if run else 'unit disabled')
            self.unit.set_enabled(record, run)
        if run and not steps and status == 'running' and _proxy_needed(record):
            steps = ['ports repaired']  # the proxy of its IPv6 loopback ports was killed
        self.actions.extend(steps)
        self.after['status'] = _final_status(status, steps) if not socket or not steps or not run else status
        if self.check_mode or not steps:
            return record, dict(live, status=self.after['status']) if steps else live
        if steps == ['ports repaired']:
            self.engine.repair_ports(record)
            return self.store.inspect(self.name)
        getattr(self.unit, {'started': 'start', 'restarted': 'restart', 'stopped': 'stop'}[steps[0]])(record)
        return self.store.inspect(self.name)

    def _reach_status(self, record, live):
        if self.unit is not None and record['config'].get('systemd_unit'):
            return self._reach_unit_status(record, live)
        status = live['status']
        wanted = WANTED_STATUS[self.state]
        steps = []
        if wanted == 'stopped' and not self.check_mode and (record['config'].get('restart_policy') or 'no') != 'no' \
                and not record.get('stopping'):
            # A restart pending in its exit command's back-off must not bring back what the task wants stopped.
            self.engine.hold_stopped(record)
        if wanted == 'running':
            if status in ('running', 'paused') and self.restart:
                steps = ['restarted']  # the same container (id, root filesystem changes), a new process
            elif status == 'paused':
                steps = ['unpaused']
            elif status in ('created', 'stopped'):
                steps = ['started']
        elif wanted == 'paused':
            if status in ('created', 'stopped'):
                steps = ['started', 'paused']
            elif status == 'running':
                steps = ['paused']
        elif wanted == 'stopped' and status != 'stopped':
            if self.wait and status == 'running' and not self.check_mode:
                live = self._wait_for_exit(record, live)  # a job that must end: its own exit is not our change
                status = live['status']
                self.before['status'] = status
            steps = ['stopped'] if status != 'stopped' else []
        if status in ('running', 'paused') and wanted in ('running', 'paused') and 'restarted' not in steps \
                and _proxy_needed(record):
            steps.append('ports repaired')  # the proxy of its IPv6 loopback ports was killed
        self.actions.extend(steps)
        self.after['status'] = _final_status(status, steps)
        if self.check_mode:
            return record, dict(live, status=self.after['status']) if steps else live
        for step in steps:
            if step == 'started':
                spec = options.build_spec(record['config'], record['id']) if status == 'stopped' else None
                self.engine.start(record, live, spec)
            elif step == 'unpaused':
                self.engine.resume(record)
            elif step == 'paused':
                self.engine.pause(record)
            elif step == 'stopped':
                self.engine.stop(record, live)
            elif step == 'ports repaired':
                self.engine.repair_ports(record)
            elif step == 'restarted':
                stopped = self.engine.stop(record, live)
                self.engine.start(record, stopped, options.build_spec(record['config'], record['id']))
        if not steps and status == 'stopped' and record.get('state') != 'stopped':
            # It exited (or was killed) on its own: release its mount and runtime state. Not a change.
            self.engine.stop(record, live)
        return (record, self.store.inspect(self.name)[1]) if steps else (record, live)

    # -- result ----------------------------------------------------------------------------------
    def result(self, record, live):
        result = {'changed': bool(self.actions), 'actions': self.actions}
        if record is not None and record.get('id'):
            result['container'] = self.store.view(record, live)
        elif record is not None:
            result['container'] = {'id': None, 'name': self.name, 'status': live['status'], 'pid': 0,
                                   'conmon_pid': 0, 'exit_code': None, 'config': record['config']}
        else:
            result['container'] = {}
        if self.before.get('status') == self.after.get('status') and len(self.before) == 1:
            self.before, self.after = {}, {}
        result['diff'] = {'before': self.before, 'after': self.after}
        if self.removed_volumes:
            result['removed_volumes'] = self.removed_volumes
        notes = self._engine.notes if self._engine is not None else []
        self.actions.extend(notes)
        result['changed'] = bool([action for action in self.actions if action not in notes])
        warnings = list(self._engine.warnings if self._engine is not None else []) + self.warnings
        if warnings:
            result['warnings'] = warnings
        return result


def _config_of(record):
    """What the normalisation of a task's options depends on besides the options: the recorded config."""
    return None if record is None else record['config']


def _planned_live(status):
    return {'status': status, 'pid': 0, 'conmon_pid': 0, 'exit_code': None, 'finished_at': None, 'reason': None}


def _proxy_needed(record):
    """Was the proxy of the container's IPv6 loopback ports killed? (Only containers launched with one pay the look.)"""
    if 'proxy' not in (record.get('network') or {}):
        return False
    from ._runtime.port_proxy import needed  # pylint: disable=import-outside-toplevel
    return needed(record)


def _final_status(status, steps):
    steps = [step for step in steps if step != 'ports repaired']
    if not steps:
        return status
    return {'started': 'running', 'unpaused': 'running', 'restarted': 'running', 'paused': 'paused',
            'stopped': 'stopped'}[steps[-1]]


def run(params, check_mode=False):
    """Run one container task; -> the module result (raises RuncibleError subclasses on failure)."""
    return Task(with_defaults(argument_spec(), params), check_mode=check_mode).run()
