#!/usr/bin/env bash
# Render the documentation of every plugin of the collection with ansible-doc and
# fail when any of them does not render (error, warning or empty output).
#
#   usage: scripts/docs-check.sh [ANSIBLE_DOC]
#
# Expects ANSIBLE_COLLECTIONS_PATH to find runcible.oci (the Makefile sets it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ansible_doc="${1:-ansible-doc}"
collection=runcible.oci
failures=0
checked=0

# Run ansible-doc with the given arguments; complain when it fails or warns.
render() {
    local what="$1" out err rc=0
    shift
    out="$(mktemp)"
    err="$(mktemp)"
    "${ansible_doc}" "$@" >"${out}" 2>"${err}" || rc=$?
    if [[ ${rc} -ne 0 || -s ${err} || ! -s ${out} ]]; then
        printf 'FAIL  %s (exit %d)\n' "${what}" "${rc}"
        sed 's/^/      /' "${err}"
        [[ -s ${out} ]] || printf '      (no output)\n'
        failures=$((failures + 1))
    else
        printf 'ok    %s\n' "${what}"
    fi
    checked=$((checked + 1))
    rm -f "${out}" "${err}"
}

# Names of the plugins in plugins/DIR: one per Python file, subdirectories joined
# with dots (plugins/modules/sub/foo.py -> sub.foo).
plugin_names() {
    local dir="${repo}/plugins/$1"
    [[ -d ${dir} ]] || return 0
    (cd "${dir}" && find . -name '*.py' ! -name '__init__.py' ! -path '*/__pycache__/*' | sort) |
        sed -e 's|^\./||' -e 's|\.py$||' -e 's|/|.|g'
}

# Directory under plugins/ -> ansible-doc plugin type. Plugins that carry no docs
# of their own (action, module_utils, doc_fragments, plugin_utils) are left out.
declare -A types=(
    [modules]=module [become]=become [cache]=cache [callback]=callback
    [cliconf]=cliconf [connection]=connection [httpapi]=httpapi
    [inventory]=inventory [lookup]=lookup [netconf]=netconf [shell]=shell
    [strategy]=strategy [vars]=vars
)

for dir in $(printf '%s\n' "${!types[@]}" | sort); do
    type="${types[${dir}]}"
    while IFS= read -r name; do
        [[ -n ${name} ]] || continue
        render "${type} ${collection}.${name}" -t "${type}" "${collection}.${name}"
    done < <(plugin_names "${dir}")
done

# Filter and test plugins: one file may hold many; ask ansible-doc for their names.
for type in filter test; do
    [[ -d ${repo}/plugins/${type} ]] || continue
    names="$("${ansible_doc}" -t "${type}" --list --json "${collection}" |
        python3 -c 'import json, sys; print("\n".join(sorted(json.load(sys.stdin))))')"
    while IFS= read -r name; do
        [[ -n ${name} ]] || continue
        render "${type} ${name}" -t "${type}" "${name}"
    done <<<"${names}"
done

# Roles: ansible-doc renders the argument spec of each (meta/argument_specs.yml).
for spec in "${repo}"/roles/*/meta/argument_specs.yml "${repo}"/roles/*/meta/argument_specs.yaml; do
    [[ -f ${spec} ]] || continue
    role="$(basename "$(dirname "$(dirname "${spec}")")")"
    render "role ${collection}.${role}" -t role "${collection}.${role}"
done

if [[ -d ${repo}/plugins/modules ]]; then
    render "--list ${collection}" --list "${collection}"
else
    # No modules yet: ansible-doc --list has nothing to print, but must not fail.
    if "${ansible_doc}" --list "${collection}" >/dev/null; then
        printf 'ok    --list %s (no modules yet)\n' "${collection}"
    else
        printf 'FAIL  --list %s\n' "${collection}"
        failures=$((failures + 1))
    fi
    checked=$((checked + 1))
fi

if [[ ${failures} -ne 0 ]]; then
    printf 'docs-check: %d of %d ansible-doc renderings failed\n' "${failures}" "${checked}"
    exit 1
fi
printf 'docs-check: all %d ansible-doc renderings succeeded\n' "${checked}"
