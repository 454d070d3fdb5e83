#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: volume_info
short_description: Read the named volumes of runcible.oci containers
version_added: 0.2.0
description:
  - Returns the volumes managed by M(runcible.oci.volume) under O(root), one or all, optionally only those with
    some labels, each as the dictionary M(runcible.oci.volume) returns.
  - Changes nothing, and starts no process to find out.
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcible.oci.common
attributes:
  check_mode:
    support: full
    details: Reads only; check mode returns the same.
  diff_mode:
    support: N/A
    details: Changes nothing.
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of a volume. When not set, every volume under O(root), sorted by name.
    type: str
  labels:
    description:
      - Only volumes that have each of these labels with this value; a label given with a null value matches any
        value of it.
    type: dict
  runtime:
    description:
      - Not used by this module (reading needs no runtime). Accepted so that the same C(module_defaults) serve
        every runcible.oci module.
    type: str
notes:
  - The module must run as root on the managed host.
seealso:
  - module: runcible.oci.volume
  - module: runcible.oci.container
'''

EXAMPLES = r'''
- name: Does the volume pgdata exist?
  runcible.oci.volume_info:
    name: pgdata
  register: pgdata

- name: Where its data is
  ansible.builtin.debug:
    msg: "{{ pgdata.volumes[0].mountpoint }}"
  when: pgdata.exists

- name: Every volume of the app postgres, and every volume with a label backup, whatever its value
  runcible.oci.volume_info:
    labels:
      app: postgres
      backup:
  register: backed_up

- name: Volumes no container uses
  ansible.builtin.debug:
    msg: "{{ backed_up.volumes | rejectattr('users') | map(attribute='name') | list }}"
'''

RETURN = r'''
exists:
  description: Whether the volume O(name) exists (and has the labels of O(labels), when given).
  returned: when O(name) is given
  type: bool
  sample: true
volumes:
  description:
    - The volumes found, sorted by name. Each is the dictionary M(runcible.oci.volume) returns as
      RV(runcible.oci.volume#module:volume).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Volume name.
      type: str
    driver:
      description: Its driver, V(local).
      type: str
    labels:
      description: Its labels.
      type: dict
    options:
      description: Its mount options (V(type), V(device), V(o), those it has); empty for a plain directory.
      type: dict
    mountpoint:
      description: Host path of its data directory, C(ROOT/volumes/NAME/_data).
      type: str
    created:
      description: When it was created (UTC, ISO 8601).
      type: str
    mounted:
      description: Whether its file system is mounted at RV(volumes[].mountpoint) (always false for a plain directory).
      type: bool
    users:
      description: Names of the containers of O(root) that mount it.
      type: list
      elements: str
  sample:
    - name: pgdata
      driver: local
      labels: {app: postgres}
      options: {}
      mountpoint: /var/lib/runcible/volumes/pgdata/_data
      created: '2026-12-06T23:04:26.291635Z'
      mounted: false
      users: [db]
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _volume
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_volume.InfoTask, _volume.info_argument_spec())


if __name__ == '__main__':
    main()
