#!/usr/bin/env bash
# Build the Debian root filesystem (with Python and sudo) that runcible.oci's connection
# tests and Molecule scenarios run Ansible in.
#
#   usage: scripts/build-debian-rootfs.sh [DEST]     (default: build/rootfs/debian)
#
# mmdebstrap --variant=apt --include=python3,sudo SUITE, where SUITE is the host's own
# Debian suite (bookworm on Debian 12, trixie on 13) unless $DEBIAN_SUITE says otherwise.
# Cached: nothing is done when DEST was built by this same script for the same suite;
# a change of this script (or of the suite) rebuilds it. DEST is replaced as a whole:
# the tree is built next to it and renamed into place.
set -euo pipefail

die() {
    printf 'build-debian-rootfs: ERROR: %s\n' "$*" >&2
    exit 1
}

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${repo}/build/rootfs/debian}"
[[ ${dest} != / ]] || die "refusing to build into /"
command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap not found: install the mmdebstrap package"

suite="${DEBIAN_SUITE:-}"
if [[ -z ${suite} ]]; then
    # shellcheck source=/dev/null
    suite="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
fi
case "${suite}" in
bookworm | trixie | forky | sid) ;;
*) suite=bookworm ;; # not a Debian host (or an unknown codename): a known-good suite
esac

stamp="${dest}.stamp"
want="$(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1) ${suite}"
if [[ -f ${stamp} && "$(cat "${stamp}")" == "${want}" && -x ${dest}/usr/bin/python3 ]]; then
    printf '    Debian root filesystem %s (%s): up to date\n' "${dest}" "${suite}"
    exit 0
fi

mkdir -p "$(dirname "${dest}")"
rm -f "${stamp}"
work="${dest}.new"
rm -rf --one-file-system "${work}"
trap 'rm -rf --one-file-system "${work}"' EXIT
printf '    mmdebstrap --variant=apt --include=python3,sudo %s (about 20 s)\n' "${suite}"
# mmdebstrap leaves no apt lists behind: a role that installs packages updates the cache
# first. Containers that need name resolution bind-mount the host's /etc/resolv.conf.
mmdebstrap --quiet --variant=apt --include=python3,sudo "${suite}" "${work}"
[[ -x ${work}/usr/bin/python3 ]] || die "mmdebstrap produced no usr/bin/python3 in ${work}"

rm -rf --one-file-system "${dest}"
mv "${work}" "${dest}"
trap - EXIT
printf '%s\n' "${want}" >"${stamp}"
printf '    Debian root filesystem: %s (%s, %s)\n' "${dest}" "${suite}" "$(du -sh "${dest}" | cut -f1)"
