#!/usr/bin/env bash
# Make (or keep) a pinned virtualenv for a tool set: the community gates' build/venv-tools and the
# version matrix's build/venv-ansible-X.Y (issue 20). Cheap when the virtualenv is current: it is
# rebuilt only when its requirements file or its interpreter changed.
#
#   usage: scripts/tool-venv.sh VENV_DIR REQUIREMENTS PYTHON_VERSIONS
#
# PYTHON_VERSIONS: the Python versions (X.Y, space-separated, preferred first) the tools may run on,
# or "default" for the python3 on PATH (the one build/venv is made with). For each version in turn
# the interpreter is the first of: pythonX.Y on PATH (the build/ venvs left out), pyenv's
# $PYENV_ROOT/versions/X.Y.*, /usr/bin/pythonX.Y. When none is found the script exits 3 with the
# reason (the matrix skips that ansible-core and says so); it never silently uses another version.
set -euo pipefail

die() {
    printf 'tool-venv: ERROR: %s\n' "$*" >&2
    exit 1
}

[[ $# -eq 3 ]] || die "usage: $0 VENV_DIR REQUIREMENTS PYTHON_VERSIONS"
venv="$1"
requirements="$2"
versions="$3"
version=""
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f ${requirements} ]] || die "no requirements file ${requirements}"

is_version() {
    [[ -x $1 ]] && [[ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == "${version}" ]] &&
        "$1" -c 'import ensurepip, venv' >/dev/null 2>&1
}

find_python() {
    local candidate dir
    # PATH without the build/ virtualenvs (the Makefile puts build/venv/bin first)
    while IFS= read -r dir; do
        [[ -n ${dir} && ${dir} != "${repo}/build/"* ]] || continue
        candidate="${dir}/python${version}"
        if is_version "${candidate}"; then
            printf '%s\n' "${candidate}"
            return 0
        fi
    done < <(printf '%s\n' "${PATH}" | tr ':' '\n')
    for candidate in "${PYENV_ROOT:-${HOME}/.pyenv}"/versions/"${version}".*/bin/python"${version}" /usr/bin/python"${version}"; do
        if is_version "${candidate}"; then
            printf '%s\n' "${candidate}"
            return 0
        fi
    done
    return 1
}

if [[ ${versions} == default ]]; then
    versions="$(PATH="$(printf '%s' "${PATH}" | tr ':' '\n' | { grep -v "^${repo}/build/" || true; } | paste -sd: -)" \
        python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
fi
python=""
for version in ${versions}; do
    python="$(find_python)" && break
done
[[ -n ${python} ]] || {
    printf 'tool-venv: no Python %s here (PATH, pyenv, /usr/bin): %s not made\n' "${versions// / or }" "${venv#"${repo}/"}" >&2
    exit 3
}
want="$("${python}" -c 'import sys; print(sys.version.split()[0])') $(sha256sum <"${requirements}" | cut -d' ' -f1)"
have="$(cat "${venv}/.runcible-stamp" 2>/dev/null || true)"
if [[ ${want} == "${have}" && -x ${venv}/bin/python ]]; then
    exit 0
fi
printf '==> virtualenv %s (Python %s, %s)\n' "${venv#"${repo}/"}" "${want%% *}" "${requirements#"${repo}/"}"
rm -rf --one-file-system "${venv}"
"${python}" -m venv "${venv}"
"${venv}/bin/python" -m pip install -qq --disable-pip-version-check -r "${requirements}"
"${venv}/bin/python" -m pip check >/dev/null || die "pip check fails in ${venv}: $("${venv}/bin/python" -m pip check)"
printf '%s\n' "${want}" >"${venv}/.runcible-stamp"
