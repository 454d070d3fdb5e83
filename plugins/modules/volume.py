#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: volume
short_description: Named volumes for runcible.oci containers, whose data outlives the containers
version_added: 0.2.0
description:
  - Creates or removes one named volume under O(root), a directory of the store that containers mount and that
    stays when they are removed, as the C(local) driver of Docker and Podman does.
  - A volume lives in C(ROOT/volumes/NAME/); its data is the directory C(ROOT/volumes/NAME/_data) (returned as
    RV(volume.mountpoint)), its record C(ROOT/volumes/NAME/volume.json).
  - Without O(options) a volume is a plain directory. With O(options) it is a file system mounted on the host at
    its C(_data) directory (a tmpfs, a block device, or a bind of a host directory); the module mounts it when it
    creates the volume, and again when it finds it unmounted (after a reboot, say), as a container's start does.
  - Idempotent. A volume is never changed in place; one that exists with other O(labels) or O(options) fails the
    task, unless O(recreate=true).
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcible.oci.common
attributes:
  check_mode:
    support: full
    details: Reports what would change and writes nothing (no directory, record, lock file or mount). Bad input
      and a volume in use fail in check mode too.
  diff_mode:
    support: full
    details: Before and after of the volume's definition when it is created or removed, of the differing fields
      when it is recreated, and of V(mounted) when it is mounted again.
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the volume, 1 to 128 characters from C([a-zA-Z0-9_.-]), starting with a letter or digit.
    type: str
    required: true
  state:
    description:
      - V(present) creates the volume (and mounts its file system when it has O(options)).
      - V(absent) unmounts its file system and B(deletes the volume with all its data). It fails while a container
        of O(root) uses the volume (remove the container first), and while a process on the host keeps its mount
        busy; a busy mount is never detached lazily.
    type: str
    default: present
    choices: [present, absent]
  driver:
    description:
      - The volume driver. Only V(local) exists.
    type: str
    default: local
    choices: [local]
  labels:
    description:
      - Labels of the volume, names and values (values are kept as strings).
      - When not set, an existing volume's labels are accepted as they are; when set (also to V({})), they must be
        the volume's.
    type: dict
  options:
    description:
      - Mount options of the C(local) driver, as C(docker volume create --opt) takes them.
      - When not set, an existing volume's options are accepted as they are; when set, they must be the volume's
        (the words of O(options.o) in any order). Without options (or with V({})) a volume is a plain directory.
    type: dict
    suboptions:
      type:
        description:
          - The file system. V(tmpfs) (memory, emptied when unmounted or at a reboot), V(none) with O(options.o=bind)
            (a bind of the host directory O(options.device)), or a disk file system such as V(ext4) or V(xfs) with a
            block device as O(options.device).
          - Kernel file systems (V(proc), V(sysfs), V(cgroup2)...) are refused.
          - Required when O(options.device) or O(options.o) is given.
        type: str
      device:
        description:
          - What is mounted. V(tmpfs) or nothing for a tmpfs; an existing host directory for V(none); an existing
            block device otherwise (for an image file, C(losetup --find --show FILE) gives one).
          - Network file systems are not supported.
        type: str
      o:
        description:
          - Mount options separated by commas, from V(ro), V(rw), V(nosuid), V(suid), V(nodev), V(dev), V(noexec),
            V(exec), V(noatime), V(nodiratime), V(relatime), V(strictatime), V(sync), V(async), V(dirsync), V(bind),
            V(rbind), and for tmpfs V(size=) (bytes, with k, m, g, or a percentage of RAM), V(nr_blocks=),
            V(nr_inodes=), V(mode=) (octal, e.g. V(1777)), V(uid=), V(gid=). Other options are refused, with this list.
        type: str
  recreate:
    description:
      - When the volume exists with other O(labels) or O(options), remove it and create it again as the task says.
      - B(This deletes all the data of the volume.) It fails while a container uses the volume. Without it such a
        task fails and changes nothing.
    type: bool
    default: false
  runtime:
    description:
      - Not used by this module (volumes need no runtime). Accepted so that the same C(module_defaults) serve every
        runcible.oci module.
    type: str
notes:
  - The module must run as root on the managed host.
  - A container uses a volume by mounting it (the container option
    O(runcible.oci.container#module:mounts)); only containers of the same O(root) see it.
  - Removing a bind volume (V(type=none)) unmounts the bind and deletes the volume's directory; the host directory
    O(options.device) and its files are left as they are. Nothing is deleted while anything is still mounted below
    the volume's directory.
  - A tmpfs volume's data lives in memory only; it is gone after a reboot (the volume is mounted again, empty).
  - See C(docs/volumes.md) in the collection for what a volume is, where it lives and what removes data.
seealso:
  - module: runcible.oci.volume_info
  - module: runcible.oci.container
'''

EXAMPLES = r'''
- name: A plain volume for a database's files
  runcible.oci.volume:
    name: pgdata
    labels:
      app: postgres

- name: A tmpfs volume of 64 MiB, writable by everyone (sticky)
  runcible.oci.volume:
    name: scratch
    options:
      type: tmpfs
      o: size=64m,mode=1777,nosuid,nodev

- name: A host directory as a volume, read-only
  runcible.oci.volume:
    name: site
    options:
      type: none
      device: /srv/www
      o: bind,ro

- name: A volume on its own disk
  runcible.oci.volume:
    name: media
    options:
      type: ext4
      device: /dev/vdb1
      o: noatime

- name: Change the size of scratch -- THIS DELETES ITS DATA
  runcible.oci.volume:
    name: scratch
    options:
      type: tmpfs
      o: size=128m,mode=1777,nosuid,nodev
    recreate: true

- name: Remove pgdata and all its data (its containers first)
  runcible.oci.volume:
    name: pgdata
    state: absent
'''

RETURN = r'''
actions:
  description: What was done (V(created), V(mounted), V(recreated), V(removed)); empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: [created]
volume:
  description: The volume after the task; empty when it is absent. In check mode, the volume as it would be.
  returned: always
  type: dict
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
      description: Host path of its data directory, C(ROOT/volumes/NAME/_data), what containers mount.
      type: str
    created:
      description: When it was created (UTC, ISO 8601); null in check mode for a volume not created yet.
      type: str
    mounted:
      description: Whether its file system is mounted at RV(volume.mountpoint) (always false for a plain directory).
      type: bool
    users:
      description: Names of the containers of O(root) that mount it.
      type: list
      elements: str
  sample:
    name: scratch
    driver: local
    labels: {}
    options:
      type: tmpfs
      o: size=64m,mode=1777,nosuid,nodev
    mountpoint: /var/lib/runcible/volumes/scratch/_data
    created: '2026-12-06T23:04:26.291635Z'
    mounted: true
    users: [web]
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _volume
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_volume.Task, _volume.argument_spec())


if __name__ == '__main__':
    main()
