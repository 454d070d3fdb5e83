#!/usr/bin/env bash
# Check that an execution environment with runcible.oci can be built (issue 20): `make ee-check`.
#
#   usage: scripts/ee-check.sh        (the tools of build/venv-tools first on PATH)
#
# meta/execution-environment.yml is read by ansible-builder when a user's EE lists this collection:
# its introspection takes the collection's `dependencies` relative to the collection's root (not to
# meta/, which is why `ansible-builder create -f meta/execution-environment.yml` itself cannot be
# the check: it would look for meta/requirements.txt). So, as a user's build would:
#
#   1. ansible-builder's own introspection script on a collections path holding this collection:
#      the Python and system requirements the collection contributes to an EE;
#   2. `ansible-builder create` of an EE definition (build/ee/execution-environment.yml) with those
#      requirements on a Debian base image: the build context build/ee/context;
#   3. every Debian package bindep selects from the context's bindep.txt (default profile, the one an
#      EE build installs) exists in this host's apt sources (Debian 12 or 13), and the context's
#      Python requirements resolve on PyPI (pip install --dry-run).
#
# The image itself is not built: that needs a base image from a container registry, out of reach
# here. Where one is reachable: `ansible-builder build -f build/ee/execution-environment.yml`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${repo}/build/ee"
context="${work}/context"
tools_site="$(python -c 'import ansible_builder, os; print(os.path.dirname(ansible_builder.__file__))')"

step() { printf -- '--> %s\n' "$*"; }
die() {
    printf 'ee-check: ERROR: %s\n' "$*" >&2
    exit 1
}

rm -rf --one-file-system "${work}"
mkdir -p "${work}/collections/ansible_collections/runcible"
# the collection as ansible-galaxy would install it: the work tree's files (build/ left out)
ln -s "${repo}" "${work}/collections/ansible_collections/runcible/oci"

step "introspection of meta/execution-environment.yml (ansible-builder's own script)"
python "${tools_site}/_target_scripts/introspect.py" introspect "${work}/collections" \
    --write-pip "${work}/requirements.txt" --write-bindep "${work}/bindep.txt" >"${work}/introspect.log"
[[ -s ${work}/bindep.txt ]] || die "the introspection found no system requirements: is meta/execution-environment.yml read?"
printf '    %d Python and %d system requirements from runcible.oci\n' \
    "$(grep -cv '^\s*\(#\|$\)' "${work}/requirements.txt" || true)" "$(grep -cv '^\s*\(#\|$\)' "${work}/bindep.txt")"

step "ansible-builder create"
# shellcheck source=/dev/null
codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-bookworm}")"
cat >"${work}/execution-environment.yml" <<EOF
---
# made by scripts/ee-check.sh: an EE with what runcible.oci needs (its introspected requirements)
version: 3
images:
  base_image:
    name: docker.io/library/debian:${codename}
dependencies:
  python_interpreter:
    package_system: python3
    python_path: /usr/bin/python3
  ansible_core:
    package_pip: ansible-core==$(python -c 'import ansible.release; print(ansible.release.__version__)')
  ansible_runner:
    package_pip: ansible-runner
  python: requirements.txt
  system: bindep.txt
EOF
ansible-builder create -f "${work}/execution-environment.yml" -c "${context}" --output-filename Containerfile >/dev/null
for file in Containerfile _build/requirements.txt _build/bindep.txt; do
    [[ -f ${context}/${file} ]] || die "ansible-builder create made no ${file} in build/ee/context"
done
printf '    build context in build/ee/context (Containerfile, _build/)\n'

step "system requirements on Debian ${codename} (apt)"
mapfile -t packages < <(bindep --list_all newline -f "${context}/_build/bindep.txt" | sed '/^$/d')
[[ ${#packages[@]} -gt 0 ]] || die "bindep selects no package from the context's bindep.txt"
# one apt-cache call (each parses every package list): the names it knows, then the ones it does not
known="$({ apt-cache show --no-all-versions "${packages[@]}" 2>/dev/null || true; } | sed -n 's/^Package: //p' | sort -u)"
missing=()
for package in "${packages[@]}"; do
    grep -qxF "${package}" <<<"${known}" || missing+=("${package}")
done
[[ ${#missing[@]} -eq 0 ]] || die "not in this host's apt sources: ${missing[*]}"
printf '    all %d packages available: %s\n' "${#packages[@]}" "${packages[*]}"

step "Python requirements (pip install --dry-run against PyPI)"
if grep -qv '^\s*\(#\|$\)' "${context}/_build/requirements.txt"; then
    python -m pip install -qq --disable-pip-version-check --dry-run --ignore-installed \
        --report "${work}/pip-report.json" -r "${context}/_build/requirements.txt"
    python -c 'import json, sys; r = json.load(open(sys.argv[1]))["install"]
print("    resolved: " + " ".join("%s==%s" % (i["metadata"]["name"], i["metadata"]["version"]) for i in r))' \
        "${work}/pip-report.json"
else
    printf '    none\n'
fi
