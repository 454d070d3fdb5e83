# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way a task is declared and run: the common options, complete parameters, and main().

    common_argument_spec()            root, run_root, runtime: the options of doc fragment runcible.oci.common
    with_defaults(spec, params)       params as a task gets them, from a module or from the Python API
    run_task(Task, spec, **options)   the whole main() of every module in plugins/modules

A task is a class ``Task(params, check_mode=False)`` whose ``run()`` returns the module's result.
``params`` are complete (with_defaults): every option of its argument_spec is there, and only an option
without a default can be None; so a task reads ``params['root']`` and never retypes a default.

Nothing of Ansible is imported here at the top: the Python API (``_container.run()`` and friends)
imports this module, and ``ansible.module_utils.basic`` alone costs tens of milliseconds.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from ._runtime.errors import RuncibleError, ValidationError


def common_argument_spec() -> dict[str, dict[str, Any]]:
    """``root``, ``run_root`` and ``runtime``: what every module that uses the container store accepts.

    Documented once, in plugins/doc_fragments/common.py; a module whose DOCUMENTATION extends
    ``runcible.oci.common`` has these in its argument_spec.
    """
    # Imported here: the network task uses with_defaults() but no store, and the engine takes ~10 ms to import.
    from ._runtime.store import DEFAULT_ROOT, DEFAULT_RUN_ROOT  # pylint: disable=import-outside-toplevel
    return dict(
        root=dict(type='path', default=DEFAULT_ROOT),
        run_root=dict(type='path', default=DEFAULT_RUN_ROOT),
        runtime=dict(type='str'),
    )


def with_defaults(argument_spec: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` completed the way the module's options are: -> a new dict, for ``Task(params)``.

    - An alias is renamed to its option (``import`` -> ``import_archive``); an alias and its option
      given with different values raise ValidationError.
    - Every option of ``argument_spec`` is present. One that is not given, is None, or (when it has a
      default) is an empty string takes its default, or None when it has none. Ansible turns a
      ``root: null`` into an empty path, and an empty store path has always meant the default one.
    - Keys the spec does not know are kept as given.
    """
    given = dict(params)
    for name, spec in argument_spec.items():
        for alias in spec.get('aliases') or ():
            if alias not in given:
                continue
            value = given.pop(alias)
            if given.get(name) is None:
                given[name] = value
            elif given[name] != value:
                raise ValidationError('%s and its alias %s are both given, with different values: give one of them'
                                      % (name, alias))
    full = {}
    for name, spec in argument_spec.items():
        value = given.pop(name, None)
        default = spec.get('default')
        if value is None or (value == '' and default is not None):
            value = copy.deepcopy(default)
        full[name] = value
    full.update(given)
    return full


def run_task(task_class: type, argument_spec: dict[str, dict[str, Any]], **module_options: Any) -> None:
    """The whole ``main()`` of a module: build its AnsibleModule, run its task, exit through Ansible.

    ``module_options`` go to AnsibleModule as they are (``mutually_exclusive``, ``required_one_of``, ...);
    check mode is always supported: a task honours ``check_mode`` (read-only tasks ignore it). Then
    ``task_class(with_defaults(argument_spec, module.params), check_mode=module.check_mode).run()``, and:

    - its result's ``warnings`` (a list) become Ansible warnings;
    - its ``diff`` is returned in diff mode only;
    - a result with ``failed`` true fails the task, with the result's ``msg`` and every other key kept
      (container_exec: the command ran and failed, and rc, stdout and stderr are the answer);
    - a MissingLibraryError fails with Ansible's missing_required_lib() message and the library's import
      traceback;
    - any other RuncibleError fails with its message and its details as result keys, and no traceback
      of our own: its message is the whole story for the user (what was wrong, what to do, the runtime's
      own error text), and a traceback of an expected failure is noise (ansible-core before 2.19 prints
      "An exception occurred during task execution" for every result that has one). fail_json is called
      while the error is being handled, so Ansible still adds the traceback when asked to (-vvv before
      2.19, ANSIBLE_DISPLAY_TRACEBACK from 2.19 on).
    - Any other exception is a bug: it is not caught, and Ansible reports it with its traceback.
    """
    from ansible.module_utils.basic import AnsibleModule  # pylint: disable=import-outside-toplevel
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **module_options)
    try:
        result = task_class(with_defaults(argument_spec, module.params), check_mode=module.check_mode).run()
    except RuncibleError as exc:
        module.fail_json(**_failure(exc))
    for warning in result.pop('warnings', None) or []:
        module.warn(warning)
    if not module._diff:
        result.pop('diff', None)
    if result.pop('failed', False):
        module.fail_json(**result)
    module.exit_json(**result)


def _failure(exc: RuncibleError) -> dict[str, Any]:
    """The fail_json arguments of a RuncibleError (see run_task)."""
    from ._runtime.errors import MissingLibraryError  # pylint: disable=import-outside-toplevel
    if isinstance(exc, MissingLibraryError):
        from ansible.module_utils.basic import missing_required_lib  # pylint: disable=import-outside-toplevel
        return dict(msg=missing_required_lib(exc.library, reason=exc.reason), exception=exc.import_traceback)
    return dict(exc.details, msg=exc.msg)
