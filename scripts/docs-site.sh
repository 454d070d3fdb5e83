#!/usr/bin/env bash
# Build the collection's HTML docs site with antsibull-docs and check it (issue 20): `make docs`.
#
#   usage: scripts/docs-site.sh        (the tools of build/venv-tools first on PATH)
#
#   1. a copy of the collection in build/docs/collections (the work tree is never written to),
#      with the guides of docs/*.md made into its docs/docsite/rst pages (scripts/md2rst.py)
#   2. antsibull-docs lint-collection-docs --plugin-docs on it: the plugins' and roles' docs, the
#      extra docs and links.yml
#   3. antsibull-docs sphinx-init + its build.sh (Sphinx, nitpicky, warnings are errors): every
#      module, plugin, role with argument specs and guide; references into Ansible's own docs
#      resolved through an offline inventory (scripts/ansible-docs-inventory.py)
#   4. no broken internal link in the HTML (scripts/check-html-links.py)
#
# The site ends up in build/docs/html (index.html).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${repo}/build/docs"
collections="${work}/collections"
copy="${collections}/ansible_collections/runcible/oci"
sphinx="${work}/sphinx"
export ANSIBLE_COLLECTIONS_PATH="${collections}"
# antsibull writes its log to ~/antsibull.log and Ansible its temporary files to ~/.ansible: a home
# of this build's own keeps root's clean
export HOME="${work}/home"
mkdir -p "${HOME}"
export ANSIBLE_NOCOLOR=1

step() { printf -- '--> %s\n' "$*"; }

step "copy of the collection, guides as RST"
bash "${repo}/scripts/copy-collection.sh" "${copy}"
python "${repo}/scripts/md2rst.py" "${copy}" "${copy}/docs/docsite/rst"

step "antsibull-docs lint-collection-docs --plugin-docs"
antsibull-docs lint-collection-docs --plugin-docs "${copy}"

step "Sphinx site"
# Ansible's docs as an inventory, once per ansible-core version
core="$(python -c 'import ansible.release; print(ansible.release.__version__)')"
inventory="${work}/ansible-devel-${core}.inv"
[[ -f ${inventory} ]] || python "${repo}/scripts/ansible-docs-inventory.py" "${inventory}"
rm -rf --one-file-system "${sphinx}" "${work}/html"
mkdir -p "${work}"
mkdir -m 0700 "${sphinx}"
version="$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "${repo}/galaxy.yml")"
antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error --dest-dir "${sphinx}" \
    --project runcible.oci --title "runcible.oci ${version}" --copyright "runcible.oci contributors" \
    runcible.oci >/dev/null
# No network: intersphinx reads the inventory made above instead of downloading docs.ansible.com's.
printf "\n# runcible.oci: Ansible's docs through an offline inventory (scripts/ansible-docs-inventory.py)\n%s\n" \
    "intersphinx_mapping = {'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', '${inventory}')}" \
    >>"${sphinx}/conf.py"
if ! (cd "${sphinx}" && ./build.sh) >"${work}/build.log" 2>&1; then
    grep -E 'WARNING|ERROR|rror' "${work}/build.log" | sed 's/^/    /' >&2 || tail -n 30 "${work}/build.log" >&2
    printf 'docs-site: the Sphinx build failed (full log: build/docs/build.log)\n' >&2
    exit 1
fi
mv "${sphinx}/build/html" "${work}/html"
printf '    %d pages in build/docs/html\n' "$(find "${work}/html" -name '*.html' | wc -l)"

step "internal links"
python "${repo}/scripts/check-html-links.py" "${work}/html"
