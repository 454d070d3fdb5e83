#!/usr/bin/env bash
# Build a minimal busybox root filesystem for runcible.oci's tests.
#
#   usage: scripts/build-busybox-rootfs.sh DEST
#
# DEST gets bin/busybox (the static binary from Debian's busybox-static, or $BUSYBOX)
# with every applet as a symlink to it, users root (0), app (1000) and nobody (65534),
# and the usual empty top-level directories. DEST is replaced as a whole: the tree
# is built next to it and renamed into place.
set -euo pipefail

die() {
    printf 'build-busybox-rootfs: ERROR: %s\n' "$*" >&2
    exit 1
}

[[ $# -eq 1 ]] || die "usage: $0 DEST"
dest="$1"
[[ ${dest} != / ]] || die "refusing to build into /"

busybox="${BUSYBOX:-}"
if [[ -z ${busybox} ]]; then
    for candidate in /bin/busybox /usr/bin/busybox; do
        if [[ -x ${candidate} ]]; then
            busybox="${candidate}"
            break
        fi
    done
fi
[[ -n ${busybox} && -x ${busybox} ]] || die "busybox not found: install the busybox-static package"
if ldd "${busybox}" >/dev/null 2>&1; then
    die "${busybox} is dynamically linked: install the busybox-static package"
fi

mkdir -p "$(dirname "${dest}")"
work="$(mktemp -d "${dest}.new.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
chmod 0755 "${work}"

mkdir -p "${work}"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,var,root,home/app,tmp}
chmod 1777 "${work}/tmp"
chmod 0700 "${work}/root"
install -m 0755 "${busybox}" "${work}/bin/busybox"

# One symlink per applet, at the place busybox itself names (bin/sh, usr/bin/env, ...).
applets=0
while IFS= read -r applet; do
    [[ -n ${applet} && ${applet} != bin/busybox && ${applet} != linuxrc ]] || continue
    mkdir -p "${work}/$(dirname "${applet}")"
    ln -sfn /bin/busybox "${work}/${applet}"
    applets=$((applets + 1))
done < <("${work}/bin/busybox" --list-full)
[[ ${applets} -gt 0 ]] || die "busybox --list-full listed no applets"

cat >"${work}/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"${work}/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
chmod 0644 "${work}/etc/passwd" "${work}/etc/group"
chown 1000:1000 "${work}/home/app"

rm -rf "${dest}"
mv "${work}" "${dest}"
trap - EXIT
printf '    busybox root filesystem: %s (%d applets)\n' "${dest}" "${applets}"
