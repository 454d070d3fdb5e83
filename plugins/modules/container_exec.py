#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_exec
short_description: Run a command inside a running OCI container, with no daemon
version_added: 0.2.0
description:
  - Runs a command in a running container managed by M(runcible.oci.container), through the OCI
    runtime's C(exec) (C(runc exec) or C(crun exec)), like M(ansible.builtin.command) runs one on
    the host. No shell runs unless the command is one.
  - The command runs with the container's own capabilities, seccomp filter, AppArmor profile,
    C(noNewPrivileges), rlimits and environment, plus what the task sets with O(env), O(user) and
    O(chdir) (see C(docs/security.md)).
  - Fails when the command's exit code is not 0, like M(ansible.builtin.command); the failed
    result still holds RV(rc), RV(stdout) and RV(stderr), so C(failed_when) can decide.
  - When the command ends (or times out), every process it started that is still running in the
    container is killed; nothing of the exec outlives the task, unless O(detach=true).
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcible.oci.common
attributes:
  check_mode:
    support: full
    details:
      - The command never runs in check mode. O(creates) and O(removes) are still evaluated, so
        the result says whether a real run would run it.
      - A container that is not running does not fail in check mode (an earlier task of the same
        run may start it); RV(msg) says its status.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  container:
    description:
      - Name of the container, as given to M(runcible.oci.container). It must be running.
      - O(name) is an alias, the option's name in every other runcible.oci module.
    type: str
    required: true
    aliases: [name]
  argv:
    description:
      - The command as a list of arguments; the first is the program, looked up in the
        container's C(PATH) when it has no C(/).
      - Exactly one of O(argv) and O(command) is required.
    type: list
    elements: str
  command:
    description:
      - The command as a string, split into arguments like a POSIX shell would split it
        (quotes, backslashes); no shell runs, so no pipes, redirections or variables. Use
        O(argv) with V(sh) and V(-c) for those.
    type: str
  env:
    description:
      - Environment variables set on top of the container's own environment.
      - Plain configuration, shown like any option (a value such as V(two) no longer censors every
        C(two) in the command's output). Put passwords and tokens in O(secrets).
    type: dict
  secrets:
    description:
      - Secret environment variables for the command, name to value, set on top of O(env).
      - The option is C(no_log). Values never show in results or logs, are never put on a command
        line, and reach the runtime only in a process spec file readable only by root in the
        container's run directory (a tmpfs), removed as soon as the command started.
      - The container's own secrets (O(runcible.oci.container#module:secrets) of type V(env)) are
        in its environment already.
    type: dict
  user:
    description:
      - User to run the command as, V(uid[:gid]) or V(name[:group]); names are looked up in the
        container's C(/etc/passwd) and C(/etc/group). Defaults to the container's user.
      - A user other than root gets no effective or permitted capabilities (as the container
        itself would); root gets the container's bounding set.
    type: str
  chdir:
    description:
      - Absolute working directory inside the container. Defaults to the container's working directory.
    type: str
  stdin:
    description:
      - Text fed to the command's standard input, which is then closed (EOF). No newline is added.
      - Without it, standard input is C(/dev/null).
      - The option is C(no_log) (it often carries a password or a key); it never shows in results or
        logs, not even at C(-vvv).
    type: str
  timeout:
    description:
      - Seconds the command may run. Then it is killed (SIGKILL) with every process it started in
        the container, and the task fails with a message saying that it timed out.
      - No limit when not set.
    type: float
  detach:
    description:
      - Start the command in the background and return at once with its host RV(pid); it keeps
        running after the task. Its standard input, output and error are C(/dev/null) (redirect
        inside the command to keep its output, for example with V(sh -c "cmd >/var/log/cmd.log 2>&1")).
      - Cannot be combined with O(stdin) or O(timeout).
    type: bool
    default: false
  creates:
    description:
      - A path inside the container; when it exists the command does not run and the task reports no change.
      - Symbolic links are resolved inside the container and mounts are seen as the container
        sees them. A glob pattern is allowed in the last path component, for example V(/run/*.pid).
    type: str
  removes:
    description:
      - A path inside the container; when it does not exist the command does not run.
      - Resolved like O(creates).
    type: str
  strip_empty_ends:
    description:
      - Strip trailing newlines from RV(stdout) and RV(stderr).
    type: bool
    default: true
  runtime:
    description:
      - Not used by this module. The command always runs with the runtime that the container
        was created with. Accepted so that the same C(module_defaults) serve every runcible.oci module.
    type: str
notes:
  - The module must run as root on the managed host.
  - "Why the runtime's C(exec) and not conmon exec sessions: the process is an exact JSON OCI
    process spec made from the container's C(config.json) (capabilities, C(noNewPrivileges),
    rlimits, AppArmor profile, environment; the runtime applies the container's seccomp filter), handed over with C(--process) so nothing secret is on a
    command line; the runtime starts it with C(--detach), so it writes straight into the module's
    pipes (no copy through a monitor) while the module, as child subreaper, waits for it and gets
    its exact exit status. A conmon exec session would add a conmon process, an attach socket and
    a copy of every byte per exec, for features (reattaching, a TTY) an Ansible task does not use."
  - Each exec runs in a sub-cgroup of the container (the v1 freezer hierarchy or the v2 unified
    one), so every process it starts can be found, frozen and killed, even one that forked into
    the background or called C(setsid). Without such a cgroup, its session and descendants are
    killed instead.
  - Processes the command leaves behind are re-parented to the container's first process
    (as in any PID namespace); it must reap them (a shell or an init does), or they stay as
    zombies until the container stops.
  - Output of any size is read while the command runs and is kept in memory; invalid UTF-8 is
    replaced by U+FFFD.
  - Several execs may run in one container at the same time; none of them changes the container.
seealso:
  - module: runcible.oci.container
  - module: runcible.oci.container_info
  - module: ansible.builtin.command
'''

EXAMPLES = r'''
- name: Run a command in the container web
  runcible.oci.container_exec:
    container: web
    command: cat /etc/os-release
  register: release

- name: Use a shell for pipes and variables, as another user, with a secret in the environment
  runcible.oci.container_exec:
    container: web
    argv: [sh, -c, 'echo "$TOKEN" | wc -c > /tmp/token-length']
    user: app
    chdir: /tmp
    env:
      TOKEN: "{{ vault_token }}"

- name: Initialise the database once (skipped when the marker exists in the container)
  runcible.oci.container_exec:
    container: db
    argv: [/usr/local/bin/init-db, --data, /var/lib/db]
    creates: /var/lib/db/.initialised
    timeout: 300

- name: Feed a script on standard input
  runcible.oci.container_exec:
    container: web
    argv: [sh]
    stdin: |
      set -e
      mkdir -p /srv/cache
      touch /srv/cache/ready

- name: Tolerate a non-zero exit code and decide from the output
  runcible.oci.container_exec:
    container: web
    argv: [grep, -c, ERROR, /var/log/app.log]
  register: errors
  failed_when: errors.rc > 1
  changed_when: false

- name: Start a worker in the background
  runcible.oci.container_exec:
    container: web
    argv: [sh, -c, 'exec /usr/local/bin/worker >/var/log/worker.log 2>&1']
    detach: true
  register: worker
'''

RETURN = r'''
cmd:
  description: The command that was (or would be) run, as a list of arguments.
  returned: always
  type: list
  elements: str
  sample: [cat, /etc/os-release]
rc:
  description:
    - Exit code of the command; 128 plus the signal number when a signal killed it (137 after a
      timeout). 0 when it did not run (check mode, O(creates), O(removes)) and for O(detach=true).
    - When the runtime could not start the command (no such program, no such O(chdir)), the
      runtime's exit code (255 for runc), with its error in RV(msg).
  returned: always
  type: int
  sample: 0
stdout:
  description: Standard output of the command.
  returned: always
  type: str
  sample: NAME="Debian GNU/Linux"
stderr:
  description: Standard error of the command.
  returned: always
  type: str
  sample: ''
stdout_lines:
  description: RV(stdout) split into lines.
  returned: always
  type: list
  elements: str
  sample: [NAME="Debian GNU/Linux"]
stderr_lines:
  description: RV(stderr) split into lines.
  returned: always
  type: list
  elements: str
  sample: []
start:
  description: When the command started (local time of the managed host).
  returned: when the command ran
  type: str
  sample: '2026-12-01 13:26:05.887344'
end:
  description: When the command ended (for O(detach=true), when it had been started).
  returned: when the command ran
  type: str
  sample: '2026-12-01 13:26:05.912005'
delta:
  description: How long it ran.
  returned: when the command ran
  type: str
  sample: '0:00:00.024661'
pid:
  description: Host pid of the detached command.
  returned: when O(detach=true) and the command was started
  type: int
  sample: 4242
msg:
  description: Why the command failed, timed out, or did not run.
  returned: when it failed or did not run
  type: str
  sample: Did not run command since /var/lib/db/.initialised exists
container_status:
  description: Status of the container when it is not running (V(absent), V(stopped), V(created), V(paused)).
  returned: when the container is not running
  type: str
  sample: stopped
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _exec
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_exec.ExecTask, _exec.argument_spec(), mutually_exclusive=_exec.MUTUALLY_EXCLUSIVE,
             required_one_of=_exec.REQUIRED_ONE_OF)


if __name__ == '__main__':
    main()
