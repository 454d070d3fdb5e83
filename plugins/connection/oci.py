# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: oci
short_description: Run tasks inside OCI containers managed by runcible.oci, through the runtime's exec
version_added: 0.2.0
description:
  - Runs Ansible's commands inside a running container that M(runcible.oci.container) created, with
    the OCI runtime's C(exec) (C(runc exec) or C(crun exec)) driven directly on the controller; no
    daemon, no ssh, nothing to install in the container but C(/bin/sh) and, for modules, Python.
  - The controller must be the host of the containers, and Ansible must run there as root (the OCI
    runtime needs it).
  - Each command runs with the container's own environment, capabilities, AppArmor/SELinux labels
    and limits, as O(remote_user) when set.
  - Files are copied in and out with C(cat) inside the container, as O(remote_user), streamed in
    chunks of 64 KiB through a pipe, so a file of any size costs the controller one chunk of memory;
    the file belongs to that user. Paths may hold spaces and any Unicode characters.
  - Supports pipelining (O(pipelining)); privilege escalation inside the container with
    C(ansible.builtin.sudo) or C(ansible.builtin.su) (see the notes).
  - A container that does not exist or does not run makes the host unreachable, with a message that
    says which and what to do.
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - connection_pipelining
options:
  remote_addr:
    description:
      - The name of the container.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_runcible_container
  remote_user:
    description:
      - The user commands run as inside the container, V(name[:group]) or V(uid[:gid]); names are
        looked up in the container's C(/etc/passwd) and C(/etc/group). C(HOME), C(USER) and
        C(LOGNAME) are set from C(/etc/passwd).
      - These files are read inside the container's root, as the container sees them; a symbolic
        link in the container never leads to a file of the host. Only a regular file of at most
        4 MiB is read, and a lookup in a file that is not one fails with the reason. When either
        file is there but is not a regular file (a FIFO, say), every command fails at once with
        the reason, whatever the user, since the OCI runtime would block reading it.
      - When not set, the user of the container's own process (its O(runcible.oci.container#module:user)).
    type: str
    vars:
      - name: ansible_user
      - name: ansible_runcible_user
    env:
      - name: ANSIBLE_REMOTE_USER
    ini:
      - section: defaults
        key: remote_user
    cli:
      - name: user
    keyword:
      - name: remote_user
  root:
    description:
      - Directory of the persistent state of the containers, as given to the modules' O(runcible.oci.container#module:root).
    type: path
    default: /var/lib/runcible
    vars:
      - name: ansible_runcible_root
    env:
      - name: RUNCIBLE_ROOT
  run_root:
    description:
      - Directory of the volatile state of the containers, as given to the modules' O(runcible.oci.container#module:run_root).
    type: path
    default: /run/runcible
    vars:
      - name: ansible_runcible_run_root
    env:
      - name: RUNCIBLE_RUN_ROOT
  runtime:
    description:
      - The OCI runtime to exec with, V(runc), V(crun) or the absolute path of a runtime binary.
      - When not set, the runtime the container was created with (recorded by
        M(runcible.oci.container)), which is almost always right. A runtime of another name cannot
        exec into the container (its state is the other runtime's) and fails.
    type: str
    vars:
      - name: ansible_runcible_runtime
    env:
      - name: RUNCIBLE_RUNTIME
notes:
  - Becoming another user works from root (the default when the container runs as root) with
    C(sudo) or C(su), and from any user with C(sudo) and a password (C(sudo -S) reads it from the
    pipe). C(su) asking for a password needs a terminal, which this plugin does not allocate.
  - Containers made by M(runcible.oci.container) run with C(no_new_privileges), so setuid programs
    do not raise privileges and becoming root from a non-root O(remote_user) does not work; connect
    as root and become the other user instead.
  - Processes a command starts in the background (async tasks, daemons) keep running after it, as
    they do over ssh. When a task is interrupted (its C(timeout), Ctrl-C), the command's session is
    killed.
  - Use the inventory plugin P(runcible.oci.containers#inventory) to list the containers as hosts.
seealso:
  - module: runcible.oci.container
  - module: runcible.oci.container_exec
  - plugin: runcible.oci.containers
    plugin_type: inventory
'''

EXAMPLES = r'''
# Inventory: the container "web" created by runcible.oci.container
# [web]
# web ansible_connection=runcible.oci.oci

- name: Configure the container web from inside
  hosts: web
  gather_facts: true
  vars:
    ansible_connection: runcible.oci.oci
    ansible_pipelining: true
  tasks:
    - name: Install nginx's configuration
      ansible.builtin.copy:
        src: nginx.conf
        dest: /etc/nginx/nginx.conf
        mode: '0644'

    - name: Run a command as the user app
      ansible.builtin.command: id
      become: true
      become_user: app
      changed_when: false

- name: A container with another name than the host, under another store
  hosts: app1
  vars:
    ansible_connection: runcible.oci.oci
    ansible_host: app1-container
    ansible_runcible_root: /srv/containers/state
    ansible_runcible_run_root: /run/srv-containers
  tasks:
    - name: Read its OS release
      ansible.builtin.command: cat /etc/os-release
      changed_when: false
'''

import os

import ansible.constants as C
from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.runcible.oci.plugins.module_utils._runtime import execute, stream
from ansible_collections.runcible.oci.plugins.module_utils._runtime.engine import Engine
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.oci_cli import OCIRuntime, select_runtime
from ansible_collections.runcible.oci.plugins.module_utils._runtime.parsers import check_user_db, resolve_user, validate_name

display = Display()

# The command runs in a shell only to redirect the file: the path is "$1", never quoted into the script.
PUT_SCRIPT = 'exec cat > "$1"'
FETCH_SCRIPT = 'exec cat < "$1"'
BECOME_TIMEOUT_DEFAULT = 10


class Target(object):
    """What one exec needs of the container: record, pid, runtime."""

    __slots__ = ('record', 'pid', 'runtime', 'paths')

    def __init__(self, record, pid, runtime, paths):
        self.record = record
        self.pid = pid
        self.runtime = runtime
        self.paths = paths

    @property
    def rootfs(self):
        """The container's root as the host sees it (mounts included)."""
        return '/proc/%d/root' % self.pid


class Connection(ConnectionBase):
    """Exec into containers of runcible.oci with the OCI runtime, on the controller."""

    transport = 'runcible.oci.oci'
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._engine = None

    # -- connecting ----------------------------------------------------------------------------
    @property
    def container_name(self):
        return self.get_option('remote_addr') or self._play_context.remote_addr

    def _connect(self):
        super(Connection, self)._connect()
        if not self._connected:
            if os.geteuid() != 0:
                raise AnsibleConnectionFailure(
                    'the runcible.oci.oci connection drives the OCI runtime on the controller and needs root there; '
                    'run ansible as root on the host of the containers')
            try:
                self._engine = Engine(self.get_option('root'), self.get_option('run_root'))
            except RuncibleError as exc:
                raise AnsibleConnectionFailure(to_native(exc.msg))
            display.vvv(u'ESTABLISH RUNCIBLE.OCI CONNECTION TO CONTAINER %s AS %s (root %s)'
                        % (self.container_name, self.get_option('remote_user') or '(the container\'s user)',
                           self.get_option('root')), host=self.container_name)
            self._connected = True
        return self

    def _target(self):
        """The container, which must exist and run; raises AnsibleConnectionFailure saying what is wrong."""
        self._connect()
        name = self.container_name
        try:
            validate_name(name)
        except RuncibleError as exc:
            raise AnsibleConnectionFailure('%s (set ansible_host to the name of the container)' % exc.msg)
        try:
            record, live = self._engine.inspect(name)
        except RuncibleError as exc:
            raise AnsibleConnectionFailure(to_native(exc.msg))
        if record is None:
            raise AnsibleConnectionFailure(
                'container %s does not exist under root %s: create it with runcible.oci.container, or point '
                'ansible_runcible_root (and ansible_runcible_run_root) at the store it was created in'
                % (name, self.get_option('root')))
        if live['status'] != 'running':
            hint = {'paused': 'unpause it with runcible.oci.container state=started'}.get(
                live['status'], 'start it with runcible.oci.container state=started')
            reason = ' (%s)' % live['reason'] if live.get('reason') else ''
            raise AnsibleConnectionFailure('container %s is %s%s, not running: %s'
                                           % (name, live['status'], reason, hint))
        return Target(record, live['pid'], self._runtime(record), self._engine.paths(record))

    def _runtime(self, record):
        runtime = self._engine.runtime_for(record)
        wanted = self.get_option('runtime')
        if not wanted:
            return runtime
        try:
            name, path, _warnings = select_runtime(wanted)
        except RuncibleError as exc:
            raise AnsibleConnectionFailure(to_native(exc.msg))
        if name != runtime.name:
            raise AnsibleConnectionFailure(
                'container %s was created with %s: %s cannot exec into it (unset ansible_runcible_runtime, or set it '
                'to %s)' % (record['name'], runtime.name, name, runtime.name))
        replaced = OCIRuntime(runtime.name, path, runtime.state_root, log_path=runtime.log_path)
        replaced.systemd_cgroup = runtime.systemd_cgroup
        return replaced

    def _process(self, target, argv):
        """The OCI process spec of one command: the container's own, with argv and the exec user on top."""
        user = None
        env = {}
        remote_user = self.get_option('remote_user')
        try:
            if remote_user:
                user = resolve_user(remote_user, target.rootfs)
            check_user_db(target.rootfs, 'cannot run commands')
        except RuncibleError as exc:
            raise AnsibleConnectionFailure('container %s: %s' % (target.record['name'], exc.msg))
        if remote_user:
            env = stream.user_env(target.rootfs, user)
        try:
            base = execute.load_container_process(target.paths.config_json)
        except RuncibleError as exc:
            raise AnsibleConnectionFailure(to_native(exc.msg))
        return execute.build_process(base, argv, env, user)

    def _run(self, argv, stdin=None, stdout=None, become=None):
        target = self._target()
        process = self._process(target, argv)
        try:
            result = stream.run(target.runtime, target.record['id'], target.paths.run_dir, process, target.pid,
                                stdin=stdin, stdout=stdout, become=become)
        except stream.BecomeFailed as exc:
            raise AnsibleError('container %s: %s' % (self.container_name, exc.msg))
        except RuncibleError as exc:
            raise AnsibleConnectionFailure('container %s: %s' % (self.container_name, exc.msg))
        if result.runtime_error:
            raise AnsibleConnectionFailure('%s could not exec in container %s: %s'
                                           % (target.runtime.name, self.container_name, result.runtime_error))
        return result

    # -- the connection API --------------------------------------------------------------------
    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        executable = C.DEFAULT_EXECUTABLE.split()[0] if C.DEFAULT_EXECUTABLE else '/bin/sh'
        argv = [executable, '-c', to_text(cmd, errors='surrogate_or_strict')]
        become = None
        if sudoable and self.become and self.become.expect_prompt():
            become = stream.BecomePrompt(self._become_check,
                                         to_bytes(self.become.get_option('become_pass') or '', errors='surrogate_or_strict'),
                                         timeout=self._become_timeout())
        display.vvv(u'EXEC %s%s%s' % (to_text(cmd), ' (%d bytes on stdin)' % len(in_data) if in_data is not None else '',
                                      ' (answering the become prompt)' if become else ''), host=self.container_name)
        result = self._run(argv, stdin=in_data, become=become)
        return result.rc, result.stdout, result.stderr

    def _become_check(self, output):
        if self.become.check_success(output):
            return 'success'
        if self.become.check_password_prompt(output):
            return 'prompt'
        return None

    def _become_timeout(self):
        timeout = getattr(self._play_context, 'timeout', None)
        return timeout if isinstance(timeout, int) and timeout > 0 else BECOME_TIMEOUT_DEFAULT

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        display.vvv(u'PUT %s TO %s' % (in_path, out_path), host=self.container_name)
        b_in_path = to_bytes(in_path, errors='surrogate_or_strict')
        if not os.path.isfile(b_in_path):
            raise AnsibleFileNotFound('file or module does not exist: %s' % to_native(in_path))
        try:
            source = open(b_in_path, 'rb')
        except OSError as exc:
            raise AnsibleError('cannot read %s: %s' % (to_native(in_path), to_native(exc)))
        with source:
            result = self._run(['/bin/sh', '-c', PUT_SCRIPT, 'sh', to_text(out_path)], stdin=source)
        if result.rc != 0:
            raise AnsibleError('failed to copy %s to %s in container %s (exit code %d): %s'
                               % (to_native(in_path), to_native(out_path), self.container_name, result.rc,
                                  _text(result.stderr)))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv(u'FETCH %s TO %s' % (in_path, out_path), host=self.container_name)
        b_out_path = to_bytes(out_path, errors='surrogate_or_strict')
        try:
            sink = open(b_out_path, 'wb')
        except OSError as exc:
            raise AnsibleError('cannot write %s: %s' % (to_native(out_path), to_native(exc)))
        ok = False
        try:
            with sink:
                result = self._run(['/bin/sh', '-c', FETCH_SCRIPT, 'sh', to_text(in_path)], stdout=sink)
            if result.rc != 0:
                raise AnsibleError('failed to fetch %s from container %s (exit code %d): %s'
                                   % (to_native(in_path), self.container_name, result.rc, _text(result.stderr)))
            ok = True
        finally:
            if not ok:
                try:
                    os.unlink(b_out_path)
                except OSError:
                    pass

    def reset(self):
        self.close()

    def close(self):
        self._connected = False
        self._engine = None


def _text(data):
    return to_native(data.decode('utf-8', 'replace').strip() or '(no error output)')
