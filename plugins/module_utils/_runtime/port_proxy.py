# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Published ports the kernel cannot forward: IPv6 loopback, through a small proxy process per container.

IPv6 has no ``route_localnet``: a connection of the host to ``[::1]:PORT`` cannot be DNATed to a container
(the kernel drops a packet from ``::1`` that would leave ``lo``). So the host's own connections to ``::1``
of a port published on ``[::1]`` or ``[::]`` are carried by a proxy, docker-proxy's idea:

* The port's socket, bound at the launch like every published port (ports.reserve), goes to the proxy
  instead of conmon. The ``ip6`` table DNATs every other local address (``[::]`` reached on the host's
  other addresses, or from outside, still goes by DNAT at kernel speed); only ``::1`` comes here.
* TCP: each accepted connection is spliced to a new connection to the container's port, at its IPv6
  address on its first network (its IPv4 address when that network has no IPv6); half-closes pass on; a
  connection the container refuses is reset.
* UDP: each client address gets a socket connected to the container; the replies go back from the
  published socket; a client silent for ``UDP_IDLE`` seconds is forgotten.
* One process for all such ports of a container, started once conmon runs. It ends when conmon ends (a
  pidfd, polled where there is none), so a restart, a stop or a crash takes it along and frees the ports;
  it joins conmon's cgroup (its scope, or the unit of a unit-managed container); once it holds its sockets
  it runs as ``nobody``, without capability and with ``no_new_privs``. A task stops it with the container
  (network.detach), and a container task restarts one killed behind its back (``ports repaired``).

Only the standard library: it runs from the runtime library installed on the host (payload.py), as
``exit.py --port-proxy``, and never imports anything once it has dropped root.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from .errors import RuncibleError
from .host import kill, process_alive, read_proc_stat, wait_until

if TYPE_CHECKING:
    from typing import Any, Iterable

    from .ports import PortMapping

VERB = '--port-proxy'
BUFFER = 65536
UDP_IDLE = 60.0
UDP_SESSIONS = 512
TCP_CONNECTIONS = 1024
POLL = 1.0  # seconds between looks at conmon where there is no pidfd; and between sweeps of idle UDP clients
START_TIMEOUT = 30.0
STOP_WAIT = 5.0
NOBODY = 65534


def proxied(mapping: PortMapping) -> bool:
    """Does ``mapping``'s host port need the proxy (IPv6 loopback: published on ``[::1]`` or ``[::]``)?"""
    return mapping.ipv6() and mapping.host_ip in ('::', '::1')


def needed(record: dict[str, Any]) -> bool:
    """Does a running container lack the port proxy its IPv6 loopback ports need (killed, say)? Cheap: the task's
    idempotent path asks it of every running container with IPv6 published ports."""
    from .ports import expand  # pylint: disable=import-outside-toplevel
    wanted = [str(item) for item in (record.get('config') or {}).get('published_ports') or []]
    if not any(item.startswith('[') for item in wanted) or not record.get('network'):
        return False
    if not any(proxied(mapping) for mapping in expand(wanted)):
        return False
    return not alive(record['network'].get('proxy'))


def start(lib: str, listeners: Iterable[tuple[PortMapping, socket.socket]], target: str, watch_pid: int,
          watch_start: int | None) -> dict[str, Any]:
    """Start the proxy of a container's ``listeners`` (mapping, its bound socket) to ``target`` (the container's
    address), living as long as ``watch_pid`` (its conmon); -> what the record keeps of it (pid, start)."""
    from .payload import LAUNCHER  # pylint: disable=import-outside-toplevel
    listeners = list(listeners)
    argv = [sys.executable, '-I', '-B', os.path.join(lib, LAUNCHER), VERB, str(watch_pid), str(watch_start or 0), target]
    argv += ['%s:%d:%d' % (mapping.protocol, sock.fileno(), mapping.container_port) for mapping, sock in listeners]
    try:
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=[sock.fileno() for _mapping, sock in listeners], start_new_session=True)
        output, error = proc.communicate(timeout=START_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuncibleError('cannot start the port proxy of %s: %s' % (_texts(listeners), exc))
    text = output.decode('ascii', 'replace').strip()
    if proc.returncode != 0 or not text.isdigit():
        raise RuncibleError('the port proxy of %s did not start: %s'
                            % (_texts(listeners), error.decode('utf-8', 'replace').strip() or 'exit code %s' % proc.returncode))
    pid = int(text)
    stat = read_proc_stat(pid)
    return {'pid': pid, 'start': stat[1] if stat else None}


def _texts(listeners: list[tuple[PortMapping, socket.socket]]) -> str:
    return ', '.join(mapping.text() for mapping, _sock in listeners)


def alive(entry: dict[str, Any] | None) -> bool:
    return bool(entry) and process_alive(entry.get('pid'), entry.get('start'))  # type: ignore[union-attr]


def stop(entry: dict[str, Any] | None) -> None:
    """End a proxy (it ends with conmon anyway: this frees its ports now) and wait until it is gone."""
    if entry is None or not alive(entry):
        return
    kill(entry['pid'], signal.SIGKILL)
    wait_until(lambda: not alive(entry), STOP_WAIT, first_delay=0.002, max_delay=0.01)


# -- the proxy process ------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    """``--port-proxy WATCH_PID WATCH_START TARGET PROTO:FD:PORT...``: check, join conmon's cgroup, fork; the
    parent prints the proxy's pid (the caller waits for it), the child serves until conmon ends."""
    try:
        watch_pid, watch_start, target = int(argv[0]), int(argv[1]), argv[2]
        listeners = []
        for spec in argv[3:]:
            protocol, fd, port = spec.split(':')
            kind = socket.SOCK_STREAM if protocol == 'tcp' else socket.SOCK_DGRAM
            sock = socket.socket(fileno=int(fd))
            if sock.type != kind or sock.family != socket.AF_INET6:
                raise ValueError('fd %s is not an IPv6 %s socket' % (fd, protocol))
            if kind == socket.SOCK_STREAM:
                sock.listen(128)  # the reservation listened with a backlog of 1: connections come here now
            listeners.append((sock, protocol, int(port)))
        address = socket.getaddrinfo(target, None, 0, 0, 0, socket.AI_NUMERICHOST)[0]
    except (IndexError, ValueError, OSError) as exc:
        sys.stderr.write('%s: bad arguments %r: %s\n' % (VERB, argv, exc))
        return 2
    if not listeners:
        sys.stderr.write('%s: no port to serve\n' % VERB)
        return 2
    stat = read_proc_stat(watch_pid)
    if stat is None or (watch_start and stat[1] != watch_start):
        sys.stderr.write('%s: conmon (pid %d) is gone\n' % (VERB, watch_pid))
        return 1
    watch = _pidfd(watch_pid)
    _join_cgroup_of(watch_pid)
    child = os.fork()
    if child:
        sys.stdout.write('%d\n' % child)
        sys.stdout.flush()
        return 0
    try:
        _detach_stdio()
        _drop_privileges()
        Proxy(listeners, address[0], str(address[4][0]), watch, watch_pid, watch_start).serve()
    finally:
        os._exit(0)  # pylint: disable=protected-access  # the forked child never returns into the launcher


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]  # Python 3.9+, Linux 5.3+
    except (AttributeError, OSError):
        return None


def _join_cgroup_of(pid: int, root: str = '/sys/fs/cgroup') -> None:
    """Move this process into ``pid``'s cgroup of every hierarchy (best effort: it ends with conmon anyway)."""
    try:
        with open('/proc/%d/cgroup' % pid) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return
    unified = os.path.exists(os.path.join(root, 'cgroup.controllers'))
    for line in lines:
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        if parts[1] == '':
            mount = root if unified else os.path.join(root, 'unified')
        else:
            mount = os.path.join(root, parts[1].replace('name=', ''))
        try:
            with open(os.path.join(mount, parts[2].lstrip('/'), 'cgroup.procs'), 'w') as handle:
                handle.write(str(os.getpid()))
        except OSError:
            continue


def _detach_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.chdir('/')
    os.umask(0o077)


def _drop_privileges() -> None:
    """nobody, no supplementary group, no capability (a uid change from root clears them), no_new_privs."""
    import ctypes  # pylint: disable=import-outside-toplevel
    import pwd  # pylint: disable=import-outside-toplevel
    try:
        entry = pwd.getpwnam('nobody')
        uid, gid = entry.pw_uid, entry.pw_gid
    except KeyError:
        uid, gid = NOBODY, NOBODY
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError(errno.EPERM, 'still root after setuid')
    try:
        ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except (OSError, AttributeError):
        pass


class _End(object):
    """One socket of a spliced TCP connection and what waits to be written to it."""

    __slots__ = ('sock', 'pending', 'eof', 'shut', 'mask')

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()  # read from the other end, not yet written here
        self.eof = False  # nothing more comes for this end (the other end's peer sent its FIN)
        self.shut = False  # so its write side was shut, once pending was written
        self.mask = 0


class _Connection(object):
    """A client's connection (``ends[0]``) spliced to one to the container (``ends[1]``)."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.ends = (_End(client), _End(upstream))
        self.connecting = True


class Proxy(object):
    """The event loop (selectors): listeners, TCP connections, UDP clients, and conmon's pidfd."""

    def __init__(self, listeners: list[tuple[socket.socket, str, int]], family: int, target: str,
                 watch: int | None, watch_pid: int, watch_start: int | None) -> None:
        self.selector = selectors.DefaultSelector()
        self.family, self.target = family, target
        self.watch, self.watch_pid, self.watch_start = watch, watch_pid, watch_start
        self.connections: set[_Connection] = set()
        self.sessions: dict[tuple[Any, ...], list[Any]] = {}  # client address -> [socket, listener, last used]
        self.running = True
        for sock, protocol, port in listeners:
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, ('accept' if protocol == 'tcp' else 'datagram', port))
        if watch is not None:
            self.selector.register(watch, selectors.EVENT_READ, ('watch', None))

    def serve(self) -> None:
        next_sweep = time.monotonic() + POLL
        while self.running:
            for key, mask in self.selector.select(POLL):
                kind, data = key.data
                if kind == 'watch':
                    self.running = False
                elif kind == 'accept':
                    self._accept(key.fileobj, data)  # type: ignore[arg-type]
                elif kind == 'datagram':
                    self._from_client(key.fileobj, data)  # type: ignore[arg-type]
                elif kind == 'reply':
                    self._from_container(data)
                else:
                    self._tcp_event(data, key.fileobj, mask)  # type: ignore[arg-type]
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + POLL
                self._sweep(now)
                if self.watch is None and not process_alive(self.watch_pid, self.watch_start or None):
                    self.running = False

    # -- TCP ------------------------------------------------------------------------------------------------
    def _accept(self, listener: socket.socket, port: int) -> None:
        for _attempt in range(64):
            try:
                client, _address = listener.accept()
            except OSError:
                return  # EAGAIN: no more; ECONNABORTED and the like: that client is gone
            if len(self.connections) >= TCP_CONNECTIONS:
                _reset(client)
                continue
            client.setblocking(False)
            upstream = socket.socket(self.family, socket.SOCK_STREAM)
            upstream.setblocking(False)
            code = upstream.connect_ex((self.target, port))
            if code not in (0, errno.EINPROGRESS):
                upstream.close()
                _reset(client)
                continue
            connection = _Connection(client, upstream)
            self.connections.add(connection)
            self._update(connection)

    def _tcp_event(self, connection: _Connection, sock: socket.socket, mask: int) -> None:
        if connection not in self.connections:
            return  # closed by an earlier event of this round
        client, upstream = connection.ends
        try:
            if connection.connecting:
                code = upstream.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    self._close(connection, reset=True)
                    return
                connection.connecting = False
            else:
                this = client if sock is client.sock else upstream
                other = upstream if this is client else client
                if mask & selectors.EVENT_WRITE and this.pending:
                    sent = this.sock.send(this.pending)
                    del this.pending[:sent]
                if mask & selectors.EVENT_READ:
                    data = this.sock.recv(BUFFER)
                    if data:
                        other.pending += data
                    else:
                        other.eof = True
                for end in (client, upstream):
                    if end.eof and not end.pending and not end.shut:
                        end.sock.shutdown(socket.SHUT_WR)
                        end.shut = True
                if client.shut and upstream.shut:
                    self._close(connection)
                    return
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(connection, reset=True)
            return
        self._update(connection)

    def _update(self, connection: _Connection) -> None:
        client, upstream = connection.ends
        for this, other in ((client, upstream), (upstream, client)):
            mask = 0
            if connection.connecting:
                mask = selectors.EVENT_WRITE if this is upstream else 0
            else:
                if not other.eof and len(other.pending) < BUFFER:
                    mask |= selectors.EVENT_READ  # read what goes to the other end while it keeps up
                if this.pending:
                    mask |= selectors.EVENT_WRITE
            if mask != this.mask:
                if this.mask and mask:
                    self.selector.modify(this.sock, mask, ('tcp', connection))
                elif mask:
                    self.selector.register(this.sock, mask, ('tcp', connection))
                else:
                    self.selector.unregister(this.sock)
                this.mask = mask

    def _close(self, connection: _Connection, reset: bool = False) -> None:
        self.connections.discard(connection)
        for end in connection.ends:
            if end.mask:
                self.selector.unregister(end.sock)
                end.mask = 0
        if reset:
            _reset(connection.ends[0].sock)
        else:
            connection.ends[0].sock.close()
        connection.ends[1].sock.close()

    # -- UDP ------------------------------------------------------------------------------------------------
    def _from_client(self, listener: socket.socket, port: int) -> None:
        for _attempt in range(64):
            try:
                data, address = listener.recvfrom(BUFFER)
            except OSError:
                return
            key = (listener.fileno(),) + tuple(address[:2])
            session = self.sessions.get(key)
            if session is None:
                if len(self.sessions) >= UDP_SESSIONS:
                    self._forget(min(self.sessions, key=lambda item: self.sessions[item][2]))
                upstream = socket.socket(self.family, socket.SOCK_DGRAM)
                upstream.setblocking(False)
                try:
                    upstream.connect((self.target, port))
                except OSError:
                    upstream.close()
                    continue
                session = self.sessions[key] = [upstream, listener, 0.0, address]
                self.selector.register(upstream, selectors.EVENT_READ, ('reply', key))
            session[2] = time.monotonic()
            try:
                session[0].send(data)
            except OSError:
                continue  # the container refused it (ICMP) or its buffer is full: a datagram lost, as on a wire

    def _from_container(self, key: tuple[Any, ...]) -> None:
        session = self.sessions.get(key)
        if session is None:
            return
        upstream, listener, _used, address = session
        for _attempt in range(64):
            try:
                data = upstream.recv(BUFFER)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                continue  # ECONNREFUSED of an earlier datagram: nobody listened then
            session[2] = time.monotonic()
            try:
                listener.sendto(data, address)
            except OSError:
                continue

    def _forget(self, key: tuple[Any, ...]) -> None:
        session = self.sessions.pop(key)
        self.selector.unregister(session[0])
        session[0].close()

    def _sweep(self, now: float) -> None:
        for key in [key for key, session in self.sessions.items() if now - session[2] > UDP_IDLE]:
            self._forget(key)


def _reset(sock: socket.socket) -> None:
    """Close with a RST, as a refused connection would be (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    except OSError:
        pass
    sock.close()
