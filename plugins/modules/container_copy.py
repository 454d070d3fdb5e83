#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_copy
short_description: Copy a file into an OCI container or out of it, with no daemon
version_added: 0.2.0
description:
  - Writes a file of the managed node (O(src)) or a string (O(content)) to a path inside a container
    managed by M(runcible.oci.container), with an owner, a group and a mode; or, with
    O(direction=out), copies a file of the container to a path on the managed node.
  - Idempotent by content (SHA-256), owner, group and mode. A file that already holds the bytes and
    has the attributes asked for is left alone and the task reports no change.
  - The container may be running, created, paused or stopped. While a process of it lives, its paths
    are resolved as that process sees them (through C(/proc/PID/root)), so its volumes and other
    mounts are seen. A stopped container's paths are resolved in its root filesystem on the host; for
    the usual overlay root filesystem, the overlay is mounted for the task and unmounted after it
    (under the container's lock, so no task starts the container meanwhile). A stopped container has
    none of its mounts (volumes, bind mounts, O(runcible.oci.container#module:tmpfs), secrets), so a path
    in one of them is refused then, as the file would land below the mount and be hidden at its next
    start; start the container, or copy into the volume or host directory itself.
  - Paths inside the container never lead out of it. They are resolved inside the container's root
    (C(openat2) with C(RESOLVE_IN_ROOT) where the kernel has it, else one component at a time); a
    symbolic link such as V(/etc/x -> /../../host/file) leads to C(/host/file) of the container, never
    to a file of the host, whatever a process of the container changed before or during the task.
  - The file is written to a temporary file created exclusively (mode 0600) in the destination
    directory, through that directory's file descriptor; it is synced, given its owner and mode, and
    renamed over the destination relative to the same descriptor. Readers never see half a file, and
    a directory swapped for a symbolic link during the task still receives nothing outside the root.
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcible.oci.common
attributes:
  check_mode:
    support: full
    details:
      - Compares and reports what a real run would change; writes nothing. For a stopped container
        with an overlay root filesystem the overlay is still mounted for the task, to read the files
        as the container would see them, and unmounted again.
      - A container that does not exist does not fail in check mode (an earlier task of the same run
        may create it); RV(msg) says so.
  diff_mode:
    support: full
    details:
      - The diff shows the file's state, size, SHA-256, uid, gid and mode before and after; and the
        text before and after when both are UTF-8 text of at most 102 KiB (104448 bytes) and the
        content is not O(content).
  idempotent:
    description: Whether a second run with the same arguments reports no change and changes nothing.
    support: full
    details: By the file's content (SHA-256), owner, group and mode.
  platform:
    platforms: posix
options:
  container:
    description:
      - Name of the container, as given to M(runcible.oci.container).
      - O(name) is an alias, the option's name in every other runcible.oci module.
    type: str
    required: true
    aliases: [name]
  direction:
    description:
      - V(into) writes O(src) (a file of the managed node) or O(content) to O(dest) inside the container.
      - V(out) copies O(src), a file inside the container, to O(dest), a path on the managed node. Only
        a regular file of at most 64 MiB is copied out, read within 60 seconds; a FIFO, device or
        socket is refused without being opened.
    type: str
    choices: [into, out]
    default: into
  src:
    description:
      - With O(direction=into), the path of a regular file on the managed node (not the controller;
        copy it to the node first, or use O(content)).
      - With O(direction=out), the absolute path of a file inside the container, without V(..). Symbolic
        links are followed inside the container. Paths under C(/proc), C(/sys) and C(/dev) are refused.
      - Exactly one of O(src) and O(content) is required.
    type: str
  content:
    description:
      - The file's content as a string, written as UTF-8, with O(direction=into) only. No newline is added.
      - The option is C(no_log), as it often carries a password or a key; it never shows in the result,
        the diff (its text is left out; its size and SHA-256 are shown) or the logs. As with any
        C(no_log) value, Ansible masks every occurrence of the string in the task's result, so a very
        short content such as V(1) masks parts of the result; use O(src) for such files.
    type: str
  dest:
    description:
      - With O(direction=into), the absolute path of the file inside the container. It must not hold
        V(..), end in V(/), or lie under C(/proc), C(/sys) or C(/dev) (also after its symbolic links
        are resolved, and by the file system of the directory actually opened), as those are the kernel's.
      - Its directory is resolved inside the container, following symbolic links inside it. A regular
        file or a symbolic link at O(dest) is replaced (see O(follow)); a directory, FIFO, device or
        socket there is refused, and so is a mount point (a file bind-mounted into the container; replacing it
        would detach the container's mount, so write to its source instead).
      - With O(direction=out), the absolute path of the file on the managed node.
    type: str
    required: true
  owner:
    description:
      - Owner of the file, a user name or a numeric uid. With O(direction=into) a name is looked up in
        the container's C(/etc/passwd) (read inside the container); with O(direction=out) on the managed node.
      - Not set, an existing file keeps its owner; a new file is owned by uid 0.
    type: str
  group:
    description:
      - Group of the file, a group name or a numeric gid, looked up like O(owner) in C(/etc/group).
      - Not set, an existing file keeps its group; a new file gets gid 0.
    type: str
  mode:
    description:
      - Permissions of the file, as octal digits in a string (V('0644'), V('0600'), V('2755')), or a number
        (YAML's V(0644) is read as the octal number it means). Symbolic modes (V(u+rw)) are not supported.
      - Not set, an existing file keeps its mode; a new file gets V('0644') inside the container (readable by
        its users, as most configuration must be; set V('0600') for a secret) and V('0600') on the managed node.
    type: raw
  follow:
    description:
      - What a symbolic link at O(dest) itself means.
      - V(false) (as M(ansible.builtin.copy)), the link is replaced by the file; what it pointed to is left alone.
      - V(true), the file is written where the link leads, resolved inside the container
        (O(direction=into)) or on the managed node (O(direction=out)). Inside a container that is
        still inside its root; a link to V(/../../etc/shadow) leads to the container's C(/etc/shadow).
      - Symbolic links in the directories above O(dest) are always followed, inside the container.
    type: bool
    default: false
  parents:
    description:
      - Create the missing directories of O(dest)'s directory, owned by root, with mode V('0755') inside the
        container and V('0700') on the managed node. Each is made relative to its parent's file descriptor,
        inside the container's root.
      - V(false) (the default), a missing directory fails the task, as a mistyped path should not create a tree.
    type: bool
    default: false
  runtime:
    description:
      - Not used by this module (it runs no runtime command). Accepted so that the same
        C(module_defaults) serve every runcible.oci module.
    type: str
notes:
  - The module must run as root on the managed host.
  - A running container's read-only mounts (a volume mounted read-only, C(read_only)) make the write fail
    with the kernel's C(Read-only file system).
  - Extended attributes, ACLs and SELinux labels are not copied. The overlay of a stopped container is
    mounted with the container's SELinux mount label, so files written there get it as they would
    from inside the container.
  - Nothing of the container runs to copy a file; no C(tar) or shell is needed in its image.
seealso:
  - module: runcible.oci.container
  - module: runcible.oci.container_exec
  - module: ansible.builtin.copy
'''

EXAMPLES = r'''
- name: Put a configuration file of the managed node into the container web
  runcible.oci.container_copy:
    container: web
    src: /srv/config/nginx.conf
    dest: /etc/nginx/nginx.conf
    mode: '0644'

- name: Write a secret from a string, readable only by the user app of the container
  runcible.oci.container_copy:
    container: web
    content: "{{ vault_api_token }}"
    dest: /run/secrets/api-token
    owner: app
    group: app
    mode: '0400'
    parents: true

- name: Fetch a log file out of the container (to the managed node)
  runcible.oci.container_copy:
    container: web
    direction: out
    src: /var/log/nginx/error.log
    dest: /var/tmp/web-error.log

- name: Write where a symbolic link of the container points (resolved inside the container)
  runcible.oci.container_copy:
    container: web
    content: "listen 8080;\n"
    dest: /etc/nginx/conf.d/current
    follow: true
'''

RETURN = r'''
dest:
  description: The path written (inside the container for O(direction=into)); with O(follow=true), where the link led.
  returned: always
  type: str
  sample: /etc/nginx/nginx.conf
src:
  description: The source path, as given.
  returned: when O(src) is given
  type: str
  sample: /srv/config/nginx.conf
checksum:
  description: SHA-256 of the file's content (hex).
  returned: success
  type: str
  sample: 3f0a377ba0a4a460ecb616f6507ce0d8cfa3e704025d4fda3ed0c5ca05468728
size:
  description: Size of the file in bytes.
  returned: success
  type: int
  sample: 1024
uid:
  description: Owner of the file (numeric).
  returned: success
  type: int
  sample: 0
gid:
  description: Group of the file (numeric).
  returned: success
  type: int
  sample: 0
mode:
  description: Permissions of the file, four octal digits.
  returned: success
  type: str
  sample: '0644'
direction:
  description: V(into) or V(out), as given.
  returned: success
  type: str
  sample: into
created_dirs:
  description: The directories created (or that would be, in check mode) because of O(parents=true).
  returned: when directories were missing
  type: list
  elements: str
  sample: [/run/secrets]
container_status:
  description: Status of the container (V(running), V(created), V(paused), V(stopped), V(absent)).
  returned: always
  type: str
  sample: running
msg:
  description: Why nothing could be compared (the container does not exist, in check mode).
  returned: when the container does not exist, in check mode
  type: str
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _copy
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_copy.CopyTask, _copy.argument_spec(), mutually_exclusive=_copy.MUTUALLY_EXCLUSIVE,
             required_one_of=_copy.REQUIRED_ONE_OF)


if __name__ == '__main__':
    main()
