# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one ``runcible.oci.volume`` or ``runcible.oci.volume_info`` task does; ``run()`` and ``info()`` are their
Python API.

    params  -> wanted volume (validated: name, driver, labels, options)
    store   -> the volume's record under root/volumes, whether it is mounted, the containers that use it
    compare -> nothing | created | mounted | recreated | removed     (+ diff before/after)
    apply   -> _runtime.volumes (skipped in check mode), under the volumes lock
"""

from __future__ import annotations

import contextlib

from ._runtime import volume_options, volumes
from ._runtime.errors import ValidationError
from ._task import common_argument_spec, with_defaults

STATES = ('present', 'absent')
DRIVERS = ('local',)


def argument_spec():
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(STATES)),
        driver=dict(type='str', default='local', choices=list(DRIVERS)),
        labels=dict(type='dict'),
        options=dict(type='dict', options=dict(type=dict(type='str'), device=dict(type='str'), o=dict(type='str'))),
        recreate=dict(type='bool', default=False),
    )
    spec.update(common_argument_spec())
    return spec


def info_argument_spec():
    spec = dict(
        name=dict(type='str'),
        labels=dict(type='dict'),
    )
    spec.update(common_argument_spec())
    return spec


def view(root, record, with_users=True):
    """The ``volume`` dict the modules return."""
    options = record.get('options') or {}
    return {
        'name': record['name'],
        'driver': record.get('driver') or volumes.DRIVER,
        'labels': record.get('labels') or {},
        'options': options,
        'mountpoint': volumes.mountpoint(root, record['name']),
        'created': record.get('created'),
        'mounted': bool(options.get('type')) and volumes.is_mounted(root, record['name']),
        'users': volumes.users(root, record['name']) if with_users else [],
    }


def _definition(record):
    return {'name': record['name'], 'driver': record.get('driver') or volumes.DRIVER,
            'labels': record.get('labels') or {}, 'options': record.get('options') or {}}


class Task(object):
    def __init__(self, params, check_mode=False):
        """``params``: complete, as ``_task.with_defaults(argument_spec(), ...)`` gives them."""
        self.params = params
        self.check_mode = check_mode
        self.root = params['root']
        self.name = volumes.validate_volume_name(params['name'])
        self.state = params['state']
        if self.state not in STATES:
            raise ValidationError('state: %r is not one of %s' % (self.state, ', '.join(STATES)))
        if params['driver'] not in DRIVERS:
            raise ValidationError('driver: %r is not supported; the only driver is local' % (params['driver'],))
        # Not given (None): whatever the volume has is right. Given: compared exactly ({} too).
        self.labels = None if params['labels'] is None else volumes.normalise_labels(params['labels'])
        self.options = None
        if self.state == 'present' and params['options'] is not None:
            self.options = volume_options.normalise_options(params['options'])
        self.actions = []
        self.before = {}
        self.after = {}

    def run(self):
        lock = contextlib.nullcontext() if self.check_mode else volumes.locked(self.root)
        with lock:
            existing = volumes.get(self.root, self.name)
            if self.state == 'absent':
                record = self._absent(existing)
            else:
                record = self._present(existing)
            volume = {} if record is None else view(self.root, record, with_users=bool(record.get('created')))
        return {'changed': bool(self.actions), 'actions': self.actions, 'volume': volume,
                'diff': {'before': self.before, 'after': self.after}}

    def _wanted(self, existing=None):
        """The volume the task asks for; what it does not say is as ``existing`` has it."""
        existing = existing or {}
        return {'name': self.name, 'driver': volumes.DRIVER,
                'labels': (existing.get('labels') or {}) if self.labels is None else self.labels,
                'options': (existing.get('options') or {}) if self.options is None else self.options}

    def _present(self, existing):
        if existing is None:
            self.actions.append('created')
            self.before = {'state': 'absent'}
            self.after = dict(self._wanted(), state='present')
            return self._create(self._wanted())
        differing = self._differences(existing)
        if differing:
            if not self.params['recreate']:
                raise ValidationError(
                    'volume %s exists with other %s (it has %s, the task wants %s): a volume is not changed in place. '
                    'Give recreate: true to remove it, with its data, and create it again; or make the task say '
                    'what the volume has' % (self.name, ' and '.join(differing),
                                             _show(existing, differing), _show(self._wanted(existing), differing)))
            self._refuse_users('cannot be recreated')
            self.actions.append('recreated')
            self.before = dict((field, existing.get(field) or {}) for field in differing)
            wanted = self._wanted(existing)
            self.after = dict((field, wanted[field]) for field in differing)
            if not self.check_mode:
                volumes.remove(self.root, self.name)
            return self._create(wanted)
        if (existing.get('options') or {}).get('type') and not volumes.is_mounted(self.root, self.name):
            # Its file system is gone (a reboot, an unmount behind our back): mounted again, as a container's start would.
            self.actions.append('mounted')
            self.before = {'mounted': False}
            self.after = {'mounted': True}
            if not self.check_mode:
                volumes.ensure_mounted(self.root, self.name)
        return existing

    def _create(self, wanted):
        if self.check_mode:
            return dict(wanted, created=None)
        return volumes.create(self.root, self.name, wanted['labels'], wanted['options'])

    def _differences(self, existing):
        found = []
        if self.labels is not None and self.labels != (existing.get('labels') or {}):
            found.append('labels')
        if self.options is not None and not volume_options.same_options(self.options, existing.get('options') or {}):
            found.append('options')
        return found

    def _absent(self, existing):
        if existing is None:
            return None
        self._refuse_users('cannot be removed')
        self.actions.append('removed')
        self.before = dict(_definition(existing), state='present')
        self.after = {'state': 'absent'}
        if not self.check_mode:
            volumes.remove(self.root, self.name)
        return None

    def _refuse_users(self, what):
        users = volumes.users(self.root, self.name)
        if users:
            raise ValidationError('volume %s %s: container%s %s use%s it; remove %s first'
                                  % (self.name, what, 's' if len(users) > 1 else '', ', '.join(users),
                                     '' if len(users) > 1 else 's', 'them' if len(users) > 1 else 'it'))


def _show(record, fields):
    return ', '.join('%s %s' % (field, record.get(field) or {}) for field in fields)


class InfoTask(object):
    def __init__(self, params, check_mode=False):
        """Reads only, in check mode too (``check_mode`` is accepted as every task accepts it)."""
        self.params = params
        self.check_mode = check_mode
        self.root = params['root']
        self.name = None if params['name'] is None else volumes.validate_volume_name(params['name'])
        self.labels = volumes.label_filter(params['labels'])

    def run(self):
        if self.name is not None:
            record = volumes.get(self.root, self.name)
            found = [record] if record is not None and volumes.has_labels(record, self.labels) else []
        else:
            found = volumes.list_volumes(self.root, self.labels)
        result = {'changed': False, 'volumes': [view(self.root, record) for record in found]}
        if self.name is not None:
            result['exists'] = bool(found)
        return result


def run(params, check_mode=False):
    """Run one volume task; -> the module result (raises RuncibleError subclasses on failure)."""
    return Task(with_defaults(argument_spec(), params), check_mode=check_mode).run()


def info(params):
    """Read volumes; -> the module result."""
    return InfoTask(with_defaults(info_argument_spec(), params)).run()
