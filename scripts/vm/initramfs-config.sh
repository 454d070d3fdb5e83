#!/usr/bin/env bash
# mmdebstrap essential hook of scripts/vm/build-image.sh: runs on the host before the
# kernel and initramfs-tools are installed, so that the one initramfs built is small.
#
#   usage: initramfs-config.sh ROOTFS
#
# Only what mounts /dev/vda (virtio, ext4) goes in: under emulation every megabyte of
# initramfs costs about half a second of boot, and MODULES=most makes 30 MB.
set -euo pipefail

[[ $# -eq 1 ]] || {
    printf 'usage: %s ROOTFS\n' "$0" >&2
    exit 2
}
root="$1"
mkdir -p "${root}/etc/initramfs-tools/conf.d" "${root}/usr/share/initramfs-tools/modules.d"
printf 'MODULES=list\nCOMPRESS=gzip\n' >"${root}/etc/initramfs-tools/conf.d/runcible-vm.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >"${root}/usr/share/initramfs-tools/modules.d/runcible-vm"
