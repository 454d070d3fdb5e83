#!/usr/bin/env bash
# The ansible-core version matrix (issue 20): `make test-matrix`, `make test-matrix-quick`.
#
#   usage: scripts/matrix.sh [--quick] [VERSION ...]
#
# --quick: the integration subset only, under the first VERSION that can run here.
#
# For each ansible-core VERSION (default: every version meta/runtime.yml claims and we pin, see
# VERSIONS below), in its own pinned virtualenv build/venv-ansible-VERSION
# (tests/requirements-ansible-VERSION.txt; 2.19 is build/venv itself, tests/requirements.txt):
#
#   * ansible-test sanity (not with --quick, which also leaves out test_examples.py), on a copy of the collection in build/matrix/VERSION,
#     with that version's ansible-test home (its sanity virtualenvs) build/ansible-test-home-VERSION;
#   * the integration subset SUBSET below, with that version's ansible-playbook, ansible-inventory
#     and that Python as the managed node's interpreter.
#
# Then (not with --quick) the managed node's Python: the VM suite's quick subset on a Debian 12 and a
# Debian 13 guest (MATRIX_VM_SUITES, default "bookworm trixie").
#
# A version whose Python is not on this machine is skipped with the reason (never run on another
# Python). Prints a table of results and times; exits non-zero when a version failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${repo}/build"

# ansible-core version -> the controller Pythons it supports, preferred first (its own support
# matrix: 2.17 3.10-3.12, 2.18 and 2.19 3.11-3.13, 2.20 and 2.21 3.12-3.14).
declare -A PYTHONS=(
    [2.17]="3.11 3.12 3.10"
    [2.18]="3.11 3.12 3.13"
    [2.19]="default"
    [2.20]="3.12 3.13"
    [2.21]="3.13 3.12"
)
VERSIONS=(2.17 2.18 2.19 2.20 2.21)

# The fast integration subset: the container lifecycle four ways, exec, checkpoint/restore four
# ways, the connection plugin, the inventory plugin, and the modules' EXAMPLES run as written.
SUBSET=(
    tests/integration/test_container_playbook.py::test_lifecycle_four_ways
    tests/integration/test_exec.py::test_creates_four_ways
    tests/integration/test_exec.py::test_argv_command_and_failure_like_command_module
    tests/integration/test_checkpoint.py::test_checkpoint_and_restore_four_ways
    tests/integration/test_connection.py::test_generic_pattern
    tests/integration/test_inventory.py
    tests/integration/test_examples.py
)

quick=0
if [[ ${1:-} == --quick ]]; then
    # `make test`'s extra version: no sanity, no EXAMPLES (`make integration` runs them), and only
    # the first of the VERSIONS given whose Python is here (Debian 13 without pyenv: no 3.10-3.12
    # for 2.17, so 2.18 on 3.13)
    quick=1
    shift
    unset 'SUBSET[-1]'
fi
[[ $# -gt 0 ]] && VERSIONS=("$@")

# ansible-test's pip bootstrap: the stand-in of scripts/host-setup.sh (scripts/ansible-test-get-pip.py,
# which installs from its directory only) and the wheels that version of ansible-test asks for
# (2.17: pip, setuptools and wheel; later versions: pip).
bootstrap_pip() {
    local python="$1" home="$2" cache packages pip_version
    cache="${home}/.ansible/test/cache"
    mkdir -p "${cache}"
    packages="$("${python}" -c '
import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(" ".join("%s==%s" % item for item in sorted(get_venv_packages(types.SimpleNamespace(version="%d.%d" % sys.version_info[:2])).items())))')"
    pip_version="$(tr ' ' '\n' <<<"${packages}" | sed -n 's/^pip==//p')"
    # shellcheck disable=SC2086 # one word per package
    "${python}" -m pip download -qq --disable-pip-version-check --no-deps --only-binary=:all: -d "${cache}" ${packages}
    install -m 0644 "${repo}/scripts/ansible-test-get-pip.py" "${cache}/get_pip_${pip_version//./_}.py"
}

run_sanity() {
    local version="$1" venv="$2" python_version="$3"
    local home="${build}/ansible-test-home-${version}"
    local dest="${build}/matrix/${version}/ansible_collections/runcible/oci"
    [[ ${version} == 2.19 ]] && home="${build}/ansible-test-home"
    bootstrap_pip "${venv}/bin/python" "${home}"
    bash "${repo}/scripts/copy-collection.sh" "${dest}" >/dev/null
    (cd "${dest}" && HOME="${home}" PATH="${venv}/bin:${PATH}" "${venv}/bin/ansible-test" sanity \
        --python "${python_version}" --color no)
}

run_subset() {
    local venv="$1"
    (cd "${repo}" && PATH="${venv}/bin:${PATH}" "${venv}/bin/python" -m pytest -q -p no:cacheprovider "${SUBSET[@]}")
}

results=()
failed=0
matrix_started=$(date +%s)
for version in "${VERSIONS[@]}"; do
    [[ -n ${PYTHONS[${version}]:-} ]] || { printf 'matrix: no ansible-core %s in the matrix\n' "${version}" >&2; exit 2; }
    started=$(date +%s)
    printf '==> ansible-core %s\n' "${version}"
    if [[ ${version} == 2.19 ]]; then
        venv="${build}/venv"
    else
        venv="${build}/venv-ansible-${version}"
        rc=0
        bash "${repo}/scripts/tool-venv.sh" "${venv}" "${repo}/tests/requirements-ansible-${version}.txt" \
            "${PYTHONS[${version}]}" || rc=$?
        if [[ ${rc} -eq 3 ]]; then
            results+=("$(printf '%-6s %-6s %-28s %5s' "${version}" '-' "skipped: no Python ${PYTHONS[${version}]// / or }" '-')")
            continue
        elif [[ ${rc} -ne 0 ]]; then
            results+=("$(printf '%-6s %-6s %-28s %5s' "${version}" '-' 'FAILED: virtualenv' '-')")
            failed=1
            continue
        fi
    fi
    python_version="$("${venv}/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    core="$("${venv}/bin/python" -c 'import ansible.release; print(ansible.release.__version__)')"
    problems=()
    if [[ ${quick} -eq 0 ]]; then
        printf -- '--> ansible-test sanity (ansible-core %s, Python %s)\n' "${core}" "${python_version}"
        sanity_started=$(date +%s)
        run_sanity "${version}" "${venv}" "${python_version}" || problems+=(sanity)
        printf -- '--> sanity: %s s\n' "$(($(date +%s) - sanity_started))"
    fi
    printf -- '--> integration subset (ansible-core %s, Python %s)\n' "${core}" "${python_version}"
    run_subset "${venv}" || problems+=(integration)
    status=passed
    if [[ ${#problems[@]} -gt 0 ]]; then
        status="FAILED: ${problems[*]}"
        failed=1
    fi
    results+=("$(printf '%-6s %-6s %-28s %5s' "${core}" "${python_version}" "${status}" "$(($(date +%s) - started))")")
    [[ ${quick} -eq 1 ]] && break
done

# The managed node's Python: the VM suite's quick subset on Debian 12 (Python 3.11) and Debian 13
# (Python 3.13) guests, each booted from an image of its suite (scripts/vm/build-image.sh, VM_SUITE),
# with the default ansible-core (build/venv). Not with --quick (make test runs the Debian 12 one).
# MATRIX_VM_SUITES="": none.
guest_python() {
    local dir
    for dir in "${build}"/vm/image-*; do
        [[ -f ${dir}/packages.txt && $(cat "${dir}/suite" 2>/dev/null || echo bookworm) == "$1" ]] || continue
        awk '$1 == "python3" { split($2, v, "."); print v[1] "." v[2] }' "${dir}/packages.txt"
    done | tail -n 1
}
if [[ ${quick} -eq 0 ]]; then
    for suite in ${MATRIX_VM_SUITES-bookworm trixie}; do
        printf '==> managed node Debian %s: the VM suite (quick)\n' "${suite}"
        started=$(date +%s)
        status=passed
        (cd "${repo}" && VM_SUITE="${suite}" PATH="${build}/venv/bin:${PATH}:/usr/sbin:/sbin" \
            "${build}/venv/bin/python" -m pytest -q -p no:cacheprovider tests/vm -m quick) || { status=FAILED; failed=1; }
        results+=("$(printf '%-6s %-6s %-28s %5s' "vm:${suite}" "$(guest_python "${suite}")" "${status}" "$(($(date +%s) - started))")")
    done
fi

printf '\n==> matrix%s: ansible-core, Python, result, seconds\n' "$([[ ${quick} -eq 1 ]] && printf ' (integration subset only)')"
printf '    %s\n' "${results[@]}"
printf '    total: %d s\n' "$(($(date +%s) - matrix_started))"
exit "${failed}"
