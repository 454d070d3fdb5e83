#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: image
short_description: Pull, import and remove OCI images in the local image store, with no daemon
version_added: 0.2.0
description:
  - Keeps an OCI image in the local image store under O(root) (C(root/images)), from an OCI image
    layout directory, an OCI archive, or a registry (through C(skopeo)), for
    M(runcible.oci.container) to run containers from with its C(image) option.
  - Every blob is verified against its digest and size; each layer is unpacked once, safely (no
    member can write outside its layer directory; whiteouts become overlayfs whiteouts), and is
    shared read-only by every container and image that has it.
  - Idempotent on content. An image is identified by its manifest digest; a reference (the O(name))
    is a tag pointing to one. With O(force=true) the source is asked again and a tag that now
    points to new content is moved to it.
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcible.oci.common
attributes:
  check_mode:
    support: full
    details: Reads the source (a layout's C(index.json), or C(skopeo inspect)) to report the digest that
      would be pulled; downloads, unpacks and writes nothing.
  diff_mode:
    support: full
    details: The image digest and references before and after.
  platform:
    platforms: posix
options:
  name:
    description:
      - The image reference.
      - V(oci:/path/to/layout[:tag]), an OCI image layout directory; without a tag the layout must
        hold exactly one image.
      - V(oci-archive:/path/to/archive.tar[:tag]), an OCI image layout in a tar archive.
      - V(docker://[registry/]repository[:tag|@sha256:digest]), an image in a registry, pulled with
        C(skopeo); the registry defaults to V(docker.io) and the tag to V(latest).
      - V(sha256:digest), an image already in the local store, by manifest digest (with O(state=absent)
        it removes the image whatever its tags).
      - References are kept in a canonical form (absolute paths, full registry names), returned as
        RV(image.references).
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the reference is in the local store, pulling or importing it when it
        is not (or, with O(force), when its source now has other content).
      - V(absent) removes the reference. When it was the image's last reference, or the image is
        named by digest, the image goes too, and the layers no other image or container uses are
        deleted.
    type: str
    default: present
    choices: [present, absent]
  force:
    description:
      - With O(state=present), ask the source even when the reference is in the local store, and
        move the reference when the source now points to other content.
      - With O(state=absent), remove an image that containers still use; they keep running and keep
        their layers until they are removed.
    type: bool
    default: false
  tls_verify:
    description:
      - Require HTTPS and a valid certificate from the registry of a V(docker://) reference. V(false)
        allows a plain HTTP registry, such as a local test registry.
    type: bool
    default: true
  auth_file:
    description:
      - Path of a registry credentials file (the C(auth.json) format of C(skopeo login) and C(podman login)),
        for V(docker://) references. Credentials never appear on a command line.
    type: path
  layer_size_limit:
    description:
      - Largest uncompressed size of one layer, in bytes or with a unit (V(2g)); a larger layer fails
        the pull and nothing of it is kept (against tar bombs). Defaults to 16 GiB.
    type: raw
  run_root:
    description:
      - Not used by this module (images live under O(root)). Accepted so that the same
        C(module_defaults) serve every runcible.oci module.
    type: path
    default: /run/runcible
  runtime:
    description:
      - Not used by this module. Accepted so that the same C(module_defaults) serve every runcible.oci module.
    type: str
requirements:
  - skopeo (Debian package C(skopeo)), only for V(docker://) references
  - zstd (Debian package C(zstd)), only for zstd-compressed layers
notes:
  - The module must run as root on the managed host (layers keep their owners, and whiteouts are
    character devices).
  - A V(docker://) image is copied by C(skopeo copy) into a staging directory of the store (C(dir:)
    format, which keeps the registry's manifest, so the digest is the registry's), then imported.
    Registries configured in C(/etc/containers/registries.conf) (mirrors, insecure registries) apply.
  - When a reference moves to new content, the image it pointed to before is removed if it has no
    other reference and no container uses it.
  - Parallel tasks may pull the same or different images; layers are unpacked once, under a lock.
seealso:
  - module: runcible.oci.image_info
  - module: runcible.oci.container
  - name: skopeo
    description: Work with remote images registries.
    link: https://github.com/containers/skopeo
'''

EXAMPLES = r'''
- name: Import an image from an OCI layout built elsewhere
  runcible.oci.image:
    name: oci:/srv/images/app:1.4

- name: Pull from a registry, and follow the tag when it moves
  runcible.oci.image:
    name: docker://registry.example.com/team/app:stable
    force: true
    auth_file: /root/.config/containers/auth.json

- name: Pull from a plain HTTP registry on this host
  runcible.oci.image:
    name: docker://127.0.0.1:5000/app:latest
    tls_verify: false

- name: Remove it (fails while a container uses it)
  runcible.oci.image:
    name: docker://registry.example.com/team/app:stable
    state: absent
'''

RETURN = r'''
actions:
  description: What was done, in order (V(pulled), V(imported), V(tagged), V(untagged), V(removed)), with
    notes on images and layers collected; empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: [pulled]
image:
  description: The image after the task; empty when it is absent.
  returned: always
  type: dict
  contains:
    digest:
      description: Manifest digest, the image's identity.
      type: str
      sample: sha256:c7181e132ddc7d7e0eac8438dc16549bd7c515dfe08e654031b4f72cda0c0715
    references:
      description: The references (tags) pointing to it, canonical.
      type: list
      elements: str
      sample: ['docker://docker.io/library/busybox:latest']
    media_type:
      description: Media type of its manifest (OCI or Docker v2).
      type: str
    config_digest:
      description: Digest of its config blob.
      type: str
    created:
      description: When the image was built, from its config.
      type: str
    architecture:
      description: Its CPU architecture.
      type: str
    os:
      description: Its operating system.
      type: str
    size:
      description: Bytes of the regular files of its layers, unpacked (null in check mode before a pull).
      type: int
    layers:
      description: Its layers, bottom first.
      type: list
      elements: dict
      contains:
        diff_id:
          description: Digest of the uncompressed layer.
          type: str
        digest:
          description: Digest of the layer blob.
          type: str
        size:
          description: Bytes of the layer blob.
          type: int
        unpacked_size:
          description: Bytes of the regular files of the unpacked layer.
          type: int
        path:
          description: The unpacked layer directory, an overlay lower dir of the image's containers.
          type: str
    config:
      description: What the image gives its containers by default.
      type: dict
      contains:
        entrypoint:
          description: Entrypoint.
          type: list
          elements: str
        cmd:
          description: Cmd, the arguments after the entrypoint.
          type: list
          elements: str
        env:
          description: Environment.
          type: dict
        workdir:
          description: Working directory.
          type: str
        user:
          description: User, as the image names it.
          type: str
        labels:
          description: Labels.
          type: dict
        exposed_ports:
          description: Ports the image documents as exposed (never published by themselves).
          type: list
          elements: str
        stop_signal:
          description: Stop signal, as the image names it.
          type: str
    containers:
      description: Names of the containers under O(root) that run from it.
      type: list
      elements: str
    pulled_at:
      description: When it was pulled or imported (UTC).
      type: str
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _image
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_image.ImageTask, _image.argument_spec())


if __name__ == '__main__':
    main()
