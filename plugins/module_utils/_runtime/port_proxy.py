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
* One process for all such ports of a container, spawned before conmon (its Python starts while the runtime
  creates the container) and told conmon's pid on its stdin once conmon runs (nothing: the launch failed, it
  ends). It ends when conmon ends (a pidfd, polled where there is none), so a restart, a stop or a crash takes it along and frees the ports;
  it joins conmon's cgroup (its scope, or the unit of a unit-managed container); once it holds its sockets
  it runs as a uid of its own (PROXY_UID), without capability and with ``no_new_privs``. A task stops it with the container
  (network.detach), and a container task restarts one killed behind its back (``ports repaired``).

Only the standard library: it runs from the runtime library installed on the host (payload.py), as
``exit.py --port-proxy``, and never imports anything once it has dropped root.
"""

from __future__ import annotations

import contextlib
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
# The proxy's own uid and gid once it holds its sockets: no account has them (no user's process can signal it, no file
# is its), as systemd's DynamicUser= ranges are not ours to take.
PROXY_UID = 2147483646
FD_RESERVE = 64  # descriptors kept free of connections (the listeners, the selector, a pidfd)


def proxied(mapping: PortMapping) -> bool:
    """Does ``mapping``'s host port need the proxy (IPv6 loopback: published on ``[::1]`` or ``[::]``)?"""
    return mapping.ipv6() and mapping.host_ip in ('::', '::1')


def needed(record: dict[str, Any]) -> bool:
    """Does a running container lack the port proxy its IPv6 loopback ports need (killed, say)? Cheap: the task's
    idempotent path asks it of every running container with IPv6 published ports."""
    from .ports import expand  # pylint: disable=import-outside-toplevel
    wanted = [str(item) for item in (record.get('config') or {}).get('published_ports') or []]
    network = record.get('network') or {}
    if not any(item.startswith('[') for item in wanted) or 'proxy' not in network:
        return False  # (launched by an older version: conmon holds its [::] ports until it is restarted)
    if not any(proxied(mapping) for mapping in expand(wanted)):
        return False
    return not alive(network['proxy'])


class Spawned(object):
    """A proxy process waiting for its conmon (spawn(), then finish())."""

    def __init__(self, proc: subprocess.Popen[bytes], ports: str) -> None:
        self.proc = proc
        self.ports = ports  # what it serves, in words


def spawn(lib: str, listeners: Iterable[tuple[PortMapping, socket.socket]], target: str) -> Spawned:
    """Start the proxy process of a container's ``listeners`` (mapping, its bound socket) to ``target`` (the
    container's address) before conmon runs: its Python starts while the runtime creates the container, then waits
    for finish() to name the conmon it lives with."""
    from .payload import LAUNCHER  # pylint: disable=import-outside-toplevel
    listeners = list(listeners)
    argv = [sys.executable, '-I', '-B', os.path.join(lib, LAUNCHER), VERB, target]
    argv += ['%s:%d:%d' % (mapping.protocol, sock.fileno(), mapping.container_port) for mapping, sock in listeners]
    try:
        # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
        # pylint: disable-next=ansible-bad-function
        return Spawned(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        pass_fds=[sock.fileno() for _mapping, sock in listeners],
                                        start_new_session=True), _texts(listeners))
    except OSError as exc:
        raise RuncibleError('cannot start the port proxy of %s: %s' % (_texts(listeners), exc))


def finish(spawned: Spawned, watch_pid: int | None, watch_start: int | None) -> dict[str, Any]:
    """Tell a spawned proxy its conmon (``watch_pid`` None: the launch failed, it ends at once); -> what the record
    keeps of it (pid, start)."""
    proc = spawned.proc
    message = b'' if watch_pid is None else b'%d %d\n' % (watch_pid, watch_start or 0)
    try:
        output, error = proc.communicate(message, timeout=START_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()
        raise RuncibleError('the port proxy of %s did not start: %s' % (spawned.ports, exc))
    text = output.decode('ascii', 'replace').strip()
    if watch_pid is None:
        return {}
    if proc.returncode != 0 or not text.isdigit():
        raise RuncibleError('the port proxy of %s did not start: %s' % (spawned.ports, error.decode(
            'utf-8', 'replace').strip() or 'exit code %s' % proc.returncode))
    pid = int(text)
    stat = read_proc_stat(pid)
    return {'pid': pid, 'start': stat[1] if stat else None}


def start(lib: str, listeners: Iterable[tuple[PortMapping, socket.socket]], target: str, watch_pid: int,
          watch_start: int | None) -> dict[str, Any]:
    """spawn() and finish() at once (conmon runs already)."""
    return finish(spawn(lib, listeners, target), watch_pid, watch_start)


def _texts(listeners: list[tuple[PortMapping, socket.socket]]) -> str:
    return ', '.join(mapping.text() for mapping, _sock in listeners)


def alive(entry: dict[str, Any] | None) -> bool:
    """Is the proxy of a record's entry running? Never without its start time (a reused pid is not it)."""
    return bool(entry) and entry.get('start') is not None and process_alive(  # type: ignore[union-attr]
        entry.get('pid'), entry.get('start'))  # type: ignore[union-attr]


def stop(entry: dict[str, Any] | None) -> None:
    """End a proxy (it ends with conmon anyway: this frees its ports now) and wait until it is gone."""
    if entry is None or not alive(entry):
        return
    kill(entry['pid'], signal.SIGKILL)
    wait_until(lambda: not alive(entry), STOP_WAIT, first_delay=0.002, max_delay=0.01)


# -- the proxy process ------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    """``--port-proxy TARGET PROTO:FD:PORT...``, then ``WATCH_PID WATCH_START`` on stdin (conmon, once it runs;
    nothing: the launch failed): check, join conmon's cgroup, fork; the parent prints the proxy's pid (the caller
    waits for it), the child serves until conmon ends."""
    try:
        target = argv[0]
        listeners = []
        for spec in argv[1:]:
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
    try:
        watch_pid, watch_start = (int(word) for word in sys.stdin.readline().split())
    except ValueError:
        return 1  # the launch failed: no conmon to live with
    stat = read_proc_stat(watch_pid)
    if stat is None or (watch_start and stat[1] != watch_start):
        sys.stderr.write('%s: conmon (pid %d) is gone\n' % (VERB, watch_pid))
        return 1
    watch = _pidfd(watch_pid)
    _join_cgroup_of(watch_pid)
    ready_read, ready_write = os.pipe()
    child = os.fork()
    if child:
        os.close(ready_write)
        with os.fdopen(ready_read, 'rb') as ready:
            said = ready.read()
        if said != b'ready':
            sys.stderr.write('%s: %s\n' % (VERB, said.decode('utf-8', 'replace') or 'the proxy ended at its start'))
            return 1
        sys.stdout.write('%d\n' % child)
        sys.stdout.flush()
        return 0
    os.close(ready_read)
    try:
        _detach_stdio()
        _drop_privileges()
        proxy = Proxy(listeners, address[0], str(address[4][0]), watch, watch_pid, watch_start)
    except Exception as exc:  # pylint: disable=broad-except  # said to the task that starts it
        os.write(ready_write, ('%s: %s' % (type(exc).__name__, exc)).encode('utf-8', 'replace')[:1000])
        os._exit(1)  # pylint: disable=protected-access  # the forked child never returns into the launcher
    os.write(ready_write, b'ready')
    os.close(ready_write)
    try:
        proxy.serve()
    finally:
        os._exit(0)  # pylint: disable=protected-access


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
    """Its own uid and gid (PROXY_UID), no supplementary group, no capability (a uid change from root clears them),
    no_new_privs; first the open-file limit raised to the hard one (connections need two descriptors each)."""
    import ctypes  # pylint: disable=import-outside-toplevel
    import resource  # pylint: disable=import-outside-toplevel
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.setgroups([])
    os.setgid(PROXY_UID)
    os.setuid(PROXY_UID)
    if os.getuid() != PROXY_UID or os.geteuid() != PROXY_UID or os.getegid() != PROXY_UID:
        raise OSError(errno.EPERM, 'still root after setuid')
    ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS


def _limits() -> tuple[int, int]:
    """(TCP connections, UDP clients) this process can hold open at once, from its open-file limit."""
    import resource  # pylint: disable=import-outside-toplevel
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    spare = max(soft - FD_RESERVE, 8) if soft != resource.RLIM_INFINITY else TCP_CONNECTIONS * 2 + UDP_SESSIONS
    udp = min(UDP_SESSIONS, spare // 4)
    return max(min(TCP_CONNECTIONS, (spare - udp) // 2), 1), max(udp, 1)


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
        self.paused: list[tuple[socket.socket, int]] = []  # TCP listeners not watched while descriptors run out
        self.max_connections, self.max_sessions = _limits()
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
                if self.watch is None and not _exists(self.watch_pid):
                    self.running = False

    # -- TCP ------------------------------------------------------------------------------------------------
    def _accept(self, listener: socket.socket, port: int) -> None:
        for _attempt in range(64):
            try:
                client, _address = listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause(listener, port)  # out of descriptors: the clients wait in the backlog meanwhile
                return  # EAGAIN: no more; ECONNABORTED and the like: that client is gone
            if len(self.connections) >= self.max_connections:
                _reset(client)
                continue
            client.setblocking(False)
            try:
                upstream = socket.socket(self.family, socket.SOCK_STREAM)
            except OSError:
                self._pause(listener, port)
                _reset(client)
                return
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

    def _pause(self, listener: socket.socket, port: int) -> None:
        if all(sock is not listener for sock, _port in self.paused):
            self.selector.unregister(listener)
            self.paused.append((listener, port))

    def _resume(self) -> None:
        while self.paused:  # descriptors may be free again (a connection closed, or a second went by)
            listener, port = self.paused.pop()
            self.selector.register(listener, selectors.EVENT_READ, ('accept', port))

    def _close(self, connection: _Connection, reset: bool = False) -> None:
        self.connections.discard(connection)
        self._resume()
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
                if len(self.sessions) >= self.max_sessions:
                    self._forget(min(self.sessions, key=lambda item: self.sessions[item][2]))
                try:
                    upstream = socket.socket(self.family, socket.SOCK_DGRAM)
                except OSError:
                    continue  # out of descriptors: this datagram is lost
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
        self._resume()
        for key in [key for key, session in self.sessions.items() if now - session[2] > UDP_IDLE]:
            self._forget(key)


def _exists(pid: int) -> bool:
    """Does ``pid`` still exist (the watch without a pidfd)? A signal 0, which needs no descriptor (EMFILE) and no
    view of /proc (hidepid): EPERM says it is there, another user's."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _reset(sock: socket.socket) -> None:
    """Close with a RST, as a refused connection would be (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    except OSError:
        pass
    sock.close()
