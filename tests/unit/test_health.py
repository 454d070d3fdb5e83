# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks: the option's forms, and how results make a container starting, healthy or unhealthy."""

from __future__ import annotations

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options
from ansible_collections.runcible.oci.plugins.module_utils._container_options import process
from ansible_collections.runcible.oci.plugins.module_utils._runtime import health
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.record import Record
from ansible_collections.runcible.oci.plugins.module_utils._runtime.store import utc_iso

CONTEXT = options.Context('web', '/nonexistent-root')


@pytest.mark.parametrize('value, expected', [
    ({'test': 'curl -f localhost'}, {'test': ['/bin/sh', '-c', 'curl -f localhost'], 'interval': 30.0, 'timeout': 30.0,
                                     'retries': 3, 'start_period': 0.0}),
    ({'test': ['CMD', 'pg_isready', '-q'], 'interval': '1m30s', 'timeout': '500ms', 'retries': 5, 'start_period': 10},
     {'test': ['pg_isready', '-q'], 'interval': 90.0, 'timeout': 0.5, 'retries': 5, 'start_period': 10.0}),
    ({'test': ['CMD-SHELL', 'exit', '0']}, {'test': ['/bin/sh', '-c', 'exit 0'], 'interval': 30.0, 'timeout': 30.0,
                                            'retries': 3, 'start_period': 0.0}),
    ({'test': ['NONE']}, {}), ({}, {}),
])
def test_healthcheck_forms(value, expected):
    assert process.healthcheck(value, CONTEXT) == expected


@pytest.mark.parametrize('value', [{'test': ''}, {'test': []}, {'test': 'x', 'interval': '-1s'}, {'test': 'x', 'retries': True},
                                   'curl', {'test': 'x', 'interval': '1 minute'}])
def test_bad_healthchecks(value):
    with pytest.raises(ValidationError):
        process.healthcheck(value, CONTEXT)


class FakeStore(object):
    def __init__(self):
        self.saved = []

    def save(self, record):
        self.saved.append(dict(record['health']))


class FakeEngine(object):
    def __init__(self):
        self.store = FakeStore()


def record_with(retries=2, start_period=0.0, started_ago=100.0):
    import time
    check = {'test': ['true'], 'interval': 1.0, 'timeout': 1.0, 'retries': retries, 'start_period': start_period}
    return Record(id='a' * 64, name='web', config={'healthcheck': check}, started_at=utc_iso(time.time() - started_ago))


def result(code):
    return {'start': utc_iso(), 'end': utc_iso(), 'exit_code': code, 'output': ''}


def test_retries_in_a_row_make_it_unhealthy_and_a_pass_heals_it():
    engine, record = FakeEngine(), record_with()
    assert health.current(record) == {'status': 'starting', 'failing_streak': 0, 'log': []}
    assert health.record_result(engine, record, result(1))['status'] == 'starting'
    assert health.record_result(engine, record, result(1))['status'] == 'unhealthy'
    healed = health.record_result(engine, record, result(0))
    assert healed['status'] == 'healthy' and healed['failing_streak'] == 0 and len(engine.store.saved) == 3


def test_failures_in_the_start_period_do_not_count_and_the_log_keeps_five():
    engine, record = FakeEngine(), record_with(start_period=60.0, started_ago=1.0)
    for _index in range(8):
        state = health.record_result(engine, record, result(1))
    assert state['status'] == 'starting' and state['failing_streak'] == 0 and len(state['log']) == health.LOG_KEEP


def test_a_container_without_a_check_has_no_health_and_none_is_due():
    record = Record(id='a' * 64, name='web', config={})
    assert health.current(record) is None and health.due(record) is False
    assert health.due(record_with()) is True
