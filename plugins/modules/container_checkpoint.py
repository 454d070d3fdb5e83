#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_checkpoint
short_description: Checkpoint and restore running containers with CRIU, export and import them
version_added: 0.2.0
description:
  - Freezes a running container to disk with CRIU (C(runc checkpoint)) and brings it back with its
    memory intact, on the same host or, from an exported archive, on another one.
  - A restored container is started through conmon (C(conmon --restore)), so it is supervised
    exactly like a started one; stop, exit codes and logs work as before.
  - Only the latest checkpoint of a container is kept, under O(root).
  - B(A checkpoint is process memory that is restored as root.) Importing an archive restores the
    processes it holds, with their code, in a container on this host; import only archives you
    would run as an image. What an archive cannot do is reach outside the container store or
    choose anything on the host (see O(import_archive)). O(integrity_key) lets the importing task
    refuse an archive that was changed after its export.
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcible.oci.common
attributes:
  check_mode:
    support: full
    details: Says what would happen (and runs C(criu check)); writes nothing.
  diff_mode:
    support: full
    details: Status and checkpoint id before and after.
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the container.
    type: str
    required: true
  state:
    description:
      - V(checkpointed) dumps the running container. It stops, unless O(leave_running=true).
        A container that is already checkpointed and not running is left alone; with
        O(leave_running=true), a running container whose current process was already
        checkpointed is left alone unless O(force=true).
      - V(restored) brings a stopped container back from its latest checkpoint; a running
        container is left alone. With O(import_archive), the container is created from the
        archive and restored.
    type: str
    default: checkpointed
    choices: [checkpointed, restored]
  leave_running:
    description:
      - Keep the container running after the checkpoint.
    type: bool
    default: false
  force:
    description:
      - Take a new checkpoint of a running container even if its current process has one.
    type: bool
    default: false
  export:
    description:
      - Path of an archive to write with everything needed to restore elsewhere; the container's
        configuration, its OCI spec, the CRIU images, its root filesystem changes (the overlay upper
        directory) and its log. Needs O(state=checkpointed).
      - The archive holds the container's environment and the memory of its processes, so it is
        written with mode C(0600), created exclusively under a random name next to O(export) and
        renamed over it (a symlink at O(export) is replaced, never followed). The container's upper
        directory is read without following any symlink a process in the container planted there.
      - Written again only when the checkpoint changed, the file is not the one written last, or
        O(integrity_key) changed.
      - The target host needs the same root filesystem or the image in its image store, and the bind
        mount sources; the importing task names them (O(rootfs), O(mounts)).
    type: path
  compress:
    description:
      - Compression of O(export). V(zstd) needs the C(zstd) program.
    type: str
    default: zstd
    choices: [zstd, gzip, none]
  import_archive:
    description:
      - Archive written by O(export) to create the container O(name) from and restore.
        Needs O(state=restored).
      - The archive is read once and checked whole before a container is made from it. It is
        unpacked into a private directory of the store without ever following a symlink or writing
        outside it (absolute names, C(..), members below a symlink, duplicate names, hard links to
        anything but an earlier file of the same part, device nodes other than overlay whiteouts,
        CRIU images other than files are refused), and its expanded size (sparse members at their full
        size) must fit the free space of O(root).
      - Its manifest is checked field by field (identifiers by strict patterns, the runtime by name,
        C(runc) or C(crun), never a path) and the container's configuration is rebuilt from it through
        the type checks and normalisers of M(runcible.oci.container)'s own options; unknown options are
        refused, host paths are never taken from an archive (give O(rootfs) and O(mounts); devices and
        seccomp profile files are refused), an image only by digest from this host's image store.
      - The container gets this host's default confinement (seccomp, AppArmor profile, SELinux labels
        with a level of this host; the restored processes get the profile and labels, not the ones in
        the CRIU images). An archive that is not verified with O(integrity_key) may not loosen it
        (C(privileged), C(cap_add), C(no_new_privileges=false), C(seccomp_profile=unconfined),
        C(network=host), ...). The CRIU images still carry the processes' capabilities and seccomp
        filters, so import only archives from hosts you trust (see C(docs/security.md)).
      - When a container O(name) exists and comes from this archive's checkpoint, it is only restored
        if stopped; any other container of that name is an error.
    type: path
    aliases: [import]
  integrity_key:
    description:
      - A secret shared by the exporting and the importing task, at least 16 characters. With
        O(export), the archive gets a keyed digest (HMAC-SHA256) of every member; with
        O(import_archive), an archive without that digest, or whose digest does not match with this
        key, is refused before a container is made from it.
      - The option is C(no_log). The key is never written anywhere in clear; the record keeps a keyed
        fingerprint of it to notice a new key.
    type: str
  rootfs:
    description:
      - With O(import_archive), the root filesystem on this host for a container that ran on one (an
        archive may not choose host paths). Usually the same directory as on the exporting host, with
        the same content.
      - Needed when the archive's container ran on a root filesystem; replaces an image too.
    type: path
  image:
    description:
      - With O(import_archive), the image (in this host's image store) to run the imported container
        from, instead of the archive's own image, which is otherwise taken by its digest.
    type: str
  mounts:
    description:
      - With O(import_archive), the bind mounts of the imported container, as
        O(runcible.oci.container#module:mounts) takes them; needed when the archive's container had
        bind mounts (the same targets; the restored processes expect them).
    type: list
    elements: raw
  tcp_established:
    description:
      - Checkpoint and restore established TCP connections (CRIU C(--tcp-established)).
    type: bool
    default: false
  file_locks:
    description:
      - Checkpoint and restore file locks (CRIU C(--file-locks)).
    type: bool
    default: false
  keep:
    description:
      - Keep CRIU's dump and restore logs next to the checkpoint (they are always kept when CRIU fails,
        and the failure message names the log).
    type: bool
    default: false
notes:
  - Needs a CRIU that passes C(criu check) on the host. Debian 12's criu 3.17 fails on newer kernels;
    C(make setup) of this collection builds CRIU 4.x from the newer Debian source package.
  - Incremental checkpoints (pre-dump) are not offered; every checkpoint is a full dump.
seealso:
  - module: runcible.oci.container
'''

EXAMPLES = r'''
- name: Checkpoint a running container (it stops) and export it
  runcible.oci.container_checkpoint:
    name: counter
    state: checkpointed
    export: /var/tmp/counter.tar.zst

- name: Bring it back, memory intact
  runcible.oci.container_checkpoint:
    name: counter
    state: restored

- name: Take a checkpoint and keep the container running
  runcible.oci.container_checkpoint:
    name: counter
    leave_running: true

- name: Export with a keyed digest (the key from a vault)
  runcible.oci.container_checkpoint:
    name: counter
    export: /var/tmp/counter.tar.zst
    integrity_key: "{{ vault_checkpoint_key }}"

- name: On another host, create the container from the archive and restore it
  runcible.oci.container_checkpoint:
    name: counter
    state: restored
    import: /var/tmp/counter.tar.zst
    integrity_key: "{{ vault_checkpoint_key }}"
    rootfs: /srv/rootfs/busybox
'''

RETURN = r'''
actions:
  description: What was done (V(checkpointed), V(stopped), V(exported), V(imported), V(restored)).
  returned: always
  type: list
  elements: str
container:
  description: The container after the task, as M(runcible.oci.container) returns it.
  returned: always
  type: dict
integrity:
  description:
    - With O(import_archive), what was checked of the archive's integrity digest; V(verified) (with
      O(integrity_key)), V(unsigned) (the archive has none) or V(not checked) (it has one, no key was
      given).
  returned: when an archive was read
  type: str
  sample: verified
checkpoint:
  description: The container's latest checkpoint; empty when it has none.
  returned: always
  type: dict
  contains:
    id:
      description: Checkpoint id.
      type: str
    path:
      description: Directory of the checkpoint (C(images/) holds CRIU's images).
      type: str
    size:
      description: Size of the CRIU images in bytes.
      type: int
    created:
      description: When it was taken (UTC).
      type: str
    runtime_version:
      description: Version of the OCI runtime that took it.
      type: str
    criu_version:
      description: Version of CRIU that took it.
      type: str
    dump_seconds:
      description: How long the dump took.
      type: float
    restore_seconds:
      description: How long the last restore took; null when never restored.
      type: float
    export:
      description: The O(export) path of this task, if any.
      type: str
  sample:
    id: 5a0c1f2e3d4b5a6978877665544332211
    size: 157407
    dump_seconds: 0.298
    restore_seconds: 0.27
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _checkpoint
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_checkpoint.Task, _checkpoint.argument_spec())


if __name__ == '__main__':
    main()
