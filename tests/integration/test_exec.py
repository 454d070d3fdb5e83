# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""runcible.oci.container_exec on the real runc + conmon: every option, through ansible-playbook and the API."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import COLLECTIONS, wait_for

from ansible_collections.runcible.oci.plugins.module_utils import _exec  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError  # noqa: E402

MODULE = 'runcible.oci.container_exec'
# PID 1 of the container: stops at once on SIGTERM, and (as any shell) reaps the orphans it adopts.
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.05; done"


@pytest.fixture
def box(env):
    """A running container ``test-box``; -> its view."""
    env.run(name='test-box', rootfs=env.rootfs, command=['sh', '-c', LOOP])
    return env.inspect('test-box')


def api(test_env, check_mode=False, **params):
    params.setdefault('root', test_env.root)
    params.setdefault('run_root', test_env.run_root)
    params.setdefault('container', 'test-box')
    return _exec.run(params, check_mode=check_mode)


def in_container(box, path):
    return '/proc/%d/root%s' % (box['pid'], path)


# -- the process tree of a container, for leak checks ----------------------------------------------------

def _stat(pid):
    try:
        with open('/proc/%s/stat' % pid, 'rb') as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b')') + 2:].split()
    return {'state': fields[0].decode(), 'ppid': int(fields[1]), 'start': int(fields[19]),
            'comm': data[data.index(b'(') + 1:data.rindex(b')')].decode('utf-8', 'replace')}


def _cmdline(pid):
    try:
        with open('/proc/%s/cmdline' % pid, 'rb') as handle:
            return handle.read().replace(b'\0', b' ').decode('utf-8', 'replace').strip()
    except OSError:
        return ''


def container_processes(box):
    """{pid: (state, cmdline)} of every host process in the container's pid namespace, init included."""
    namespace = os.readlink('/proc/%d/ns/pid' % box['pid'])
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            if os.readlink('/proc/%s/ns/pid' % entry) != namespace:
                continue
        except OSError:
            continue
        stat = _stat(entry)
        if stat:
            found[int(entry)] = (stat['state'], _cmdline(entry) or stat['comm'])
    return found


def foreign_processes(box):
    """Processes in the container other than its init and the init's own ``sleep 0.05``."""
    return dict((pid, info) for pid, info in container_processes(box).items()
                if pid != box['pid'] and info[1] != 'sleep 0.05')


def host_zombies(since_ticks, names=('runc', 'sleep', 'sh', 'cat', 'runc:[2:INIT]')):
    """Zombies on the host started after ``since_ticks`` (clock ticks since boot) named like ours."""
    zombies = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            stat = _stat(entry)
            if stat and stat['state'] == 'Z' and stat['start'] >= since_ticks and stat['comm'] in names:
                zombies.append((int(entry), stat['comm'], stat['ppid']))
    return zombies


def ticks_now():
    """Clock ticks since boot, the unit of a process's start time in /proc/PID/stat."""
    with open('/proc/uptime') as handle:
        return int(float(handle.read().split()[0]) * os.sysconf('SC_CLK_TCK')) - 1


# -- tests ---------------------------------------------------------------------------------------------------

def test_creates_four_ways(env, box):
    args = {'container': 'test-box', 'argv': ['sh', '-c', 'touch /tmp/made; echo made'], 'creates': '/tmp/made'}
    check, apply, again, check_again = env.four_ways(args, module=MODULE)
    assert check['msg'] == 'Command would have run if not in check mode'
    assert apply['stdout'] == 'made' and apply['rc'] == 0 and apply['cmd'] == args['argv']
    assert apply['start'] and apply['end'] and apply['delta'].startswith('0:00:')
    for skipped in (again, check_again):
        assert skipped['msg'] == 'Did not run command since /tmp/made exists'
        assert skipped['stdout'] == 'skipped, since /tmp/made exists'
    assert os.path.exists(in_container(box, '/tmp/made'))


def test_removes_four_ways_and_check_mode_runs_nothing(env, box):
    victim = in_container(box, '/tmp/victim')
    with open(victim, 'w') as handle:
        handle.write('x')
    args = {'container': 'test-box', 'argv': ['rm', '/tmp/victim'], 'removes': '/tmp/victim'}
    results = env.playbook([
        {'name': 'check', MODULE: dict(args), 'check_mode': True},
        {'name': 'still there after check mode', MODULE: {'container': 'test-box', 'argv': ['test', '-e', '/tmp/victim']}},
        {'name': 'apply', MODULE: dict(args)},
        {'name': 'again', MODULE: dict(args)},
        {'name': 'check again', MODULE: dict(args), 'check_mode': True},
    ])
    by_name = dict((r['_task'], r) for r in results)
    assert by_name['check']['changed'] and by_name['apply']['changed']
    assert not by_name['again']['changed'] and not by_name['check again']['changed']
    assert by_name['again']['msg'] == 'Did not run command since /tmp/victim does not exist'
    assert not os.path.exists(victim)


def test_check_mode_never_runs_the_command(env, box):
    result = env.playbook([{MODULE: {'container': 'test-box', 'argv': ['touch', '/tmp/never']}, 'check_mode': True}])[0]
    assert result['changed'] and result['cmd'] == ['touch', '/tmp/never']
    assert not os.path.exists(in_container(box, '/tmp/never'))


def test_creates_resolves_symlinks_and_mounts_inside_the_container(env, tmp_path):
    source = tmp_path / 'shared'
    source.mkdir()
    (source / 'from-host').write_text('x')
    env.run(name='test-box', rootfs=env.rootfs, command=['sh', '-c', LOOP], mounts=['%s:/mnt/shared' % source])
    box = env.inspect('test-box')
    api(env, argv=['sh', '-c', 'mkdir -p /data/only-here && touch /data/only-here/x.pid && ln -s /data /tmp/abs '
                               '&& ln -s ../data /tmp/rel'])
    assert not os.path.exists('/data/only-here'), 'the host must not have this path for the test to mean anything'

    def skipped(**params):
        result = api(env, check_mode=True, argv=['true'], **params)
        return not result['changed']

    assert skipped(creates='/tmp/abs/only-here/x.pid'), 'an absolute symlink resolves inside the container'
    assert skipped(creates='/tmp/rel/only-here/x.pid')
    assert skipped(creates='/tmp/abs/../data/only-here')
    assert skipped(creates='/data/only-here/*.pid'), 'a glob in the last component'
    assert not skipped(creates='/data/only-here/*.sock')
    assert skipped(creates='/mnt/shared/from-host'), 'a bind mount of the container is seen as the container sees it'
    assert not skipped(creates='/etc/../../nonexistent')
    assert skipped(removes='/etc/passwd') is False
    assert skipped(removes='/nonexistent/file')
    with pytest.raises(RuncibleError, match='only supported in the last path component'):
        api(env, argv=['true'], creates='/data/*/x.pid')
    assert box['status'] == 'running'


def test_argv_command_and_failure_like_command_module(env, box):
    results = env.playbook([
        {'name': 'command string', MODULE: {'container': 'test-box', 'command': "echo 'a  b' c"}},
        {'name': 'fails', MODULE: {'container': 'test-box', 'argv': ['sh', '-c', 'echo out; echo err >&2; exit 3']},
         'ignore_errors': True},
        {'name': 'failed_when', MODULE: {'container': 'test-box', 'argv': ['sh', '-c', 'exit 1']},
         'register': 'r', 'failed_when': 'r.rc > 1'},
        {'name': 'signal', MODULE: {'container': 'test-box', 'argv': ['sh', '-c', 'kill -TERM $$']},
         'ignore_errors': True},
        {'name': 'no such program', MODULE: {'container': 'test-box', 'argv': ['/no/such/program']},
         'ignore_errors': True},
        {'name': 'both', MODULE: {'container': 'test-box', 'argv': ['true'], 'command': 'true'}, 'ignore_errors': True},
        {'name': 'none', MODULE: {'container': 'test-box'}, 'ignore_errors': True},
    ])
    by_name = dict((r['_task'], r) for r in results)
    assert by_name['command string']['cmd'] == ['echo', 'a  b', 'c']
    assert by_name['command string']['stdout'] == 'a  b c' and by_name['command string']['changed']
    failed = by_name['fails']
    assert failed['_status'] == 'failed' and failed['msg'] == 'non-zero return code'
    assert (failed['rc'], failed['stdout'], failed['stderr']) == (3, 'out', 'err')
    assert failed['stdout_lines'] == ['out'] and failed['stderr_lines'] == ['err']
    assert by_name['failed_when']['_status'] == 'ok' and by_name['failed_when']['rc'] == 1
    assert by_name['signal']['_status'] == 'failed' and by_name['signal']['rc'] == 128 + 15
    missing = by_name['no such program']
    assert missing['_status'] == 'failed' and missing['rc'] == 255
    assert 'runc could not run the command in container test-box' in missing['msg']
    assert '/no/such/program' in missing['msg'] and 'no such file or directory' in missing['msg']
    assert 'mutually exclusive' in by_name['both']['msg']
    assert 'one of the following is required' in by_name['none']['msg']


def test_env_user_chdir(env, box):
    secret = 'pa55 w0rd;$(rm -rf /)'
    result = api(env, argv=['sh', '-c', 'echo "$SECRET|$PATH|$HOSTNAME|$EXTRA"; pwd; id -u; id -g'],
                 env={'SECRET': secret, 'EXTRA': 5}, user='app', chdir='/tmp')
    lines = result['stdout_lines']
    assert lines[0] == '%s|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|test-box|5' % secret
    assert lines[1:] == ['/tmp', '1000', '1000']
    assert api(env, argv=['id', '-u'], user='1000:0')['stdout'] == '1000'
    assert api(env, argv=['id', '-g'], user='1000:0')['stdout'] == '0'
    assert api(env, argv=['id', '-u'])['stdout'] == '0', "the container's user by default"
    with pytest.raises(RuncibleError, match='not in the root filesystem'):
        api(env, argv=['true'], user='nosuchuser')
    bad_dir = api(env, argv=['pwd'], chdir='/no/such/dir')
    assert bad_dir['failed'] and 'chdir' in bad_dir['msg'] and '/no/such/dir' in bad_dir['msg']
    run_dir = env.engine.paths(env.engine.store.load('test-box')).run_dir
    assert not [name for name in os.listdir(run_dir) if name.startswith('exec-')], 'process spec files are removed'

    # Through Ansible: secrets are no_log, so a secret printed by the command is masked in the result;
    # env is plain configuration, shown as it is.
    played = env.playbook([{MODULE: {'container': 'test-box', 'argv': ['sh', '-c', 'echo "$SECRET $PLAIN"'],
                                     'secrets': {'SECRET': 'hunter2-secret'}, 'env': {'PLAIN': 'visible'}}}],
                          extra_args=['-v'])[0]
    assert played['stdout'].endswith(' visible') and 'hunter2-secret' not in played['_output']


def test_exec_gets_the_containers_capabilities_and_limits(env, box):
    def status_of(pid_text):
        fields = {}
        for line in pid_text.splitlines():
            key, _sep, value = line.partition(':')
            fields[key] = value.strip()
        return fields

    with open('/proc/%d/status' % box['pid']) as handle:
        init = status_of(handle.read())
    as_root = status_of(api(env, argv=['cat', '/proc/self/status'])['stdout'])
    for key in ('CapEff', 'CapPrm', 'CapBnd', 'NoNewPrivs', 'Seccomp'):
        assert as_root[key] == init[key], key
    as_app = status_of(api(env, argv=['cat', '/proc/self/status'], user='app')['stdout'])
    assert as_app['CapEff'] == '0000000000000000' and as_app['CapBnd'] == init['CapBnd']
    with open('/proc/%d/limits' % box['pid']) as handle:
        init_limits = [line for line in handle if line.startswith('Max open files')]
    assert [line + '\n' for line in api(env, argv=['cat', '/proc/self/limits'])['stdout_lines']
            if line.startswith('Max open files')] == init_limits


def test_stdin(env, box):
    assert api(env, argv=['cat'], stdin='hello\nworld')['stdout'] == 'hello\nworld'
    assert api(env, argv=['cat'], stdin='')['stdout'] == ''
    assert api(env, argv=['cat'])['stdout'] == '', 'no stdin: /dev/null'
    big = ''.join('line %06d\n' % index for index in range(200000))  # 2.4 MB, far above a pipe's 64 KB
    assert api(env, argv=['wc', '-c'], stdin=big)['stdout'].strip() == str(len(big))
    # A command that never reads stdin does not block the task.
    assert api(env, argv=['echo', 'ignored'], stdin=big)['stdout'] == 'ignored'
    played = env.playbook([{MODULE: {'container': 'test-box', 'argv': ['sed', 's/^/> /'], 'stdin': 'a\nb\n'}}])[0]
    assert played['stdout_lines'] == ['> a', '> b']


def test_large_and_binary_output(env, box):
    size = 8 * 1024 * 1024
    both = api(env, argv=['sh', '-c', 'head -c %d /dev/zero | tr "\\0" a; head -c %d /dev/zero | tr "\\0" b >&2'
                                      % (size, size)])
    assert len(both['stdout']) == size and set(both['stdout']) == {'a'}
    assert len(both['stderr']) == size and set(both['stderr']) == {'b'}
    interleaved = api(env, argv=['sh', '-c', 'i=0; while [ $i -lt 3000 ]; do echo out$i; echo err$i >&2; '
                                             'i=$((i+1)); done'])
    assert interleaved['stdout_lines'] == ['out%d' % i for i in range(3000)]
    assert interleaved['stderr_lines'] == ['err%d' % i for i in range(3000)]

    binary = api(env, argv=['printf', 'ok\\377\\376\\000end\\n\\n\\n'])
    assert binary['stdout'] == 'ok\ufffd\ufffd\x00end'
    kept = api(env, argv=['printf', 'a\\n\\n'], strip_empty_ends=False)
    assert kept['stdout'] == 'a\n\n'

    results = env.playbook([
        {MODULE: {'container': 'test-box', 'argv': ['sh', '-c', 'head -c %d /dev/zero | tr "\\0" x' % size]},
         'register': 'big'},
        {'ansible.builtin.assert': {'that': ['big.stdout | length == %d' % size]}},
        {MODULE: {'container': 'test-box', 'argv': ['printf', '\\377\\376 bytes']}},
    ])
    assert results[2]['stdout'] == '\ufffd\ufffd bytes'


def test_timeout_kills_everything_and_leaves_no_zombie(env, box):
    since = ticks_now()
    start = time.monotonic()
    # Background children, one that calls setsid, one that ignores SIGTERM, all holding the pipes.
    script = ('sleep 1001 & setsid sleep 1002 & (trap "" TERM; sleep 1003) & '
              'echo started; sleep 1004')
    results = env.playbook([{MODULE: {'container': 'test-box', 'argv': ['sh', '-c', script], 'timeout': 1.5},
                             'ignore_errors': True}])
    elapsed = time.monotonic() - start
    result = results[0]
    assert result['_status'] == 'failed'
    assert 'timed out after 1.5 seconds' in result['msg']
    assert result['stdout'] == 'started' and result['rc'] == 137
    assert elapsed < 30
    assert wait_for(lambda: not foreign_processes(box), timeout=5), foreign_processes(box)
    assert not [pid for pid, (state, _cmd) in container_processes(box).items() if state == 'Z'], 'a zombie in the container'
    assert not host_zombies(since), host_zombies(since)
    assert not [line for line in os.popen('ps -eo args').read().splitlines()
                if line.strip() in ('sleep 1001', 'sleep 1002', 'sleep 1003', 'sleep 1004')]
    assert env.inspect('test-box')['status'] == 'running', 'the container itself lives on'


def test_leftover_background_processes_are_killed_when_the_command_ends(env, box):
    since = ticks_now()
    start = time.monotonic()
    result = api(env, argv=['sh', '-c', 'sleep 2001 & setsid sleep 2002 & echo done'])
    assert result['stdout'] == 'done' and result['rc'] == 0
    assert time.monotonic() - start < 5, 'a background child holding the pipes must not make the task wait'
    assert wait_for(lambda: not foreign_processes(box), timeout=5), foreign_processes(box)
    assert not host_zombies(since)


def test_timeout_without_a_cgroup_falls_back_to_the_session(env, box):
    since = ticks_now()
    result = _exec.run({'root': env.root, 'run_root': env.run_root, 'container': 'test-box', 'timeout': 1,
                        'argv': ['sh', '-c', 'sleep 3001 & (sleep 3002 &) ; echo started; sleep 3003']},
                       use_cgroup=False)
    assert result['failed'] and 'timed out after 1 seconds' in result['msg']
    assert wait_for(lambda: not foreign_processes(box), timeout=5), foreign_processes(box)
    assert not host_zombies(since)


def test_concurrent_execs_into_one_container(env, box):
    results = {}

    def worker(index):
        results[index] = api(env, argv=['sh', '-c', 'echo start-%d; sleep 0.3; head -c 200000 /dev/zero | tr "\\0" %s; '
                                                    'echo; echo end-%d' % (index, 'abcdefgh'[index], index)])

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index in range(8):
        lines = results[index]['stdout_lines']
        assert lines[0] == 'start-%d' % index and lines[-1] == 'end-%d' % index
        assert lines[1] == 'abcdefgh'[index] * 200000

    played = env.playbook([
        {'name': 'in parallel', MODULE: {'container': 'test-box', 'argv': ['sh', '-c', 'sleep 0.5; echo {{ item }}']},
         'loop': list(range(6)), 'async': 60, 'poll': 0, 'register': 'jobs'},
        {'name': 'wait', 'ansible.builtin.async_status': {'jid': '{{ item.ansible_job_id }}'},
         'loop': '{{ jobs.results }}', 'register': 'done', 'until': 'done.finished', 'retries': 200, 'delay': 0.2},
    ])
    finished = played[1]['results']
    assert sorted(item['stdout'] for item in finished) == [str(index) for index in range(6)]
    assert not foreign_processes(box)


def test_detach_returns_the_pid_and_the_process_keeps_running(env, box):
    result = env.playbook([{MODULE: {'container': 'test-box', 'argv': ['sleep', '4242'], 'detach': True}}])[0]
    assert result['changed'] and result['rc'] == 0 and result['pid'] > 0
    pid = result['pid']
    assert 'sleep 4242' in _cmdline(pid)
    assert pid in container_processes(box), 'it runs inside the container'
    # It is in the container's own cgroup, not in a per-exec one (which would be removed).
    with open('/proc/%d/cgroup' % pid) as handle:
        assert 'runcible-exec-' not in handle.read()
    bad = env.playbook([{MODULE: {'container': 'test-box', 'argv': ['true'], 'detach': True, 'stdin': 'some input'},
                         'ignore_errors': True}])[0]
    assert bad['_status'] == 'failed' and 'mutually exclusive' in bad['msg']
    failed = api(env, argv=['/no/such/program'], detach=True)
    assert failed['failed'] and 'no such file or directory' in failed['msg']


def test_exec_into_stopped_paused_or_absent_fails_naming_the_status(env):
    env.run(name='test-box', rootfs=env.rootfs, command=['sh', '-c', LOOP], state='stopped')
    env.run(name='test-paused', rootfs=env.rootfs, command=['sh', '-c', LOOP], state='paused')
    results = env.playbook([
        {'name': 'stopped', MODULE: {'container': 'test-box', 'argv': ['true']}, 'ignore_errors': True},
        {'name': 'paused', MODULE: {'container': 'test-paused', 'argv': ['true']}, 'ignore_errors': True},
        {'name': 'absent', MODULE: {'container': 'test-nothere', 'argv': ['true']}, 'ignore_errors': True},
        {'name': 'absent check', MODULE: {'container': 'test-nothere', 'argv': ['true'], 'creates': '/x'},
         'check_mode': True},
        {'name': 'bad name', MODULE: {'container': '../etc', 'argv': ['true']}, 'ignore_errors': True},
    ])
    by_name = dict((r['_task'], r) for r in results)
    for status, name in (('stopped', 'test-box'), ('paused', 'test-paused'), ('absent', 'test-nothere')):
        result = by_name[status]
        assert result['_status'] == 'failed'
        assert result['msg'].startswith('cannot exec in container %s: it is %s' % (name, status)), result['msg']
        assert result['container_status'] == status
    check = by_name['absent check']
    assert check['_status'] == 'ok' and check['changed'] and check['container_status'] == 'absent'
    assert 'is absent now' in check['msg']
    assert 'invalid container name' in by_name['bad name']['msg']
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-nothere'))


def test_bad_timeout_is_rejected(env, box):
    with pytest.raises(RuncibleError, match='must be more than 0 seconds'):
        api(env, argv=['true'], timeout=0)


# -- the container's files are the container's ----------------------------------------------------------------

HOST_PASSWD = 'hostonly:x:4321:4321:host only:/host-only-home:/bin/sh\napp:x:4321:4321::/:/bin/sh\n'


@pytest.mark.timeout(300)
def test_user_is_never_looked_up_in_a_host_file_the_container_links_to(env, box, tmp_path):
    """A process in the container makes /etc/passwd a symlink to a host path: only the container's view counts."""
    host_file = tmp_path / 'host-passwd'
    host_file.write_text(HOST_PASSWD)
    assert api(env, argv=['ln', '-sf', str(host_file), '/etc/passwd'])['rc'] == 0
    with open(in_container(box, '/etc/passwd')) as handle:
        assert handle.read() == HOST_PASSWD, 'the attack is real: the host, following the link, reads its own file'

    with pytest.raises(RuncibleError, match="user: 'hostonly' is not in the root filesystem's /etc/passwd"):
        api(env, argv=['id', '-u'], user='hostonly')
    with pytest.raises(RuncibleError, match="user: 'app' is not in the root filesystem's /etc/passwd"):
        api(env, argv=['id', '-u'], user='app')
    assert api(env, argv=['sh', '-c', 'id -u; id -g'], user='4321')['stdout_lines'] == ['4321', '0'], \
        'a numeric uid takes no gid from the host file'
    played = env.playbook([{MODULE: {'container': 'test-box', 'argv': ['id', '-u'], 'user': 'hostonly'},
                            'ignore_errors': True}])[0]
    assert played['_status'] == 'failed'
    assert "user: 'hostonly' is not in the root filesystem's /etc/passwd" in played['msg'], played['msg']

    # An absolute link to a file that is in the container is followed there, as the container does.
    assert api(env, argv=['sh', '-c', 'mkdir -p /usr/share/base && echo "app:x:1234:1234::/home/app:/bin/sh" '
                                      '> /usr/share/base/passwd && ln -sf /usr/share/base/passwd /etc/passwd'])['rc'] == 0
    assert api(env, argv=['sh', '-c', 'id -u; id -g'], user='app')['stdout_lines'] == ['1234', '1234']
    assert not os.path.islink(os.path.join(env.rootfs, 'etc', 'passwd')), 'the shared root filesystem is untouched'


@pytest.mark.timeout(120)
@pytest.mark.parametrize('fifo', ['/etc/passwd', '/etc/group'])
def test_a_fifo_for_the_user_database_does_not_hang_container_exec(env, box, fifo):
    """A process in the container makes /etc/passwd (or /etc/group) a FIFO: every exec fails at once, none hangs.

    Our lookup never opens it; runc, which opens both in the container for any user, is not started.
    """
    assert api(env, argv=['sh', '-c', 'rm %s && mkfifo %s' % (fifo, fifo)])['rc'] == 0
    started = time.monotonic()
    refused = '%s in the root filesystem is refused: a FIFO, not a regular file' % fifo
    blocked = ('cannot exec in container test-box: %s in its root filesystem is a FIFO, not a regular file, and the OCI '
               'runtime would block reading it' % fifo)
    with pytest.raises(RuncibleError, match=refused if fifo == '/etc/passwd' else blocked):
        api(env, argv=['true'], user='app')
    with pytest.raises(RuncibleError, match='cannot look up the group of uid 1000: ' + refused
                       if fifo == '/etc/passwd' else blocked):
        api(env, argv=['true'], user='1000')
    with pytest.raises(RuncibleError, match=refused):
        api(env, argv=['true'], user='app:app')
    for user in ('1000:1000', None):
        with pytest.raises(RuncibleError, match=blocked):
            api(env, argv=['true'], user=user)
    with pytest.raises(RuncibleError, match=blocked):
        api(env, check_mode=True, argv=['true'])
    # creates/removes only look: a FIFO exists, and nothing opens it.
    assert not api(env, argv=['true'], creates=fifo)['changed']
    assert time.monotonic() - started < 10
    played = env.playbook([{MODULE: {'container': 'test-box', 'argv': ['true'], 'user': 'app'}, 'ignore_errors': True}])[0]
    assert played['_status'] == 'failed' and 'a FIFO, not a regular file' in played['msg'], played['msg']
    assert os.path.isfile(os.path.join(env.rootfs, fifo.lstrip('/'))), 'the shared root filesystem is untouched'


# The exec of a task, in a process of its own as under ansible-playbook: argv = collections path, root, run_root, user.
EXEC_IN_A_PROCESS = r'''
import sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.runcible.oci.plugins.module_utils._runtime import execute, stream
from ansible_collections.runcible.oci.plugins.module_utils._runtime.engine import Engine

engine = Engine(sys.argv[2], sys.argv[3])
record, live = engine.inspect('test-box')
paths = engine.paths(record)
process = execute.build_process(execute.load_container_process(paths.config_json), ['echo', 'never'])
run = stream.run if sys.argv[4] == 'connection' else execute.run_attached
print('running', flush=True)
run(engine.runtime_for(record), record['id'], paths.run_dir, process, live['pid'])
'''


@pytest.mark.timeout(120)
@pytest.mark.parametrize('user', ['container_exec', 'connection'])
def test_ctrl_c_kills_runc_blocked_on_a_fifo_before_waiting_for_it(env, box, user):
    """runc's init opens the container's /etc/passwd: a FIFO there blocks it, and runc waits for it for ever.

    container_exec and the connection refuse such a container up front, but a process in it can plant the
    FIFO after that check. Interrupted then (Ctrl-C; Ansible's task timeout alike), the exec kills runc and
    its init first, and only then waits: it ends at once and leaves nothing behind. Should it wait first,
    a writer opening the FIFO lets the init go afterwards, so that the test ends.
    """
    assert api(env, argv=['sh', '-c', 'rm /etc/passwd && mkfifo /etc/passwd'])['rc'] == 0
    fifo = in_container(box, '/etc/passwd')
    run_dir = env.engine.paths(env.engine.inspect('test-box')[0]).run_dir
    since = ticks_now()
    proc = subprocess.Popen([sys.executable, '-c', EXEC_IN_A_PROCESS, COLLECTIONS, env.root, env.run_root, user],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b'running\n'
        assert wait_for(lambda: foreign_processes(box), timeout=10), "runc's init never showed in the container"
        time.sleep(0.5)
        blocked = foreign_processes(box)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        _out, err = proc.communicate(timeout=60)
    assert [cmdline.endswith('runc init') for _state, cmdline in blocked.values()] == [True], blocked
    assert elapsed < 15, 'after Ctrl-C, the exec still waited for runc %.1f s later' % elapsed
    assert b'KeyboardInterrupt' in err, err.decode('utf-8', 'replace')
    # runc's init, blocked, or killed but not reaped, would be one of them.
    assert wait_for(lambda: not foreign_processes(box), timeout=5), foreign_processes(box)
    assert not host_zombies(since), host_zombies(since)
    assert not [name for name in os.listdir(run_dir) if name.startswith('exec-')], 'exec files left behind'
