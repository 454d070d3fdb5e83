# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one ``runcible.oci.container_checkpoint`` task does; ``run(params, check_mode)`` is its Python API."""

from __future__ import annotations

import contextlib
import os
import shutil

from ._container_options import api as options
from ._runtime.checkpoint import COMPRESSIONS, Checkpoints, check_dump_capabilities
from ._runtime.engine import Engine
from ._runtime.errors import ValidationError
from ._runtime.record import Record
from ._runtime.parsers import validate_name
from ._task import common_argument_spec, with_defaults

STATES = ('checkpointed', 'restored')


def argument_spec():
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='checkpointed', choices=list(STATES)),
        leave_running=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
        export=dict(type='path'),
        compress=dict(type='str', default='zstd', choices=list(COMPRESSIONS)),
        import_archive=dict(type='path', aliases=['import']),
        tcp_established=dict(type='bool', default=False),
        file_locks=dict(type='bool', default=False),
        keep=dict(type='bool', default=False),
        integrity_key=dict(type='str', no_log=True),
        rootfs=dict(type='path'),
        image=dict(type='str'),
        mounts=dict(type='list', elements='raw'),
    )
    spec.update(common_argument_spec())
    return spec


class Task(object):
    def __init__(self, params, check_mode=False):
        """``params``: complete, as ``_task.with_defaults(argument_spec(), ...)`` gives them."""
        self.params = params
        self.check_mode = check_mode
        self.name = validate_name(params['name'])
        self.engine = Engine(params['root'], params['run_root'], params['runtime'])
        self.checkpoints = Checkpoints(self.engine, use_cache=not check_mode)
        self.actions = []
        self.warnings = []
        self.integrity = None

    def run(self):
        if self.params.get('import_archive') and self.params['state'] != 'restored':
            raise ValidationError('import needs state: restored')
        if self.params.get('export') and self.params['state'] != 'checkpointed':
            raise ValidationError('export needs state: checkpointed')
        for option in ('rootfs', 'image', 'mounts'):
            if self.params.get(option) is not None and not self.params.get('import_archive'):
                raise ValidationError('%s is for import: it says what an imported container may use on this host'
                                      % option)
        if self.params.get('integrity_key') is not None and not (self.params.get('import_archive')
                                                                 or self.params.get('export')):
            raise ValidationError('integrity_key is for export and import')
        lock = contextlib.nullcontext() if self.check_mode else self.engine.store.lock(self.name)
        with lock:
            record, live = self.engine.inspect(self.name)
            self.before = {'status': live['status'] if record else 'absent',
                           'checkpoint': ((record or {}).get('checkpoint') or {}).get('id')}
            if self.params['state'] == 'checkpointed':
                record, live = self._checkpointed(record, live)
            else:
                record, live = self._restored(record, live)
        return self.result(record, live)

    # -- checkpointed -------------------------------------------------------------------------
    def _checkpointed(self, record, live):
        if record is None:
            raise ValidationError('container %s does not exist: nothing to checkpoint' % self.name)
        meta = record.get('checkpoint')
        status = live['status']
        if status in ('running', 'paused'):
            same_process = meta and meta.get('leave_running') and meta.get('pid_start') == record.get('pid_start')
            if not same_process or self.params['force'] or not self.params['leave_running']:
                check_dump_capabilities(record)
                self.checkpoints.criu()
                self.actions.append('checkpointed')
                if not self.params['leave_running']:
                    self.actions.append('stopped')
                if not self.check_mode:
                    self.checkpoints.dump(record, live, leave_running=self.params['leave_running'],
                                          tcp_established=self.params['tcp_established'],
                                          file_locks=self.params['file_locks'], keep_logs=self.params['keep'])
                    record, live = self.engine.inspect(self.name)
                elif not self.params['leave_running']:
                    live = dict(live, status='stopped', pid=0, conmon_pid=0)
        elif status == 'created':
            raise ValidationError('container %s was created but never started: there is no process to checkpoint; '
                                  'start it first' % self.name)
        elif not meta:
            raise ValidationError('container %s is stopped and has no checkpoint: start it (state: started with '
                                  'runcible.oci.container) before checkpointing it' % self.name)
        export = self.params.get('export')
        key = self.params.get('integrity_key')
        if export and (self.actions or not self.checkpoints.export_is_current(record, export, key)):
            self.actions.append('exported')
            if not self.check_mode:
                self.checkpoints.export(record, export, self.params['compress'], key=key)
        return record, live

    # -- restored -----------------------------------------------------------------------------
    def _restored(self, record, live):
        archive = self.params.get('import_archive')
        key = self.params.get('integrity_key')
        if archive and record is None:
            return self._import(archive, key)
        if archive:
            manifest, self.integrity = self.checkpoints.inspect_archive(archive, key)
            if (record.get('checkpoint') or {}).get('id') != manifest['checkpoint_id']:
                raise ValidationError('a container named %s already exists and does not come from %s: remove it or '
                                      'import under another name' % (self.name, archive))
        if record is None:
            raise ValidationError('container %s does not exist: nothing to restore (use import to restore from an '
                                  'archive)' % self.name)
        status = live['status']
        if status in ('running', 'paused'):
            return record, live
        if status == 'created':
            raise ValidationError('container %s was created but never started: nothing to restore' % self.name)
        if not record.get('checkpoint') or not os.path.isdir(record['checkpoint'].get('images', '')):
            raise ValidationError('container %s is stopped and has no checkpoint to restore from; checkpoint it '
                                  'first (state: checkpointed) or start it with runcible.oci.container' % self.name)
        self.checkpoints.criu()
        self.actions.append('restored')
        if self.check_mode:
            return record, dict(live, status='running')
        self.checkpoints.restore(record, options.build_spec(record['config'], record['id']), keep_logs=self.params['keep'])
        return self.engine.inspect(self.name)

    def _import(self, archive, key):
        """Create the container from the archive and restore it: the archive read once, checked whole first."""
        self.checkpoints.criu()
        self.actions.extend(['imported', 'restored'])
        if self.check_mode:
            manifest, self.integrity = self.checkpoints.inspect_archive(archive, key)
            config = self._import_config(manifest)
            return (Record(id=None, name=self.name, config=config, checkpoint={'id': manifest['checkpoint_id']}),
                    {'status': 'running', 'pid': 0, 'conmon_pid': 0, 'exit_code': None, 'finished_at': None})
        staging = self.checkpoints.staging_dir()
        try:
            manifest, self.integrity = self.checkpoints.unpack_archive(archive, staging, key)
            config = self._import_config(manifest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(staging))
            raise
        container_id = self.engine.new_id()
        try:
            config = options.reserve(config, self.engine.store.root, container_id, self.engine.store.configs)
            self.checkpoints.import_(self.name, staging, manifest, config, options.build_spec(config, container_id),
                                     container_id, archive, keep_logs=self.params['keep'])
        finally:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(staging))
        return self.engine.inspect(self.name)

    def _import_config(self, manifest):
        """The imported container's config, rebuilt from the manifest as a task's own options are built."""
        overrides = dict((option, self.params.get(option)) for option in ('rootfs', 'image', 'mounts')
                         if self.params.get(option) is not None)
        runtime = self.params.get('runtime') or manifest['runtime']
        return options.imported_config(self.name, manifest['config'], overrides, runtime, self.engine.store.root,
                                       trusted=self.integrity == 'verified')

    # -- result -------------------------------------------------------------------------------
    def result(self, record, live):
        result = {'changed': bool(self.actions), 'actions': self.actions}
        if record is not None and record.get('id'):
            result['container'] = self.engine.view(record, live)
        else:
            result['container'] = {'id': None, 'name': self.name, 'status': live['status'], 'pid': 0,
                                   'conmon_pid': 0, 'exit_code': None, 'config': record['config']}
        meta = dict(record.get('checkpoint') or {})
        meta.pop('exports', None)
        if meta:
            meta['export'] = self.params.get('export')
        result['checkpoint'] = meta
        after = {'status': live['status'], 'checkpoint': meta.get('id')}
        if self.check_mode and 'checkpointed' in self.actions:
            after['checkpoint'] = '(new)'
        result['diff'] = {'before': self.before, 'after': after} if self.actions else {'before': {}, 'after': {}}
        if self.integrity is not None:
            result['integrity'] = self.integrity
            if self.integrity == 'not checked':
                self.warnings.append('the archive carries an integrity digest that was not checked: give integrity_key '
                                     'to refuse an archive changed since its export')
        warnings = self.warnings + [warning for warning in self.engine.warnings if warning not in self.warnings]
        if warnings:
            result['warnings'] = warnings
        return result


def run(params, check_mode=False):
    """Run one checkpoint task; -> the module result (raises RuncibleError subclasses on failure).

    ``import`` is accepted for ``import_archive``, as the module accepts it.
    """
    return Task(with_defaults(argument_spec(), params), check_mode=check_mode).run()
