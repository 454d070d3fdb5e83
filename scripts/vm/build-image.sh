#!/usr/bin/env bash
# Build the Debian VM image the VM tests boot (run as root; needs mmdebstrap): Debian 12 (bookworm)
# by default, Debian 13 (trixie) with VM_SUITE=trixie (`make test-matrix` runs the VM suite on both).
#
#   usage: scripts/vm/build-image.sh          print the image directory (building it if needed)
#          scripts/vm/build-image.sh --hash   print the recipe hash only
#
# Everything comes from Debian's packages: mmdebstrap --variant=minbase with systemd
# as PID 1, Debian's kernel and initramfs, OpenSSH, Python 3 and what runcible.oci
# needs on a managed node (runc, crun, conmon, CRIU, iptables, python3-systemd, ...).
# The root filesystem becomes an ext4 image with `mkfs.ext4 -d`; the kernel and initrd
# are copied out of its /boot for qemu's -kernel/-initrd. An SSH key pair made for
# this image logs in as root. The guest also holds the busybox root filesystem the
# tests run containers from, at /srv/runcible/rootfs/busybox.
#
# The result goes to build/vm/image-HASH/ where HASH covers this recipe (this script, its
# hooks initramfs-config.sh and customize-image.sh, and the busybox rootfs script): a
# changed recipe builds a new image, an unchanged one is reused at once. Older image
# directories of the same suite (its file `suite`; none: bookworm) are removed after a successful build. The image is never written to by a
# VM: scripts/vm/vm.py boots each VM from a copy-on-write qcow2 overlay of its own.
#
# Environment knobs:
#   VM_MIRROR   Debian mirror for mmdebstrap (default: the host's, else deb.debian.org)
#   VM_SUITE    Debian suite (default: bookworm)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VM_DIR="${REPO_ROOT}/build/vm"
SUITE="${VM_SUITE:-bookworm}"
IMAGE_SIZE=4G
BUSYBOX_SCRIPT="${REPO_ROOT}/scripts/build-busybox-rootfs.sh"
CUSTOMIZE_SCRIPT="${REPO_ROOT}/scripts/vm/customize-image.sh"
INITRAMFS_SCRIPT="${REPO_ROOT}/scripts/vm/initramfs-config.sh"
export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"

# The guest's packages. runc and crun side by side; criu is Debian 12's 3.17.
PACKAGES=(
    systemd-sysv dbus udev kmod linux-image-amd64 initramfs-tools
    openssh-server libpam-systemd ifupdown isc-dhcp-client iproute2 procps
    python3 python3-systemd
    runc crun conmon criu iptables nftables busybox-static zstd
    golang-github-containers-common apparmor catatonit
    # bridge networks: pyroute2 for links and addresses, aardvark-dns for names
    python3-pyroute2 aardvark-dns
    # SELinux, for the VMs booted with it (vm-se): Debian's reference policy (it has container_t and
    # container_file_t), setfiles, the Python bindings the modules use. Inactive where AppArmor boots.
    selinux-policy-default policycoreutils selinux-utils python3-selinux
)

die() {
    printf 'build-image: ERROR: %s\n' "$*" >&2
    exit 1
}
info() { printf '    %s\n' "$*" >&2; }

recipe_hash() {
    {
        cat "${BASH_SOURCE[0]}" "${INITRAMFS_SCRIPT}" "${CUSTOMIZE_SCRIPT}" "${BUSYBOX_SCRIPT}"
        printf '%s\n' "${SUITE}" "${VM_MIRROR:-}"
    } | sha256sum | cut -c1-16
}

host_mirror() {
    # The host's Debian mirror when it has a one-line "deb URI SUITE main" entry; else the default.
    local uri
    uri="$(grep -hsE '^deb +(\[[^]]*\] +)?https?://[^ ]+ +[a-z]+ +.*main' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
        grep -v security | head -n 1 | sed -E 's/^deb +(\[[^]]*\] +)?([^ ]+).*/\2/')" || true
    if [[ -z ${uri} ]]; then
        uri="$(grep -hsE '^URIs: *https?://' /etc/apt/sources.list.d/*.sources | grep -v security | head -n 1 |
            sed -E 's/^URIs: *([^ ]+).*/\1/')" || true
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

build() {
    local target="$1" work mirror started kernel initrd size
    started=${SECONDS}
    work="$(mktemp -d "${VM_DIR}/.build.XXXXXX")"
    # shellcheck disable=SC2064 # expand now: the trap must remove this very directory
    trap "rm -rf --one-file-system '${work}'" EXIT
    mirror="${VM_MIRROR:-$(host_mirror)}"
    info "building the VM image (Debian ${SUITE} from ${mirror}) in ${work#"${REPO_ROOT}/"}"
    ssh-keygen -q -t ed25519 -N '' -C "runcible-vm" -f "${work}/id_ed25519"
    local include
    include="$(
        IFS=,
        printf '%s' "${PACKAGES[*]}"
    )"
    mmdebstrap --quiet --variant=minbase --include="${include}" \
        --essential-hook="bash '${INITRAMFS_SCRIPT}' \"\$1\"" \
        --customize-hook="bash '${CUSTOMIZE_SCRIPT}' \"\$1\" '${work}/id_ed25519.pub' '${BUSYBOX_SCRIPT}'" \
        "${SUITE}" "${work}/rootfs" "${mirror}" >&2 ||
        die "mmdebstrap failed"
    kernel="$(find "${work}/rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)"
    initrd="$(find "${work}/rootfs/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n 1)"
    [[ -n ${kernel} && -n ${initrd} ]] || die "no kernel or initrd in the image's /boot"
    install -m 0644 "${kernel}" "${work}/vmlinuz"
    install -m 0644 "${initrd}" "${work}/initrd.img"
    basename "${kernel}" | sed 's/^vmlinuz-//' >"${work}/kernel-version"
    printf '%s\n' "${SUITE}" >"${work}/suite"
    chroot "${work}/rootfs" dpkg-query -W -f="\${Package} \${Version}\n" >"${work}/packages.txt"
    mkfs.ext4 -q -F -L runcible-root -d "${work}/rootfs" "${work}/image.raw" "${IMAGE_SIZE}" ||
        die "mkfs.ext4 -d failed"
    size="$(du -sh --apparent-size "${work}/rootfs" | cut -f1)"
    rm -rf --one-file-system "${work}/rootfs"
    printf 'built %s in %ds; root filesystem %s; kernel %s\n' "$(date -u +%FT%TZ)" \
        "$((SECONDS - started))" "${size}" "$(cat "${work}/kernel-version")" >"${work}/build-info"
    rm -rf --one-file-system "${target}"
    mv "${work}" "${target}"
    trap - EXIT
    info "$(cat "${target}/build-info")"
}

# Is FILE open in some process (a VM's qemu reading it as its overlay's backing file)?
in_use() {
    local fd
    for fd in /proc/[0-9]*/fd/*; do
        [[ $(readlink "${fd}" 2>/dev/null) == "$1" ]] && return 0
    done
    return 1
}

main() {
    local hash target old
    hash="$(recipe_hash)"
    if [[ ${1:-} == --hash ]]; then
        printf '%s\n' "${hash}"
        return 0
    fi
    [[ $# -eq 0 ]] || die "usage: $0 [--hash]"
    [[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap installs packages into the image as root)"
    command -v mmdebstrap >/dev/null || die "mmdebstrap not found: run make setup (Debian package mmdebstrap)"
    command -v ssh-keygen >/dev/null || die "ssh-keygen not found: run make setup (Debian package openssh-client)"
    mkdir -p "${VM_DIR}"
    target="${VM_DIR}/image-${hash}"
    # One build at a time; a second caller waits and then finds the image ready.
    exec 9>"${VM_DIR}/.build.lock"
    flock 9
    if [[ -f ${target}/build-info && -f ${target}/image.raw ]]; then
        info "VM image up to date: ${target#"${REPO_ROOT}/"} ($(cat "${target}/build-info"))"
    else
        build "${target}"
        # Older recipes' images of this suite: gone unless a VM still runs from them (its overlay
        # holds them open). The other suite's image stays.
        for old in "${VM_DIR}"/image-*; do
            [[ ${old} != "${target}" && -d ${old} ]] || continue
            [[ $(cat "${old}/suite" 2>/dev/null || echo bookworm) == "${SUITE}" ]] || continue
            if ! in_use "${old}/image.raw"; then
                rm -rf --one-file-system "${old}"
            fi
        done
    fi
    printf '%s\n' "${target}"
}

main "$@"
