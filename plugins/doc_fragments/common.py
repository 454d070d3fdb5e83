# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The options every runcible.oci module shares: where the state lives and which OCI runtime runs.

    Their argument_spec is ``module_utils/_task.py``'s common_argument_spec(); a unit test keeps the two equal.
    """

    DOCUMENTATION = r'''
options:
  root:
    description:
      - Directory of the persistent state (container records, bundles, overlay upper dirs, logs).
      - Every module and plugin must use the same O(root) and O(run_root) to see the same containers.
    type: path
    default: /var/lib/runcible
  run_root:
    description:
      - Directory of the volatile state (runtime state, conmon pid and exit files, sockets).
      - Should be on a tmpfs such as C(/run), so that a reboot clears it; records whose boot id
        differs from the current one are reported as stopped.
    type: path
    default: /run/runcible
  runtime:
    description:
      - The OCI runtime, V(runc), V(crun) or the absolute path of a runtime binary.
      - When not set, the first installed runtime that works on this host, in the order V(crun),
        V(runc). crun refuses hosts with hybrid cgroups (v1 controllers with cgroup v2 at
        C(/sys/fs/cgroup/unified)); there it is skipped with a warning, and asking for it fails.
      - An existing container keeps the runtime it was created with; when O(runtime) is set and
        differs, the container is recreated.
    type: str
requirements:
  - conmon (Debian package C(conmon))
  - runc or crun (Debian packages C(runc), C(crun))
  - root on the managed host
'''
