"""Fail when a page of a built HTML site links to a page or an anchor of the site that is not there.

    usage: python scripts/check-html-links.py HTML_DIR

Every href and src of every .html file under HTML_DIR that stays inside the site (relative, or
absolute from the site's root: the site is served at the root of its host; no scheme) must name an
existing file, and its #fragment an id (or name) in that file. External links
(http:, https:, mailto:) are not followed: no network here; the docs build resolves references to
Ansible's docs through an inventory instead (scripts/ansible-docs-inventory.py).
"""

from __future__ import annotations

import os
import sys
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[int, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ('id',) or (name == 'name' and tag == 'a'):
                self.ids.add(value)
            elif name in ('href', 'src') and tag in ('a', 'img', 'link', 'script'):
                self.links.append((self.getpos()[0], value))


def parse(path: str, cache: dict[str, Page]) -> Page:
    if path not in cache:
        page = Page()
        with open(path, encoding='utf-8', errors='replace') as handle:
            page.feed(handle.read())
        cache[path] = page
    return cache[path]


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit('usage: %s HTML_DIR' % sys.argv[0])
    root = os.path.abspath(sys.argv[1])
    cache: dict[str, Page] = {}
    broken = []
    checked = 0
    for directory, _dirs, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith('.html'):
                continue
            path = os.path.join(directory, name)
            for line, link in parse(path, cache).links:
                parts = urlsplit(link)
                if parts.scheme or parts.netloc or link.startswith('//'):
                    continue
                checked += 1
                if not parts.path:
                    target = path
                elif parts.path.startswith('/'):  # the site is served at the root of its host
                    target = os.path.normpath(root + unquote(parts.path))
                else:
                    target = os.path.normpath(os.path.join(directory, unquote(parts.path)))
                where = '%s:%d' % (os.path.relpath(path, root), line)
                if target != root and not target.startswith(root + os.sep):
                    broken.append('%s: %s leads out of the site' % (where, link))
                    continue
                if os.path.isdir(target):
                    target = os.path.join(target, 'index.html')
                if not os.path.isfile(target):
                    broken.append('%s: %s: no such page' % (where, link))
                    continue
                fragment = unquote(parts.fragment)
                if fragment and target.endswith('.html') and fragment not in parse(target, cache).ids:
                    broken.append('%s: %s: no anchor #%s in %s' % (where, link, fragment, os.path.relpath(target, root)))
    for problem in broken:
        print('broken link: ' + problem, file=sys.stderr)
    print('    %d internal links of %d pages checked, %d broken'
          % (checked, sum(1 for p in cache if p.endswith('.html')), len(broken)))
    return 1 if broken else 0


if __name__ == '__main__':
    sys.exit(main())
