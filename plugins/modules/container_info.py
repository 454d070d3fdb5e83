#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_info
short_description: Read the state and logs of OCI containers, with no daemon
version_added: 0.2.0
description:
  - Returns the containers managed by M(runcible.oci.container) under O(root), each as the same
    dictionary M(runcible.oci.container) returns, and optionally the last lines of their logs.
  - The status is read live (conmon's exit file and a check of the processes), never taken from
    a stale record.
  - Changes nothing, and starts no process to find out.
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcible.oci.common
attributes:
  check_mode:
    support: full
    details: Reads only (O(check_health) runs no check in check mode); check mode returns the same.
  diff_mode:
    support: N/A
    details: Changes nothing but health results and O(check_health)'s C(health_on_failure).
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of a container, or a list of names. Containers that do not exist are left out of
        RV(containers).
      - When not set, every container under O(root), sorted by name.
    type: raw
  logs_tail:
    description:
      - Return the last N lines of each container's log as RV(containers[].logs); V(-1) for all
        lines; V(0) for none, unless O(logs_since) is set, which then returns every line since.
      - For the V(k8s-file) log driver, the log file is read from its end, only as far back as needed.
    type: int
    default: 0
  logs_since:
    description:
      - Only return log lines written at or after this moment. A timestamp
        (V(2026-12-01T13:00:00Z), V(2026-12-01 13:00:00+02:00); UTC when no offset is given), seconds
        since the epoch (V(1764594000)), or a duration back from now (V(10m), V(1h30m), V(2d), V(45s)).
    type: str
  check_health:
    description:
      - Run the health check of each running container with a
        O(runcible.oci.container#module:healthcheck) whose interval has passed since its last check
        (health is evaluated on demand - no daemon runs checks), and report the new
        RV(containers[].health). An unhealthy container gets its
        O(runcible.oci.container#module:health_on_failure), which is a change (RV(actions)).
      - Not in check mode.
    type: bool
    default: false
  runtime:
    description:
      - Not used by this module (reading needs no runtime). Accepted so that the same
        C(module_defaults) serve every runcible.oci module.
    type: str
requirements:
  - python-systemd (PyPI C(systemd-python), Debian C(python3-systemd)), only to read the logs of
    containers with C(log_driver=journald)
notes:
  - The module must run as root on the managed host.
  - Log lines that conmon wrote in parts (longer than its buffer, or printed without a newline
    yet) are joined back into one line; a last line without a newline yet is returned as it is.
  - Invalid UTF-8 in logs is replaced by U+FFFD.
seealso:
  - module: runcible.oci.container
  - module: runcible.oci.container_exec
'''

EXAMPLES = r'''
- name: Does the container web exist, and what is its status?
  runcible.oci.container_info:
    name: web
  register: web

- name: Start it only when it is not running
  runcible.oci.container:
    name: web
    state: started
  when: not web.exists or web.containers[0].status != 'running'

- name: The last 20 lines of its log
  runcible.oci.container_info:
    name: web
    logs_tail: 20
  register: web_logs

- name: Show them
  ansible.builtin.debug:
    var: web_logs.containers[0].logs

- name: Errors of the last ten minutes of two containers
  runcible.oci.container_info:
    name: [web, db]
    logs_since: 10m
  register: recent

- name: List every container and its status
  runcible.oci.container_info:
  register: all_containers

- name: Names of those that stopped
  ansible.builtin.debug:
    msg: "{{ all_containers.containers | selectattr('status', 'equalto', 'stopped') | map(attribute='name') | list }}"
'''

RETURN = r'''
actions:
  description: What O(check_health) did to unhealthy containers (C(NAME killed (unhealthy)), C(NAME restarted (unhealthy))).
  returned: when any
  type: list
  elements: str
exists:
  description: Whether the container exists.
  returned: when O(name) is a single name (a string, or a list of one)
  type: bool
  sample: true
containers:
  description:
    - The containers found, in the order asked (all containers, sorted by name, when O(name) is not set).
    - Each is the dictionary M(runcible.oci.container) returns as RV(runcible.oci.container#module:container),
      plus RV(containers[].logs) and RV(containers[].log_entries) when logs were asked.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Container id (64 hex digits), also the runtime's id.
      type: str
    name:
      description: Container name.
      type: str
    status:
      description: V(created), V(running), V(paused) or V(stopped), read live.
      type: str
    pid:
      description: Host pid of the container's process; 0 when it does not run.
      type: int
    conmon_pid:
      description: Host pid of its conmon; 0 when none runs.
      type: int
    exit_code:
      description: Exit code of the last process when stopped (null when unknown).
      type: int
    health:
      description: Its health check results (null without a health check), as M(runcible.oci.container) returns them.
      type: dict
    restart_count:
      description: How many times its restart policy started it again (M(runcible.oci.container)'s
        O(runcible.oci.container#module:restart_policy)).
      type: int
    created_at:
      description: When the container was created (UTC, ISO 8601).
      type: str
    started_at:
      description: When its process was last started.
      type: str
    finished_at:
      description: When its process last ended.
      type: str
    bundle:
      description: Path of its OCI bundle.
      type: str
    rootfs:
      description: Path of the root filesystem the container sees.
      type: str
    log_path:
      description: conmon's log file (used with the V(k8s-file) log driver).
      type: str
    runtime:
      description: Name of its OCI runtime.
      type: str
    config:
      description: The normalised configuration it was created with.
      type: dict
    logs:
      description: Its log lines, oldest first (newest last), without their newlines.
      returned: when O(logs_tail) is not 0 or O(logs_since) is set
      type: list
      elements: str
      sample: [listening on :8080, 'GET / 200']
    log_entries:
      description: The same lines with the stream and the time each was written.
      returned: when O(logs_tail) is not 0 or O(logs_since) is set
      type: list
      elements: dict
      contains:
        timestamp:
          description: When conmon wrote the line (RFC 3339, nanoseconds).
          type: str
          sample: '2026-12-01T13:26:05.887344118+00:00'
        stream:
          description: V(stdout) or V(stderr).
          type: str
          sample: stdout
        message:
          description: The line.
          type: str
          sample: listening on :8080
  sample:
    - id: 2f1c0e6f0c4f4b6fa0f5f2d8c6a1b7e93c1d2e4f5a6b7c8d9e0f1a2b3c4d5e6f
      name: web
      status: running
      pid: 4242
      conmon_pid: 4230
      exit_code: null
      logs: [listening on :8080]
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _info
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_info.InfoTask, _info.argument_spec())


if __name__ == '__main__':
    main()
