# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""runcible.oci.container_info and the log drivers on the real runc + conmon."""

from __future__ import annotations

import os
import time

import pytest

from conftest import read_log, wait_for

from ansible_collections.runcible.oci.plugins.module_utils import _info  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.logs import parse_timestamp  # noqa: E402

MODULE = 'runcible.oci.container_info'
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
JOURNAL_SOCKET = '/run/systemd/journal/socket'


def info(env, **params):
    params.setdefault('root', env.root)
    params.setdefault('run_root', env.run_root)
    return _info.run(params)


def store_files(env):
    found = set()
    for base in (env.root, env.run_root):
        for directory, dirs, files in os.walk(base):
            for name in dirs + files:
                path = os.path.join(directory, name)
                found.add((path, os.lstat(path).st_mtime_ns))
    return found


def test_info_of_all_containers_with_live_status(env):
    env.run(name='test-a-running', rootfs=env.rootfs, command=['sh', '-c', LOOP])
    env.run(name='test-b-stopped', rootfs=env.rootfs, command=['sh', '-c', LOOP], state='stopped')
    env.run(name='test-c-exits', rootfs=env.rootfs, command=['sh', '-c', 'echo bye; exit 4'])
    # conmon is done too (it writes the exit file and removes its socket after the process ended).
    assert wait_for(lambda: (env.inspect('test-c-exits')['exit_code'], env.inspect('test-c-exits')['conmon_pid']) == (4, 0))
    record = env.engine.store.load('test-c-exits')
    assert record['state'] == 'running', 'the record still says running: info must not trust it'
    before = store_files(env)

    results = env.playbook([
        {'name': 'all', MODULE: {}},
        {'name': 'all in check mode', MODULE: {}, 'check_mode': True},
    ])
    for result in results:
        assert result['_status'] == 'ok' and not result['changed']
        assert 'exists' not in result
        containers = result['containers']
        assert [c['name'] for c in containers] == ['test-a-running', 'test-b-stopped', 'test-c-exits']
        by_name = dict((c['name'], c) for c in containers)
        assert by_name['test-a-running']['status'] == 'running' and by_name['test-a-running']['pid'] > 0
        assert by_name['test-b-stopped']['status'] == 'stopped' and by_name['test-b-stopped']['pid'] == 0
        assert by_name['test-c-exits']['status'] == 'stopped' and by_name['test-c-exits']['exit_code'] == 4
        assert 'logs' not in by_name['test-a-running']
        # The same dict as the container module returns.
        assert set(by_name['test-a-running']) == set(env.playbook([{'runcible.oci.container': {
            'name': 'test-a-running'}}])[0]['container'])
    assert store_files(env) == before, 'info must not write, lock or touch anything'


def test_single_name_exists_and_lists(env):
    env.run(name='test-one', rootfs=env.rootfs, command=['sh', '-c', LOOP])
    results = env.playbook([
        {'name': 'one', MODULE: {'name': 'test-one'}},
        {'name': 'missing', MODULE: {'name': 'test-missing'}},
        {'name': 'list', MODULE: {'name': ['test-missing', 'test-one']}},
        {'name': 'list of one', MODULE: {'name': ['test-one']}},
        {'name': 'bad', MODULE: {'name': 'bad/name'}, 'ignore_errors': True},
        {'name': 'bad tail', MODULE: {'name': 'test-one', 'logs_tail': -2}, 'ignore_errors': True},
        {'name': 'bad since', MODULE: {'name': 'test-one', 'logs_since': 'yesterday-ish'}, 'ignore_errors': True},
    ])
    by_name = dict((r['_task'], r) for r in results)
    assert by_name['one']['exists'] is True and by_name['one']['containers'][0]['status'] == 'running'
    assert by_name['missing']['exists'] is False and by_name['missing']['containers'] == []
    assert 'exists' not in by_name['list'] and [c['name'] for c in by_name['list']['containers']] == ['test-one']
    assert by_name['list of one']['exists'] is True
    assert by_name['bad']['_status'] == 'failed' and 'invalid container name' in by_name['bad']['msg']
    assert by_name['bad tail']['_status'] == 'failed' and 'logs_tail' in by_name['bad tail']['msg']
    assert by_name['bad since']['_status'] == 'failed' and 'logs_since' in by_name['bad since']['msg']
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-missing'))


def test_logs_tail_streams_and_partial_lines(env):
    long_line = 'x' * 20000  # conmon reads 8 KB at a time: written as P, P, F parts
    script = ('i=1; while [ $i -le 50 ]; do echo line $i; i=$((i+1)); done; echo oops >&2; '
              'printf "%s\\n" {long}; printf "no newline yet"; sleep 1000').format(long=long_line)
    env.run(name='test-logs', rootfs=env.rootfs, command=['sh', '-c', script])
    log_path = env.inspect('test-logs')['log_path']
    assert wait_for(lambda: any('no newline yet' in line for line in read_log(log_path)))
    with open(log_path, 'rb') as handle:
        raw = handle.read().decode().splitlines()
    assert any(' stdout P ' in line for line in raw), 'the test needs partial lines in the log'

    results = env.playbook([
        {'name': 'tail 3', MODULE: {'name': 'test-logs', 'logs_tail': 3}},
        {'name': 'all', MODULE: {'name': 'test-logs', 'logs_tail': -1}},
        {'name': 'none', MODULE: {'name': 'test-logs'}},
    ])
    tail, everything, none = results
    assert tail['containers'][0]['logs'] == ['oops', long_line, 'no newline yet']
    entries = tail['containers'][0]['log_entries']
    assert [e['stream'] for e in entries] == ['stderr', 'stdout', 'stdout']
    assert all(parse_timestamp(e['timestamp']) for e in entries)
    expected = ['line %d' % i for i in range(1, 51)] + ['oops', long_line, 'no newline yet']
    assert everything['containers'][0]['logs'] == expected
    assert 'logs' not in none['containers'][0]


def test_logs_tail_of_a_big_log_reads_from_the_end(env):
    # About 2 MB of log: the reader must find the last lines without parsing everything.
    script = 'i=0; while [ $i -lt 40000 ]; do echo "entry $i padding-padding-padding"; i=$((i+1)); done; sleep 1000'
    env.run(name='test-big', rootfs=env.rootfs, command=['sh', '-c', script])
    log_path = env.inspect('test-big')['log_path']
    assert wait_for(lambda: os.path.getsize(log_path) > 40000 * 60, timeout=60)
    assert wait_for(lambda: read_log(log_path)[-1:] == ['entry 39999 padding-padding-padding'], timeout=30)
    start = time.monotonic()
    result = info(env, name='test-big', logs_tail=2)
    elapsed = time.monotonic() - start
    assert result['containers'][0]['logs'] == ['entry 39998 padding-padding-padding',
                                               'entry 39999 padding-padding-padding']
    assert elapsed < 0.5, elapsed
    assert len(info(env, name='test-big', logs_tail=-1)['containers'][0]['logs']) == 40000


def test_logs_since(env):
    env.run(name='test-since', rootfs=env.rootfs, command=['sh', '-c', 'echo early; sleep 1.5; echo late; sleep 1000'])
    log_path = env.inspect('test-since')['log_path']
    assert wait_for(lambda: read_log(log_path) == ['early', 'late'], timeout=10)
    entries = info(env, name='test-since', logs_tail=-1)['containers'][0]['log_entries']
    early_ns = parse_timestamp(entries[0]['timestamp'])
    middle = early_ns / 1e9 + 0.7
    results = env.playbook([
        {'name': 'epoch', MODULE: {'name': 'test-since', 'logs_since': '%.3f' % middle}},
        {'name': 'iso', MODULE: {'name': 'test-since', 'logs_since': time.strftime(
            '%Y-%m-%dT%H:%M:%S', time.gmtime(int(middle))) + '.%03dZ' % int((middle % 1) * 1000)}},
        {'name': 'relative', MODULE: {'name': 'test-since', 'logs_since': '1h'}},
        {'name': 'since and tail', MODULE: {'name': 'test-since', 'logs_since': '1h', 'logs_tail': 1}},
        {'name': 'future', MODULE: {'name': 'test-since', 'logs_since': '%d' % (time.time() + 3600)}},
    ])
    by_name = dict((r['_task'], r['containers'][0]['logs']) for r in results)
    assert by_name['epoch'] == ['late'] and by_name['iso'] == ['late']
    assert by_name['relative'] == ['early', 'late']
    assert by_name['since and tail'] == ['late']
    assert by_name['future'] == []


def test_log_driver_none_and_log_options_four_ways(env):
    args = {'name': 'test-drv', 'rootfs': env.rootfs, 'command': ['sh', '-c', 'echo hello; ' + LOOP],
            'log_driver': 'none'}
    results = env.four_ways(args)
    assert results[1]['container']['config']['log_driver'] == 'none'
    time.sleep(0.3)
    assert not os.path.exists(results[1]['container']['log_path'])
    shown = env.playbook([{MODULE: {'name': 'test-drv', 'logs_tail': 5}}])[0]
    assert shown['containers'][0]['logs'] == []
    assert 'log_driver none' in shown['_output']

    back = env.four_ways(dict(args, log_driver='k8s-file', log_size_max='1m'))
    assert back[0]['actions'] == ['recreated', 'started']
    assert back[1]['diff']['before']['log_driver'] == 'none' and back[1]['diff']['after']['log_size_max'] == 1 << 20
    assert wait_for(lambda: info(env, name='test-drv', logs_tail=1)['containers'][0]['logs'] == ['hello'])
    env.four_ways(dict(args, log_driver='k8s-file', log_size_max=1048576), expect=(False, False, False, False))
    bad = env.playbook([{'runcible.oci.container': dict(args, log_size_max='lots'), 'ignore_errors': True}])[0]
    assert bad['_status'] == 'failed' and 'log_size_max' in bad['msg']


def test_log_size_max_caps_the_log_file(env):
    script = 'i=0; while [ $i -lt 5000 ]; do echo "line $i of the log"; i=$((i+1)); done; echo last; sleep 1000'
    env.run(name='test-cap', rootfs=env.rootfs, command=['sh', '-c', script], log_size_max='16k')
    log_path = env.inspect('test-cap')['log_path']
    assert wait_for(lambda: read_log(log_path)[-1:] == ['last'], timeout=30)
    assert os.path.getsize(log_path) <= 16 * 1024
    logs = info(env, name='test-cap', logs_tail=-1)['containers'][0]['logs']
    assert logs[-1] == 'last' and 0 < len(logs) < 5000


def test_journald_driver(env):
    env.run(name='test-journal', rootfs=env.rootfs, command=['sh', '-c', 'echo to-the-journal; ' + LOOP],
            log_driver='journald')
    container = env.inspect('test-journal')
    assert container['status'] == 'running', 'conmon runs the container with the journald driver'
    try:
        import systemd.journal  # noqa: F401
        has_library = True
    except ImportError:
        has_library = False
    if not has_library:
        result = env.playbook([{MODULE: {'name': 'test-journal', 'logs_tail': 5}, 'ignore_errors': True}])[0]
        assert result['_status'] == 'failed'
        assert 'systemd-python' in result['msg'] and 'log_driver journald' in result['msg']
        # Without logs asked, the library is not needed.
        assert env.playbook([{MODULE: {'name': 'test-journal'}}])[0]['containers'][0]['status'] == 'running'
    if not os.path.exists(JOURNAL_SOCKET):
        pytest.skip('no systemd journal on this host (%s missing; PID 1 is %s, not systemd): cannot read journald '
                    'logs back' % (JOURNAL_SOCKET, _pid1()))
    if not has_library:
        pytest.skip('python-systemd is not installed: cannot read journald logs back')
    assert wait_for(lambda: info(env, name='test-journal', logs_tail=5)['containers'][0]['logs'] == ['to-the-journal'])


def _pid1():
    try:
        with open('/proc/1/comm') as handle:
            return handle.read().strip()
    except OSError:
        return 'unknown'
