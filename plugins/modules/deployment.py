#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: deployment
short_description: Many OCI containers in one task, in dependency order and in parallel, or from a Compose file
version_added: 0.2.0
description:
  - Brings a named set of containers, with the networks and volumes they need, to its state in one task,
    with no container daemon. One task for a whole host avoids Ansible's cost per task, which is most of
    the time a loop of M(runcible.oci.container) tasks takes.
  - Each entry of O(containers) takes the options of M(runcible.oci.container), checked, normalised and
    applied by the same code as that module (so the same idempotence, live updates, check mode and
    diff); its result is what that module returns.
  - Every container of the set gets the label O(label)=O(name). The set is what carries that label in the
    store; with O(prune), the set's containers that are no longer listed are removed. Containers without
    the label, or with another set's name, are never touched.
  - C(depends_on) of an entry of O(containers) orders the entries. An entry is created, started or updated after the
    entries it depends on (those that run in the same task), and stopped or removed before them. Entries
    that do not depend on each other run at the same time, up to O(parallel) at once. Stops and removals
    are not bounded by O(parallel) (up to 128 at once), as they mostly wait for a container to end within
    its C(stop_timeout); so their grace periods overlap.
  - A failing entry does not stop the others. The entries that come after it (its dependants when
    starting, its dependencies when stopping) are skipped and reported; what succeeded stays done, and
    the task fails listing each failure. Running the task again continues from there.
  - O(definition) (or O(compose_file)) takes a Compose file's services, networks and volumes, mapped onto
    the same options; see C(docs/deployments.md) for the mapping. Services become containers
    C(<project>-<service>), networks and volumes C(<project>_<key>), the project being the file's
    C(name) or O(name).
  - Networks are bridges (M(runcible.oci.network)); containers on one network reach each other by
    name (the network's aardvark-dns; a Compose service also by its service name and aliases) and by
    address (an entry's C(ip_address), Compose C(ipv4_address), or the result's).
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - runcible.oci.common
attributes:
  action:
    support: full
    details: The action plugin reads O(compose_file) on the controller and keeps the entries' secrets out of logs.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details:
      - Reports what each container, network and volume would become and writes nothing.
      - A container on a network that the task would create is reported as created with the options its
        entry gives; they are checked against the network once it exists.
  diff_mode:
    support: full
    details: One diff per changed container, network or volume, headed by its name; a new container shows the
      options its entry gives.
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the set (a deployment, or a Compose project), the value of its label O(label).
      - The Compose project name when O(definition) has no C(name).
    type: str
    required: true
  state:
    description:
      - V(started) brings each container to its own C(state) (default V(started)); an entry may be
        V(stopped), V(created), V(paused), V(absent)...
      - V(created) makes the containers that give no C(state) of their own exist, without starting them.
      - V(stopped) stops every container of the set (created first if missing), dependants first.
      - V(restarted) restarts every container whose C(state) is V(started), dependencies first.
      - V(absent) removes every container of the set, listed or not, dependants first; then the networks
        of O(networks) (a network that other containers still use is kept, with a warning) and, with
        O(keep_volumes=false), the volumes of O(volumes).
    type: str
    default: started
    choices: [started, created, stopped, restarted, absent]
  containers:
    description:
      - The containers, each a dictionary of M(runcible.oci.container) options (any of them, on top of
        O(defaults)), with C(name) required, but without C(root) and C(run_root) (the deployment's).
      - An unknown option or a value of the wrong type fails the task before anything changes, naming the
        entry. A value the container module refuses (a bad size, a missing image) fails that entry.
      - Besides the container options, C(depends_on), a list of names of other entries; see the description.
    type: list
    elements: dict
    default: []
  defaults:
    description:
      - Options every entry of O(containers) (and every Compose service) gets unless it sets them (for example
        C(rootfs), C(memory), C(network), C(pull)). C(labels) are merged, the entry's winning.
      - Not C(name), C(depends_on), C(root) or C(run_root).
    type: dict
    default: {}
  networks:
    description:
      - Networks the containers need, each a dictionary of M(runcible.oci.network) options without
        C(state); created (or corrected) before any container.
    type: list
    elements: dict
    default: []
  volumes:
    description:
      - Named volumes the containers need, each a dictionary of M(runcible.oci.volume) options without
        C(state), C(root) and C(run_root); created before any container.
    type: list
    elements: dict
    default: []
  prune:
    description:
      - Remove the containers of the store that carry the set's label but are no longer listed (with
        O(keep_volumes=false), with their image volumes).
      - Without it, such containers are left alone and named in a warning.
    type: bool
    default: false
  label:
    description:
      - The label that marks the containers of a set; its value is O(name). The default is the one the
        P(runcible.oci.deploy#role) role has always used.
    type: str
    default: io.runcible.deploy
  parallel:
    description:
      - How many containers are created, started or updated at once, among those whose dependencies are done.
      - V(1) runs the entries one after the other, in their order.
    type: int
    default: 8
  keep_volumes:
    description:
      - V(false) removes, with a container that is removed, the volumes made for its image's declared
        volumes; and with O(state=absent), the volumes of O(volumes) (and a Compose file's).
    type: bool
    default: true
  definition:
    description:
      - A Compose document, already parsed, for example
        C("{{ lookup('ansible.builtin.file', 'compose.yaml') | from_yaml }}").
      - Its services become entries after those of O(containers); its networks and volumes are created as
        O(networks) and O(volumes). Keys outside the supported subset fail with the service and the key.
    type: dict
  compose_file:
    description:
      - A Compose file on the controller, read and parsed there (the managed node needs no YAML library); a
        relative path is looked up like the C(src) of M(ansible.builtin.copy) (C(files/) of the role or
        the playbook).
      - Mutually exclusive with O(definition).
    type: path
  project_dir:
    description:
      - Directory on the managed node that relative paths of the Compose document are relative to (bind
        mount sources such as C(./data), C(env_file)).
      - Defaults to the directory of O(compose_file) (the same path on the managed node).
    type: path
  secrets:
    description:
      - Secrets of the containers, by container name (V(*) for every container), each as the container
        module's C(secrets) option; kept out of logs and results.
      - The action plugin moves each entry's own C(secrets) (and those of O(defaults)) here, so an entry can
        give them as M(runcible.oci.container) takes them.
    type: dict
seealso:
  - module: runcible.oci.container
  - module: runcible.oci.network
  - module: runcible.oci.volume
  - ref: ansible_collections.runcible.oci.docsite.deployments
    description: The guide to deployments and Compose files (docs/deployments.md), with the Compose mapping.
notes:
  - Compose C(restart) becomes the container's O(runcible.oci.container#module:restart_policy), C(healthcheck)
    its O(runcible.oci.container#module:healthcheck); a service others depend on with
    C(condition=service_healthy) is brought to O(runcible.oci.container#module:state=healthy) before them.
'''

EXAMPLES = r'''
- name: A web server and its database, the server started after the database
  runcible.oci.deployment:
    name: shop
    networks:
      - name: shop
        subnet: 10.89.20.0/24
    defaults:
      rootfs: /srv/rootfs/debian
      network: shop
      memory: 256m
    containers:
      - name: shop-db
        command: [/usr/sbin/dbd, --foreground]
        ip_address: 10.89.20.10
      - name: shop-web
        command: [/usr/sbin/nginx, -g, daemon off;]
        published_ports: ["8080:80"]
        env:
          DB_HOST: 10.89.20.10
        depends_on: [shop-db]
    prune: true

- name: Workers from one image, eight started at a time
  runcible.oci.deployment:
    name: workers
    defaults:
      image: docker://registry.example.com/team/worker:stable
      network: none
    containers:
      - name: worker-1
      - name: worker-2
      - name: worker-3
    parallel: 8

- name: A compose file of the controller, run without a daemon
  runcible.oci.deployment:
    name: blog
    compose_file: compose.yaml

- name: The same, from a parsed document
  runcible.oci.deployment:
    name: blog
    definition: "{{ lookup('ansible.builtin.file', 'compose.yaml') | from_yaml }}"
    project_dir: /srv/blog

- name: Stop the whole set (dependants first, grace periods overlapping)
  runcible.oci.deployment:
    name: shop
    state: stopped

- name: Remove the set and its networks
  runcible.oci.deployment:
    name: shop
    state: absent
    networks:
      - name: shop
'''

RETURN = r'''
containers:
  description:
    - Each container of the set, by name, in the order of the entries (then those pruned), with the result
      M(runcible.oci.container) returns, with C(changed), C(actions), C(diff) and C(container).
    - A failed entry has C(failed=true) and C(msg); a skipped one C(skipped=true) and C(msg), which names
      the entry it came after.
  returned: always
  type: dict
  sample:
    shop-db:
      changed: true
      actions: [created, started]
      container: {name: shop-db, status: running, ip_address: 10.89.20.10}
    shop-web:
      failed: true
      msg: "published_ports: host port 8080 is in use by another process; nothing was changed"
removed:
  description: The containers removed by O(prune) (or O(state=absent) beyond the entries); in check mode, those
    that would be.
  returned: always
  type: list
  elements: str
  sample: [shop-legacy]
networks:
  description: The result of M(runcible.oci.network) for each network of the set, by name.
  returned: always
  type: dict
volumes:
  description: The result of M(runcible.oci.volume) for each volume of the set, by name.
  returned: always
  type: dict
failed_containers:
  description: The names of the entries that failed.
  returned: when any failed
  type: list
  elements: str
skipped_containers:
  description: The names of the entries not run because one they come after failed.
  returned: when any failed
  type: list
  elements: str
msg:
  description: Each failure with its message, and each skipped entry with its reason.
  returned: when any failed
  type: str
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _deployment
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_deployment.Task, _deployment.argument_spec(), mutually_exclusive=_deployment.MUTUALLY_EXCLUSIVE)


if __name__ == '__main__':
    main()
