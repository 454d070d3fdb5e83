# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layers of docs/architecture.md, checked: which layer may import which, no cycles, file sizes.

    modules, plugins   ->  task layer (module_utils/_*.py)  ->  option layer (_container_options/)
                                        \\------------------------------>  runtime (_runtime/)

Every import counts, the ones inside functions too (they are how a layer loads code lazily, and
they still point in one direction).
"""

from __future__ import annotations

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(REPO, 'plugins')
PACKAGE = 'ansible_collections.runcible.oci.plugins'
MAX_LINES = 600

# layer -> the layers it may import (besides itself, the standard library and ansible.module_utils)
ALLOWED = {
    'runtime': set(),
    'options': {'runtime'},
    'task': {'options', 'runtime'},
    'module': {'task'},
    'plugin': {'task', 'options', 'runtime'},
}


def layer_of(module):
    """The layer of a dotted module name under plugins (``module_utils._runtime.engine``), or None."""
    parts = module.split('.')
    if parts[0] == 'module_utils':
        if len(parts) > 1 and parts[1] == '_runtime':
            return 'runtime'
        if len(parts) > 1 and parts[1] == '_container_options':
            return 'options'
        return 'task'
    if parts[0] == 'modules':
        return 'module'
    if parts[0] in ('connection', 'inventory'):
        return 'plugin'
    return None


def python_files():
    for directory, _dirs, files in os.walk(PLUGINS):
        for name in sorted(files):
            if name.endswith('.py'):
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, PLUGINS)[:-3].replace(os.sep, '.')
                if relative.endswith('.__init__'):
                    relative = relative[:-len('.__init__')]
                yield path, relative


def imports_of(path, module):
    """Dotted names (relative to plugins) of the collection's modules that ``path`` imports, and whether at top level."""
    with open(path, 'r', encoding='utf-8') as handle:
        tree = ast.parse(handle.read(), path)
    package = module.split('.') if path.endswith('__init__.py') else module.split('.')[:-1]
    found = []
    top_level = set(id(node) for node in tree.body)
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[:len(package) - node.level + 1]
            target = '.'.join(base + ([node.module] if node.module else []))
        elif node.module and node.module.startswith(PACKAGE + '.'):
            target = node.module[len(PACKAGE) + 1:]
        else:
            continue
        names = [target + '.' + alias.name for alias in node.names]
        for name in names + [target]:
            if os.path.exists(os.path.join(PLUGINS, *name.split('.')) + '.py') or \
                    os.path.isdir(os.path.join(PLUGINS, *name.split('.'))):
                found.append((name, id(node) in top_level))
                break
    return found


FILES = list(python_files())


@pytest.mark.parametrize('path, module', FILES, ids=[module for _path, module in FILES])
def test_imports_point_down(path, module):
    layer = layer_of(module)
    if layer is None:
        return  # doc fragments
    wrong = []
    for target, _top in imports_of(path, module):
        target_layer = layer_of(target)
        if target_layer not in ALLOWED[layer] | {layer}:
            wrong.append('%s (%s)' % (target, target_layer))
    assert not wrong, '%s (%s layer) imports upward or sideways: %s' % (module, layer, ', '.join(wrong))


def test_no_import_cycles_at_module_level():
    graph = {}
    for path, module in FILES:
        graph[module] = set(target for target, top in imports_of(path, module) if top and target != module)
    state = {}
    cycles = []

    def visit(node, trail):
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                cycles.append(trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, 'import cycles: %s' % '; '.join(' -> '.join(cycle) for cycle in cycles)


@pytest.mark.parametrize('path, module', [item for item in FILES if '.module_utils.' in '.' + item[1] + '.'],
                         ids=[module for path, module in FILES if '.module_utils.' in '.' + module + '.'])
def test_no_module_util_is_too_long(path, module):
    with open(path, encoding='utf-8') as handle:
        lines = handle.read().count('\n')
    assert lines <= MAX_LINES, '%s has %d lines: split it along its seams (docs/architecture.md)' % (module, lines)
