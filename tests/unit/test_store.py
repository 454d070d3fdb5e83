# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/store.py: atomic writes, records, locks, /proc checks and the live status of a record."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import stat
import subprocess
import threading
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import store as store_mod
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError
from ansible_collections.runcible.oci.plugins.module_utils._runtime.files import atomic_write
from ansible_collections.runcible.oci.plugins.module_utils._runtime.host import process_alive, read_proc_stat
from ansible_collections.runcible.oci.plugins.module_utils._runtime.store import (
    RECORD_VERSION, Record, Store, derive_status, read_exit_file)

CID = '0123456789abcdef' * 4


@pytest.fixture
def store(store_dirs):
    return Store(*store_dirs)


def own_start_time(pid):
    """Field 22 (starttime) of /proc/PID/stat, parsed independently of the code under test."""
    with open('/proc/%d/stat' % pid, 'r') as handle:
        text = handle.read()
    match = re.match(r'^\d+ \((.*)\) (\S) (.*)$', text, re.DOTALL)
    return int(match.group(3).split()[18])  # fields from the 4th (ppid) on: 22 is starttime


def reaped_pid():
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(['true'])
    proc.wait()
    return proc.pid


def open_fds():
    return sorted(os.listdir('/proc/self/fd'))


# -- atomic_write -----------------------------------------------------------------------------------

@pytest.mark.parametrize('data, expected', [('héllo\n', 'héllo\n'.encode('utf-8')), (b'\x00\xffbytes', b'\x00\xffbytes'),
                                            ('', b'')])
def test_atomic_write_content(tmp_path, data, expected):
    path = str(tmp_path / 'f')
    atomic_write(path, data)
    with open(path, 'rb') as handle:
        assert handle.read() == expected
    assert os.listdir(str(tmp_path)) == ['f']


@pytest.mark.parametrize('mode', [0o600, 0o644, 0o400, 0o755])
def test_atomic_write_mode(tmp_path, mode):
    path = str(tmp_path / 'f')
    old_umask = os.umask(0o077)
    try:
        atomic_write(path, 'x', mode=mode)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


def test_atomic_write_default_mode_is_private(tmp_path):
    path = str(tmp_path / 'f')
    atomic_write(path, 'x')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_atomic_write_replaces_an_existing_file(tmp_path):
    path = str(tmp_path / 'f')
    with open(path, 'w') as handle:
        handle.write('old content, longer than the new one')
    with open(path, 'r') as reader:
        atomic_write(path, 'new')
        # a reader that opened the old file still sees it whole: the new file was renamed over it
        assert reader.read() == 'old content, longer than the new one'
    with open(path, 'r') as handle:
        assert handle.read() == 'new'
    assert os.listdir(str(tmp_path)) == ['f']


def test_atomic_write_failure_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'f')
    atomic_write(path, 'old')

    def failing_rename(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(store_mod.os, 'rename', failing_rename)
    with pytest.raises(OSError):
        atomic_write(path, 'new')
    monkeypatch.undo()
    with open(path, 'r') as handle:
        assert handle.read() == 'old'
    assert os.listdir(str(tmp_path)) == ['f']


def test_atomic_write_into_a_missing_directory_fails(tmp_path):
    with pytest.raises(OSError):
        atomic_write(str(tmp_path / 'missing' / 'f'), 'x')
    assert os.listdir(str(tmp_path)) == []


# -- Store: records ---------------------------------------------------------------------------------

@pytest.mark.parametrize('root, run_root', [('relative', '/run/x'), ('/var/x', 'relative'), ('', '/run/x')])
def test_store_needs_absolute_paths(root, run_root):
    with pytest.raises(RuncibleError, match='absolute'):
        Store(root, run_root)


def test_store_creates_nothing_until_it_writes(store, tree):
    assert store.load('web') is None
    assert store.names() == []
    assert tree(store.root) is None
    assert tree(store.run_root) is None


def test_save_load_names_forget_round_trip(store, tree):
    record = Record(name='web', id=CID, config={'memory': 1 << 20, 'env': {'A': 'é'}, 'list': [1, 2, None]},
                    state='stopped')
    store.save(record)
    assert record.version == RECORD_VERSION
    loaded = store.load('web')
    assert loaded == record and isinstance(loaded, Record)
    path = store.paths('web').record
    assert path == os.path.join(store.root, 'containers', 'web', 'record.json')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert os.listdir(os.path.dirname(path)) == ['record.json']

    store.save(Record(name='db', id='f' * 64))
    os.makedirs(os.path.join(store.root, 'containers', 'no-record'))
    assert store.names() == ['db', 'web']

    loaded['state'] = 'running'
    store.save(loaded)
    assert store.load('web')['state'] == 'running'

    store.forget(loaded)
    assert store.load('web') is None
    assert store.names() == ['db']
    assert store.load('db')['id'] == 'f' * 64


def test_forget_removes_every_file_of_the_container(store):
    record = Record(name='web', id=CID, state='stopped')
    other = Record(name='db', id='e' * 64, state='stopped')
    for rec in (record, other):
        store.save(rec)
        paths = store.paths(rec['name'], rec['id'])
        for directory in (paths.bundle, paths.upper, paths.work, paths.persist_dir, paths.exit_dir):
            os.makedirs(directory, exist_ok=True)
        for path in (paths.config_json, os.path.join(paths.upper, 'written'), paths.log, paths.pidfile,
                     paths.conmon_pidfile, paths.exit_file, os.path.join(paths.dir, 'stray')):
            with open(path, 'w') as handle:
                handle.write('x')
        with store.lock(rec['name']):
            pass
    paths = store.paths('web', CID)
    store.forget(record)
    for path in (paths.dir, paths.run_dir, paths.exit_file, paths.lock):
        assert not os.path.lexists(path), path
    other_paths = store.paths('db', 'e' * 64)
    for path in (other_paths.record, other_paths.config_json, other_paths.exit_file, other_paths.pidfile,
                 other_paths.lock):
        assert os.path.exists(path), path
    assert store.names() == ['db']


def test_forget_keeps_going_when_parts_are_missing(store):
    record = Record(name='web', id=CID)
    store.forget(record)  # nothing at all
    store.save(record)
    store.forget(record)
    assert store.names() == []


@pytest.mark.parametrize('content', ['not json{', '', '{"name": "web", ', '\x00\x01'])
def test_corrupt_record_names_the_path(store, content):
    store.save(Record(name='web', id=CID))
    with open(store.paths('web').record, 'w') as handle:
        handle.write(content)
    with pytest.raises(RuncibleError) as info:
        store.load('web')
    assert store.paths('web').dir in info.value.msg
    assert 'corrupt' in info.value.msg
    assert 'web' in info.value.msg


def test_unreadable_record_is_an_error(store):
    os.makedirs(store.paths('web').record)  # a directory where the file should be
    with pytest.raises(RuncibleError, match='cannot read the record of container web'):
        store.load('web')


def test_paths_layout(store):
    paths = store.paths('web', CID)
    assert paths.dir == os.path.join(store.root, 'containers', 'web')
    assert paths.bundle == os.path.join(paths.dir, 'bundle')
    assert paths.config_json == os.path.join(paths.dir, 'bundle', 'config.json')
    assert paths.lock == os.path.join(store.root, 'locks', 'web.lock')
    assert paths.run_dir == os.path.join(store.run_root, 'containers', CID)
    assert paths.exit_file == os.path.join(store.run_root, 'exits', CID)
    assert paths.conmon_pidfile == os.path.join(store.run_root, 'containers', CID, 'conmon.pid')
    assert store.runtime_root('runc') == os.path.join(store.run_root, 'runtime', 'runc')


def test_store_normalises_its_roots(tmp_path):
    store = Store(str(tmp_path) + '/root/', str(tmp_path) + '//run/.')
    assert store.root == str(tmp_path / 'root')
    assert store.run_root == str(tmp_path / 'run')


# -- Store: locks -----------------------------------------------------------------------------------

def test_lock_excludes_a_second_holder(store):
    with store.lock('web'):
        started = time.monotonic()
        with pytest.raises(RuncibleError) as info:
            with store.lock('web', timeout=0.2):
                pass
        assert 0.2 <= time.monotonic() - started < 5
        assert 'web' in info.value.msg
        assert 'timed out' in info.value.msg
    with store.lock('web', timeout=0.2):
        pass


def test_locks_of_different_names_are_independent(store):
    with store.lock('web'):
        with store.lock('db', timeout=0.2):
            pass


def test_lock_is_released_when_the_body_raises(store):
    with pytest.raises(ValueError):
        with store.lock('web'):
            raise ValueError('boom')
    with store.lock('web', timeout=0.2):
        pass


def test_lock_leaks_no_fd(store):
    with store.lock('web'):
        pass
    before = open_fds()
    for dummy in range(5):
        with store.lock('web'):
            pass
    assert open_fds() == before


def test_lock_file_and_dir_modes(store):
    lock = store.paths('web').lock
    with store.lock('web'):
        assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(lock)).st_mode) == 0o700
    # No container web: nothing of the name is left once the lock is released.
    assert not os.path.exists(lock)


def _increment(store, name, iterations):
    for dummy in range(iterations):
        with store.lock(name):
            record = store.load(name)
            record.exit_code += 1
            store.save(record)


def test_concurrent_writers_lose_no_update(store):
    workers, iterations = 8, 50
    store.save(Record(name='web', id=CID, exit_code=0))
    context = multiprocessing.get_context('fork')
    processes = [context.Process(target=_increment, args=(store, 'web', iterations)) for dummy in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0] * workers
    with open(store.paths('web').record, 'r') as handle:
        record = json.load(handle)
    assert record['exit_code'] == workers * iterations
    assert sorted(os.listdir(store.paths('web').dir)) == ['record.json']


def _fds_open_on(path):
    real = os.path.realpath(path)
    count = 0
    for fd in os.listdir('/proc/self/fd'):
        try:
            if os.readlink('/proc/self/fd/' + fd).replace(' (deleted)', '') == real:
                count += 1
        except OSError:
            pass
    return count


def test_forget_keeps_the_lock_exclusive(store):
    record = Record(name='web', id=CID, state='stopped')
    store.save(record)
    lock_path = store.paths('web').lock
    waiter_has_lock = threading.Event()
    release_waiter = threading.Event()

    def waiter():
        with store.lock('web', timeout=10):
            waiter_has_lock.set()
            release_waiter.wait(10)

    thread = threading.Thread(target=waiter)
    try:
        with store.lock('web'):
            thread.start()
            time.sleep(0.2)  # the waiter is retrying the lock of the file that is about to go
            assert not waiter_has_lock.is_set()
            store.forget(record)  # as engine.remove does, under the lock
            assert not os.path.exists(lock_path)
        assert waiter_has_lock.wait(5)
        # The waiter holds the lock of "web": nobody else may get it now.
        with pytest.raises(RuncibleError, match='timed out'):
            with store.lock('web', timeout=0.3):
                pass
    finally:
        release_waiter.set()
        thread.join(10)


# -- /proc checks -----------------------------------------------------------------------------------

def test_read_proc_stat_of_self():
    state, start = read_proc_stat(os.getpid())
    assert state in ('R', 'S')
    assert start == own_start_time(os.getpid())


def test_process_alive_self():
    start = own_start_time(os.getpid())
    assert process_alive(os.getpid()) is True
    assert process_alive(os.getpid(), start) is True
    assert process_alive(os.getpid(), start + 1) is False
    assert process_alive(os.getpid(), start - 1) is False


def test_exited_process():
    pid = reaped_pid()
    assert read_proc_stat(pid) is None
    assert process_alive(pid) is False
    assert process_alive(pid, 12345) is False


@pytest.mark.parametrize('pid', [0, None])
def test_no_pid(pid):
    assert read_proc_stat(pid) is None
    assert process_alive(pid) is False


def test_zombie_is_not_alive():
    proc = subprocess.Popen(['true'])
    try:
        deadline = time.monotonic() + 5
        while read_proc_stat(proc.pid)[0] != 'Z' and time.monotonic() < deadline:
            time.sleep(0.005)
        assert read_proc_stat(proc.pid)[0] == 'Z'
        assert process_alive(proc.pid) is False
    finally:
        proc.wait()


def test_read_proc_stat_with_parentheses_and_spaces_in_comm(tmp_path):
    program = str(tmp_path / 'a) b (c) 1')
    shutil.copy(shutil.which('sleep'), program)
    proc = subprocess.Popen([program, '30'])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open('/proc/%d/comm' % proc.pid) as handle:
                if handle.read().strip() == 'a) b (c) 1':
                    break
            time.sleep(0.005)
        state, start = read_proc_stat(proc.pid)
        assert state in ('S', 'R')
        assert start == own_start_time(proc.pid)
        assert process_alive(proc.pid, start) is True
    finally:
        proc.kill()
        proc.wait()


# -- exit files and derive_status -------------------------------------------------------------------

def test_read_exit_file(tmp_path):
    path = str(tmp_path / 'exit')
    assert read_exit_file(path) is None
    with open(path, 'w') as handle:
        handle.write('137\n')
    code, mtime = read_exit_file(path)
    assert code == 137
    assert mtime == os.stat(path).st_mtime
    with open(path, 'w') as handle:
        handle.write('garbage')
    assert read_exit_file(path)[0] is None


BOOT = 'boot-id-1'


def make_record(state, pid=0, conmon_pid=0, **extra):
    record = {'name': 'web', 'id': CID, 'state': state, 'boot_id': BOOT, 'exit_code': None, 'finished_at': None,
              'pid': pid, 'pid_start': own_start_time(pid) if pid else None,
              'conmon_pid': conmon_pid, 'conmon_start': own_start_time(conmon_pid) if conmon_pid else None}
    record.update(extra)
    return Record.from_dict(record)


@pytest.fixture
def paths(store):
    return store.paths('web', CID)


def write_exit_file(paths, text):
    os.makedirs(paths.exit_dir, exist_ok=True)
    with open(paths.exit_file, 'w') as handle:
        handle.write(text)


def test_derive_status_stopped_record(paths):
    record = make_record('stopped', exit_code=3, finished_at='2026-01-01T00:00:00.000000Z')
    assert derive_status(record, paths, boot_id=BOOT) == {
        'status': 'stopped', 'pid': 0, 'conmon_pid': 0, 'exit_code': 3, 'finished_at': '2026-01-01T00:00:00.000000Z',
        'reason': None}


@pytest.mark.parametrize('state', ['running', 'paused', 'created'])
def test_derive_status_after_reboot(paths, state):
    record = make_record(state, pid=os.getpid(), conmon_pid=os.getpid())
    live = derive_status(record, paths, boot_id='boot-id-2')
    assert live['status'] == 'stopped'
    assert live['pid'] == 0
    assert live['conmon_pid'] == 0
    assert 'reboot' in live['reason']


def test_derive_status_without_boot_id_in_record_is_stopped(paths):
    record = make_record('running', pid=os.getpid(), conmon_pid=os.getpid())
    record.boot_id = None
    assert derive_status(record, paths, boot_id=BOOT)['status'] == 'stopped'


@pytest.mark.parametrize('text, code', [('0', 0), ('137\n', 137), ('1', 1), ('not a number', None)])
def test_derive_status_exit_file(paths, text, code):
    write_exit_file(paths, text)
    # the exit file wins, even over processes that look alive
    record = make_record('running', pid=os.getpid(), conmon_pid=os.getpid())
    live = derive_status(record, paths, boot_id=BOOT)
    assert live['status'] == 'stopped'
    assert live['exit_code'] == code
    assert live['finished_at'] == os.stat(paths.exit_file).st_mtime
    assert live['reason'] == 'exited'
    assert live['pid'] == 0


def test_derive_status_both_dead(paths):
    record = make_record('running', exit_code=5)
    record.update(pid=reaped_pid(), pid_start=1, conmon_pid=reaped_pid(), conmon_start=1)
    live = derive_status(record, paths, boot_id=BOOT)
    assert live['status'] == 'stopped'
    assert live['exit_code'] is None
    assert live['pid'] == 0
    assert live['conmon_pid'] == 0
    assert 'killed' in live['reason']


@pytest.mark.parametrize('truth', ['running', 'paused', 'created'])
@pytest.mark.parametrize('recorded', ['running', 'paused', 'created'])
def test_derive_status_alive_says_what_is_true(paths, monkeypatch, recorded, truth):
    """The record's state is only the last word of a task that may have been killed: the runtime's exec.fifo
    (created until started) and the cgroup freezer (paused) say what is true."""
    record = make_record(recorded, pid=os.getpid(), conmon_pid=os.getpid())
    record['runtime'] = {'name': 'runc', 'path': '/usr/sbin/runc'}
    if truth == 'created':
        os.makedirs(paths.runtime_state('runc'))
        os.mkfifo(os.path.join(paths.runtime_state('runc'), 'exec.fifo'))
    monkeypatch.setattr(store_mod, 'frozen', lambda pid: truth == 'paused')
    live = derive_status(record, paths, boot_id=BOOT)
    assert live == {'status': truth, 'pid': os.getpid(), 'conmon_pid': os.getpid(), 'exit_code': None,
                    'finished_at': None, 'reason': None}


def test_derive_status_uses_the_current_boot_id_by_default(paths):
    record = make_record('running', pid=os.getpid(), conmon_pid=os.getpid(), boot_id=store_mod.current_boot_id())
    assert store_mod.current_boot_id()
    assert derive_status(record, paths)['status'] == 'running'
    record['boot_id'] = 'not-this-boot'
    assert derive_status(record, paths)['status'] == 'stopped'


def test_derive_status_conmon_alive_container_gone(paths):
    record = make_record('running', conmon_pid=os.getpid())
    record.update(pid=reaped_pid(), pid_start=1)
    live = derive_status(record, paths, boot_id=BOOT)
    assert live['status'] == 'stopped'
    assert live['reason'] == 'exited'
    assert live['pid'] == 0
    assert live['conmon_pid'] == os.getpid()


def test_derive_status_container_alive_conmon_gone(paths):
    record = make_record('running', pid=os.getpid())
    record.update(conmon_pid=reaped_pid(), conmon_start=1)
    live = derive_status(record, paths, boot_id=BOOT)
    assert live['status'] == 'running'
    assert live['pid'] == os.getpid()
    assert live['conmon_pid'] == 0
    assert 'conmon' in live['reason']


def test_derive_status_reused_pid_is_not_the_container(paths):
    # the pids exist but started at another time: they belong to other processes now
    start = own_start_time(os.getpid())
    record = make_record('running')
    record.update(pid=os.getpid(), pid_start=start + 1, conmon_pid=os.getpid(), conmon_start=start + 1)
    live = derive_status(record, paths, boot_id=BOOT)
    assert live['status'] == 'stopped'
    assert live['pid'] == 0
    assert live['exit_code'] is None


def test_current_boot_id(tmp_path):
    path = str(tmp_path / 'boot_id')
    with open(path, 'w') as handle:
        handle.write('abc-123\n')
    assert store_mod.current_boot_id(path) == 'abc-123'
    assert store_mod.current_boot_id(str(tmp_path / 'missing')) == ''
    with open('/proc/sys/kernel/random/boot_id') as handle:
        assert store_mod.current_boot_id() == handle.read().strip()
