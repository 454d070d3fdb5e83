# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runcible.oci.oci connection plugin and its streaming exec (_runtime/stream.py), with a fake runtime.

The exec loop under it is container_exec's too (_runtime/exec_loop.py): its interruption is tested here for both.

The fake runtime is a small script that does what ``runc exec --detach --process P --pid-file F ID``
does to our pipes: it starts the process of the spec with its own stdio (which are ours), writes the
pid and exits, so the process becomes our child through the subreaper. It does not enter any
namespace: paths are the host's. The real runc is driven by tests/integration/test_connection.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import tracemalloc

import pytest

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.playbook.play_context import PlayContext
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.plugins.loader import connection_loader, init_plugin_loader

from ansible_collections.runcible.oci.plugins.module_utils._runtime import exec_loop, execute, stream
from ansible_collections.runcible.oci.plugins.module_utils._runtime.oci_cli import OCIRuntime
from ansible_collections.runcible.oci.plugins.module_utils._runtime.host import current_boot_id, read_proc_stat
from ansible_collections.runcible.oci.plugins.module_utils._runtime.store import Record, Store

FAKE_RUNTIME = r'''#!PYTHON
import json, os, sys
args = sys.argv[1:]
def value(flag):
    return args[args.index(flag) + 1] if flag in args else None
process = json.load(open(value('--process')))
log = value('--log')
if process['args'][0] == 'RUNTIME-FAILS':
    with open(log, 'a') as handle:
        handle.write(json.dumps({'level': 'error', 'msg': 'exec failed: no such container'}) + '\n')
    sys.exit(1)
if process['args'][0] == 'RUNTIME-BLOCKS':
    # As runc whose init opens a FIFO in the container (its /etc/passwd): the init blocks, the runtime waits for it.
    init = os.fork()
    if init == 0:
        open(process['args'][1], 'rb').close()
        os._exit(1)
    with open(process['args'][2], 'w') as handle:
        handle.write('%d %d' % (os.getpid(), init))
    os.waitpid(init, 0)
    sys.exit(1)
pid = os.fork()
if pid == 0:
    os.setsid()
    os.chdir(process.get('cwd') or '/')
    env = dict(item.split('=', 1) for item in process.get('env', []))
    os.execvpe(process['args'][0], process['args'], env)
with open(value('--pid-file'), 'w') as handle:
    handle.write(str(pid))
'''

CID = 'feedface' * 8
# .../ansible_collections/runcible/oci/plugins/module_utils/_runtime/stream.py -> the collections path
COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(stream.__file__), *['..'] * 6))


@pytest.fixture(scope='module')
def plugin_loader():
    """Ansible's plugin loader, finding runcible.oci where the tests import it from.

    The collection was imported as a plain package (conftest.py puts it on sys.path); the loader's
    collection finder must import it afresh to know its metadata. The plain modules are put back after.
    """
    plain = dict((name, module) for name, module in sys.modules.items() if name.split('.')[0] == 'ansible_collections')
    for name in plain:
        del sys.modules[name]
    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([COLLECTIONS])
    yield connection_loader
    for name in [name for name in sys.modules if name.split('.')[0] == 'ansible_collections']:
        del sys.modules[name]
    sys.modules.update(plain)


@pytest.fixture
def fake_runtime(tmp_path):
    """-> OCIRuntime that runs processes on the host like runc exec --detach would in a container."""
    path = tmp_path / 'bin' / 'runc'
    path.parent.mkdir()
    path.write_text(FAKE_RUNTIME.replace('PYTHON', sys.executable))
    path.chmod(0o755)
    state = tmp_path / 'state'
    state.mkdir()
    return OCIRuntime('runc', str(path), str(state))


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / 'run-dir'
    path.mkdir()
    return str(path)


def process(args, env=None):
    return {'args': list(args), 'env': ['PATH=/usr/bin:/bin'] + ['%s=%s' % item for item in (env or {}).items()],
            'cwd': '/', 'terminal': False}


def run(fake_runtime, run_dir, args, **kwargs):
    return stream.run(fake_runtime, CID, run_dir, process(args), os.getpid(), **kwargs)


# -- stream.run ----------------------------------------------------------------------------------------

def test_output_and_exit_code(fake_runtime, run_dir):
    result = run(fake_runtime, run_dir, ['sh', '-c', 'echo out; echo err >&2; exit 3'])
    assert (result.rc, result.stdout, result.stderr, result.runtime_error) == (3, b'out\n', b'err\n', None)
    assert os.listdir(run_dir) == [], 'the process spec, pid file and log are removed'


def test_killed_by_a_signal_is_128_plus_the_signal(fake_runtime, run_dir):
    assert run(fake_runtime, run_dir, ['sh', '-c', 'kill -9 $$']).rc == 128 + signal.SIGKILL


def test_stdin_bytes(fake_runtime, run_dir):
    data = 'héllo wörld\n'.encode('utf-8') * 50000
    result = run(fake_runtime, run_dir, ['cat'], stdin=data)
    assert result.rc == 0 and result.stdout == data


def test_no_stdin_is_dev_null(fake_runtime, run_dir):
    assert run(fake_runtime, run_dir, ['cat']).stdout == b''


def test_empty_stdin_is_closed_at_once(fake_runtime, run_dir):
    result = run(fake_runtime, run_dir, ['sh', '-c', 'cat; echo done'], stdin=b'')
    assert result.stdout == b'done\n'


def test_process_that_reads_no_stdin_does_not_hang(fake_runtime, run_dir):
    result = run(fake_runtime, run_dir, ['true'], stdin=b'x' * (8 << 20))
    assert result.rc == 0


def test_files_stream_in_chunks_without_holding_them(fake_runtime, run_dir, tmp_path):
    size = 12 << 20
    source = tmp_path / 'source file ü.bin'
    with open(source, 'wb') as handle:
        for index in range(size // 65536):
            handle.write(bytes([index % 251]) * 65536)
    copied = tmp_path / 'copied.bin'
    tracemalloc.start()
    try:
        with open(source, 'rb') as source_handle, open(copied, 'wb') as sink:
            result = run(fake_runtime, run_dir, ['cat'], stdin=source_handle, stdout=sink)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.rc == 0 and result.stdout == b''
    assert copied.read_bytes() == source.read_bytes()
    assert peak < 2 << 20, 'copying %d bytes held %d bytes of Python memory at once' % (size, peak)


def test_runtime_failure_carries_its_log_message(fake_runtime, run_dir):
    result = run(fake_runtime, run_dir, ['RUNTIME-FAILS'])
    assert result.rc == 1
    assert result.runtime_error == 'exec failed: no such container'


def test_background_processes_outlive_the_command(fake_runtime, run_dir, monkeypatch, tmp_path):
    """As over ssh: a daemon the command starts keeps running; its open pipe costs only DRAIN_WAIT."""
    monkeypatch.setattr(exec_loop, 'DRAIN_WAIT', 0.3)
    pidfile = tmp_path / 'daemon.pid'
    started = time.monotonic()
    result = run(fake_runtime, run_dir, ['sh', '-c', 'sleep 30 & echo $! > %s; echo started' % pidfile])
    elapsed = time.monotonic() - started
    daemon = int(pidfile.read_text())
    try:
        assert result.rc == 0 and result.stdout == b'started\n'
        assert elapsed < 5
        assert read_proc_stat(daemon) is not None, 'the background process was killed'
    finally:
        os.kill(daemon, signal.SIGKILL)
        # it is our child through the subreaper while the exec ran: reap it if it is
        try:
            os.waitpid(daemon, 0)
        except ChildProcessError:
            pass


SUDO_LIKE = r'''
printf '[sudo via ansible, key=k] password:' >&2
read -r answer
while [ "$answer" != "secret" ]; do
    printf 'Sorry, try again.\n[sudo via ansible, key=k] password:' >&2
    read -r answer || exit 1
done
echo BECOME-SUCCESS-k
exec cat
'''


def become(password=b'secret', timeout=5):
    def check(output):
        if b'BECOME-SUCCESS-k' in output:
            return 'success'
        if b'[sudo via ansible, key=k] password:' in output.splitlines()[-1:][0] if output.splitlines() else False:
            return 'prompt'
        return None
    return stream.BecomePrompt(check, password, timeout=timeout)


def test_become_prompt_is_answered_before_stdin(fake_runtime, run_dir):
    result = run(fake_runtime, run_dir, ['sh', '-c', SUDO_LIKE], stdin=b'the module\n', become=become())
    assert result.rc == 0
    assert result.stdout == b'BECOME-SUCCESS-k\nthe module\n'
    assert b'password' not in result.stderr, 'the prompt is not the command output'


def test_become_without_prompt(fake_runtime, run_dir):
    result = run(fake_runtime, run_dir, ['sh', '-c', 'echo BECOME-SUCCESS-k; cat'], stdin=b'data',
                 become=become())
    assert result.stdout == b'BECOME-SUCCESS-k\ndata'


def test_wrong_become_password_fails_at_the_second_prompt(fake_runtime, run_dir):
    with pytest.raises(stream.BecomeFailed, match='asked for the password again'):
        run(fake_runtime, run_dir, ['sh', '-c', SUDO_LIKE], stdin=b'secret\n', become=become(b'wrong'))


def test_become_that_never_succeeds(fake_runtime, run_dir):
    with pytest.raises(stream.BecomeFailed, match='ended .exit code 1. before privilege escalation.*must be run from'):
        run(fake_runtime, run_dir, ['sh', '-c', 'echo "su: must be run from a terminal" >&2; exit 1'],
            become=become())


def test_become_timeout_kills_the_command(fake_runtime, run_dir, tmp_path):
    pidfile = tmp_path / 'pid'
    with pytest.raises(stream.BecomeFailed, match='timed out after 0.5s'):
        run(fake_runtime, run_dir, ['sh', '-c', 'echo $$ > %s; exec sleep 30' % pidfile], become=become(timeout=0.5))
    pid = int(pidfile.read_text())
    assert read_proc_stat(pid) is None, 'the command was left running'


# -- the exec loop (container_exec's and the connection's), interrupted ------------------------------------

def _unblock(fifo):
    """Let a process that blocks opening ``fifo`` for reading go; -> True when there was one."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        return False  # ENXIO: no reader
    return True


@pytest.mark.timeout(60)
@pytest.mark.parametrize('user, interruption', [('connection', 'become timeout'), ('connection', 'task timeout'),
                                                ('container_exec', 'task timeout'), ('container_exec', 'ctrl-c'),
                                                ('container_exec', 'timeout option')])
def test_an_interrupted_exec_kills_a_blocked_runtime_before_waiting_for_it(fake_runtime, run_dir, tmp_path, user,
                                                                           interruption):
    """The runtime never exits on its own (its init blocks opening a FIFO): cleanup must kill it, then wait.

    container_exec's ``timeout`` option is no interruption (the exec ends, timed out), but kills the same way.
    A watchdog lets the init go after ``release`` seconds, so that a cleanup that waits first ends (late) instead
    of hanging the test for ever.
    """
    release, timeout = 8.0, 1.0
    fifo, pids = str(tmp_path / 'fifo'), tmp_path / 'pids'
    os.mkfifo(fifo)
    args = ['RUNTIME-BLOCKS', fifo, str(pids)]
    expected = {'become timeout': stream.BecomeFailed, 'ctrl-c': KeyboardInterrupt,
                'task timeout': TimeoutError}.get(interruption)

    def call():
        if user == 'connection':
            return run(fake_runtime, run_dir, args,
                       **({'become': become(timeout=timeout)} if interruption == 'become timeout' else {}))
        return execute.run_attached(fake_runtime, CID, run_dir, process(args), os.getpid(), use_cgroup=False,
                                    timeout=timeout if interruption == 'timeout option' else None)

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt() if interruption == 'ctrl-c' else TimeoutError('the task timed out')

    def send():
        """Interrupt the loop once the runtime runs (and blocks)."""
        deadline = time.monotonic() + release / 2
        while not pids.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        if interruption in ('task timeout', 'ctrl-c'):
            os.kill(os.getpid(), signal.SIGUSR1)

    watchdog = threading.Timer(release, _unblock, [fifo])
    sender = threading.Thread(target=send)
    previous = signal.signal(signal.SIGUSR1, interrupt)
    started = time.monotonic()
    watchdog.start()
    sender.start()
    try:
        if expected is None:
            assert call().timed_out
        else:
            with pytest.raises(expected):
                call()
        elapsed = time.monotonic() - started
    finally:
        sender.join()
        signal.signal(signal.SIGUSR1, previous)
        watchdog.cancel()
    runtime_pid, init_pid = [int(pid) for pid in pids.read_text().split()]
    assert elapsed < release - 2, 'the cleanup waited %.1f s for a runtime nobody had killed' % elapsed
    assert not _unblock(fifo), "the runtime's init was left blocked on the FIFO"
    assert read_proc_stat(runtime_pid) is None and read_proc_stat(init_pid) is None, 'not killed, or a zombie'
    assert os.listdir(run_dir) == []


@pytest.mark.parametrize('passwd, uid, expected', [
    ('root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n', 1000,
     {'HOME': '/home/app', 'USER': 'app', 'LOGNAME': 'app'}),
    ('root:x:0:0:root:/root:/bin/sh\n', 0, {'HOME': '/root', 'USER': 'root', 'LOGNAME': 'root'}),
    ('root:x:0:0:root:/root:/bin/sh\n', 4242, {'HOME': '/'}),
    ('nohome:x:7:7:::/bin/sh\n', 7, {'HOME': '/', 'USER': 'nohome', 'LOGNAME': 'nohome'}),
])
def test_user_env(tmp_path, passwd, uid, expected):
    (tmp_path / 'etc').mkdir()
    (tmp_path / 'etc' / 'passwd').write_text(passwd)
    assert stream.user_env(str(tmp_path), '%d:0' % uid) == expected


def test_user_env_without_passwd(tmp_path):
    assert stream.user_env(str(tmp_path), '0:0') == {'HOME': '/'}


HOST_PASSWD = 'hostonly:x:4321:4321:host only:/host-only-home:/bin/sh\nroot:x:0:0::/host-root-home:/bin/sh\n'


@pytest.mark.parametrize('link', ['{host}', '../../host-passwd', '/../../../../..{host}'])
def test_user_env_never_reads_a_host_passwd_through_a_symlink(lookup_mode, tmp_path, link):
    host = tmp_path / 'host-passwd'
    host.write_text(HOST_PASSWD)
    root = tmp_path / 'root'
    (root / 'etc').mkdir(parents=True)
    os.symlink(link.format(host=str(host)), str(root / 'etc' / 'passwd'))
    assert stream.user_env(str(root), '4321:0') == {'HOME': '/'}, 'HOME and USER of the host file'
    assert stream.user_env(str(root), '0:0') == {'HOME': '/'}
    assert stream.passwd_entry(str(root), 4321) is None


@pytest.mark.timeout(20)
def test_user_env_with_a_fifo_for_passwd_does_not_hang(lookup_mode, tmp_path):
    root = tmp_path / 'root'
    (root / 'etc').mkdir(parents=True)
    (root / 'run').mkdir()
    os.mkfifo(str(root / 'run' / 'fifo'))
    os.symlink('/run/fifo', str(root / 'etc' / 'passwd'))
    assert stream.user_env(str(root), '0:0') == {'HOME': '/'}
    os.unlink(str(root / 'etc' / 'passwd'))
    os.mkfifo(str(root / 'etc' / 'passwd'))
    assert stream.user_env(str(root), '0:0') == {'HOME': '/'}


def test_user_env_follows_absolute_links_inside_the_root(lookup_mode, tmp_path):
    root = tmp_path / 'root'
    (root / 'etc').mkdir(parents=True)
    (root / 'usr' / 'share').mkdir(parents=True)
    (root / 'usr' / 'share' / 'passwd').write_text('app:x:1000:1000::/home/app:/bin/sh\n')
    os.symlink('/usr/share/passwd', str(root / 'etc' / 'passwd'))
    assert stream.user_env(str(root), '1000:1000') == {'HOME': '/home/app', 'USER': 'app', 'LOGNAME': 'app'}


# -- the connection plugin --------------------------------------------------------------------------

def own_start():
    return read_proc_stat(os.getpid())[1]


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / 'root'), str(tmp_path / 'run'))


def add_container(store, name, runtime, state='running', env=None):
    """A record that derive_status() sees as ``state``: a running one is "run" by this very process."""
    record = {'id': CID, 'name': name, 'config': {'rootfs': '/', 'rootfs_mode': 'direct', 'labels': {}},
              'runtime': {'name': runtime.name, 'path': runtime.path}, 'state': state, 'exit_code': None}
    if state != 'stopped':
        record.update(pid=os.getpid(), pid_start=own_start(), conmon_pid=os.getpid(), conmon_start=own_start(),
                      boot_id=current_boot_id())
    record = Record.from_dict(record)
    store.save(record)
    paths = store.paths(name, CID)
    os.makedirs(paths.bundle)
    os.makedirs(paths.run_dir)
    with open(paths.config_json, 'w') as handle:
        json.dump({'process': process(['true'], env=env or {'FROM_CONTAINER': 'yes'})}, handle)
    return record


@pytest.fixture
def connection(plugin_loader, store):
    """connection(**variables) -> the plugin with its options set from these host variables and the store."""
    def make(**options):
        conn = plugin_loader.get('runcible.oci.oci', PlayContext(), None)
        assert conn is not None, 'ansible cannot load runcible.oci.oci'
        variables = {'ansible_runcible_root': store.root, 'ansible_runcible_run_root': store.run_root}
        variables.update(options)
        conn.set_options(var_options=variables)
        return conn
    return make


def test_plugin_is_found_with_its_options(store, connection):
    conn = connection(inventory_hostname='web', ansible_runcible_runtime='runc')
    assert conn.transport == 'runcible.oci.oci' and conn.has_pipelining
    assert conn.get_option('root') == store.root and conn.get_option('run_root') == store.run_root
    assert conn.get_option('remote_addr') == 'web' and conn.get_option('runtime') == 'runc'


def test_ansible_host_names_the_container(store, fake_runtime, connection):
    add_container(store, 'real-name', fake_runtime)
    conn = connection(inventory_hostname='alias', ansible_host='real-name')
    rc, stdout, _stderr = conn.exec_command('echo $FROM_CONTAINER')
    assert (rc, stdout) == (0, b'yes\n')


def test_exec_command_with_the_containers_env_and_stdin(store, fake_runtime, connection):
    add_container(store, 'web', fake_runtime)
    conn = connection(inventory_hostname='web')
    assert conn.exec_command('echo "$FROM_CONTAINER ünï"; exit 4') == (4, 'yes ünï\n'.encode('utf-8'), b'')
    assert conn.exec_command('cat', in_data=b'piped') == (0, b'piped', b'')


def test_missing_container(store, connection):
    conn = connection(inventory_hostname='ghost')
    with pytest.raises(AnsibleConnectionFailure, match='container ghost does not exist under root %s' % store.root):
        conn.exec_command('true')


def test_stopped_container(store, fake_runtime, connection):
    add_container(store, 'sleeper', fake_runtime, state='stopped')
    conn = connection(inventory_hostname='sleeper')
    with pytest.raises(AnsibleConnectionFailure, match='container sleeper is stopped, not running: start it'):
        conn.exec_command('true')


def test_invalid_container_name(store, connection):
    conn = connection(inventory_hostname='web', ansible_host='../etc')
    with pytest.raises(AnsibleConnectionFailure, match='invalid container name .*set ansible_host'):
        conn.exec_command('true')


def test_needs_root(store, monkeypatch, connection):
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    conn = connection(inventory_hostname='web')
    with pytest.raises(AnsibleConnectionFailure, match='needs root'):
        conn.exec_command('true')


def test_unknown_remote_user(store, fake_runtime, connection):
    add_container(store, 'web', fake_runtime)
    conn = connection(inventory_hostname='web', ansible_user='no-such-user-here')
    with pytest.raises(AnsibleConnectionFailure, match="container web: user: 'no-such-user-here' is not in"):
        conn.exec_command('true')


def test_runtime_of_another_name_cannot_exec(store, fake_runtime, tmp_path, connection):
    add_container(store, 'web', fake_runtime)
    other = tmp_path / 'youki'
    other.write_text('#!/bin/sh\nexit 1\n')
    other.chmod(0o755)
    conn = connection(inventory_hostname='web', ansible_runcible_runtime=str(other))
    with pytest.raises(AnsibleConnectionFailure, match='created with runc: youki cannot exec into it'):
        conn.exec_command('true')


def test_runtime_path_of_the_same_name_is_used(store, fake_runtime, tmp_path, connection):
    add_container(store, 'web', fake_runtime)
    conn = connection(inventory_hostname='web', ansible_runcible_runtime=fake_runtime.path)
    assert conn.exec_command('echo ok')[:2] == (0, b'ok\n')


def test_runtime_failure_is_a_connection_failure(store, fake_runtime, connection):
    add_container(store, 'web', fake_runtime)
    conn = connection(inventory_hostname='web')
    conn._connect()
    with pytest.raises(AnsibleConnectionFailure, match='runc could not exec in container web: exec failed'):
        conn._run(['RUNTIME-FAILS'])


def test_put_and_fetch_files_with_spaces_and_unicode(store, fake_runtime, tmp_path, connection):
    add_container(store, 'web', fake_runtime)
    conn = connection(inventory_hostname='web')
    source = tmp_path / 'sôurce fïle.txt'
    source.write_bytes('ünïcödé contents\n'.encode('utf-8') * 1000)
    remote = tmp_path / 'rémote dir' / 'dëst file.txt'
    remote.parent.mkdir()
    conn.put_file(str(source), str(remote))
    assert remote.read_bytes() == source.read_bytes()
    back = tmp_path / 'bäck.txt'
    conn.fetch_file(str(remote), str(back))
    assert back.read_bytes() == source.read_bytes()


def test_put_file_missing_source(store, fake_runtime, tmp_path, connection):
    add_container(store, 'web', fake_runtime)
    conn = connection(inventory_hostname='web')
    with pytest.raises(AnsibleFileNotFound):
        conn.put_file(str(tmp_path / 'nope'), str(tmp_path / 'x'))


def test_put_file_into_a_missing_directory_says_why(store, fake_runtime, tmp_path, connection):
    add_container(store, 'web', fake_runtime)
    conn = connection(inventory_hostname='web')
    source = tmp_path / 'f'
    source.write_text('x')
    with pytest.raises(AnsibleError, match='failed to copy .* to .*/no/such/dir/f in container web .exit code 2.: '
                                           '.*(nonexistent|No such file)'):
        conn.put_file(str(source), str(tmp_path / 'no' / 'such' / 'dir' / 'f'))


def test_fetch_of_a_missing_file_leaves_no_partial_file(store, fake_runtime, tmp_path, connection):
    add_container(store, 'web', fake_runtime)
    conn = connection(inventory_hostname='web')
    target = tmp_path / 'fetched'
    with pytest.raises(AnsibleError, match='failed to fetch .*/absent from container web'):
        conn.fetch_file(str(tmp_path / 'absent'), str(target))
    assert not target.exists()


def test_remote_user_is_looked_up_inside_the_container(store, fake_runtime, connection, tmp_path, monkeypatch):
    """The plugin's user lookup, with the container's root standing in a directory whose /etc/passwd leads to the host."""
    host = tmp_path / 'host-passwd'
    host.write_text(HOST_PASSWD)
    container_root = tmp_path / 'container-root'
    (container_root / 'etc').mkdir(parents=True)
    os.symlink(str(host), str(container_root / 'etc' / 'passwd'))
    add_container(store, 'web', fake_runtime)
    conn = connection(inventory_hostname='web', ansible_user='hostonly')
    monkeypatch.setattr(sys.modules[type(conn).__module__].Target, 'rootfs', property(lambda target: str(container_root)))
    with pytest.raises(AnsibleConnectionFailure, match="container web: user: 'hostonly' is not in the root filesystem"):
        conn.exec_command('true')
    conn = connection(inventory_hostname='web', ansible_user='4321')
    # The fake runtime does not switch users: the environment shows what the plugin looked up.
    assert conn.exec_command('echo "$HOME|$USER|$LOGNAME"') == (0, b'/||\n', b'')


@pytest.mark.timeout(20)
def test_a_fifo_for_passwd_fails_every_command_at_once(store, fake_runtime, connection, tmp_path, monkeypatch):
    container_root = tmp_path / 'container-root'
    (container_root / 'etc').mkdir(parents=True)
    os.mkfifo(str(container_root / 'etc' / 'passwd'))
    add_container(store, 'web', fake_runtime)
    for user in ('root', '0:0', None):
        conn = connection(inventory_hostname='web', **({'ansible_user': user} if user else {}))
        monkeypatch.setattr(sys.modules[type(conn).__module__].Target, 'rootfs',
                            property(lambda target: str(container_root)))
        with pytest.raises(AnsibleConnectionFailure, match='container web: .*/etc/passwd in .* a FIFO, not a regular file'):
            conn.exec_command('true')
