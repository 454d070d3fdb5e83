#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: image_info
short_description: List the OCI images of the local image store
version_added: 0.2.0
description:
  - Returns the images M(runcible.oci.image) and M(runcible.oci.container) keep under O(root)
    (C(root/images)), each as the dictionary M(runcible.oci.image) returns, with the containers
    that run from it.
  - Changes nothing; never asks a registry.
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
      - Image references (V(oci:...), V(oci-archive:...), V(docker://...)) or manifest digests
        (V(sha256:...)) to return; those not in the local store are left out.
      - When not set, every local image.
    type: list
    elements: str
  run_root:
    description:
      - Not used by this module. Accepted so that the same C(module_defaults) serve every runcible.oci module.
    type: path
    default: /run/runcible
  runtime:
    description:
      - Not used by this module. Accepted so that the same C(module_defaults) serve every runcible.oci module.
    type: str
seealso:
  - module: runcible.oci.image
'''

EXAMPLES = r'''
- name: Every local image
  runcible.oci.image_info:
  register: found

- name: One image, by the reference it was pulled with
  runcible.oci.image_info:
    name: docker://docker.io/library/busybox:latest
  register: busybox

- name: Its digest and the containers that use it
  ansible.builtin.debug:
    msg: "{{ busybox.images[0].digest }} is used by {{ busybox.images[0].containers }}"
  when: busybox.images | length > 0
'''

RETURN = r'''
images:
  description: The images, each as M(runcible.oci.image) returns RV(runcible.oci.image#module:image).
  returned: always
  type: list
  elements: dict
  sample:
    - digest: sha256:c7181e132ddc7d7e0eac8438dc16549bd7c515dfe08e654031b4f72cda0c0715
      references: ['oci:/srv/images/app:1.4']
      architecture: amd64
      os: linux
      size: 1982256
      containers: [web]
      config:
        entrypoint: [/app/run.sh]
        cmd: []
        env: {PATH: /usr/bin:/bin}
        workdir: /app
        user: app
        labels: {}
        exposed_ports: [8080/tcp]
        stop_signal: null
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _image
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_image.ImageInfoTask, _image.info_argument_spec())


if __name__ == '__main__':
    main()
