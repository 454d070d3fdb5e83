# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runcible.oci.oci connection against real runc containers of a Debian root filesystem with Python.

The generic pattern of a connection plugin's tests: raw, command with Unicode, copy and fetch of
Unicode-named and 30 MB files, pipelining off and on, become to a non-root user, facts, async.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import tracemalloc

import pytest

from conftest import BIN, CALLBACKS, COLLECTIONS, REPO

from ansible_collections.runcible.oci.plugins.module_utils import _exec  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime import execute, stream  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.parsers import resolve_user  # noqa: E402

DEBIAN_ROOTFS = os.environ.get('RUNCIBLE_DEBIAN_ROOTFS') or os.path.join(REPO, 'build', 'rootfs', 'debian')
UNICODE = 'héllo wörld ✓ Ωμέγα 日本'
BIG = 30 * 1024 * 1024


@pytest.fixture
def debian(env):
    """A started container of the Debian root filesystem, with a user "tester"; -> its name."""
    if not os.path.isfile(os.path.join(DEBIAN_ROOTFS, 'usr', 'bin', 'python3')):
        pytest.fail('no Debian root filesystem with Python at %s: run make setup (scripts/build-debian-rootfs.sh)'
                    % DEBIAN_ROOTFS)
    name = 'test-conn-debian'
    start(env, name)
    result = _exec.run({'container': name, 'argv': ['useradd', '--create-home', '--shell', '/bin/sh', 'tester'],
                        'root': env.root, 'run_root': env.run_root})
    assert result['rc'] == 0, result
    return name


def start(test_env, name, **options):
    # sleep as PID 1 ignores SIGTERM: SIGKILL stops it at once.
    params = dict(name=name, rootfs=DEBIAN_ROOTFS, command=['sleep', 'infinity'], stop_signal='SIGKILL', network='none')
    params.update(options)
    result = test_env.run(**params)
    assert result['container']['status'] == params.get('state', 'running').replace('started', 'running'), result
    return result


def play(env, hosts, tasks, host_vars=None, play_vars=None, gather_facts=False, expect_rc=0, extra_env=None):
    """Run one play on ``hosts`` (inventory name -> variables), all with the runcible.oci.oci connection.

    -> (task results, output). Only the play's hosts are in the inventory; every one gets the store.
    """
    inventory = {'all': {'hosts': dict((name, dict(host_vars or {}, **variables)) for name, variables in hosts.items()),
                         'vars': {'ansible_connection': 'runcible.oci.oci', 'ansible_runcible_root': env.root,
                                  'ansible_runcible_run_root': env.run_root}}}
    play_ = {'hosts': 'all', 'gather_facts': gather_facts, 'tasks': tasks, 'vars': play_vars or {}}
    paths = dict((key, os.path.join(env.base, key)) for key in ('inventory.json', 'play.yml', 'results.json'))
    with open(paths['inventory.json'], 'w') as handle:
        json.dump(inventory, handle)
    with open(paths['play.yml'], 'w') as handle:
        json.dump([play_], handle)
    environ = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED='record_results',
                   RUNCIBLE_RESULTS=paths['results.json'], ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
                   ANSIBLE_PYTHON_INTERPRETER='auto_silent', ANSIBLE_DEPRECATION_WARNINGS='0')
    environ.update(extra_env or {})
    proc = subprocess.run([os.path.join(BIN, 'ansible-playbook'), '-i', paths['inventory.json'], paths['play.yml']],
                          env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=600, check=False)
    output = proc.stdout.decode('utf-8', 'replace')
    assert proc.returncode == expect_rc, output
    with open(paths['results.json']) as handle:
        results = json.load(handle)
    return dict((result['_task'], result) for result in results), output


def sha1(path):
    digest = hashlib.sha1()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.parametrize('pipelining', [False, True], ids=['pipelining-off', 'pipelining-on'])
def test_generic_pattern(env, debian, pipelining, tmp_path):
    local = tmp_path / ('lôcal fïle %s.txt' % pipelining)
    local.write_text(UNICODE + '\n', encoding='utf-8')
    fetched = tmp_path / 'fetched' / 'bäck hôme.txt'
    remote = '/tmp/dïr with späces/rémote ✓.txt'
    tasks = [
        {'name': 'raw', 'ansible.builtin.raw': 'echo "%s"; echo "$container"' % UNICODE},
        {'name': 'command', 'ansible.builtin.command': {'argv': ['echo', UNICODE]}},
        {'name': 'shell env', 'ansible.builtin.shell': 'echo "$HOME $HOSTNAME"; id -un'},
        {'name': 'mkdir', 'ansible.builtin.file': {'path': os.path.dirname(remote), 'state': 'directory', 'mode': '0755'}},
        {'name': 'copy', 'ansible.builtin.copy': {'src': str(local), 'dest': remote, 'mode': '0644'}},
        {'name': 'copy again', 'ansible.builtin.copy': {'src': str(local), 'dest': remote, 'mode': '0644'}},
        {'name': 'slurp', 'ansible.builtin.slurp': {'src': remote}},
        {'name': 'fetch', 'ansible.builtin.fetch': {'src': remote, 'dest': str(fetched), 'flat': True}},
        {'name': 'become sudo', 'ansible.builtin.command': 'id -un', 'become': True, 'become_user': 'tester'},
        {'name': 'become su', 'ansible.builtin.command': 'id -un', 'become': True, 'become_user': 'tester',
         'become_method': 'ansible.builtin.su'},
        {'name': 'become with a password', 'ansible.builtin.command': 'id -un', 'become': True,
         'become_user': 'tester', 'vars': {'ansible_become_password': 'not needed by root'}},
        {'name': 'copy as tester', 'ansible.builtin.copy': {'content': UNICODE, 'dest': '/home/tester/note ✓.txt',
                                                            'mode': '0600'},
         'become': True, 'become_user': 'tester'},
        {'name': 'stat as tester', 'ansible.builtin.stat': {'path': '/home/tester/note ✓.txt'}},
        {'name': 'async', 'ansible.builtin.command': 'sleep 1', 'async': 30, 'poll': 1},
    ]
    results, output = play(env, {'debian-box': {'ansible_host': debian}}, tasks, gather_facts=True,
                           play_vars={'ansible_pipelining': pipelining})
    assert all(result['_status'] == 'ok' for result in results.values()), output
    assert results['raw']['stdout_lines'] == [UNICODE, 'runcible']
    assert results['command']['stdout'] == UNICODE
    assert results['shell env']['stdout_lines'] == ['/root %s' % debian, 'root']
    assert results['copy']['changed'] and not results['copy again']['changed']
    assert results['copy']['checksum'] == sha1(local)
    assert results['slurp']['content'] == base64.b64encode(local.read_bytes()).decode()
    assert fetched.read_text(encoding='utf-8') == UNICODE + '\n'
    assert results['become sudo']['stdout'] == 'tester'
    assert results['become su']['stdout'] == 'tester'
    assert results['become with a password']['stdout'] == 'tester'
    assert results['stat as tester']['stat']['pw_name'] == 'tester'
    assert results['async']['rc'] == 0 and results['async']['finished']
    facts = results['Gathering Facts']['ansible_facts']
    assert facts['ansible_hostname'] == debian
    assert facts['ansible_distribution'] == 'Debian'
    assert facts['ansible_virtualization_type'] == 'container'
    if pipelining:
        assert 'AnsiballZ' not in output


def test_remote_user_owns_what_it_copies(env, debian, tmp_path):
    local = tmp_path / 'mine.txt'
    local.write_text('mine\n')
    tasks = [
        {'name': 'whoami', 'ansible.builtin.shell': 'id -un; echo $HOME; echo $USER'},
        {'name': 'copy', 'ansible.builtin.copy': {'src': str(local), 'dest': '/home/tester/mine.txt', 'mode': '0640'}},
        {'name': 'stat', 'ansible.builtin.stat': {'path': '/home/tester/mine.txt'}},
        {'name': 'not root', 'ansible.builtin.copy': {'content': 'x', 'dest': '/root/forbidden'},
         'ignore_errors': True},
    ]
    results, output = play(env, {debian: {}}, tasks, host_vars={'ansible_user': 'tester'})
    assert results['whoami']['stdout_lines'] == ['tester', '/home/tester', 'tester'], output
    assert results['stat']['stat']['pw_name'] == 'tester' and results['stat']['stat']['mode'] == '0640'
    assert results['not root']['_status'] == 'failed'
    assert 'Permission denied' in json.dumps(results['not root'])


def test_large_files_stream_both_ways(env, debian, tmp_path):
    big = tmp_path / 'big fïle.bin'
    with open(big, 'wb') as handle:
        for _index in range(BIG // (1 << 20)):
            handle.write(os.urandom(1 << 20))
    back = tmp_path / 'bäck.bin'
    tasks = [
        {'name': 'copy', 'ansible.builtin.copy': {'src': str(big), 'dest': '/srv/big fïle.bin', 'mode': '0644'}},
        {'name': 'fetch', 'ansible.builtin.fetch': {'src': '/srv/big fïle.bin', 'dest': str(back), 'flat': True}},
        {'name': 'size', 'ansible.builtin.stat': {'path': '/srv/big fïle.bin', 'checksum_algorithm': 'sha1'}},
    ]
    started = time.monotonic()
    results, output = play(env, {debian: {}}, tasks, play_vars={'ansible_pipelining': True})
    elapsed = time.monotonic() - started
    assert results['size']['stat']['size'] == BIG, output
    assert results['size']['stat']['checksum'] == sha1(big)
    assert sha1(back) == sha1(big)
    print('copy and fetch of %d MiB through runc exec: %.1f s (ansible-playbook included)' % (BIG >> 20, elapsed))


def test_streams_through_real_runc_in_bounded_memory(env, debian, tmp_path):
    """The exec under put_file/fetch_file: 30 MiB through runc's pipes with at most a few chunks in memory."""
    source = tmp_path / 'source.bin'
    with open(source, 'wb') as handle:
        for _index in range(BIG // (1 << 20)):
            handle.write(os.urandom(1 << 20))
    record, live = env.engine.inspect(debian)
    paths = env.engine.paths(record)
    runtime = env.engine.runtime_for(record)
    base = execute.load_container_process(paths.config_json)
    copied = tmp_path / 'copied.bin'
    tracemalloc.start()
    try:
        with open(source, 'rb') as handle:
            put = stream.run(runtime, record['id'], paths.run_dir,
                             execute.build_process(base, ['/bin/sh', '-c', 'exec cat > "$1"', 'sh', '/tmp/s p a c e']),
                             live['pid'], stdin=handle)
        with open(copied, 'wb') as handle:
            fetch = stream.run(runtime, record['id'], paths.run_dir,
                               execute.build_process(base, ['/bin/sh', '-c', 'exec cat < "$1"', 'sh', '/tmp/s p a c e']),
                               live['pid'], stdout=handle)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (put.rc, put.runtime_error, fetch.rc, fetch.runtime_error) == (0, None, 0, None), (put.stderr, fetch.stderr)
    assert sha1(copied) == sha1(source)
    assert peak < 2 << 20, 'streaming %d bytes held %d bytes of Python memory at once' % (BIG * 2, peak)
    assert not [entry for entry in os.listdir(paths.run_dir) if entry.startswith('exec-')], 'exec files left behind'


def test_missing_or_stopped_container_is_unreachable_with_the_reason(env, debian):
    start(env, 'test-conn-stopped', state='stopped')
    tasks = [{'name': 'ping', 'ansible.builtin.raw': 'true'}]
    results, output = play(env, {'test-conn-ghost': {}, 'test-conn-stopped': {}, 'live': {'ansible_host': debian}},
                           tasks, expect_rc=4)
    assert 'container test-conn-ghost does not exist under root %s' % env.root in output
    assert 'container test-conn-stopped is stopped, not running: start it with runcible.oci.container' in output
    assert output.count('UNREACHABLE') == 2
    assert 'changed: [live]' in output


def container_processes(env, name, argv):
    """Pids of processes in the container's pid namespace whose command line is ``argv``."""
    _record, live = env.engine.inspect(name)
    pidns = os.readlink('/proc/%d/ns/pid' % live['pid'])
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                cmdline = handle.read().rstrip(b'\0').split(b'\0')
            same_ns = os.readlink('/proc/%s/ns/pid' % entry) == pidns
        except OSError:
            continue
        if same_ns and cmdline == [part.encode() for part in argv]:
            found.append(int(entry))
    return found


def test_task_timeout_kills_the_command_and_background_jobs_survive(env, debian):
    tasks = [
        {'name': 'daemon', 'ansible.builtin.shell': 'nohup sleep 301 >/dev/null 2>&1 &'},
        {'name': 'too slow', 'ansible.builtin.raw': 'sleep 302', 'timeout': 2, 'ignore_errors': True},
    ]
    started = time.monotonic()
    results, output = play(env, {debian: {}}, tasks, play_vars={'ansible_pipelining': True})
    assert time.monotonic() - started < 60
    assert results['too slow']['_status'] == 'failed', output
    assert 'timed out after 2' in results['too slow']['msg'].lower()
    assert container_processes(env, debian, ['sleep', '302']) == [], 'the timed-out command was left running'
    assert len(container_processes(env, debian, ['sleep', '301'])) == 1, 'the background job was killed'


def test_module_sees_the_containers_own_environment(env, tmp_path):
    if not os.path.isfile(os.path.join(DEBIAN_ROOTFS, 'usr', 'bin', 'python3')):
        pytest.fail('no Debian root filesystem at %s: run make setup' % DEBIAN_ROOTFS)
    start(env, 'test-conn-env', env={'APP_MODE': 'ünïcode mode'}, user='nobody', workdir='/tmp')
    tasks = [{'name': 'env', 'ansible.builtin.shell': 'echo "$APP_MODE"; id -un; pwd'}]
    results, output = play(env, {'test-conn-env': {}}, tasks, play_vars={'ansible_pipelining': True})
    assert results['env']['stdout_lines'] == ['ünïcode mode', 'nobody', '/tmp'], output


HOST_PASSWD = 'hostonly:x:4321:4321:host only:/host-only-home:/bin/sh\nroot:x:0:0:root:/host-root-home:/bin/sh\n'


@pytest.mark.timeout(300)
def test_remote_user_is_looked_up_in_the_container_only(env, tmp_path):
    """Busybox containers whose /etc/passwd a process inside made a link to a host file, or a FIFO.

    The plugin resolves ansible_user and sets HOME/USER from the container's own view (no such file),
    and a FIFO fails every command at once instead of hanging the play (raw needs no Python).
    """
    host_file = tmp_path / 'host-passwd'
    host_file.write_text(HOST_PASSWD)
    for name, plant in (('test-conn-hostlink', ['ln', '-sf', str(host_file), '/etc/passwd']),
                        ('test-conn-fifo', ['sh', '-c', 'rm /etc/passwd && mkfifo /etc/passwd'])):
        start(env, name, rootfs=env.rootfs, command=['sleep', '1000000'])
        planted = _exec.run({'container': name, 'argv': plant, 'root': env.root, 'run_root': env.run_root})
        assert planted['rc'] == 0, planted
    _record, live = env.engine.inspect('test-conn-hostlink')
    with open('/proc/%d/root/etc/passwd' % live['pid']) as handle:
        assert handle.read() == HOST_PASSWD, 'the attack is real: the host, following the link, reads its own file'

    # In-process, the plugin's two lookups.
    root = '/proc/%d/root' % live['pid']
    with pytest.raises(RuncibleError, match="'hostonly' is not in the root filesystem's /etc/passwd"):
        resolve_user('hostonly', root)
    assert resolve_user('4321', root) == '4321:0'
    assert stream.user_env(root, '4321:0') == {'HOME': '/'} and stream.user_env(root, '0:0') == {'HOME': '/'}

    # Through ansible-playbook and the plugin.
    hosts = {'by-name': {'ansible_host': 'test-conn-hostlink', 'ansible_user': 'hostonly'},
             'by-uid': {'ansible_host': 'test-conn-hostlink', 'ansible_user': '4321'},
             'as-root': {'ansible_host': 'test-conn-hostlink', 'ansible_user': 'root'},
             'fifo-by-name': {'ansible_host': 'test-conn-fifo', 'ansible_user': 'root'},
             'fifo-default-user': {'ansible_host': 'test-conn-fifo'}}
    tasks = [{'name': 'whoami', 'ansible.builtin.raw': 'echo "$HOME|$USER|$(id -u):$(id -g)"', 'timeout': 60}]
    started = time.monotonic()
    _results, output = play(env, hosts, tasks, expect_rc=4)
    assert time.monotonic() - started < 120
    with open(os.path.join(env.base, 'results.json')) as handle:
        by_host = dict((result['_host'], result) for result in json.load(handle))
    assert by_host['by-uid']['_status'] == 'ok', output
    assert by_host['by-uid']['stdout_lines'] == ['/||4321:0'], 'no HOME, USER or gid from the host file'
    for host in ('by-name', 'as-root'):
        assert by_host[host]['_status'] == 'unreachable', output
        assert "is not in the root filesystem's /etc/passwd" in by_host[host]['msg'], by_host[host]['msg']
    assert "container test-conn-hostlink: user: 'hostonly' is not in the root filesystem" in by_host['by-name']['msg']
    for host in ('fifo-by-name', 'fifo-default-user'):
        assert by_host[host]['_status'] == 'unreachable', output
        assert 'a FIFO, not a regular file' in by_host[host]['msg'], by_host[host]['msg']


if __name__ == '__main__':  # pragma: no cover
    sys.exit(pytest.main([__file__, '-v']))
