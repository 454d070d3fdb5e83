#!/usr/bin/env bash
# mmdebstrap customize hook of scripts/vm/build-image.sh; runs on the host after the
# guest's packages are installed.
#
#   usage: customize-image.sh ROOTFS AUTHORIZED_KEY BUSYBOX_ROOTFS_SCRIPT
set -euo pipefail

[[ $# -eq 3 ]] || {
    printf 'usage: %s ROOTFS AUTHORIZED_KEY BUSYBOX_ROOTFS_SCRIPT\n' "$0" >&2
    exit 2
}
root="$1"
pubkey="$2"
busybox_script="$3"

cat >"${root}/etc/fstab" <<'EOF'
/dev/vda  /  ext4  rw,errors=remount-ro  0  1
EOF
printf 'runcible-vm\n' >"${root}/etc/hostname"
cat >"${root}/etc/hosts" <<'EOF'
127.0.0.1 localhost
127.0.1.1 runcible-vm
::1 localhost ip6-localhost ip6-loopback
EOF

# The VM boots with net.ifnames=0: its one NIC is eth0. DHCP from qemu's user network.
cat >"${root}/etc/network/interfaces" <<'EOF'
auto lo
iface lo inet loopback

allow-hotplug eth0
iface eth0 inet dhcp
EOF

# root logs in with the image's key only.
install -d -m 0700 "${root}/root/.ssh"
install -m 0600 "${pubkey}" "${root}/root/.ssh/authorized_keys"
cat >"${root}/etc/ssh/sshd_config.d/runcible.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
EOF

# Nothing periodic that could start in the middle of a test, nor slow boot-time checks
# (under emulation e2scrub_reap alone takes a minute).
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer systemd-tmpfiles-clean.timer dpkg-db-backup.timer man-db.timer; do
    ln -sfn /dev/null "${root}/etc/systemd/system/${unit}"
done

# The journal in memory (the tests read container logs back from it with python-systemd).
install -d "${root}/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"${root}/etc/systemd/journald.conf.d/runcible.conf"

# The test containers' root filesystem, from the guest's own busybox-static.
BUSYBOX="${root}/bin/busybox" bash "${busybox_script}" "${root}/srv/runcible/rootfs/busybox"

# SELinux for the VMs booted with security=selinux (scripts/vm/vm.py: vm-se): permissive (Debian's
# reference policy is not written for a container runtime of ours), and every file labelled now,
# at build time, so no relabelling boot is needed. The labels are plain xattrs where AppArmor boots.
printf 'SELINUX=permissive\nSELINUXTYPE=default\n' >"${root}/etc/selinux/config"
chroot "${root}" /sbin/setfiles -F -e /proc -e /sys -e /dev -e /run \
    /etc/selinux/default/contexts/files/file_contexts /
