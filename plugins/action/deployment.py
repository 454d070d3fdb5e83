# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of ``runcible.oci.deployment``: a ``compose_file`` read and parsed here, secrets kept out of logs.

* ``compose_file``: found like a ``src`` of ansible.builtin.copy (the role's or the playbook's ``files/``, or an
  absolute path), parsed as YAML on the controller (the managed node may have no YAML library) and handed to the
  module as ``definition``; ``project_dir`` defaults to the file's directory.
* each entry's ``secrets`` (and those of ``defaults``) move to the module's ``secrets`` option, which is no_log:
  Ansible then keeps their values out of the task's logged arguments and its result.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        try:
            self._read_compose_file(args)
            _lift_secrets(args)
        except AnsibleError as exc:
            result.update(failed=True, msg=to_native(exc.message if hasattr(exc, 'message') else exc))
            return result
        result.update(self._execute_module(module_args=args, task_vars=task_vars))
        return result

    def _read_compose_file(self, args):
        compose_file = args.pop('compose_file', None)
        if compose_file is None:
            return
        if args.get('definition') is not None:
            raise AnsibleError('give definition or compose_file, not both')
        path = self._find_needle('files', to_text(compose_file))
        try:
            with open(path, 'rb') as handle:
                text = handle.read().decode('utf-8')
        except (OSError, UnicodeDecodeError) as exc:
            raise AnsibleError('compose_file %s cannot be read: %s' % (path, to_native(exc)))
        import yaml  # pylint: disable=import-outside-toplevel
        try:
            definition = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AnsibleError('compose_file %s is not valid YAML: %s' % (path, to_native(exc)))
        if not isinstance(definition, dict):
            raise AnsibleError('compose_file %s must hold a mapping with services' % path)
        args['definition'] = definition
        if not args.get('project_dir'):
            args['project_dir'] = os.path.dirname(os.path.abspath(path))


def _lift_secrets(args):
    """Every entry's ``secrets`` into ``args['secrets']`` by container name (``*``: those of defaults)."""
    lifted = dict(args.get('secrets') or {})
    containers = args.get('containers')
    if isinstance(containers, list):
        entries = []
        for entry in containers:
            if isinstance(entry, dict) and entry.get('secrets') is not None and isinstance(entry.get('name'), str):
                entry = dict(entry)
                lifted[entry['name']] = dict(lifted.get(entry['name']) or {}, **entry.pop('secrets'))
            entries.append(entry)
        args['containers'] = entries
    defaults = args.get('defaults')
    if isinstance(defaults, dict) and defaults.get('secrets') is not None:
        defaults = dict(defaults)
        lifted['*'] = dict(lifted.get('*') or {}, **defaults.pop('secrets'))
        args['defaults'] = defaults
    if lifted:
        args['secrets'] = lifted
