# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit-managed containers: unit names, quoting, the unit files, the notify relay, the lock hand-off, the options."""

from __future__ import annotations

import fcntl
import os
import re
import socket
import stat
import threading
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _container_unit
from ansible_collections.runcible.oci.plugins.module_utils._container_options import units as unit_options
from ansible_collections.runcible.oci.plugins.module_utils._container_options.base import Context
from ansible_collections.runcible.oci.plugins.module_utils._runtime import payload, restart, units
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError


def systemd_words(line):
    """How systemd splits an Exec line into argv (double quotes, C escapes, %% and $$): enough of it to check ours."""
    words, word, index, quoted = [], None, 0, False
    while index < len(line):
        char = line[index]
        if quoted:
            if char == '\\':
                word += {'n': '\n', 't': '\t'}.get(line[index + 1], line[index + 1])
                index += 1
            elif char == '"':
                quoted = False
                words.append(word)
                word = None
            else:
                word += char
        elif char == '"':
            quoted, word = True, ''
        elif char != ' ':
            raise AssertionError('unquoted text in %r' % line)
        index += 1
    assert not quoted
    return [w.replace('%%', '\0').replace('$$', '$').replace('\0', '%') for w in words]


@pytest.mark.parametrize('name, escaped', [
    ('web', 'web'), ('web-1_a.b', 'web-1_a.b'), ('a b', 'a\\x20b'), ('.x', '\\x2ex'), ('a/b', 'a\\x2fb'),
    ('ü', '\\xc3\\xbc'),
])
def test_escape_keeps_what_unit_names_allow(name, escaped):
    assert units.escape(name) == escaped
    assert re.fullmatch(r'[A-Za-z0-9:_.\\-]+', units.escape(name))


@pytest.mark.parametrize('bad', ['../x', 'a b', '', 'x/y', '-x'])
def test_unit_names_only_for_valid_container_names(bad):
    with pytest.raises(ValidationError, match='invalid container name'):
        units.service_name(bad)


def test_unit_names():
    assert units.service_name('web') == 'runcible-web.service'
    assert units.socket_name('web') == 'runcible-web.socket'


@pytest.mark.parametrize('value', ['/var/lib/runcible', '/srv/my store/%h$HOME"q"\\x', 'a;b', '$(rm -rf /)', "'"])
def test_exec_args_reach_the_program_as_given(value):
    line = units.exec_line(['/usr/bin/python3', value])
    assert systemd_words(line) == ['/usr/bin/python3', value]
    assert '%' not in line.replace('%%', '')


@pytest.mark.parametrize('value', ['a\nExecStartPre=/bin/sh', 'tab\there', 'bell\x07'])
def test_control_characters_never_go_into_a_unit(value):
    with pytest.raises(ValidationError, match='control characters'):
        units.exec_arg(value)
    with pytest.raises(ValidationError):
        units.render_service('web', value, '/run/r', {'sdnotify': 'conmon'}, 'f' * 64)


def _lines(text, key):
    return [line[len(key) + 1:] for line in text.splitlines() if line.startswith(key + '=')]


@pytest.mark.parametrize('sdnotify, unit_type', [('conmon', 'notify'), ('container', 'notify'), ('ignore', 'forking')])
def test_the_service_unit(sdnotify, unit_type):
    config = {'sdnotify': sdnotify, 'restart_policy': 'unless-stopped', 'stop_timeout': 7}
    text = units.render_service('web', '/var/lib/my root', '/run/r', config, 'f' * 64)
    assert _lines(text, 'Type') == [unit_type]
    assert _lines(text, 'Restart') == ['always'] and _lines(text, 'TimeoutStopSec') == ['67']
    start = systemd_words(_lines(text, 'ExecStart')[0])
    assert start[1:] == ['-I', '-B', '/var/lib/my root/lib/current/exit.py', '--unit-start', '/var/lib/my root',
                         '/run/r', 'web']
    assert systemd_words(_lines(text, 'ExecStop')[0])[4:] == ['--unit-stop', '/var/lib/my root', '/run/r', 'web']
    assert _lines(text, 'ExecStopPost') == _lines(text, 'ExecStop')
    assert ('NotifyAccess=all' in text) is (unit_type == 'notify')
    if sdnotify == 'ignore':
        assert _lines(text, 'PIDFile') == ['/run/r/containers/%s/conmon.pid' % ('f' * 64)]
    assert _lines(text, 'WantedBy') == ['multi-user.target'] and 'Requires=' not in text
    assert units.STORE_MARK + '/var/lib/my root' in text


@pytest.mark.parametrize('policy, restart_value', [('no', 'no'), ('on-failure', 'on-failure'), ('always', 'always')])
def test_restart_policy_is_the_units_restart(policy, restart_value):
    text = units.render_service('web', '/r', '/run/r', {'restart_policy': policy}, 'f' * 64)
    assert _lines(text, 'Restart') == [restart_value]


def test_a_socket_unit_and_the_service_it_starts():
    config = {'systemd_socket': ['8080', '127.0.0.1:9090']}
    service = units.render_service('web', '/r', '/run/r', config, 'f' * 64)
    assert _lines(service, 'Requires') == ['runcible-web.socket'] and 'runcible-web.socket' in _lines(service, 'After')
    sock = units.render_socket('web', '/r', config['systemd_socket'])
    assert _lines(sock, 'ListenStream') == ['8080', '127.0.0.1:9090']
    assert _lines(sock, 'WantedBy') == ['sockets.target']


def test_the_store_a_unit_file_names(tmp_path):
    path = tmp_path / 'runcible-web.service'
    path.write_text(units.render_service('web', '/srv/100%', '/run/r', {}, 'f' * 64))
    assert units.unit_store(str(path)) == '/srv/100%'
    (tmp_path / 'other.service').write_text('[Service]\nExecStart=/bin/true\n')
    assert units.unit_store(str(tmp_path / 'other.service')) is None
    assert units.unit_store(str(tmp_path / 'missing')) is None


# -- the option layer ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('value, expected', [
    (['8080'], ['8080']), ([8080, '8080'], ['8080']), (['127.0.0.1:80'], ['127.0.0.1:80']), (['[::1]:80'], ['[::1]:80']),
])
def test_systemd_socket_values(value, expected):
    assert unit_options.systemd_socket(value, Context('web', '/r')) == expected


@pytest.mark.parametrize('value', [['0'], ['70000'], ['host:80'], ['::1:80'], ['1.2.3.4:'], 'x', ['80; rm'], ['80\n']])
def test_bad_systemd_socket_values(value):
    with pytest.raises(ValidationError, match='systemd_socket'):
        unit_options.systemd_socket(value, Context('web', '/r'))


def test_a_unit_without_systemd_is_refused_clearly(monkeypatch):
    monkeypatch.setattr(units, 'systemd_booted', lambda: False)
    with pytest.raises(ValidationError, match='does not run systemd as PID 1.*leave systemd_unit out'):
        unit_options.systemd_unit(True, Context('web', '/r'))
    assert unit_options.systemd_unit(False, Context('web', '/r')) is False


def test_a_unit_without_python_systemd_is_a_missing_library(monkeypatch):
    import importlib.util
    monkeypatch.setattr(units, 'systemd_booted', lambda: True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name.startswith('systemd') else real(name, *a))
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import MissingLibraryError
    with pytest.raises(MissingLibraryError, match='systemd-python'):
        unit_options.systemd_unit(True, Context('web', '/r'))


@pytest.mark.parametrize('values, record, message', [
    ({'sdnotify': 'container'}, {}, 'sdnotify: container is how a unit'),
    ({'systemd_socket': ['80']}, {}, 'systemd_socket: the sockets of a unit'),
    ({'systemd_unit': True, 'restart_retries': 2}, {}, 'restart_retries: a container run by its systemd unit'),
    ({'restart_retries': 2}, {'systemd_unit': True}, 'restart_retries'),
])
def test_unit_settings_checked_together(values, record, message):
    with pytest.raises(ValidationError, match=message):
        unit_options.check(values, Context('web', '/r', record), False)


def test_unit_settings_that_fit():
    unit_options.check({'systemd_unit': True, 'sdnotify': 'container', 'systemd_socket': ['80']}, Context('w', '/r'), False)
    unit_options.check({'sdnotify': 'conmon'}, Context('w', '/r'), False)
    unit_options.check({'sdnotify': 'ignore'}, Context('w', '/r', {'systemd_unit': True}), False)


def test_sdnotify_container_mounts_the_notify_directory():
    spec = {'mounts': [], 'process': {'env': ['PATH=/bin', 'NOTIFY_SOCKET=/x']}}
    unit_options.map_sdnotify(spec, 'container', {'systemd_unit': True})
    assert spec['mounts'] == [{'destination': '/run/notify', 'type': 'bind', 'source': 'notify',
                               'options': ['rbind', 'nosuid', 'nodev', 'noexec', 'ro']}]
    assert spec['process']['env'] == ['PATH=/bin', 'NOTIFY_SOCKET=/run/notify/notify.sock']
    for value, config in (('conmon', {'systemd_unit': True}), ('container', {})):
        spec = {'mounts': [], 'process': {'env': []}}
        unit_options.map_sdnotify(spec, value, config)
        assert spec == {'mounts': [], 'process': {'env': []}}


# -- the unit's side -------------------------------------------------------------------------------------------
def test_the_notify_relay_waits_for_ready(tmp_path):
    run_dir, bundle = str(tmp_path / 'run'), str(tmp_path / 'bundle')
    os.makedirs(bundle)
    relay = units.NotifyRelay(run_dir, bundle, '%d:%d' % (os.getuid(), os.getgid()))
    path = os.path.join(run_dir, 'notify', 'notify.sock')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(os.path.join(run_dir, 'notify')).st_mode) == 0o711
    assert os.readlink(os.path.join(bundle, 'notify')) == os.path.join(run_dir, 'notify')
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    statuses = []
    threading.Timer(0.1, lambda: sender.sendto(b'STATUS=warming up', path)).start()
    threading.Timer(0.1 + units.STATUS_INTERVAL + 0.2, lambda: sender.sendto(b'STATUS=almost\nREADY=1', path)).start()
    assert relay.wait_ready(lambda: True, statuses.append, interval=0.05) is True
    assert statuses == ['STATUS=warming up', 'STATUS=almost']
    relay.close()
    sender.close()


def test_the_notify_relay_passes_a_flood_of_status_lines_on_slowly_and_short(tmp_path):
    """The attack: the container floods the socket with STATUS= lines (each one a D-Bus signal from systemd)."""
    run_dir, bundle = str(tmp_path / 'run'), str(tmp_path / 'bundle')
    os.makedirs(bundle)
    relay = units.NotifyRelay(run_dir, bundle, '%d:%d' % (os.getuid(), os.getgid()))
    path = os.path.join(run_dir, 'notify', 'notify.sock')
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def flood():
        for index in range(300):
            sender.sendto(('STATUS=%d %s\0x' % (index, 'y' * 5000)).encode(), path)
        sender.sendto(b'READY=1', path)
    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    statuses = []
    assert relay.wait_ready(lambda: True, statuses.append, interval=0.05) is True
    flooder.join(10)
    assert len(statuses) <= 2 and len(statuses[0]) <= units.STATUS_MAX and '\0' not in statuses[0]
    relay.close()
    sender.close()


def test_the_notify_relay_gives_up_when_the_container_is_gone(tmp_path):
    os.makedirs(str(tmp_path / 'bundle'))
    relay = units.NotifyRelay(str(tmp_path / 'run'), str(tmp_path / 'bundle'), '0:0')
    calls = []
    assert relay.wait_ready(lambda: calls.append(1) or len(calls) < 3, lambda line: None, interval=0.01) is False
    relay.close()
    # A second start binds again over the stale socket.
    units.NotifyRelay(str(tmp_path / 'run'), str(tmp_path / 'bundle'), '0:0').close()


def test_a_units_command_waits_for_the_lock_unless_the_holder_handed_it_over(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'locks'))
    holder = os.open(os.path.join(root, 'locks', 'web.lock'), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    with pytest.raises(RuncibleError, match='timed out waiting for the lock of container web'):
        with units.container_lock(root, 'web', timeout=0.3):
            pass
    entered = []
    with units.handoff(root, 'web'):
        assert stat.S_IMODE(os.stat(units.handoff_path(root, 'web')).st_mode) == 0o600
        with units.container_lock(root, 'web', timeout=0.3):
            entered.append(True)
    assert entered and not os.path.exists(units.handoff_path(root, 'web'))
    fcntl.flock(holder, fcntl.LOCK_UN)
    with units.container_lock(root, 'web', timeout=0.3):
        with pytest.raises(BlockingIOError):  # held by the command now
            other = os.open(os.path.join(root, 'locks', 'web.lock'), os.O_RDWR)
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(other)
    os.close(holder)


@pytest.mark.parametrize('handoff', ['999999999 1\n', '%d 0\n' % os.getpid()], ids=['dead task', 'no start time'])
def test_a_handoff_of_a_dead_task_or_without_a_start_time_is_not_trusted(tmp_path, handoff):
    """A dead task's pid, or a live pid alone (the pid may be another process's now: the file needs its start
    time), proves nothing."""
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'locks'))
    with open(units.handoff_path(root, 'web'), 'w') as handle:
        handle.write(handoff)
    holder = os.open(os.path.join(root, 'locks', 'web.lock'), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    with pytest.raises(RuncibleError, match='timed out'):
        with units.container_lock(root, 'web', timeout=0.2):
            pass
    os.close(holder)


def test_a_lock_file_replaced_while_waiting_is_locked_again(tmp_path, monkeypatch):
    """The old holder removes the container (and its lock file) and a new task makes and locks a new one, between
    the command's open and its flock: a lock on the removed file's inode would exclude nobody, so the command
    must wait for the new one."""
    root = str(tmp_path)
    path = os.path.join(root, 'locks', 'web.lock')
    os.makedirs(os.path.dirname(path))
    holders = {'old': os.open(path, os.O_RDWR | os.O_CREAT, 0o600)}
    real_flock = fcntl.flock
    real_flock(holders['old'], fcntl.LOCK_EX)

    def flock(fd, operation):
        if 'new' not in holders:  # the first attempt: the file is replaced under the command, then the old lock goes
            os.unlink(path)
            holders['new'] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            real_flock(holders['new'], fcntl.LOCK_EX)
            os.close(holders['old'])
        return real_flock(fd, operation)
    monkeypatch.setattr(units.fcntl, 'flock', flock)
    entered = []

    def command():
        with units.container_lock(root, 'web', timeout=5):
            entered.append(time.monotonic())
    waiter = threading.Thread(target=command)
    waiter.start()
    time.sleep(0.5)
    assert not entered, 'the command ran under the lock of a removed lock file'
    released = time.monotonic()
    os.close(holders['new'])
    waiter.join(5)
    assert entered and entered[0] >= released


def test_unit_commands_of_a_container_that_is_not_there(tmp_path, capsys):
    root, run_root = str(tmp_path / 'root'), str(tmp_path / 'run')
    assert restart.main(['--unit-stop', root, run_root, 'web']) == 0
    assert restart.main(['--unit-start', root, run_root, 'web']) == 1
    assert 'does not exist or is not run by a unit' in capsys.readouterr().out
    assert not os.path.exists(root)  # nothing made for a container that is not there


def test_the_launcher_forks_only_for_conmons_exit_command():
    source = payload._LAUNCHER_SOURCE
    assert "not sys.argv[1].startswith('--')" in source and 'os.fork()' in source


# -- the task layer's unit control -----------------------------------------------------------------------------
class _Store(object):
    def __init__(self, root):
        self.root, self.run_root = root, root + '/run'


def _control(tmp_path, monkeypatch, check_mode=False):
    unit_dir = tmp_path / 'systemd'
    unit_dir.mkdir(exist_ok=True)
    monkeypatch.setattr(units, 'UNIT_DIR', str(unit_dir))
    calls = []

    class Done(object):
        returncode = 0
        stdout = b''
        stderr = b''

    monkeypatch.setattr(units, 'systemctl', lambda *args, **kwargs: calls.append(args) or Done())
    return _container_unit.UnitControl(_Store(str(tmp_path / 'root')), 'web', check_mode), unit_dir, calls


def test_unit_files_are_written_only_when_they_differ(tmp_path, monkeypatch):
    control, unit_dir, calls = _control(tmp_path, monkeypatch)
    record = {'id': 'f' * 64, 'config': {'systemd_unit': True, 'systemd_socket': ['8080']}}
    assert control.differs(record) is True
    assert control.write(record) is True
    service, sock = unit_dir / 'runcible-web.service', unit_dir / 'runcible-web.socket'
    assert stat.S_IMODE(service.stat().st_mode) == 0o644 and sock.exists()
    assert calls == [('daemon-reload',)]
    assert os.path.isdir(str(tmp_path / 'root' / 'lib' / 'current'))  # what ExecStart runs
    assert control.write(record) is False and calls == [('daemon-reload',)]
    record['config']['systemd_socket'] = []
    assert control.write(record) is True and not sock.exists()
    assert ('disable', '--now', '--', 'runcible-web.socket') in calls


def test_check_mode_writes_no_unit(tmp_path, monkeypatch):
    control, unit_dir, calls = _control(tmp_path, monkeypatch, check_mode=True)
    record = {'id': None, 'config': {'systemd_unit': True}}
    assert control.write(record) is True
    control.set_enabled(record, True)
    control.remove(record)
    assert os.listdir(str(unit_dir)) == [] and calls == [] and not os.path.exists(str(tmp_path / 'root'))


def test_a_unit_of_another_store_is_never_taken_over(tmp_path, monkeypatch):
    control, unit_dir, _calls = _control(tmp_path, monkeypatch)
    (unit_dir / 'runcible-web.service').write_text(units.render_service('web', '/elsewhere', '/run/e', {}, 'f' * 64))
    with pytest.raises(ValidationError, match='not the unit of container web of the store .*elsewhere'):
        _container_unit.UnitControl(_Store(str(tmp_path / 'root')), 'web', False)
    (unit_dir / 'runcible-web.service').write_text('[Service]\nExecStart=/bin/true\n')
    with pytest.raises(ValidationError, match='not written by runcible.oci'):
        _container_unit.UnitControl(_Store(str(tmp_path / 'root')), 'web', False)
    assert control.name == 'web'


def test_removal_disables_and_deletes_both_units(tmp_path, monkeypatch):
    control, unit_dir, calls = _control(tmp_path, monkeypatch)
    control.write({'id': 'f' * 64, 'config': {'systemd_unit': True, 'systemd_socket': ['8080']}})
    del calls[:]
    control.remove()
    assert os.listdir(str(unit_dir)) == []
    assert calls[:2] == [('disable', '--now', '--', 'runcible-web.socket'),
                         ('disable', '--now', '--', 'runcible-web.service')]
    assert ('daemon-reload',) in calls


def test_listen_fds_are_ours_only_when_listen_pid_says_so():
    assert units.listen_fd_count(None, None) == 0
    assert units.listen_fd_count('1', str(os.getpid() + 1)) == 0  # meant for another process
    assert units.listen_fd_count('x', str(os.getpid())) == 0
    reader, writer = os.pipe()
    try:
        if reader == 3 or writer == 3:
            assert units.listen_fd_count('1', str(os.getpid())) == 1
    finally:
        os.close(reader)
        os.close(writer)


def test_conmon_gets_the_sockets_first_and_replaces_listen_pid():
    from ansible_collections.runcible.oci.plugins.module_utils._runtime import conmon

    class Runtime(object):
        path = '/usr/bin/runc'
        name = 'runc'

        @staticmethod
        def global_args(log_path=None):
            return ['--root', '/run/x']

    launch = conmon.ConmonLaunch('/usr/bin/conmon', Runtime(), 'f' * 64, 'web', '/b', '/p', '/cp', '/e', None, '/s',
                                 '/l', listen_fds=2)
    assert '--replace-listen-pid' in launch.argv()
    launch.listen_fds = 0
    assert '--replace-listen-pid' not in launch.argv()


def test_the_notify_socket_of_a_long_run_dir(tmp_path):
    run_dir = str(tmp_path / ('r' * 60) / ('c' * 64))
    os.makedirs(str(tmp_path / 'bundle'))
    relay = units.NotifyRelay(run_dir, str(tmp_path / 'bundle'), '0:0')
    path = os.path.join(run_dir, 'notify', 'notify.sock')
    assert len(path) > 108 and stat.S_ISSOCK(os.stat(path).st_mode)
    relay.close()


# -- health timers ---------------------------------------------------------------------------------------------
def test_health_units_are_named_by_the_container_id_only():
    assert units.health_unit('a' * 64) == 'runcible-health-' + 'a' * 32
    for bad in ('web', 'A' * 64, 'a' * 63, '../' + 'a' * 61):
        with pytest.raises(ValidationError):
            units.health_unit(bad)


def test_the_health_timer_is_a_transient_systemd_run(monkeypatch):
    import subprocess
    seen = []

    class Done(object):
        returncode = 0
        stderr = b''

    monkeypatch.setattr(subprocess, 'run', lambda argv, **kwargs: seen.append(argv) or Done())
    unit = units.start_health_timer('/var/lib/r', '/run/r', 'web', 'b' * 64, 2.5)
    assert unit == 'runcible-health-' + 'b' * 32
    argv = seen[0]
    assert argv[:3] == ['systemd-run', '--unit=' + unit, '--quiet'] and '--collect' in argv
    assert '--on-active=2500ms' in argv and '--on-unit-inactive=2500ms' in argv
    command = argv[argv.index('--') + 1:]
    assert command[1:] == ['-I', '-B', '/var/lib/r/lib/current/exit.py', '--health', '/var/lib/r', '/run/r', 'web',
                           'b' * 64]


def test_no_health_timer_without_systemd(monkeypatch):
    monkeypatch.setattr(units, 'systemd_booted', lambda: False)

    class Engine(object):
        warnings = []

        class store(object):
            @staticmethod
            def save(record):
                raise AssertionError('nothing to save without systemd')

    record = {'id': 'c' * 64, 'name': 'web', 'config': {'healthcheck': {'test': ['true'], 'interval': 1.0}}}

    class Record(dict):
        def get(self, key, default=None):
            return dict.get(self, key, default)
    units.ensure_health_timer(Engine(), Record(record))  # health stays on demand
    units.stop_health_timer('runcible-health-' + 'c' * 32)  # nothing to stop, no systemctl


def test_the_health_command_of_a_container_that_is_gone(tmp_path, capsys):
    assert restart.main(['--health', str(tmp_path / 'root'), str(tmp_path / 'run'), 'web', 'd' * 64]) == 0
    assert capsys.readouterr().out.strip() == 'gone'
    assert not os.path.exists(str(tmp_path / 'root'))


# -- the runtime role's boot unit ------------------------------------------------------------------------------
@pytest.mark.parametrize('root', ['/var/lib/runcible', '/srv/my store/100%/$HOME/a"b\\c'])
def test_the_roles_boot_unit_is_the_modules_boot_unit(tmp_path, monkeypatch, root):
    import hashlib
    import sys
    import jinja2
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environment = jinja2.Environment(keep_trailing_newline=True, trim_blocks=True)  # as the template module
    environment.filters['hash'] = lambda value, kind: hashlib.new(kind, value.encode()).hexdigest()
    with open(os.path.join(repo, 'roles', 'runtime', 'templates', 'boot.service.j2')) as handle:
        text = environment.from_string(handle.read()).render(
            runcible_runtime_root=root, runcible_runtime_run_root='/run/runcible',
            runcible_runtime_boot_python=sys.executable)
    path = payload.ensure_boot_unit(root, '/run/runcible', unit_dir=str(tmp_path))
    with open(path) as handle:
        assert handle.read() == text  # the modules find the role's unit as they would write it: not rewritten
    assert os.path.basename(path) == 'runcible-boot-%s.service' % hashlib.sha256(root.encode()).hexdigest()[:12]
    assert 'ConditionPathExists=%s/lib/current/exit.py' % root.replace('%', '%%') in text
    # ExecStart gives systemd exactly these arguments (a space, %, $, " or \ in the root is part of the path).
    [line] = [line for line in text.splitlines() if line.startswith('ExecStart=')]
    assert line == 'ExecStart=' + units.exec_line([sys.executable, '-I', '-B', root + '/lib/current/exit.py', '--boot',
                                                   root, '/run/runcible'])
    assert unquote_exec(line[len('ExecStart='):]) == [sys.executable, '-I', '-B', root + '/lib/current/exit.py',
                                                      '--boot', root, '/run/runcible']


def unquote_exec(line):
    """systemd's reading of an Exec line made of double-quoted words (specifiers and variables undoubled)."""
    words, index = [], 0
    while index < len(line):
        assert line[index] == '"', line[index:]
        index += 1
        word = ''
        while line[index] != '"':
            if line[index] == '\\':
                index += 1
            word += line[index]
            index += 1
        words.append(word.replace('%%', '%').replace('$$', '$'))
        index += 2  # the closing quote and the space
    return words


def test_the_roles_markers_keep_or_forbid_the_boot_unit(tmp_path):
    root, unit_dir = str(tmp_path / 'root'), str(tmp_path / 'systemd')
    os.makedirs(root)
    path = payload.ensure_boot_unit(root, '/run/r', unit_dir=unit_dir)
    open(os.path.join(root, payload.KEEP_MARKER), 'w').close()
    assert payload.remove_boot_unit(root, unit_dir=unit_dir, unused=True) is False and os.path.exists(path)
    os.unlink(os.path.join(root, payload.KEEP_MARKER))
    assert payload.remove_boot_unit(root, unit_dir=unit_dir, unused=True) is True and not os.path.exists(path)
    open(os.path.join(root, payload.DISABLED_MARKER), 'w').close()
    assert payload.ensure_boot_unit(root, '/run/r', unit_dir=unit_dir) is None and not os.path.exists(path)
