# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container names on DNS-enabled networks: one aardvark-dns process per host (Debian: aardvark-dns).

aardvark-dns serves every DNS-enabled network on its gateway address (port 53), answers the names
of the containers on that network (name and ``aliases``) and forwards other names (to a container's
``dns`` servers when it has them, else to the host's resolvers). It reads one file per network from
its configuration directory ``DNS_DIR`` (a tmpfs: a reboot empties it, as it ends the process)::

    GATEWAY                                   first line: the addresses it listens on
    ID IPV4 IPV6 NAME,ALIAS...[ SERVER,...]   one line per container (IPV6 empty: an empty field)

re-reads them on SIGHUP, and exits on its own when a SIGHUP finds no file left. Its pid is in
``DNS_DIR/aardvark.pid`` (written by the process itself once it runs in the background).

``sync(data)`` is the only entry: called under the network registry's lock with the registry's
document whenever an attachment changes, it writes the file of every DNS-enabled network that has an
attached container, removes the others, then starts aardvark-dns (none running: the first container,
or one killed behind our back), signals it (a file changed) or lets it go (no file left).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
from typing import TYPE_CHECKING

from .errors import RuncibleError
from .files import atomic_write
from .host import find_program, wait_until

if TYPE_CHECKING:
    from typing import Any

DNS_DIR = '/run/runcible/aardvark-dns'
PID_FILE = 'aardvark.pid'
PORT = 53
PROGRAM = 'aardvark-dns'
PROGRAM_DIRS = ('/usr/lib/podman', '/usr/libexec/podman', '/usr/local/libexec/podman', '/usr/local/lib/podman')
START_TIMEOUT = 10.0
LISTEN_WAIT = 3.0
EXIT_WAIT = 3.0


def enabled(network: dict[str, Any] | None) -> bool:
    """Does ``network`` (a registry definition) serve names? (Definitions older than the option: no.)"""
    return bool(network and network.get('dns'))


def program() -> str:
    for directory in PROGRAM_DIRS:
        path = os.path.join(directory, PROGRAM)
        if os.access(path, os.X_OK):
            return path
    found = find_program(PROGRAM)
    if not found:
        raise RuncibleError('aardvark-dns not found (in %s or PATH): install the aardvark-dns package, or create the '
                            'network with dns: false' % ', '.join(PROGRAM_DIRS))
    return found


def container_names(allocation: dict[str, Any]) -> list[str]:
    """The names a container answers to on its network: its name, then its aliases (once each)."""
    names = [allocation['name']]
    for alias in allocation.get('aliases') or []:
        if alias not in names:
            names.append(alias)
    return names


def render(network: dict[str, Any], members: list[tuple[str, dict[str, Any]]]) -> str:
    """The aardvark-dns file of ``network`` with the attached containers ``members`` [(id, allocation)]."""
    lines = [network['gateway']]
    for container_id, allocation in sorted(members, key=lambda item: (item[1]['name'], item[0])):
        line = '%s %s %s %s' % (container_id.split(':', 1)[0], allocation['ip'], allocation.get('ip6') or '',
                                ','.join(container_names(allocation)))
        if allocation.get('dns_servers'):
            line += ' ' + ','.join(allocation['dns_servers'])
        lines.append(line)
    return '\n'.join(lines) + '\n'


def wanted_files(data: dict[str, Any]) -> dict[str, str]:
    """{file name (the network's name): content} of every DNS-enabled network with an attached container."""
    members: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for container_id, allocation in data['allocations'].items():
        network = data['networks'].get(allocation.get('network'))
        if allocation.get('attached') and enabled(network):
            members.setdefault(allocation['network'], []).append((container_id, allocation))
    return dict((name, render(data['networks'][name], found)) for name, found in members.items())


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def running_pid(directory: str = DNS_DIR) -> int | None:
    """The pid of our aardvark-dns (its pid file, and that process is aardvark-dns), else None."""
    text = _read(os.path.join(directory, PID_FILE))
    if not text or not text.strip().isdigit():
        return None
    pid = int(text.strip())
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            argv = handle.read().split(b'\0')
    except (IOError, OSError):
        return None
    if not argv or os.path.basename(argv[0].decode('utf-8', 'replace')) != PROGRAM:
        return None
    if directory.encode() not in argv:
        return None  # an aardvark-dns of someone else (podman's, say) that reuses the pid
    return pid


def _listening(addresses: list[str]) -> bool:
    """Is some socket bound to UDP ADDRESS:53 for each of ``addresses`` (IPv4, /proc/net/udp)?"""
    wanted = set()
    for address in addresses:
        wanted.add('%08X:%04X' % (int.from_bytes(socket.inet_aton(address), 'little'), PORT))
    try:
        with open('/proc/net/udp') as handle:
            bound = set(line.split()[1] for line in handle.read().splitlines()[1:] if len(line.split()) > 1)
    except (IOError, OSError):
        return True  # cannot tell: trust the pid file
    return wanted <= bound


def gateways(files: dict[str, str]) -> list[str]:
    return [content.split('\n', 1)[0].split(' ')[0] for content in files.values()]


def start(directory: str, files: dict[str, str]) -> int:
    """Start aardvark-dns on ``directory``; -> its pid, once it listens on every gateway."""
    argv = [program(), '--config', directory, '--port', str(PORT), 'run']
    try:
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=START_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuncibleError('cannot start aardvark-dns: %s' % exc)
    # Its parent returns once the server wrote its pid file; it says nothing useful on success (syslog).
    output = proc.stdout.decode('utf-8', 'replace').replace('failed to connect to syslog: Initialization', '').strip()
    pid = running_pid(directory)
    if proc.returncode != 0 or pid is None:
        said = ': %s' % output if output else ''
        raise RuncibleError('aardvark-dns did not start (exit code %d)%s' % (proc.returncode, said))
    addresses = gateways(files)
    if not wait_until(lambda: _listening(addresses) or running_pid(directory) is None, LISTEN_WAIT,
                      first_delay=0.002, max_delay=0.02) or running_pid(directory) is None:
        stop(directory)
        raise RuncibleError('aardvark-dns does not answer on %s port %d (is another name server bound to port 53 '
                            'on every address?)' % (', '.join(addresses), PORT))
    return pid


def stop(directory: str = DNS_DIR) -> None:
    """End our aardvark-dns (when it runs): SIGTERM, then SIGKILL; its pid file goes with it."""
    pid = running_pid(directory)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: running_pid(directory) != pid, EXIT_WAIT, first_delay=0.002, max_delay=0.02):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: running_pid(directory) != pid, EXIT_WAIT, first_delay=0.002, max_delay=0.02)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(directory, PID_FILE))


def sync(data: dict[str, Any], directory: str = DNS_DIR) -> bool:
    """Make aardvark-dns serve what the registry ``data`` says (the caller holds the registry lock); -> changed.

    Cheap when nothing changed and it runs: a read of each file and of its pid file, no process, no signal.
    """
    files = wanted_files(data)
    if not files and not os.path.isdir(directory):
        return False
    os.makedirs(directory, mode=0o700, exist_ok=True)
    changed = False
    for name in os.listdir(directory):
        if name != PID_FILE and name not in files:  # a .tmp- file too: a write a killed task left
            os.unlink(os.path.join(directory, name))
            changed = True
    for name, content in files.items():
        path = os.path.join(directory, name)
        if _read(path) != content:
            atomic_write(path, content, mode=0o600)
            changed = True
    pid = running_pid(directory)
    if not files:
        if pid is not None:
            stop(directory)  # (a SIGHUP would end it too, but not under our eyes)
            return True
        return changed
    if pid is None:
        start(directory, files)
        return True
    if changed:
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise RuncibleError('cannot signal aardvark-dns (pid %d): %s' % (pid, exc))
            start(directory, files)
    return changed


def problems(data: dict[str, Any], directory: str = DNS_DIR) -> list[str]:
    """What the network task repairs: aardvark-dns not running, or its files not what the registry says."""
    files = wanted_files(data)
    found = []
    if any(_read(os.path.join(directory, name)) != content for name, content in files.items()):
        found.append('aardvark-dns files out of date')
    if files and running_pid(directory) is None:
        found.append('aardvark-dns not running')
    return found
