#!/usr/bin/env bash
# Prepare this host for developing and testing runcible.oci (run as root).
#
#   * Debian packages: runc, conmon, crun, CRIU, busybox-static, iptables, ...,
#     and qemu-system-x86, qemu-utils, openssh-client for the VM tests
#   * a CRIU that passes `criu check` (the distro's, or CRIU 4.x built from the
#     newer Debian suite's source package when the distro's fails, as Debian 12's
#     3.17 does on recent kernels); its path is written to build/criu-path
#   * the Python virtualenv build/venv with the pins of tests/requirements.txt
#   * an offline pip bootstrap for ansible-test's sanity virtualenvs
#   * the busybox test root filesystem build/rootfs/busybox
#   * the Debian test root filesystem build/rootfs/debian, with Python and sudo
#     (connection plugin tests, Molecule scenarios of the roles)
#
# Every step checks first and does nothing when its result is already there, so
# running this again is cheap. Normally called through `make setup`.
#
# Environment knobs:
#   PYTHON             interpreter for build/venv (default: python3 on PATH)
#   CRIU_SOURCE_SUITE  Debian suite whose criu source package is built (default: trixie)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${REPO_ROOT}/build"
VENV_DIR="${BUILD_DIR}/venv"
REQUIREMENTS="${REPO_ROOT}/tests/requirements.txt"
ROOTFS_DIR="${BUILD_DIR}/rootfs/busybox"
ROOTFS_SCRIPT="${REPO_ROOT}/scripts/build-busybox-rootfs.sh"
DEBIAN_ROOTFS_DIR="${BUILD_DIR}/rootfs/debian"
DEBIAN_ROOTFS_SCRIPT="${REPO_ROOT}/scripts/build-debian-rootfs.sh"
# ansible-test keeps its sanity virtualenvs and downloads under $HOME/.ansible/test;
# the Makefile runs it with HOME set to this directory.
ANSIBLE_TEST_HOME="${BUILD_DIR}/ansible-test-home"
LOCAL_CRIU=/usr/local/sbin/criu
DISTRO_CRIU=/usr/sbin/criu
CRIU_SOURCE_SUITE="${CRIU_SOURCE_SUITE:-trixie}"
CRIU_SOURCES_FILE="/etc/apt/sources.list.d/runcible-criu-src.list"
# Patches applied to the CRIU we build, and the record of what ${LOCAL_CRIU} was built
# from: a changed patch set or suite rebuilds it.
CRIU_PATCH_DIR="${REPO_ROOT}/roles/runtime/files/criu-patches"
CRIU_RECIPE_FILE=/usr/local/share/runcible/criu.recipe

# build/venv/bin is dropped from PATH (the Makefile puts it first): the venv is made
# from, and must not be mistaken for, a real interpreter. runc/conmon/criu live in
# sbin directories, which a non-login root shell may lack; the caller's order is
# kept otherwise, so `python3` is the caller's python3 (pyenv's, say).
PATH="$(printf '%s' "${PATH}" | tr ':' '\n' | { grep -vxF "${VENV_DIR}/bin" || true; } | paste -sd: -)"
export PATH="/usr/local/sbin:${PATH}:/usr/sbin:/sbin:/usr/bin:/bin"
export DEBIAN_FRONTEND=noninteractive

step() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() {
    printf 'host-setup: ERROR: %s\n' "$*" >&2
    exit 1
}

# Packages every developer and CI machine needs. python3-venv is added on demand.
HOST_PACKAGES=(
    runc conmon crun criu
    # the default confinement: containers-common's seccomp profile, apparmor_parser
    golang-github-containers-common apparmor
    # the init of containers with init: true
    catatonit
    # bridge networks: pyroute2 for the system Python's modules, aardvark-dns for container names
    python3-pyroute2 aardvark-dns
    busybox-static iptables iproute2
    zstd mmdebstrap strace
    skopeo docker-registry
    shellcheck
    ca-certificates git make
    # the VM tests (tests/vm): qemu software emulation, qemu-img overlays, SSH to the guests
    qemu-system-x86 qemu-utils openssh-client
)
# Build dependencies of CRIU 4.x (only installed when CRIU has to be built).
CRIU_BUILD_PACKAGES=(
    dpkg-dev gcc libc6-dev make patch pkg-config
    libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3-protobuf
    libnl-3-dev libnet1-dev libcap-dev libbsd-dev libgnutls28-dev libnftables-dev
    libaio-dev uuid-dev libdrm-dev
)

APT_UPDATED=0
apt_update_once() {
    if [[ ${APT_UPDATED} -eq 0 ]]; then
        step "apt-get update"
        apt-get update -q
        APT_UPDATED=1
    fi
}

missing_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${db:Status-Abbrev}' "${pkg}" 2>/dev/null | grep -q '^ii'; then
            printf '%s\n' "${pkg}"
        fi
    done
}

apt_install() {
    local missing
    mapfile -t missing < <(missing_packages "$@")
    if [[ ${#missing[@]} -eq 0 ]]; then
        info "already installed: $*"
        return 0
    fi
    apt_update_once
    step "apt-get install ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

criu_passes() {
    [[ -x $1 ]] && "$1" check >/dev/null 2>&1
}

# What the local CRIU build is made of: the source suite and the patches' checksums.
criu_recipe() {
    printf 'suite %s\n' "${CRIU_SOURCE_SUITE}"
    (cd "${CRIU_PATCH_DIR}" && sha256sum -- *.patch)
}

# True when ${LOCAL_CRIU} was built by this script from the current recipe.
local_criu_current() {
    [[ -f ${CRIU_RECIPE_FILE} ]] && [[ "$(cat "${CRIU_RECIPE_FILE}")" == "$(criu_recipe)" ]]
}

# Print "URI<TAB>SIGNED-BY" of the enabled binary entry for the host's own suite
# (component main) in the machine's apt sources, one-line or deb822 format.
host_debian_mirror() {
    python3 - "$1" <<'PY'
import glob
import os
import re
import sys

codename = sys.argv[1]
files = [f for f in ['/etc/apt/sources.list'] if os.path.exists(f)]
files += sorted(glob.glob('/etc/apt/sources.list.d/*.list'))
files += sorted(glob.glob('/etc/apt/sources.list.d/*.sources'))
entries = []  # (types, uris, suites, components, signed_by)
for path in files:
    with open(path, encoding='utf-8', errors='replace') as handle:
        text = handle.read()
    if path.endswith('.sources'):
        for paragraph in re.split(r'\n[ \t]*\n', text):
            fields, key = {}, None
            for line in paragraph.splitlines():
                if line.startswith('#') or not line.strip():
                    continue
                if line[0] in ' \t' and key:
                    fields[key] += '\n' + line.strip()
                    continue
                key, _, value = line.partition(':')
                key = key.strip().lower()
                fields[key] = value.strip()
            if fields.get('enabled', 'yes').lower() == 'no':
                continue
            entries.append((fields.get('types', '').split(), fields.get('uris', '').split(),
                            fields.get('suites', '').split(), fields.get('components', '').split(),
                            fields.get('signed-by', '')))
    else:
        for line in text.splitlines():
            line = line.split('#', 1)[0].strip()
            match = re.match(r'(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$', line)
            if not match:
                continue
            signed = re.search(r'signed-by=(\S+)', match.group(2) or '')
            entries.append(([match.group(1)], [match.group(3)], [match.group(4)],
                            match.group(5).split(), signed.group(1) if signed else ''))
for types, uris, suites, components, signed_by in entries:
    if 'deb' in types and codename in suites and 'main' in components and uris:
        if 'BEGIN PGP' in signed_by or not os.path.isfile(signed_by):
            signed_by = ''  # inline key or none: rely on the default trusted keyrings
        print('%s\t%s' % (uris[0], signed_by))
        sys.exit(0)
sys.exit('no enabled "deb" entry for suite %s (component main) in the apt sources' % codename)
PY
}

setup_packages() {
    step "Debian packages"
    apt_install "${HOST_PACKAGES[@]}"
}

# Fetch and unpack criu's source package into build/criu-src; print the source tree.
# Some mirrors serve a source package's upstream tarball but not its .dsc or its
# Debian packaging tarball: then the upstream tarball (whose checksum apt has
# verified against the signed Sources index, and which is checked again here) is
# unpacked and built without the Debian patches, which `make criu` does not need.
fetch_criu_source() {
    local work="${BUILD_DIR}/criu-src" log="${BUILD_DIR}/criu-src.log" orig want have dir
    rm -rf "${work}"
    mkdir -p "${work}"
    if (cd "${work}" && apt-get source -q "criu/${CRIU_SOURCE_SUITE}") >"${log}" 2>&1; then
        dir="$(find "${work}" -mindepth 1 -maxdepth 1 -type d -name 'criu-*' | head -n 1)"
        [[ -n ${dir} ]] || die "apt-get source criu/${CRIU_SOURCE_SUITE} unpacked nothing into build/criu-src"
        info "unpacked the Debian source package: ${dir#"${REPO_ROOT}/"}" >&2
        printf '%s\n' "${dir}"
        return 0
    fi
    orig="$(find "${work}" -maxdepth 1 -type f -name 'criu_*.orig.tar.*' ! -name '*.asc' | head -n 1)"
    if [[ -z ${orig} ]]; then
        cat "${log}" >&2
        die "apt-get source criu/${CRIU_SOURCE_SUITE} failed (log above, also in build/criu-src.log)"
    fi
    grep -E '^(E|Err):' "${log}" | sed 's/^/    apt-get source: /' >&2 || true
    want="$(apt-cache showsrc criu | awk -v f="$(basename "${orig}")" '
        /^Checksums-Sha256:/ { in_sums = 1; next }
        /^[^ ]/ { in_sums = 0 }
        in_sums && $3 == f && !found { print $1; found = 1 }')"
    have="$(sha256sum "${orig}" | cut -d' ' -f1)"
    [[ -n ${want} && ${want} == "${have}" ]] ||
        die "$(basename "${orig}"): SHA-256 ${have} does not match the Sources index (${want:-not listed})"
    info "the Debian packaging files of criu/${CRIU_SOURCE_SUITE} are not on this mirror;" >&2
    info "building the upstream source from $(basename "${orig}") (SHA-256 verified)" >&2
    tar -xf "${orig}" -C "${work}"
    dir="$(find "${work}" -mindepth 1 -maxdepth 1 -type d -name 'criu-*' | head -n 1)"
    [[ -n ${dir} && -f ${dir}/Makefile ]] || die "$(basename "${orig}") did not unpack into a criu-* source tree"
    printf '%s\n' "${dir}"
}

build_criu() {
    local host_codename mirror uri signed_by option src_dir
    # shellcheck source=/dev/null
    host_codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
    [[ -n ${host_codename} ]] || die "cannot tell the Debian codename from /etc/os-release"

    step "building CRIU from the Debian ${CRIU_SOURCE_SUITE} source package"
    apt_install "${CRIU_BUILD_PACKAGES[@]}"

    mirror="$(host_debian_mirror "${host_codename}")" || die "cannot derive the Debian mirror from the apt sources"
    uri="${mirror%%$'\t'*}"
    signed_by="${mirror#*$'\t'}"
    option=""
    [[ -n ${signed_by} ]] && option="[signed-by=${signed_by}] "
    info "source entry: deb-src ${option}${uri} ${CRIU_SOURCE_SUITE} main (${CRIU_SOURCES_FILE})"
    # Source packages only: no binary "deb" line for the other suite on this host.
    cat >"${CRIU_SOURCES_FILE}.tmp" <<EOF
# Written by runcible.oci scripts/host-setup.sh: the ${CRIU_SOURCE_SUITE} *source* package
# of criu, built locally into ${LOCAL_CRIU}. No binary packages come from here.
deb-src ${option}${uri} ${CRIU_SOURCE_SUITE} main
EOF
    mv "${CRIU_SOURCES_FILE}.tmp" "${CRIU_SOURCES_FILE}"
    # Refresh only that source (leave the other lists alone).
    apt-get update -q -o Dir::Etc::sourcelist="${CRIU_SOURCES_FILE}" \
        -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0

    src_dir="$(fetch_criu_source)"
    local patch
    for patch in "${CRIU_PATCH_DIR}"/*.patch; do
        info "patch: ${patch#"${REPO_ROOT}/"}"
        patch -p1 --forward --quiet -d "${src_dir}" <"${patch}" ||
            die "${patch#"${REPO_ROOT}/"} does not apply to ${src_dir#"${REPO_ROOT}/"}"
    done

    info "make -j$(nproc) criu in ${src_dir#"${REPO_ROOT}/"} (log: build/criu-build.log)"
    if ! make -C "${src_dir}" -j"$(nproc)" criu >"${BUILD_DIR}/criu-build.log" 2>&1; then
        tail -n 40 "${BUILD_DIR}/criu-build.log" >&2
        die "CRIU build failed; full log in build/criu-build.log"
    fi
    install -D -m 0755 "${src_dir}/criu/criu" "${LOCAL_CRIU}"
    if ! "${LOCAL_CRIU}" check; then
        die "${LOCAL_CRIU} was built but \`criu check\` fails on this kernel"
    fi
    mkdir -p "$(dirname "${CRIU_RECIPE_FILE}")"
    criu_recipe >"${CRIU_RECIPE_FILE}"
}

setup_criu() {
    local chosen
    step "CRIU"
    if criu_passes "${LOCAL_CRIU}" && local_criu_current; then
        chosen="${LOCAL_CRIU}"
        info "${LOCAL_CRIU} passes criu check"
    elif criu_passes "${LOCAL_CRIU}"; then
        info "${LOCAL_CRIU} was built from another recipe (patches in roles/runtime/files/criu-patches); rebuilding it"
        build_criu
        chosen="${LOCAL_CRIU}"
    elif [[ ! -e ${LOCAL_CRIU} ]] && criu_passes "${DISTRO_CRIU}"; then
        chosen="${DISTRO_CRIU}"
        info "the distro's ${DISTRO_CRIU} passes criu check"
    else
        info "no CRIU here passes \`criu check\` (distro: $("${DISTRO_CRIU}" --version 2>/dev/null | head -n 1 || echo none))"
        build_criu
        chosen="${LOCAL_CRIU}"
    fi
    info "using ${chosen}: $("${chosen}" --version | tr '\n' ' ')"
    printf '%s\n' "${chosen}" >"${BUILD_DIR}/criu-path.tmp"
    mv "${BUILD_DIR}/criu-path.tmp" "${BUILD_DIR}/criu-path"
}

python_usable() {
    # Python >= 3.11 (ansible-core 2.19 controller) that can create virtualenvs.
    "$1" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

choose_python() {
    local candidate="${PYTHON:-$(command -v python3 || true)}"
    if [[ -n ${candidate} ]] && python_usable "${candidate}"; then
        printf '%s\n' "${candidate}"
        return 0
    fi
    apt_install python3 python3-venv >&2
    python_usable /usr/bin/python3 || die "/usr/bin/python3 is older than 3.11 or cannot create virtualenvs"
    printf '%s\n' /usr/bin/python3
}

setup_venv() {
    local python want have
    step "Python virtualenv build/venv"
    python="$(choose_python)"
    want="$("${python}" -c 'import sys; print(sys.version)' | head -n 1) $(sha256sum <"${REQUIREMENTS}" | cut -d' ' -f1)"
    have="$(cat "${VENV_DIR}/.runcible-stamp" 2>/dev/null || true)"
    if [[ ${want} == "${have}" ]] && "${VENV_DIR}/bin/python" -c 'import ansible' >/dev/null 2>&1; then
        info "up to date ($("${VENV_DIR}/bin/python" --version))"
        return 0
    fi
    if [[ -d ${VENV_DIR} ]]; then
        info "rebuilding (interpreter or requirements changed)"
        rm -rf "${VENV_DIR}"
    fi
    info "creating with ${python} ($("${python}" --version))"
    "${python}" -m venv "${VENV_DIR}"
    "${VENV_DIR}/bin/python" -m pip install -qq --disable-pip-version-check -r "${REQUIREMENTS}"
    printf '%s\n' "${want}" >"${VENV_DIR}/.runcible-stamp"
}

# ansible-test bootstraps pip into each sanity-test virtualenv with a get-pip.py it
# downloads from a CI file server (not a package registry). Give it a local
# stand-in plus the pip wheel from PyPI, at the cache path it checks first.
setup_ansible_test_pip() {
    local pip_version cache target
    step "ansible-test pip bootstrap"
    pip_version="$("${VENV_DIR}/bin/python" -c '
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="%d.%d" % __import__("sys").version_info[:2]))["pip"])')"
    cache="${ANSIBLE_TEST_HOME}/.ansible/test/cache"
    target="${cache}/get_pip_${pip_version//./_}.py"
    mkdir -p "${cache}"
    if [[ ! -f ${cache}/pip-${pip_version}-py3-none-any.whl ]]; then
        "${VENV_DIR}/bin/python" -m pip download -qq --disable-pip-version-check --no-deps \
            --only-binary=:all: -d "${cache}" "pip==${pip_version}"
    fi
    if ! cmp -s "${REPO_ROOT}/scripts/ansible-test-get-pip.py" "${target}"; then
        install -m 0644 "${REPO_ROOT}/scripts/ansible-test-get-pip.py" "${target}"
    fi
    info "pip ${pip_version} wheel and bootstrap script in build/ansible-test-home"
}

setup_rootfs() {
    local busybox want have
    step "busybox test root filesystem build/rootfs/busybox"
    busybox="$(dpkg -L busybox-static | grep -E '/s?bin/busybox$' | head -n 1)"
    [[ -x ${busybox} ]] || die "busybox-static is installed but its busybox binary was not found"
    want="$(cat "${ROOTFS_SCRIPT}" "${busybox}" | sha256sum | cut -d' ' -f1)"
    have="$(cat "${ROOTFS_DIR}.stamp" 2>/dev/null || true)"
    if [[ ${want} == "${have}" && -x ${ROOTFS_DIR}/bin/busybox ]]; then
        info "up to date"
        return 0
    fi
    rm -f "${ROOTFS_DIR}.stamp"
    BUSYBOX="${busybox}" bash "${ROOTFS_SCRIPT}" "${ROOTFS_DIR}"
    printf '%s\n' "${want}" >"${ROOTFS_DIR}.stamp"
}

# mmdebstrap, cached by the script itself: rebuilt only when the script (or the suite) changed.
setup_debian_rootfs() {
    step "Debian test root filesystem build/rootfs/debian"
    bash "${DEBIAN_ROOTFS_SCRIPT}" "${DEBIAN_ROOTFS_DIR}"
}

main() {
    [[ $(id -u) -eq 0 ]] || die "run as root: this installs Debian packages and /usr/local/sbin/criu"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script supports Debian 12 and 13"
    mkdir -p "${BUILD_DIR}"
    setup_packages
    setup_criu
    setup_venv
    setup_ansible_test_pip
    setup_rootfs
    setup_debian_rootfs
    step "host set-up complete"
}

main "$@"
