# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading container logs back: conmon's k8s-file format and the systemd journal.

k8s-file (the CRI log format conmon writes), one physical line per chunk::

    2026-12-01T13:26:05.887344118+00:00 stdout F a whole line
    2026-12-01T13:26:05.887344118+00:00 stderr P the first part of a long line,
    2026-12-01T13:26:05.887399001+00:00 stderr F  and its end

``P`` marks a partial line (conmon read a chunk without a newline); the following lines of the
same stream up to an ``F`` complete it. The streams interleave, so parts are joined per stream.
Messages are joined as bytes and decoded afterwards (a UTF-8 character may span two parts);
invalid UTF-8 is replaced, never fatal.
"""

from __future__ import annotations

import calendar
import datetime
import os
import re
import time
import traceback
from typing import TYPE_CHECKING

from .errors import MissingLibraryError, ValidationError

if TYPE_CHECKING:
    from typing import Any, Iterable

STREAMS = ('stdout', 'stderr')
FIRST_WINDOW = 1 << 16

_TIMESTAMP = (  # patterns are compiled on first use (re's cache)
    r'^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$')
_DURATION = r'^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$'
_NUMBER = r'^\s*\d+(?:\.\d+)?\s*$'


class LogEntry(object):
    """One logical log line: ``message`` (str), ``stream``, ``timestamp`` (as written) and ``time_ns`` (epoch)."""

    __slots__ = ('timestamp', 'time_ns', 'stream', 'message', 'partial')

    def __init__(self, timestamp: str, time_ns: int, stream: str, message: str, partial: bool = False) -> None:
        self.timestamp = timestamp
        self.time_ns = time_ns
        self.stream = stream
        self.message = message
        self.partial = partial

    def as_dict(self) -> dict[str, str]:
        return {'timestamp': self.timestamp, 'stream': self.stream, 'message': self.message}

    def __repr__(self) -> str:
        return 'LogEntry(%r, %r, %r%s)' % (self.timestamp, self.stream, self.message, ', partial' if self.partial else '')


# -- timestamps --------------------------------------------------------------------------------------

def parse_timestamp(text: str | bytes) -> int | None:
    """An RFC 3339 / ISO 8601 timestamp -> nanoseconds since the epoch, or None when it is not one.

    Accepts nanosecond fractions and ``Z`` or ``+HH:MM`` offsets (conmon's format); a timestamp
    without an offset is UTC; a bare date is its midnight.
    """
    if isinstance(text, bytes):
        text = text.decode('ascii', 'replace')
    match = re.match(_TIMESTAMP, text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    seconds = calendar.timegm(moment.timetuple())
    if offset and offset not in ('Z', 'z'):
        sign = -1 if offset[0] == '-' else 1
        digits = offset[1:].replace(':', '')
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            return None
        seconds -= sign * (hours * 3600 + minutes * 60)
    nanos = int((fraction or '0').ljust(9, '0')) if fraction else 0
    return seconds * 1000000000 + nanos


def format_ns(time_ns: int) -> str:
    """Nanoseconds since the epoch -> ``2026-12-01T13:26:05.887344118Z``."""
    seconds, nanos = divmod(int(time_ns), 1000000000)
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds)) + '.%09dZ' % nanos


def parse_since(value: object, now: float | None = None) -> int | None:
    """``logs_since`` -> nanoseconds since the epoch.

    A timestamp (``2026-12-01T13:00:00Z``, ``2026-12-01 13:00:00+02:00``, ``2026-12-01``), seconds
    since the epoch (``1764594000``) or a duration back from now (``10m``, ``1h30m``, ``2d``, ``45s``).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError('logs_since: %r is not a timestamp' % (value,))
    now = time.time() if now is None else now
    if isinstance(value, (int, float)):
        return int(value * 1000000000)
    text = str(value).strip()
    if re.match(_NUMBER, text):
        return int(float(text) * 1000000000)
    parsed = parse_timestamp(text)
    if parsed is not None:
        return parsed
    match = re.match(_DURATION, text)
    if text and match and any(match.groups()):
        days, hours, minutes, seconds = match.groups()
        span = int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
        return int((now - span) * 1000000000)
    raise ValidationError('logs_since: %r is not a timestamp (e.g. 2026-12-01T13:00:00Z), seconds since the epoch or '
                          'a duration such as 10m, 1h30m or 2d' % (value,))


# -- k8s-file ----------------------------------------------------------------------------------------

def parse_k8s_lines(lines: Iterable[bytes], window: bool = False) -> tuple[list[LogEntry], int]:
    """Physical k8s-file lines (bytes, with or without their newline) -> (entries, malformed count).

    Entries are in the order their lines completed; a line still partial at the end (a process
    that printed no newline yet) comes last, marked ``partial``. With ``window`` the lines are a
    tail of the file: the first entry of each stream may miss its beginning and is dropped.
    """
    entries: list[LogEntry] = []
    malformed = 0
    pending: dict[str, list[bytes]] = {}  # stream -> the parts of its partial line
    last_part: dict[str, tuple[str, int]] = {}  # stream -> (timestamp, time_ns) of its last part
    seen_streams: set[str] = set()
    for raw in lines:
        if raw.endswith(b'\n'):
            raw = raw[:-1]
        if not raw:
            continue
        fields = raw.split(b' ', 3)
        if len(fields) < 3:
            malformed += 1
            continue
        timestamp, stream, tag = fields[0], fields[1], fields[2].split(b':')[0]
        message = fields[3] if len(fields) == 4 else b''
        stream_name = stream.decode('ascii', 'replace')
        time_ns = parse_timestamp(timestamp)
        if time_ns is None or stream_name not in STREAMS or tag not in (b'P', b'F'):
            malformed += 1
            continue
        parts = pending.setdefault(stream_name, [])
        parts.append(message)
        if tag == b'F':
            del pending[stream_name]
            if window and stream_name not in seen_streams:
                seen_streams.add(stream_name)
                continue
            seen_streams.add(stream_name)
            entries.append(LogEntry(timestamp.decode('ascii'), time_ns, stream_name,
                                    b''.join(parts).decode('utf-8', 'replace')))
        else:
            last_part[stream_name] = (timestamp.decode('ascii'), time_ns)
    for stream_name in sorted(pending, key=lambda name: last_part[name][1]):
        if window and stream_name not in seen_streams:
            continue
        last_timestamp, last_ns = last_part[stream_name]
        entries.append(LogEntry(last_timestamp, last_ns, stream_name, b''.join(pending[stream_name]).decode('utf-8', 'replace'),
                                partial=True))
    return entries, malformed


def select_entries(entries: list[LogEntry], tail: int | None = None, since_ns: int | None = None) -> list[LogEntry]:
    """Entries at or after ``since_ns``, then the last ``tail`` of them (None or a negative tail: all)."""
    if since_ns is not None:
        entries = [entry for entry in entries if entry.time_ns >= since_ns]
    if tail is not None and tail >= 0:
        entries = entries[len(entries) - tail:] if tail else []
    return entries


def read_k8s_file(path: str, tail: int | None = None, since_ns: int | None = None) -> list[LogEntry]:
    """The log entries of a k8s-file log; reads from the end, only as much as ``tail``/``since_ns`` need."""
    try:
        handle = open(path, 'rb')
    except (IOError, OSError):
        return []
    with handle:
        size = os.fstat(handle.fileno()).st_size
        window = FIRST_WINDOW
        while True:
            start = max(0, size - window)
            handle.seek(start)
            data = handle.read(size - start)
            if start > 0:
                cut = data.find(b'\n')
                data = data[cut + 1:] if cut >= 0 else b''
            entries, _malformed = parse_k8s_lines(data.split(b'\n'), window=start > 0)
            selected = select_entries(entries, None, since_ns)
            if start == 0:
                break
            if since_ns is not None and entries and entries[0].time_ns < since_ns:
                break
            if tail is not None and tail >= 0 and len(selected) >= tail:
                break
            window *= 4
    return select_entries(selected, tail, None)


# -- journald ------------------------------------------------------------------------------------------

def join_journal_records(records: Iterable[dict[str, Any]]) -> list[LogEntry]:
    """Journal records of one container (dicts as python-systemd returns them) -> entries.

    conmon sets ``PRIORITY`` 6 for stdout and 3 for stderr, and ``CONTAINER_PARTIAL_MESSAGE=true``
    on the parts of a line longer than its buffer; ``MESSAGE`` keeps the line's newline.
    """
    entries: list[LogEntry] = []
    pending: dict[str, list[str]] = {}  # stream -> the parts of its partial line
    for record in records:
        message = record.get('MESSAGE', '')
        if isinstance(message, bytes):
            message = message.decode('utf-8', 'replace')
        stream = 'stderr' if str(record.get('PRIORITY', 6)) == '3' else 'stdout'
        moment = record.get('__REALTIME_TIMESTAMP')
        if isinstance(moment, datetime.datetime):
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
            time_ns = (delta.days * 86400 + delta.seconds) * 1000000000 + delta.microseconds * 1000
        elif moment is not None:
            time_ns = int(moment) * 1000
        else:
            time_ns = 0
        parts = pending.setdefault(stream, [])
        parts.append(message)
        if str(record.get('CONTAINER_PARTIAL_MESSAGE', '')).lower() == 'true':
            continue
        del pending[stream]
        text = ''.join(parts)
        if text.endswith('\n'):
            text = text[:-1]
        entries.append(LogEntry(format_ns(time_ns), time_ns, stream, text))
    return entries


def read_journald(container_id: str, tail: int | None = None, since_ns: int | None = None) -> list[LogEntry]:
    """The entries conmon's journald driver wrote for a container (matched on CONTAINER_ID_FULL)."""
    try:
        from systemd import journal
    except ImportError:
        raise MissingLibraryError('systemd-python', 'to read the logs of a container with log_driver journald',
                                  traceback.format_exc())
    reader = journal.Reader()
    try:
        reader.add_match(CONTAINER_ID_FULL=container_id)
        if since_ns is not None:
            # An int is microseconds since the epoch for python-systemd.
            reader.seek_realtime(int(since_ns // 1000))
        entries = join_journal_records(reader)
    finally:
        reader.close()
    return select_entries(entries, tail, since_ns)


def container_logs(record: dict[str, Any], log_path: str, tail: int | None = None,
                   since_ns: int | None = None) -> tuple[list[LogEntry], str | None]:
    """-> (entries, warning or None) of one container (its record; ``log_path``: its k8s-file log), per its log driver."""
    driver = record['config'].get('log_driver') or 'k8s-file'
    if driver == 'none':
        return [], 'container %s has log_driver none: conmon keeps no logs of it' % record['name']
    if driver == 'journald':
        return read_journald(record['id'], tail, since_ns), None
    return read_k8s_file(log_path, tail, since_ns), None
