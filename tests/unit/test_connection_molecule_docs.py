# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/molecule.md, cheaply: every snippet is marked for tests/molecule/test_molecule_docs.py (which runs them all
in `make molecule`), and every YAML snippet parses."""

from __future__ import annotations

import os
import re

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUIDE = os.path.join(REPO, 'docs', 'molecule.md')
BLOCK = re.compile(r'(?:^(<!-- test: (?:run|file \S+|login \S+) -->)\n\n?)?^```(\w+)\n(.*?)^```$', re.M | re.S)


def blocks():
    with open(GUIDE, encoding='utf-8') as handle:
        return [(match.group(1), match.group(2), match.group(3)) for match in BLOCK.finditer(handle.read())]


def test_every_snippet_is_marked_for_the_test_that_runs_it():
    found = blocks()
    assert found
    assert [body for marker, _lang, body in found if not marker] == []


def test_every_yaml_snippet_parses():
    yaml_blocks = [(marker, body) for marker, lang, body in found_yaml()]
    assert len(yaml_blocks) >= 10
    for marker, body in yaml_blocks:
        assert yaml.safe_load(body), marker


def found_yaml():
    return [block for block in blocks() if block[1] == 'yaml']
