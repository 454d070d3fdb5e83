# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection for the crash-window tests: run one container task and SIGKILL it at a chosen step.

    python killed_task.py '{"params": {...}, "module": "_runtime.oci_cli", "attribute": "OCIRuntime.start",
                            "when": "after", "nth": 1}'

The step is any function of the collection's module_utils (``module`` relative to module_utils,
``attribute`` a function or Class.method of it). It is wrapped in this process only, by the test
suite: nothing in the collection knows about it. When its ``nth`` call begins (``before``) or has
returned (``after``), the process sends itself SIGKILL, as the OOM killer, a reboot or a Ctrl-C of
the controller would end a module: no ``finally``, no ``except`` runs. Exit status 0 means the step
was never reached (the test then fails: the step list is out of date).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import signal
import sys

PACKAGE = 'ansible_collections.runcible.oci.plugins.module_utils'


def main():
    spec = json.loads(sys.argv[1])
    sys.path.insert(0, os.environ['RUNCIBLE_COLLECTIONS'])
    container = importlib.import_module(PACKAGE + '._container')
    module = importlib.import_module('%s.%s' % (PACKAGE, spec['module']))
    owner = module
    path = spec['attribute'].split('.')
    for name in path[:-1]:
        owner = getattr(owner, name)
    original = getattr(owner, path[-1])
    calls = [0]

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        calls[0] += 1
        due = calls[0] == spec.get('nth', 1)
        if due and spec['when'] == 'before':
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if due and spec['when'] == 'after':
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    if isinstance(owner, type) and isinstance(owner.__dict__.get(path[-1]), staticmethod):
        wrapper = staticmethod(wrapper)
    setattr(owner, path[-1], wrapper)
    container.run(spec['params'])
    print('the step %s.%s was never reached' % (spec['module'], spec['attribute']))


if __name__ == '__main__':
    main()
