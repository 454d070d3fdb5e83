# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: containers
short_description: The containers of runcible.oci on this host, as inventory hosts
version_added: 0.2.0
description:
  - One inventory host per container that M(runcible.oci.container) manages under O(root), named
    after the container, connected to with the P(runcible.oci.oci#connection) connection plugin.
  - Reads the containers' records and live status from the state store on the controller, which
    must be the host of the containers; no daemon, no runtime command, no subprocess. Reading the
    store needs root.
  - Every host is in the group C(running) or, with O(include_stopped), in the group of its status
    (C(stopped), C(created) or C(paused)); the groups C(running) and C(stopped) always exist.
  - "Host variables: C(ansible_connection) (V(runcible.oci.oci)), C(ansible_runcible_root) and
    C(ansible_runcible_run_root) (so that the connection finds the container), C(runcible_id),
    C(runcible_status), C(runcible_labels), C(runcible_pid), C(runcible_exit_code),
    C(runcible_runtime), C(runcible_rootfs), C(runcible_network), C(runcible_ip_address) (its
    address on a bridge network, else null), C(runcible_created_at) and C(runcible_started_at)."
  - Labels are data, never templates - a label value that looks like a Jinja2 expression stays that
    text. So are the other values that come from the containers' configuration (C(runcible_rootfs),
    C(runcible_runtime), C(runcible_network)); the rest are made by runcible.oci and hold no braces.
  - The inventory source is a YAML file whose name ends in C(oci.yml) or C(oci.yaml).
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description:
      - The name of this plugin. It must be V(runcible.oci.containers) for this plugin to read the file.
    type: str
    required: true
    choices: [runcible.oci.containers]
  root:
    description:
      - Directory of the persistent state of the containers, as given to the modules' O(runcible.oci.container#module:root).
    type: path
    default: /var/lib/runcible
  run_root:
    description:
      - Directory of the volatile state of the containers, as given to the modules' O(runcible.oci.container#module:run_root).
    type: path
    default: /run/runcible
  include_stopped:
    description:
      - Also list containers that do not run (stopped, created or paused). They cannot be connected
        to; use them for reporting, or with tasks delegated to the container host.
    type: bool
    default: false
  name_patterns:
    description:
      - Only list containers whose name matches one of these shell-style patterns (V(web-*),
        V(db-?), V([ab]*)). All containers when empty.
    type: list
    elements: str
    default: []
  label_selectors:
    description:
      - Only list containers whose labels match every selector. A selector is V(key=value) (the
        label is set to that value), V(key!=value) (the label is not set to that value, or not set),
        V(key) (the label is set) or V(!key) (the label is not set).
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
# containers.oci.yml: every running container of the default store
plugin: runcible.oci.containers

# ---
# web.oci.yml: running and stopped containers named web-*, labelled tier=frontend,
# grouped by the value of their label "app", with a variable made from their status
plugin: runcible.oci.containers
include_stopped: true
name_patterns:
  - web-*
label_selectors:
  - tier=frontend
  - "!deprecated"
keyed_groups:
  - key: runcible_labels.app | default('none')
    prefix: app
compose:
  is_up: runcible_status == 'running'
groups:
  needs_attention: runcible_status == 'stopped' and runcible_exit_code != 0

# ---
# A store of its own (the same root and run_root the modules were given)
plugin: runcible.oci.containers
root: /srv/containers/state
run_root: /run/srv-containers
'''

import fnmatch
import os

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.runcible.oci.plugins.module_utils._runtime.engine import Engine
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError

STATUS_GROUPS = ('running', 'stopped')
CONNECTION = 'runcible.oci.oci'


class LabelSelector(object):
    """One of ``key=value``, ``key!=value``, ``key``, ``!key``."""

    __slots__ = ('key', 'op', 'value', 'text')

    def __init__(self, text):
        if not isinstance(text, str) or not text.strip():
            raise AnsibleParserError('label_selectors: %r is not a selector; use key=value, key!=value, key or !key'
                                     % (text,))
        self.text = text
        if '!=' in text:
            key, _sep, value = text.partition('!=')
            self.op = 'ne'
        elif '=' in text:
            key, _sep, value = text.partition('=')
            self.op = 'eq'
        elif text.strip().startswith('!'):
            key, value = text.strip()[1:], None
            self.op = 'absent'
        else:
            key, value = text, None
            self.op = 'present'
        self.key = key.strip()
        self.value = value
        if not self.key:
            raise AnsibleParserError('label_selectors: %r has no label name; use key=value, key!=value, key or !key'
                                     % (text,))

    def matches(self, labels):
        if self.op == 'present':
            return self.key in labels
        if self.op == 'absent':
            return self.key not in labels
        if self.op == 'eq':
            return labels.get(self.key) == self.value
        return labels.get(self.key) != self.value


def name_matches(name, patterns):
    return not patterns or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


# Host variables whose values come from the user (a container's configuration): never templated.
UNSAFE_VARIABLES = frozenset(('runcible_labels', 'runcible_rootfs', 'runcible_runtime', 'runcible_network'))


def container_host(engine, record, live):
    """The host variables of one container; those in UNSAFE_VARIABLES are wrapped unsafe when set."""
    config = record.get('config') or {}
    paths = engine.paths(record)
    labels = config.get('labels') or {}
    view = engine.view(record, live)
    return {
        'ansible_connection': CONNECTION,
        'ansible_runcible_root': engine.store.root,
        'ansible_runcible_run_root': engine.store.run_root,
        'runcible_id': record.get('id'),
        'runcible_status': live['status'],
        'runcible_labels': dict((str(key), str(value)) for key, value in labels.items()),
        'runcible_pid': live['pid'] or None,
        'runcible_exit_code': view['exit_code'],
        'runcible_runtime': (record.get('runtime') or {}).get('name'),
        'runcible_rootfs': paths.rootfs_mount if config.get('rootfs_mode') == 'overlay' else config.get('rootfs'),
        'runcible_network': config.get('network'),
        'runcible_ip_address': view.get('ip_address'),
        'runcible_created_at': record.get('created_at'),
        'runcible_started_at': record.get('started_at'),
    }


def list_containers(engine, include_stopped=False, name_patterns=(), selectors=()):
    """-> [(name, host variables)] of the containers that pass the filters, sorted by name; and warnings."""
    found = []
    warnings = []
    for name in engine.store.names():
        if not name_matches(name, name_patterns):
            continue
        try:
            record, live = engine.inspect(name)
        except RuncibleError as exc:
            warnings.append('skipped container %s: %s' % (name, exc.msg))
            continue
        if record is None:
            continue  # removed while we listed
        if live['status'] != 'running' and not include_stopped:
            continue
        labels = (record.get('config') or {}).get('labels') or {}
        if not all(selector.matches(labels) for selector in selectors):
            continue
        found.append((name, container_host(engine, record, live)))
    return found, warnings


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = 'runcible.oci.containers'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(('oci.yml', 'oci.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            engine = Engine(self.get_option('root'), self.get_option('run_root'))
        except RuncibleError as exc:
            raise AnsibleParserError('%s: %s' % (to_native(path), exc.msg))
        containers_dir = os.path.join(engine.store.root, 'containers')
        if os.path.isdir(containers_dir) and not os.access(containers_dir, os.R_OK | os.X_OK):
            raise AnsibleParserError('cannot read the containers of %s (%s): run as root'
                                     % (engine.store.root, containers_dir))
        patterns = self.get_option('name_patterns') or []
        selectors = [LabelSelector(text) for text in self.get_option('label_selectors') or []]
        found, warnings = list_containers(engine, self.get_option('include_stopped'), patterns, selectors)
        for warning in warnings:
            self.display.warning(warning)
        for group in STATUS_GROUPS:
            self.inventory.add_group(group)
        strict = self.get_option('strict')
        for name, variables in found:
            self.inventory.add_host(name)
            self.inventory.add_group(variables['runcible_status'])
            self.inventory.add_child(variables['runcible_status'], name)
            for key, value in variables.items():
                self.inventory.set_variable(name, key, wrap_var(value) if key in UNSAFE_VARIABLES else value)
            host_vars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option('compose'), host_vars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), host_vars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), host_vars, name, strict=strict)
