#!/usr/bin/env bash
# Copy the collection's files into DEST for ansible-test, which needs the collection
# at .../ansible_collections/NAMESPACE/NAME.
#
#   usage: scripts/copy-collection.sh DEST
#
# Copied: git-tracked files that exist plus untracked files git does not ignore;
# never build/, .venv/ or .git/. DEST is emptied first and then made a git
# repository with every copied file added to its index, so that ansible-test lists
# the collection's files from git just as it does in a real checkout.
set -euo pipefail

die() {
    printf 'copy-collection: ERROR: %s\n' "$*" >&2
    exit 1
}

[[ $# -eq 1 ]] || die "usage: $0 DEST"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$1"
case "$(realpath -m "${dest}")/" in
"${repo}/build/"*) ;;
*) die "DEST must lie under ${repo}/build (got ${dest})" ;;
esac

rm -rf --one-file-system "${dest}"
mkdir -p "${dest}"

git -C "${repo}" ls-files -z --cached --others --exclude-standard -- . ':!:build' ':!:.venv' |
    while IFS= read -r -d '' path; do
        # tracked files deleted in the work tree are listed too: skip them
        if [[ -e ${repo}/${path} || -L ${repo}/${path} ]]; then
            printf '%s\0' "${path}"
        fi
    done |
    tar -C "${repo}" --null --no-recursion -T - -cf - |
    tar -C "${dest}" -xf -

git -C "${dest}" init -q
git -C "${dest}" add -A
printf '    copied %s files into %s\n' "$(git -C "${dest}" ls-files | wc -l)" "${dest#"${repo}/"}"
