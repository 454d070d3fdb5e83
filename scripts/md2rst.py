"""Turn the guides in docs/*.md into antsibull-docs extra docs (docs/docsite/rst/*.rst).

    usage: python scripts/md2rst.py REPO DEST_RST_DIR

The guides stay Markdown in the repository (read on GitHub, edited by everyone); the docs site and
the release tarball get RST made from them by pandoc (the pinned pypandoc-binary of
tests/requirements-tools.txt), at build time only, never committed. docs/NAME.md becomes the page NAME
(docs/docsite/extra-docs.yml lists it by that name) with the label
``ansible_collections.runcible.oci.docsite.NAME`` (what links between pages refer to).

Links are made to work on the site, and a link that leads nowhere fails the build:

* ``other.md`` (another guide) -> a ``:ref:`` to its page (a ``#section`` part is dropped: the
  page is the target; pages have no stable section labels);
* any other relative path (``../README.md``, ``../plugins/modules/container.py``) that exists in
  the repository -> its URL in the repository (galaxy.yml's ``repository``, branch main);
* ``http(s)://`` and ``mailto:`` links are kept;
* a relative path that does not exist, or an in-page ``#anchor`` -> an error naming the file and
  the line.

Every docs/*.md must be listed in docs/docsite/extra-docs.yml (and every listed page must exist):
a guide missing from the site is an error too.
"""

from __future__ import annotations

import os
import re
import sys

import pypandoc
import yaml

LABEL_PREFIX = 'ansible_collections.runcible.oci.docsite.'
# [text](target) and [text](target "title"); images too (![alt](target))
LINK = re.compile(r'(!?\[(?:[^\[\]]|\[[^\]]*\])*\])\(([^()\s]+)((?:\s+"[^"]*")?)\)')
REF_SCHEME = 'runcible-ref:'
# pandoc's RST for a link whose target we marked: `text <runcible-ref:stem>`__ (text may span lines)
PANDOC_REF = re.compile(r'`([^`]+?)\s*<' + re.escape(REF_SCHEME) + r'([A-Za-z0-9_.-]+)>`__', re.S)


def repository_url(repo: str) -> str:
    with open(os.path.join(repo, 'galaxy.yml'), encoding='utf-8') as handle:
        galaxy = yaml.safe_load(handle)
    return galaxy['repository'].rstrip('/') + '/blob/main/'


def rewrite_links(path: str, text: str, repo: str, stems: set[str], problems: list[str]) -> str:
    docs_dir = os.path.dirname(path)
    base_url = repository_url(repo)
    in_fence = False
    lines = []
    for number, line in enumerate(text.split('\n'), start=1):
        if line.lstrip().startswith('```'):
            in_fence = not in_fence
        if in_fence:
            lines.append(line)
            continue

        def replace(match: re.Match[str], number: int = number) -> str:
            label, target, title = match.groups()
            where = '%s:%d' % (os.path.relpath(path, repo), number)
            if re.match(r'^(https?|mailto):', target):
                return match.group(0)
            if target.startswith('#'):
                problems.append('%s: in-page link %s: link the section of another page or drop it' % (where, target))
                return match.group(0)
            file_part = target.split('#', 1)[0]
            resolved = os.path.normpath(os.path.join(docs_dir, file_part))
            stem = os.path.splitext(os.path.basename(file_part))[0]
            if os.path.dirname(resolved) == os.path.normpath(docs_dir) and file_part.endswith('.md'):
                if stem not in stems:
                    problems.append('%s: broken link: %s does not exist' % (where, os.path.relpath(resolved, repo)))
                    return match.group(0)
                return '%s(%s%s%s)' % (label, REF_SCHEME, stem, title)
            relative = os.path.relpath(resolved, repo)
            if relative.startswith('..') or not os.path.exists(resolved):
                problems.append('%s: broken link: %s does not exist in the repository' % (where, target))
                return match.group(0)
            return '%s(%s%s%s)' % (label, base_url, relative, title)

        lines.append(LINK.sub(replace, line))
    return '\n'.join(lines)


def listed_pages(repo: str) -> list[str]:
    with open(os.path.join(repo, 'docs', 'docsite', 'extra-docs.yml'), encoding='utf-8') as handle:
        index = yaml.safe_load(handle) or {}
    refs = []
    for section in index.get('sections', []):
        for entry in section.get('toctree', []):
            refs.append(entry if isinstance(entry, str) else entry['ref'])
    return refs


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit('usage: %s REPO DEST_RST_DIR' % sys.argv[0])
    repo, dest = os.path.abspath(sys.argv[1]), sys.argv[2]
    docs_dir = os.path.join(repo, 'docs')
    sources = sorted(name for name in os.listdir(docs_dir) if name.endswith('.md'))
    stems = {name[:-3] for name in sources}
    problems: list[str] = []

    listed = listed_pages(repo)
    for ref in listed:
        if ref.removesuffix('.rst') not in stems:
            problems.append('docs/docsite/extra-docs.yml: %s is not a page made from docs/*.md' % ref)
    for stem in sorted(stems):
        if stem not in listed and stem + '.rst' not in listed:
            problems.append('docs/%s.md is not listed in docs/docsite/extra-docs.yml (add "- ref: %s")' % (stem, stem))

    os.makedirs(dest, exist_ok=True)
    for name in sources:
        path = os.path.join(docs_dir, name)
        with open(path, encoding='utf-8') as handle:
            markdown = rewrite_links(path, handle.read(), repo, stems, problems)
        rst = pypandoc.convert_text(markdown, 'rst', format='gfm-gfm_auto_identifiers', extra_args=['--wrap=preserve'])
        rst = PANDOC_REF.sub(lambda m: ':ref:`%s <%s%s>`' % (' '.join(m.group(1).split()), LABEL_PREFIX, m.group(2)), rst)
        if REF_SCHEME in rst:
            problems.append('docs/%s: a link to another guide could not be made a reference' % name)
        header = '..\n  Made from docs/%s by scripts/md2rst.py: edit that file, not this one.\n\n' % name
        with open(os.path.join(dest, name[:-3] + '.rst'), 'w', encoding='utf-8') as handle:
            handle.write(header + '.. _%s%s:\n\n' % (LABEL_PREFIX, name[:-3]) + rst)

    if problems:
        for problem in problems:
            print('md2rst: ' + problem, file=sys.stderr)
        return 1
    print('    %d guides of docs/ made into %s' % (len(sources), dest))
    return 0


if __name__ == '__main__':
    sys.exit(main())
