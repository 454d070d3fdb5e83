# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one ``runcible.oci.container_exec`` task does.

    params    -> argv, env, user, chdir, paths (validated; bad input raises here)
    container -> must be running (record + live status, no subprocess)
    creates / removes -> decide on paths inside the container (also in check mode)
    run       -> runtime exec (skipped in check mode)
    result    -> rc, stdout, stderr, ... like ansible.builtin.command; ``failed`` when rc != 0

``run(params, check_mode)`` is the Python API the module wraps. No lock is taken: execs into one
container run concurrently, and never change the container's record.
"""

from __future__ import annotations

import datetime

from ._runtime import execute
from ._runtime.engine import Engine
from ._runtime.errors import RuncibleError, ValidationError
from ._runtime.parsers import absolute_path, check_user_db, resolve_user, split_command, string_dict, validate_name
from ._task import common_argument_spec, with_defaults


def argument_spec():
    spec = dict(
        container=dict(type='str', required=True, aliases=['name']),
        argv=dict(type='list', elements='str'),
        command=dict(type='str'),
        env=dict(type='dict'),
        secrets=dict(type='dict', no_log=True),
        user=dict(type='str'),
        chdir=dict(type='str'),
        stdin=dict(type='str', no_log=True),
        timeout=dict(type='float'),
        detach=dict(type='bool', default=False),
        creates=dict(type='str'),
        removes=dict(type='str'),
        strip_empty_ends=dict(type='bool', default=True),
    )
    spec.update(common_argument_spec())
    return spec


MUTUALLY_EXCLUSIVE = [('argv', 'command'), ('detach', 'stdin'), ('detach', 'timeout')]
REQUIRED_ONE_OF = [('argv', 'command')]


def task_argv(params):
    """The command as a list: ``argv`` as given, or ``command`` split like a POSIX shell (none runs)."""
    if params.get('argv') is not None and params.get('command') is not None:
        raise ValidationError('argv and command are mutually exclusive: give the command one way')
    if params.get('argv') is not None:
        argv = split_command(list(params['argv']), 'argv')
    elif params.get('command') is not None:
        argv = split_command(params['command'], 'command')
    else:
        raise ValidationError('one of argv or command is required')
    return argv


def task_env(value, option='env'):
    """``env`` (or ``secrets``) as a dict of strings; names must not contain ``=`` and values no NUL byte."""
    env = string_dict(value, option) or {}
    for key, item in env.items():
        if '\0' in key or '\0' in item:
            raise ValidationError('%s: %s holds a NUL byte, which an environment cannot carry' % (option, key))
    return env


def container_path(value, option):
    """An absolute path inside the container, kept as given: ``..`` after a symlink must not be folded away."""
    if not value:
        return None
    if not str(value).startswith('/'):
        raise ValidationError('%s: %r is not an absolute path (it is a path inside the container)' % (option, value))
    return str(value)


def task_timeout(value):
    if value is None:
        return None
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise ValidationError('timeout: %r is not a number of seconds' % (value,))
    if timeout <= 0:
        raise ValidationError('timeout: %r must be more than 0 seconds (leave it out for no timeout)' % (value,))
    return timeout


class ExecTask(object):
    def __init__(self, params, check_mode=False, use_cgroup=True):
        """``params``: complete, as ``_task.with_defaults(argument_spec(), ...)`` gives them."""
        self.params = params
        self.check_mode = check_mode
        self.use_cgroup = use_cgroup
        self.name = validate_name(params['container'])
        self.argv = task_argv(params)
        self.env = task_env(params.get('env'))
        self.env.update(task_env(params.get('secrets'), 'secrets'))
        self.chdir = absolute_path(params['chdir'], 'chdir') if params.get('chdir') else None
        self.creates = container_path(params.get('creates'), 'creates')
        self.removes = container_path(params.get('removes'), 'removes')
        self.timeout = task_timeout(params.get('timeout'))
        self.detach = bool(params['detach'])
        stdin = params.get('stdin')
        if self.detach and (stdin is not None or self.timeout is not None):
            raise ValidationError('detach cannot be combined with stdin or timeout: a detached command runs on '
                                  'its own, with stdin, stdout and stderr on /dev/null')
        self.stdin = stdin.encode('utf-8', 'surrogateescape') if stdin is not None else None
        self.strip_empty_ends = params['strip_empty_ends']
        self.engine = Engine(params['root'], params['run_root'])

    def run(self):
        record, live = self.engine.inspect(self.name)
        status = live['status'] if record else 'absent'
        if status != 'running':
            return self._not_running(status)
        container_root = '/proc/%d/root' % live['pid']
        skip = self._skip_reason(container_root)
        if skip:
            return self._skipped(skip)
        user = resolve_user(self.params['user'], container_root) if self.params.get('user') else None
        check_user_db(container_root, 'cannot exec in container %s' % self.name)
        if self.check_mode:
            return {'changed': True, 'cmd': self.argv, 'rc': 0, 'stdout': '', 'stderr': '', 'stdout_lines': [],
                    'stderr_lines': [], 'msg': 'Command would have run if not in check mode'}
        paths = self.engine.paths(record)
        process = execute.build_process(execute.load_container_process(paths.config_json), self.argv, self.env,
                                        user, self.chdir)
        runtime = self.engine.runtime_for(record)
        start = datetime.datetime.now()
        if self.detach:
            outcome = execute.run_detached(runtime, record['id'], paths.run_dir, process)
        else:
            outcome = execute.run_attached(runtime, record['id'], paths.run_dir, process, live['pid'],
                                           stdin=self.stdin, timeout=self.timeout, use_cgroup=self.use_cgroup)
        end = datetime.datetime.now()
        return self._result(outcome, start, end, runtime.name)

    # -- the cases ------------------------------------------------------------------------------
    def _not_running(self, status):
        advice = {'absent': 'create and start it first (runcible.oci.container)',
                  'stopped': 'start it first (runcible.oci.container with state=started)',
                  'created': 'start it first (runcible.oci.container with state=started)',
                  'paused': 'unpause it first (runcible.oci.container with state=started)'}.get(status, '')
        if self.check_mode:
            # An earlier task of the same check-mode run may be the one that would create or start it.
            return {'changed': True, 'cmd': self.argv, 'rc': 0, 'stdout': '', 'stderr': '', 'stdout_lines': [],
                    'stderr_lines': [], 'container_status': status,
                    'msg': 'Command would have run if not in check mode; container %s is %s now, so a real run '
                           'fails unless an earlier task starts it' % (self.name, status)}
        raise RuncibleError('cannot exec in container %s: it is %s; %s' % (self.name, status, advice),
                            container_status=status, cmd=self.argv)

    def _skip_reason(self, container_root):
        if self.creates and execute.path_exists_in_root(container_root, self.creates):
            return '%s exists' % self.creates
        if self.removes and not execute.path_exists_in_root(container_root, self.removes):
            return '%s does not exist' % self.removes
        return None

    def _skipped(self, reason):
        return {'changed': False, 'cmd': self.argv, 'rc': 0, 'stdout': 'skipped, since %s' % reason, 'stderr': '',
                'stdout_lines': ['skipped, since %s' % reason], 'stderr_lines': [],
                'msg': 'Did not run command since %s' % reason}

    def _result(self, outcome, start, end, runtime_name):
        stdout = outcome.stdout.decode('utf-8', 'replace')
        stderr = outcome.stderr.decode('utf-8', 'replace')
        if self.strip_empty_ends:
            stdout = stdout.rstrip('\r\n')
            stderr = stderr.rstrip('\r\n')
        result = {'changed': True, 'cmd': self.argv, 'rc': outcome.rc, 'stdout': stdout, 'stderr': stderr,
                  'stdout_lines': stdout.splitlines(), 'stderr_lines': stderr.splitlines(),
                  'start': str(start), 'end': str(end), 'delta': str(end - start)}
        if self.detach:
            result['pid'] = outcome.pid
        if outcome.timed_out:
            result.update(failed=True, msg='the command timed out after %s seconds in container %s: it was killed '
                                           'with every process it started' % (_seconds(self.timeout), self.name))
        elif outcome.runtime_error:
            result.update(failed=True, msg='%s could not run the command in container %s: %s'
                                           % (runtime_name, self.name, outcome.runtime_error))
        elif outcome.rc != 0:
            result.update(failed=True, msg='non-zero return code')
        return result


def _seconds(value):
    return int(value) if float(value).is_integer() else value


def run(params, check_mode=False, use_cgroup=True):
    """Run one exec task; -> the module result (``failed`` set when the command failed).

    Raises RuncibleError subclasses for bad input and a container that is not running.
    """
    return ExecTask(with_defaults(argument_spec(), params), check_mode=check_mode, use_cgroup=use_cgroup).run()
