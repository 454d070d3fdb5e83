# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test helper: write every task result of a playbook run, with its host, to the JSON file in $RUNCIBLE_RESULTS."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: record_results
type: aggregate
short_description: write task results to a JSON file (tests only)
description: Writes every task result, with the host and task name, to the file named by the RUNCIBLE_RESULTS
  environment variable (integration and VM tests).
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'record_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.results = []

    def _record(self, result, status):
        data = dict(result._result)
        data['_status'] = status
        data['_host'] = result._host.get_name()
        data['_task'] = result._task.get_name()
        data['_check_mode'] = bool(result._task.check_mode)
        self.results.append(data)

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('RUNCIBLE_RESULTS')
        if path:
            with open(path, 'w') as handle:
                json.dump(self.results, handle, default=str)
