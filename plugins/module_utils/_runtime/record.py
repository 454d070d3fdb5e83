# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record of one container (``root/containers/NAME/record.json``): every field, written down once.

Only the store reads and writes record files; the engine and its stages change a Record's fields
and hand it back to the store. A record file with a field this class does not know is refused (it
was written by another version, or by hand), and so is setting one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

RECORD_VERSION = 1

# field: (type or types, meaning)
FIELDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    'version': (int, 'the record format; RECORD_VERSION when written'),
    'id': (str, 'the container id, 64 hex digits, also the runtime\'s id'),
    'name': (str, 'the container name'),
    'created_at': (str, 'when it was created (UTC, ISO 8601)'),
    'config': (dict, 'its options, normalised (the option layer\'s keys) and complete, plus image_config'),
    'runtime': (dict, '{"name": runc|crun, "path": its absolute path}'),
    'conmon': (str, 'the path of the conmon that runs it'),
    'state': (str, 'the last state a task saw: created, running, paused or stopped (the truth is live)'),
    'exit_code': ((int, type(None)), 'the exit code of its last process, when known'),
    'pid': (int, 'the host pid of its process while launched'),
    'pid_start': ((int, type(None)), 'its start time in clock ticks (guards against pid reuse)'),
    'conmon_pid': (int, 'the host pid of its conmon'),
    'conmon_start': ((int, type(None)), 'conmon\'s start time in clock ticks'),
    'boot_id': (str, 'the boot it was launched in: another boot means it is stopped'),
    'started_at': ((str, type(None)), 'when its process last started'),
    'finished_at': ((str, int, float, type(None)), 'when its process last ended'),
    'network': ((dict, type(None)), 'its network attachment: {"name", "ip_address", "netns", "veth"}'),
    'checkpoint': ((dict, type(None)), 'its latest checkpoint (checkpoint.py writes the keys)'),
    'stopping': (bool, 'a task is stopping or removing it: its exit command must not restart it (restart.py)'),
    'restart_count': (int, 'how many times its restart policy restarted it'),
    'restart_streak': (int, 'restarts in a row without a process that ran long enough (the back-off)'),
    'lib': (str, 'the runtime library its conmon\'s exit command runs (payload.py; older ones are collected)'),
    'health': (dict, 'the results of its health check since its process started (health.py)'),
    'health_timer': (str, 'the transient systemd timer that runs its health check on systemd hosts (units.py)'),
}


class Record(object):
    """A container's record; fields by attribute (``record.state``) or, for older callers, by key."""

    __slots__ = tuple(FIELDS)

    # The fields (FIELDS says what each holds). A record is made before its container first runs: what a
    # launch or a save sets (version, pid, boot_id...) is None until then, and None is no field at all.
    version: int | None
    id: str
    name: str
    created_at: str
    config: dict[str, Any]
    runtime: dict[str, str]
    conmon: str
    state: str
    exit_code: int | None
    pid: int | None
    pid_start: int | None
    conmon_pid: int | None
    conmon_start: int | None
    boot_id: str | None
    started_at: str | None
    finished_at: str | int | float | None
    network: dict[str, Any] | None
    checkpoint: dict[str, Any] | None
    stopping: bool | None
    restart_count: int | None
    restart_streak: int | None
    lib: str | None
    health: dict[str, Any] | None
    health_timer: str | None

    def __init__(self, **fields: Any) -> None:
        for field in FIELDS:
            object.__setattr__(self, field, None)
        self.update(**fields)

    def __setattr__(self, field: str, value: Any) -> None:
        if field not in FIELDS:
            raise AttributeError('a container record has no field %r' % field)
        object.__setattr__(self, field, value)

    def update(self, **fields: Any) -> None:
        for field, value in fields.items():
            setattr(self, field, value)

    # dict-like access, for code that reads a record like the JSON it is
    def __getitem__(self, field: str) -> Any:
        if field not in FIELDS:
            raise KeyError(field)
        return getattr(self, field)

    def __setitem__(self, field: str, value: Any) -> None:
        if field not in FIELDS:
            raise KeyError(field)
        setattr(self, field, value)

    def get(self, field: str, default: Any = None) -> Any:
        value = getattr(self, field) if field in FIELDS else None
        return default if value is None else value

    def __contains__(self, field: str) -> bool:
        return field in FIELDS and getattr(self, field) is not None

    def replace(self, **fields: Any) -> Record:
        """A copy with ``fields`` changed (check mode plans on copies)."""
        copy = Record(**self.to_dict())
        copy.update(**fields)
        return copy

    def to_dict(self) -> dict[str, Any]:
        return dict((field, getattr(self, field)) for field in FIELDS if getattr(self, field) is not None)

    @classmethod
    def from_dict(cls, data: object, what: str = 'the record') -> Record:
        """A Record from its JSON; ValueError naming the field when one is unknown or of the wrong type."""
        if not isinstance(data, dict):
            raise ValueError('%s is not a JSON object' % what)
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise ValueError('%s has unknown fields %s (written by another version?)' % (what, ', '.join(unknown)))
        for field, value in data.items():
            kinds = FIELDS[field][0]
            if value is not None and not isinstance(value, kinds) or isinstance(value, bool) and kinds is int:
                raise ValueError('%s: field %s has the wrong type (%s)' % (what, field, type(value).__name__))
        return cls(**data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return 'Record(%s %s %s)' % (self.name, (self.id or '')[:12], self.state)
