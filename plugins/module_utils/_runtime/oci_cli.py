# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OCI runtime command line (runc, crun): one ``--root`` for every call, errors with the runtime's own text."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING

from .errors import RuntimeCommandError, ValidationError
from .host import cgroup_mode, find_program

if TYPE_CHECKING:
    from typing import Any

KNOWN_RUNTIMES = ('crun', 'runc')
DEBIAN_PACKAGES = {'runc': 'runc', 'crun': 'crun', 'conmon': 'conmon', 'criu': 'criu'}
DEFAULT_TIMEOUT = 120


def unsupported_reason(runtime_name: str, mode: str) -> str | None:
    """Why a runtime cannot work on this host, or None."""
    if runtime_name == 'crun' and mode == 'hybrid':
        return ('crun refuses hybrid cgroups (v1 controllers with cgroup v2 at /sys/fs/cgroup/unified: '
                '"cgroups in hybrid mode not supported")')
    return None


def select_runtime(requested: str | None = None, mode: str | None = None) -> tuple[str, str, list[str]]:
    """-> (name, path, warnings). ``requested``: None/``auto``, ``runc``, ``crun`` or an absolute path."""
    mode = mode or cgroup_mode()
    warnings = []
    if requested in (None, '', 'auto'):
        for candidate in KNOWN_RUNTIMES:
            path = find_program(candidate)
            if not path:
                continue
            reason = unsupported_reason(candidate, mode)
            if reason:
                warnings.append('%s is installed but %s; using the next runtime' % (candidate, reason))
                continue
            return candidate, path, warnings
        raise ValidationError('no working OCI runtime found: install the Debian package "runc" (or "crun" on a '
                              'host with cgroup v2 or v1 only)')
    if os.path.isabs(requested):
        if not (os.path.isfile(requested) and os.access(requested, os.X_OK)):
            raise ValidationError('runtime %s does not exist or is not executable' % requested)
        name = os.path.basename(requested)
        path = requested
    elif requested in KNOWN_RUNTIMES:
        name = requested
        path = find_program(requested)
        if not path:
            raise ValidationError('%s not found: install the Debian package "%s", or choose another runtime'
                                  % (requested, DEBIAN_PACKAGES[requested]))
    else:
        raise ValidationError('unknown runtime %r: use runc, crun or the absolute path of an OCI runtime' % requested)
    reason = unsupported_reason(name, mode)
    if reason:
        raise ValidationError('runtime %s cannot run containers on this host: %s. Use runtime: runc' % (name, reason))
    return name, path, warnings


def _log_errors(log_path: str, offset: int) -> list[str]:
    """The error messages the runtime wrote to its JSON log after ``offset``."""
    messages = []
    try:
        with open(log_path, 'rb') as handle:
            handle.seek(offset)
            for line in handle.read().decode('utf-8', 'replace').splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    if line.strip():
                        messages.append(line.strip())
                    continue
                if isinstance(entry, dict) and entry.get('level') in ('error', 'fatal', 'panic'):
                    messages.append(str(entry.get('msg', '')))
    except (IOError, OSError):
        pass
    return messages


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except (IOError, OSError):
        return 0


class OCIRuntime(object):
    """One OCI runtime binary with one state ``--root``; ``log_path`` collects its JSON log."""

    def __init__(self, name: str, path: str, state_root: str, log_path: str | None = None, criu_path: str | None = None) -> None:
        self.name = name
        self.path = path
        self.state_root = state_root
        self.log_path = log_path
        self.criu_path = criu_path
        self.systemd_cgroup = False

    def global_args(self, log_path: str | None = None) -> list[str]:
        args = ['--root', self.state_root]
        if self.systemd_cgroup:
            args.append('--systemd-cgroup')
        if self.criu_path and self.name == 'runc':
            args += ['--criu', self.criu_path]
        log_path = log_path or self.log_path
        if log_path:
            args += ['--log', log_path, '--log-format', 'json']
        return args

    def run(self, args: list[str], timeout: float | None = DEFAULT_TIMEOUT, check: bool = True, input_data: bytes | None = None,
            log_path: str | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run ``runtime --root R [--log L] ARGS``; -> CompletedProcess. Raises with the runtime's own words."""
        log_path = log_path or self.log_path
        offset = _file_size(log_path) if log_path else 0
        argv = [self.path] + self.global_args(log_path) + list(args)
        try:
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL if input_data is None else None,
                                  input=input_data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout, close_fds=True, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeCommandError('%s %s did not finish within %ss' % (self.name, args[0], timeout), argv=argv)
        except OSError as exc:
            raise RuntimeCommandError('cannot run %s: %s' % (self.path, exc), argv=argv)
        if check and proc.returncode != 0:
            raise self.error(args[0], proc, log_path, offset, argv)
        return proc

    def error(self, action: str, proc: subprocess.CompletedProcess[bytes], log_path: str | None, offset: int,
              argv: list[str]) -> RuntimeCommandError:
        stderr = proc.stderr.decode('utf-8', 'replace').strip()
        messages = _log_errors(log_path, offset) if log_path else []
        text = '; '.join(messages) or stderr or 'exit code %d' % proc.returncode
        return RuntimeCommandError('%s %s failed: %s' % (self.name, action, text), argv=argv, rc=proc.returncode,
                                   stderr=stderr, runtime_log=log_path)

    # -- commands -------------------------------------------------------------------------------
    def knows(self, container_id: str) -> bool:
        """Cheap check (no subprocess): does the runtime keep state for this container?"""
        return os.path.isdir(os.path.join(self.state_root, container_id))

    def start(self, container_id: str) -> None:
        self.run(['start', container_id])

    def kill(self, container_id: str, signal_number: int, all_processes: bool = False) -> bool:
        args = ['kill'] + (['--all'] if all_processes else []) + [container_id, str(signal_number)]
        proc = self.run(args, check=False)
        return proc.returncode == 0

    def delete(self, container_id: str, force: bool = True) -> bool:
        if not self.knows(container_id):
            return False
        self.run(['delete'] + (['--force'] if force else []) + [container_id])
        return True

    def pause(self, container_id: str) -> None:
        self.run(['pause', container_id])

    def resume(self, container_id: str) -> None:
        self.run(['resume', container_id])

    def version(self) -> str:
        """-> e.g. ``runc version 1.1.5+ds1`` (first line of --version)."""
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        proc = subprocess.run([self.path, '--version'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=30, check=False)
        lines = proc.stdout.decode('utf-8', 'replace').strip().splitlines()
        return lines[0] if lines else 'unknown'

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        self.run(['update', '--resources', '-', container_id], input_data=json.dumps(resources).encode())
