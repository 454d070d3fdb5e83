#!/usr/bin/env bash
# Make and check the release of the version galaxy.yml names (issue 20): `make release`.
#
#   usage: scripts/release.sh        (the tools of build/venv-tools first on PATH)
#
# Everything happens in a copy of the work tree, build/release/ansible_collections/runcible/oci,
# never in the work tree itself: fragments keep arriving while a release is prepared, so the
# release consumes exactly the fragments present when it runs, and nothing is deleted or written
# in the work tree until someone commits the release (the commands are printed at the end).
#
#   1. antsibull-changelog release: changelogs/changelog.yaml and CHANGELOG.rst for the version,
#      the fragments consumed;
#   2. the guides of docs/*.md as the RST pages docs/docsite/extra-docs.yml names (scripts/md2rst.py),
#      so that docs built from the tarball (as docs.ansible.com builds them) have them;
#   3. ansible-galaxy collection build, then checks of the tarball: none of build/, test output,
#      caches, compiled files, VCS or editor files, ansible-lint's or molecule's state; the files a
#      release must have;
#   4. installed into an empty collections path; ansible-doc on a module and the plugin list from there;
#   5. galaxy-importer on the tarball (Galaxy's own checks on upload: metadata, docs, ansible-lint of
#      the roles, changelog); its ansible-test step, which runs in containers, is off.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${repo}/build/release"
copy="${work}/ansible_collections/runcible/oci"
export HOME="${work}/home"  # antsibull, ansible-galaxy and galaxy-importer write below HOME
export ANSIBLE_NOCOLOR=1

step() { printf -- '--> %s\n' "$*"; }
die() {
    printf 'release: ERROR: %s\n' "$*" >&2
    exit 1
}

version="$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "${repo}/galaxy.yml")"
tarball="${work}/runcible-oci-${version}.tar.gz"
if [[ -n "$(git -C "${repo}" status --porcelain -- . ':!build' 2>/dev/null)" ]]; then
    printf 'release: NOTE: the work tree has uncommitted changes; they are in this release build\n'
fi

rm -rf --one-file-system "${work}"
mkdir -p "${HOME}"
step "copy of the work tree in build/release"
bash "${repo}/scripts/copy-collection.sh" "${copy}"
rm -rf "${copy}/.git"

step "antsibull-changelog release ${version}"
mapfile -t before < <(cd "${copy}/changelogs/fragments" && find . -maxdepth 1 -type f -name '*.y*ml' -printf '%f\n' | sort)
(cd "${copy}" && antsibull-changelog lint && antsibull-changelog release --version "${version}")
[[ -f ${copy}/CHANGELOG.rst ]] || die "antsibull-changelog wrote no CHANGELOG.rst"
grep -q "^v${version//./\\.}$" "${copy}/CHANGELOG.rst" || die "CHANGELOG.rst has no section v${version}"
consumed=()
for fragment in "${before[@]}"; do
    [[ -e ${copy}/changelogs/fragments/${fragment} ]] || consumed+=("${fragment}")
done

step "the guides as RST pages"
python "${repo}/scripts/md2rst.py" "${copy}" "${copy}/docs/docsite/rst"

step "ansible-galaxy collection build"
ansible-galaxy collection build --output-path "${work}" "${copy}" >/dev/null
[[ -f ${tarball} ]] || die "ansible-galaxy made no ${tarball#"${repo}/"}"
printf '    %s (%s)\n' "${tarball#"${repo}/"}" "$(du -h "${tarball}" | cut -f1)"

step "what the tarball holds"
tar -tzf "${tarball}" | sed 's|^\./||' | sort >"${work}/contents.txt"
forbidden='^(build|tests/output|\.venv|\.ci|\.git|\.ansible|\.cache)(/|$)|(^|/)(__pycache__|\.pytest_cache|\.mypy_cache|\.molecule|\.DS_Store)(/|$)|\.(pyc|pyo|retry|orig|rej|swp|tar\.gz)$|(^|/)\.(gitignore|ansible-lint)$|(^|/)(Makefile|scripts/)'
if grep -E "${forbidden}" "${work}/contents.txt" >"${work}/forbidden.txt"; then
    sed 's/^/    /' "${work}/forbidden.txt" >&2
    die "the tarball holds build or test artefacts (above): add them to build_ignore in galaxy.yml"
fi
for required in MANIFEST.json FILES.json README.md LICENSE meta/runtime.yml CHANGELOG.rst changelogs/changelog.yaml \
    changelogs/config.yaml docs/docsite/extra-docs.yml docs/docsite/links.yml docs/docsite/rst/guide.rst \
    plugins/modules/container.py roles/runtime/meta/argument_specs.yml; do
    grep -qxF "${required}" "${work}/contents.txt" || die "the tarball lacks ${required}"
done
if grep -E '^changelogs/fragments/.+\.ya?ml$' "${work}/contents.txt" >/dev/null; then
    die "the tarball still holds changelog fragments: antsibull-changelog release did not consume them"
fi
printf '    %d files; no build or test artefacts\n' "$(grep -cv '/$' "${work}/contents.txt")"

step "installed into an empty collections path"
# only that path: with the work tree's collection in sight, ansible-galaxy would skip the install
export ANSIBLE_COLLECTIONS_PATH="${work}/installed"
ansible-galaxy collection install --offline --force -p "${work}/installed" "${tarball}" >/dev/null
[[ -f ${work}/installed/ansible_collections/runcible/oci/MANIFEST.json ]] || die "ansible-galaxy installed nothing into build/release/installed"
(
    ansible-doc runcible.oci.container >/dev/null
    listing="$(ansible-doc -l runcible.oci)"
    printf '%s\n' "${listing}" | sed 's/^/    /'
    grep -q '^runcible\.oci\.container ' <<<"${listing}" || die "ansible-doc -l runcible.oci lists no container module"
)

# (run in build/release: it writes importer_result.json into its working directory)
step "galaxy-importer (ansible-test in containers off)"
mkdir -p "${work}/importer-tmp"
GALAXY_IMPORTER_RUN_ANSIBLE_TEST=false GALAXY_IMPORTER_TMP_ROOT_DIR="${work}/importer-tmp" \
    GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="${HOME}/.ansible/tmp" \
    bash -c 'cd "$1" && exec python -m galaxy_importer.main "$2"' - "${work}" "${tarball}" >"${work}/importer.log" 2>&1 ||
    { sed 's/^/    /' "${work}/importer.log" >&2; die "galaxy-importer failed (log: build/release/importer.log)"; }
# No warning is accepted: the collection has no sanity ignore files (docs/release.md).
if grep -E '^(WARNING|ERROR)|: (WARNING|ERROR)' "${work}/importer.log" >"${work}/importer-problems.txt"; then
    sed 's/^/    /' "${work}/importer-problems.txt" >&2
    die "galaxy-importer reported problems (above; log: build/release/importer.log)"
fi
printf '    passed (log: build/release/importer.log)\n'

printf '\nrelease %s is ready: %s\n' "${version}" "${tarball#"${repo}/"}"
printf 'To commit it: copy the changelog into the work tree and remove the %d consumed fragments:\n' "${#consumed[@]}"
printf '    cp %s %s\n' "${copy#"${repo}/"}/CHANGELOG.rst" CHANGELOG.rst
printf '    cp %s %s\n' "${copy#"${repo}/"}/changelogs/changelog.yaml" changelogs/changelog.yaml
if [[ ${#consumed[@]} -gt 0 ]]; then
    printf '    git rm -q'
    printf ' changelogs/fragments/%s' "${consumed[@]}"
    printf '\n'
fi
printf 'then commit, tag %s, and publish with: ansible-galaxy collection publish %s\n' "${version}" "${tarball#"${repo}/"}"
