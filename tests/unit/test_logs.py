# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/logs.py: the k8s-file parser and tail reader, timestamps, logs_since, journal records."""

from __future__ import annotations

import datetime
import sys

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import logs
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError

T0 = '2026-12-01T13:26:05.887344118+00:00'
T0_NS = 1796131565 * 1000000000 + 887344118


def line(stream, tag, message, timestamp=T0):
    return ('%s %s %s %s\n' % (timestamp, stream, tag, message)).encode('utf-8')


def messages(entries):
    return [(entry.stream, entry.message) for entry in entries]


# -- timestamps ----------------------------------------------------------------------------------------

@pytest.mark.parametrize('text, expected', [
    (T0, T0_NS),
    ('2026-12-01T13:26:05.887344118Z', T0_NS),
    ('2026-12-01T15:26:05.887344118+02:00', T0_NS),
    ('2026-12-01T08:26:05.887344118-05:00', T0_NS),
    ('2026-12-01T15:26:05.887344118+0200', T0_NS),
    ('2026-12-01T13:26:05.8873Z', 1796131565 * 1000000000 + 887300000),
    ('2026-12-01T13:26:05Z', 1796131565 * 1000000000),
    ('2026-12-01 13:26:05', 1796131565 * 1000000000),
    ('2026-12-01T13:26Z', 1796131560 * 1000000000),
    ('2026-12-01', 1796083200 * 1000000000),
    (b'2026-12-01T13:26:05Z', 1796131565 * 1000000000),
])
def test_parse_timestamp(text, expected):
    assert logs.parse_timestamp(text) == expected


@pytest.mark.parametrize('text', ['', 'yesterday', '2026-13-01T00:00:00Z', '2026-02-30', '2026-12-01T25:00:00Z',
                                  '2026-12-01T13:26:05.1234567890Z', '1796131565', 'stdout'])
def test_parse_timestamp_rejects(text):
    assert logs.parse_timestamp(text) is None


def test_format_ns_round_trips():
    assert logs.format_ns(T0_NS) == '2026-12-01T13:26:05.887344118Z'
    assert logs.parse_timestamp(logs.format_ns(T0_NS)) == T0_NS


@pytest.mark.parametrize('value, expected', [
    ('2026-12-01T13:26:05Z', 1796131565 * 10 ** 9),
    ('1796131565', 1796131565 * 10 ** 9),
    ('1796131565.5', 1796131565 * 10 ** 9 + 5 * 10 ** 8),
    (1796131565, 1796131565 * 10 ** 9),
    ('10m', (1000000 - 600) * 10 ** 9),
    ('1h30m', (1000000 - 5400) * 10 ** 9),
    ('2d', (1000000 - 172800) * 10 ** 9),
    ('45s', (1000000 - 45) * 10 ** 9),
    ('1d 2h', (1000000 - 93600) * 10 ** 9),
])
def test_parse_since(value, expected):
    assert logs.parse_since(value, now=1000000) == expected


@pytest.mark.parametrize('value', ['', 'soon', '10 minutes', '-5m', True, '2026-12-01T13:26:05+25'])
def test_parse_since_rejects(value):
    with pytest.raises(ValidationError, match='logs_since'):
        logs.parse_since(value, now=1000000)


def test_parse_since_none():
    assert logs.parse_since(None) is None


# -- the k8s-file parser ---------------------------------------------------------------------------------

def test_full_lines_of_both_streams():
    entries, malformed = logs.parse_k8s_lines([line('stdout', 'F', 'hello'), line('stderr', 'F', 'oops'),
                                               line('stdout', 'F', 'world')])
    assert malformed == 0
    assert messages(entries) == [('stdout', 'hello'), ('stderr', 'oops'), ('stdout', 'world')]
    assert entries[0].timestamp == T0 and entries[0].time_ns == T0_NS and not entries[0].partial
    assert entries[0].as_dict() == {'timestamp': T0, 'stream': 'stdout', 'message': 'hello'}


def test_partial_lines_are_joined_per_stream():
    lines = [
        line('stdout', 'P', 'first part, '),
        line('stderr', 'F', 'an error in between'),
        line('stdout', 'P', 'second part, '),
        line('stderr', 'P', 'err '),
        line('stdout', 'F', 'end', timestamp='2026-12-01T13:26:06Z'),
        line('stderr', 'F', 'done'),
    ]
    entries, malformed = logs.parse_k8s_lines(lines)
    assert malformed == 0
    assert messages(entries) == [('stderr', 'an error in between'), ('stdout', 'first part, second part, end'),
                                 ('stderr', 'err done')]
    assert entries[1].timestamp == '2026-12-01T13:26:06Z', 'a joined line carries the time it was completed'


def test_utf8_split_across_parts_is_joined_before_decoding():
    text = 'héllo wörld'.encode('utf-8')
    cut = text.index(b'\xc3') + 1  # in the middle of a two-byte character
    raw = [T0.encode() + b' stdout P ' + text[:cut] + b'\n', T0.encode() + b' stdout F ' + text[cut:] + b'\n']
    entries, _malformed = logs.parse_k8s_lines(raw)
    assert messages(entries) == [('stdout', 'héllo wörld')]


def test_invalid_utf8_is_replaced():
    entries, _malformed = logs.parse_k8s_lines([T0.encode() + b' stdout F ok\xff\xfe\x00end\n'])
    assert entries[0].message == 'ok\ufffd\ufffd\x00end'


def test_trailing_partial_line_comes_last_marked_partial():
    entries, _malformed = logs.parse_k8s_lines([line('stdout', 'P', 'no newline '), line('stderr', 'F', 'err'),
                                                line('stdout', 'P', 'yet')])
    assert messages(entries) == [('stderr', 'err'), ('stdout', 'no newline yet')]
    assert entries[-1].partial


def test_empty_messages_and_spaces_are_kept():
    raw = [line('stdout', 'F', ''), line('stdout', 'F', '  two  spaces  '), (T0 + ' stdout F').encode()]
    entries, malformed = logs.parse_k8s_lines(raw)
    assert malformed == 0
    assert [entry.message for entry in entries] == ['', '  two  spaces  ', '']


def test_carriage_returns_stay_in_the_message():
    entries, _malformed = logs.parse_k8s_lines([line('stdout', 'F', 'progress\r50%\r')])
    assert entries[0].message == 'progress\r50%\r'


@pytest.mark.parametrize('bad', [
    b'garbage\n',
    b'only two\n',
    b'not-a-time stdout F message\n',
    (T0 + ' stdin F message\n').encode(),
    (T0 + ' stdout X message\n').encode(),
    (T0 + ' stdout message-without-tag\n').encode(),
    b'\xff\xfe stdout F x\n',
])
def test_malformed_lines_are_skipped_and_counted(bad):
    entries, malformed = logs.parse_k8s_lines([line('stdout', 'F', 'before'), bad, line('stdout', 'F', 'after')])
    assert malformed == 1
    assert messages(entries) == [('stdout', 'before'), ('stdout', 'after')]


def test_malformed_line_between_parts_does_not_break_the_join():
    entries, malformed = logs.parse_k8s_lines([line('stdout', 'P', 'a'), b'junk\n', line('stdout', 'F', 'b')])
    assert (messages(entries), malformed) == ([('stdout', 'ab')], 1)


def test_cri_tags_with_extra_fields_are_accepted():
    entries, malformed = logs.parse_k8s_lines([line('stdout', 'P:x', 'a'), line('stdout', 'F:y', 'b')])
    assert (messages(entries), malformed) == ([('stdout', 'ab')], 0)


def test_window_drops_the_first_entry_of_each_stream():
    lines = [line('stdout', 'F', 'maybe the end of a cut line'), line('stderr', 'P', 'maybe cut '),
             line('stderr', 'F', 'too'), line('stdout', 'F', 'complete'), line('stderr', 'F', 'complete too')]
    entries, _malformed = logs.parse_k8s_lines(lines, window=True)
    assert messages(entries) == [('stdout', 'complete'), ('stderr', 'complete too')]


def test_select_entries():
    entries = [logs.LogEntry(str(i), i, 'stdout', 'm%d' % i) for i in range(10)]
    assert [e.message for e in logs.select_entries(entries, 3)] == ['m7', 'm8', 'm9']
    assert logs.select_entries(entries, 0) == []
    assert len(logs.select_entries(entries, None)) == 10
    assert len(logs.select_entries(entries, -1)) == 10
    assert [e.message for e in logs.select_entries(entries, None, since_ns=8)] == ['m8', 'm9']
    assert [e.message for e in logs.select_entries(entries, 1, since_ns=5)] == ['m9']
    assert [e.message for e in logs.select_entries(entries, 20)] == ['m%d' % i for i in range(10)]


# -- reading a file from its end --------------------------------------------------------------------------

def write_log(path, count, long_every=0):
    """``count`` lines; every ``long_every``-th is written in three parts, with stderr lines between."""
    with open(path, 'wb') as handle:
        for index in range(count):
            stamp = logs.format_ns(T0_NS + index * 1000000)
            if long_every and index % long_every == 0:
                handle.write(line('stdout', 'P', 'long %d part1 ' % index, stamp))
                handle.write(line('stderr', 'F', 'interleaved %d' % index, stamp))
                handle.write(line('stdout', 'P', 'part2 ', stamp))
                handle.write(line('stdout', 'F', 'end', stamp))
            else:
                handle.write(line('stdout', 'F', 'line %d' % index, stamp))


def expected_messages(count, long_every=0):
    result = []
    for index in range(count):
        if long_every and index % long_every == 0:
            result += ['interleaved %d' % index, 'long %d part1 part2 end' % index]
        else:
            result.append('line %d' % index)
    return result


@pytest.mark.parametrize('window', [64, 256, 1 << 16])
@pytest.mark.parametrize('tail', [1, 2, 5, 17, 100, 1000])
def test_read_k8s_file_tail_matches_a_full_parse(tmp_path, monkeypatch, window, tail):
    monkeypatch.setattr(logs, 'FIRST_WINDOW', window)
    path = str(tmp_path / 'ctr.log')
    write_log(path, 300, long_every=7)
    got = [entry.message for entry in logs.read_k8s_file(path, tail=tail)]
    assert got == expected_messages(300, long_every=7)[-tail:]


@pytest.mark.parametrize('window', [64, 1 << 16])
def test_read_k8s_file_since(tmp_path, monkeypatch, window):
    monkeypatch.setattr(logs, 'FIRST_WINDOW', window)
    path = str(tmp_path / 'ctr.log')
    write_log(path, 200)
    since = T0_NS + 150 * 1000000
    assert [e.message for e in logs.read_k8s_file(path, since_ns=since)] == ['line %d' % i for i in range(150, 200)]
    assert [e.message for e in logs.read_k8s_file(path, tail=3, since_ns=since)] == ['line 197', 'line 198', 'line 199']
    assert [e.message for e in logs.read_k8s_file(path, tail=100, since_ns=since)] == \
        ['line %d' % i for i in range(150, 200)]
    assert logs.read_k8s_file(path, since_ns=T0_NS + 10 ** 12) == []


def test_read_k8s_file_all_and_missing(tmp_path):
    path = str(tmp_path / 'ctr.log')
    assert logs.read_k8s_file(path, tail=5) == []
    write_log(path, 50, long_every=3)
    assert [e.message for e in logs.read_k8s_file(path)] == expected_messages(50, long_every=3)
    assert [e.message for e in logs.read_k8s_file(path, tail=-1)] == expected_messages(50, long_every=3)


def test_read_k8s_file_of_one_huge_line(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, 'FIRST_WINDOW', 1024)
    path = str(tmp_path / 'ctr.log')
    with open(path, 'wb') as handle:
        handle.write(line('stdout', 'F', 'before'))
        for _part in range(100):
            handle.write(line('stdout', 'P', 'y' * 100))
        handle.write(line('stdout', 'F', '!'))
    assert [e.message for e in logs.read_k8s_file(path, tail=1)] == ['y' * 10000 + '!']
    assert [e.message for e in logs.read_k8s_file(path, tail=2)] == ['before', 'y' * 10000 + '!']


# -- journal records --------------------------------------------------------------------------------------

def record(message, priority=6, partial=False, micros=0):
    entry = {'MESSAGE': message, 'PRIORITY': priority,
             '__REALTIME_TIMESTAMP': datetime.datetime(2026, 12, 1, 13, 26, 5, micros)}
    if partial:
        entry['CONTAINER_PARTIAL_MESSAGE'] = 'true'
    return entry


def test_join_journal_records():
    entries = logs.join_journal_records([
        record('hello\n'),
        record('part one ', partial=True),
        record('oops\n', priority=3),
        record('part two\n', micros=5),
        record(b'bytes \xff\n'),
        record('no newline'),
    ])
    assert messages(entries) == [('stdout', 'hello'), ('stderr', 'oops'), ('stdout', 'part one part two'),
                                 ('stdout', 'bytes \ufffd'), ('stdout', 'no newline')]
    assert entries[0].time_ns == 1796131565 * 10 ** 9
    assert entries[2].time_ns == 1796131565 * 10 ** 9 + 5000
    assert entries[0].timestamp == '2026-12-01T13:26:05.000000000Z'


def test_read_journald_without_the_library(monkeypatch):
    monkeypatch.setitem(sys.modules, 'systemd', None)
    with pytest.raises(logs.MissingLibraryError) as caught:
        logs.read_journald('a' * 64, tail=5)
    assert caught.value.library == 'systemd-python'
    assert 'log_driver journald' in caught.value.reason
    assert 'ImportError' in caught.value.import_traceback or 'ModuleNotFoundError' in caught.value.import_traceback
