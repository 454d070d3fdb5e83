# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/molecule.md shows the scenario files that `make molecule` runs, not a copy that drifted away."""

from __future__ import annotations

import os
import re

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUIDE = os.path.join(REPO, 'docs', 'molecule.md')
SCENARIO = os.path.join(REPO, 'roles', 'runtime', 'molecule', 'default')
# The guide names its instance for the reader; the collection's CI names test containers test-*.
RENAMED = {'test-molecule-runtime': 'molecule-debian'}


def guide_files():
    """``{'molecule.yml': text, ...}``: each "### `molecule/default/FILE`" heading's first yaml block."""
    with open(GUIDE, encoding='utf-8') as handle:
        text = handle.read()
    pattern = re.compile(r'^### `molecule/default/([^`]+)`\n.*?^```yaml\n(.*?)^```$', re.M | re.S)
    return dict((match.group(1), match.group(2)) for match in pattern.finditer(text))


@pytest.mark.parametrize('name', ['molecule.yml', 'inventory/hosts.yml', 'create.yml', 'destroy.yml'])
def test_guide_shows_the_tested_scenario_files(name):
    with open(os.path.join(SCENARIO, name), encoding='utf-8') as handle:
        tested = handle.read()
    for old, new in RENAMED.items():
        tested = tested.replace(old, new)
    assert guide_files().get(name) == tested


def test_every_yaml_file_of_the_guide_parses():
    files = guide_files()
    assert sorted(files) == ['converge.yml', 'create.yml', 'destroy.yml', 'inventory/hosts.yml', 'molecule.yml',
                             'verify.yml']
    for name, text in files.items():
        assert yaml.safe_load(text), name
