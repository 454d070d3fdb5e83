# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""README.md's "Ad-hoc use" section, run as written (``ansible localhost -m ...``), in a store of the test's own."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import COLLECTIONS, REPO

MARKER = '<!-- test: run -->'


def section_snippets(text, heading='## Ad-hoc use'):
    """The ```sh blocks of one section that carry the run marker; -> (blocks, unmarked blocks)."""
    section = text.split(heading, 1)[1].split('\n## ', 1)[0]
    marked, unmarked = [], []
    for match in re.finditer(r'(?:^(<!-- test: run -->)\n)?^```sh\n(.*?)^```$', section, re.M | re.S):
        (marked if match.group(1) else unmarked).append(match.group(2))
    return marked, unmarked


def test_readme_adhoc_commands(env):
    with open(os.path.join(REPO, 'README.md')) as handle:
        marked, unmarked = section_snippets(handle.read())
    assert len(marked) == 2 and not unmarked, 'every sh block of the section is run: %s' % unmarked
    debian = os.environ.get('RUNCIBLE_DEBIAN_ROOTFS') or os.path.join(REPO, 'build', 'rootfs', 'debian')
    store = 'root=%s run_root=%s ' % (env.root, env.run_root)
    shell_env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0',
                     PATH=os.path.dirname(sys.executable) + ':' + os.environ.get('PATH', ''))
    outputs = []
    for body in marked:
        body = body.replace('/var/lib/runcible-rootfs/debian', debian).replace("-a 'name=hello", "-a '" + store + 'name=hello')
        proc = subprocess.run(['bash', '-euo', 'pipefail', '-c', body], env=shell_env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
        output = proc.stdout.decode('utf-8', 'replace')
        assert proc.returncode == 0, '%s\n---\n%s' % (body, output)
        outputs.append(output)
    with open(os.path.join(debian, 'etc', 'debian_version')) as handle:
        version = handle.read().strip()
    first, second = outputs
    assert 'localhost | CHANGED' in first and '"stdout": "%s"' % version in first, first
    assert '"status": "running"' in first, first
    # the pinned interpreter ran the module; then the container is gone with everything it had
    assert '"discovered_interpreter_python"' not in second and '"status": "running"' in second, second
    assert env.inspect('hello') is None
