# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unit of a unit-managed container (``systemd_unit: true``), as a ``container`` task drives it.

The task layer decides as for any container (create, recreate, start, stop...); for a container run by
its unit, the starts and stops go through ``systemctl`` (the unit's commands start and stop it through
the runtime: ``_runtime/units.py``), and the unit file follows the config: written (only when its text
differs), enabled while the container should run, removed with the container. Check mode computes the
same and writes nothing.
"""

from __future__ import annotations

import contextlib
import os

from ._runtime import units
from ._runtime.errors import RuncibleError, ValidationError

UNIT_STATES = ('started', 'stopped', 'restarted', 'healthy', 'absent')


def managed(config):
    return bool(config and config.get('systemd_unit'))


def unit_for(task, record, given):
    """-> a UnitControl when the container is or becomes unit-managed, else None."""
    wanted = given.get('systemd_unit') if 'systemd_unit' in given else managed(record['config'] if record else None)
    if not wanted and not (record is not None and managed(record['config'])):
        return None
    if wanted and task.state not in UNIT_STATES:
        raise ValidationError('state: %s is not for a container run by its systemd unit (systemd_unit): use one of %s'
                              % (task.state, ', '.join(UNIT_STATES)))
    units.require_systemd()
    return UnitControl(task.store, task.name, task.check_mode)


class UnitControl(object):
    def __init__(self, store, name, check_mode):
        self.root = store.root
        self.run_root = store.run_root
        self.name = name
        self.check_mode = check_mode
        self.service = units.service_name(name)
        self.socket = units.socket_name(name)
        self.service_path = os.path.join(units.UNIT_DIR, self.service)
        self.socket_path = os.path.join(units.UNIT_DIR, self.socket)
        self._check_owner()

    def _check_owner(self):
        """A unit of that name that is not this store's is never overwritten or removed."""
        root = os.path.normpath(self.root)
        for path in (self.service_path, self.socket_path):
            if os.path.lexists(path) and units.unit_store(path) != root:
                raise ValidationError('%s exists and is not the unit of container %s of the store %s (%s): remove or '
                                      'rename that unit, or give the container another name'
                                      % (path, self.name, root, units.unit_store(path) or 'not written by runcible.oci'))

    # -- the files ---------------------------------------------------------------------------------
    def texts(self, record):
        """{path: text} of the unit files the container's config asks for."""
        config = record['config']
        found = {self.service_path: units.render_service(self.name, self.root, self.run_root, config, record['id'] or '')}
        if config.get('systemd_socket'):
            found[self.socket_path] = units.render_socket(self.name, self.root, config['systemd_socket'])
        return found

    def differs(self, record):
        """Would writing the unit files change anything (text, a socket unit to add or remove)?"""
        wanted = self.texts(record)
        if units.read_unit(self.socket_path) is not None and self.socket_path not in wanted:
            return True
        return any(units.read_unit(path) != text for path, text in wanted.items())

    def write(self, record):
        """Write the unit files when they differ (the runtime library they run installed first); -> changed."""
        if not self.differs(record):
            return False
        if self.check_mode:
            return True
        from ._runtime import payload  # pylint: disable=import-outside-toplevel
        from ._runtime.files import atomic_write  # pylint: disable=import-outside-toplevel
        payload.install(self.root)  # ROOT/lib/current, what ExecStart runs
        wanted = self.texts(record)
        for path, text in wanted.items():
            if units.read_unit(path) != text:
                atomic_write(path, text, mode=0o644)  # systemd's, root's; no secret in it
        if self.socket_path not in wanted and os.path.lexists(self.socket_path):
            units.systemctl('disable', '--now', '--', self.socket, check=False)
            os.unlink(self.socket_path)
        units.systemctl('daemon-reload')
        return True

    # -- systemd's view ----------------------------------------------------------------------------
    def state(self):
        return units.unit_state(self.service)

    def boot_unit(self, record):
        """What is enabled: the socket unit when the container has one (it starts the service), else the service."""
        return self.socket if record['config'].get('systemd_socket') else self.service

    def enabled(self, record):
        unit = self.boot_unit(record)
        return units.unit_state(unit).get('UnitFileState') == 'enabled'

    def set_enabled(self, record, enable):
        if not self.check_mode:
            units.systemctl('enable' if enable else 'disable', '--', self.boot_unit(record))

    def active(self, record):
        """Is the unit that runs it up (with a socket unit: that one, which starts the service on a connection)?"""
        unit = self.boot_unit(record)
        return units.unit_state(unit).get('ActiveState') in ('active', 'activating', 'reloading')

    # -- transitions (the unit's commands take the container's lock: the task hands it over) -------------
    def _job(self, verb, unit):
        with units.handoff(self.root, self.name):
            proc = units.systemctl(verb, '--', unit, check=False)
        if proc.returncode != 0:
            raise RuncibleError('systemctl %s %s failed: %s; its journal:\n%s'
                                % (verb, unit, proc.stderr.decode('utf-8', 'replace').strip(), units.journal_tail(unit)))

    def start(self, record):
        """Start the service, or with a socket unit that one only: the first connection starts the service."""
        self._job('start', self.boot_unit(record))

    def restart(self, record):
        self._job('restart', self.service)

    def stop(self, record):
        if record['config'].get('systemd_socket'):
            self._job('stop', self.socket)  # else a connection would start it again
        self._job('stop', self.service)

    def remove(self, record=None):
        """Stop, disable and remove the unit files (a failed unit's state too): nothing of the unit is left."""
        if self.check_mode:
            return
        for unit, path in ((self.socket, self.socket_path), (self.service, self.service_path)):
            if not os.path.lexists(path):
                continue
            with units.handoff(self.root, self.name):
                units.systemctl('disable', '--now', '--', unit, check=False)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        units.systemctl('daemon-reload', check=False)
        units.systemctl('reset-failed', '--', self.service, self.socket, check=False)
