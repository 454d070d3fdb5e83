# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The end of a changing module's main(): run its task and hand the result to Ansible."""

from __future__ import annotations

from ._runtime.errors import RuncibleError


def run_task(module, task_class):
    """``task_class(params, check_mode=...).run()`` for ``module``; exits through exit_json or fail_json.

    A RuncibleError fails the task with its message and details; the result's warnings become Ansible
    warnings, and its diff is returned in diff mode only.
    """
    try:
        result = task_class(module.params, check_mode=module.check_mode).run()
    except RuncibleError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)
