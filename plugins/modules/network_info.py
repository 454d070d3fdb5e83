#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: network_info
short_description: Read the bridge networks of runcible.oci containers, with their containers
version_added: 0.2.0
description:
  - Returns the networks managed by M(runcible.oci.network) on the host, one or all, each as the
    dictionary M(runcible.oci.network) returns, with the containers that have addresses on it
    (their name, the C(root) they live in, and their IPv4 and IPv6 addresses there).
  - Networks are the host's, whatever C(root) their containers use, so every store's containers are listed.
  - Changes nothing, and starts no process to find out.
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
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
      - Name of a network. When not set, every network of the host, sorted by name.
    type: str
notes:
  - The module must run as root on the managed host (the registry C(/var/lib/runcible/networks) is root's).
seealso:
  - module: runcible.oci.network
  - module: runcible.oci.container
'''

EXAMPLES = r'''
- name: The containers on the network backend
  runcible.oci.network_info:
    name: backend
  register: backend

- name: Their names
  ansible.builtin.debug:
    msg: "{{ backend.networks[0].containers | map(attribute='name') | list }}"
  when: backend.exists

- name: Every network of the host
  runcible.oci.network_info:
  register: all_networks
'''

RETURN = r'''
exists:
  description: Whether the network O(name) exists.
  returned: when O(name) is given
  type: bool
  sample: true
networks:
  description:
    - The networks found, sorted by name, each as M(runcible.oci.network) returns it in
      RV(runcible.oci.network#module:network).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Network name.
      type: str
    bridge:
      description: Name of its Linux bridge.
      type: str
    subnet:
      description: Its IPv4 subnet.
      type: str
    gateway:
      description: The bridge's address, the containers' gateway.
      type: str
    internal:
      description: Whether it is internal.
      type: bool
    dns:
      description: Whether its containers resolve each other's names.
      type: bool
    ipv6:
      description: Whether it is dual-stack.
      type: bool
    ipv6_subnet:
      description: Its IPv6 subnet.
      type: str
      returned: when the network has IPv6
    ipv6_gateway:
      description: The bridge's IPv6 address.
      type: str
      returned: when the network has IPv6
    containers:
      description: The containers that have an address on it (C(name), C(root), C(ip_address), C(ipv6_address)).
      type: list
      elements: dict
  sample:
    - name: backend
      bridge: rcb-backend
      subnet: 10.89.5.0/24
      gateway: 10.89.5.1
      internal: false
      dns: true
      ipv6: false
      containers:
        - name: db
          root: /var/lib/runcible
          ip_address: 10.89.5.2
          ipv6_address: null
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _network
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_network.InfoTask, _network.info_argument_spec())


if __name__ == '__main__':
    main()
