# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The port proxy of IPv6 loopback ports (port_proxy.py), on the host's loopback: its event loop in a thread
(TCP with half-closes and back-pressure, refusals, UDP clients, the end of what it watches), and the process
itself as a launch starts it (installed library, privileges dropped, gone with what it watches)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import payload, port_proxy
from ansible_collections.runcible.oci.plugins.module_utils._runtime.host import process_alive, read_proc_stat
from ansible_collections.runcible.oci.plugins.module_utils._runtime.ports import PortMapping

pytestmark = pytest.mark.timeout(60)


@contextlib.contextmanager
def tcp_upstream(handler):
    """A TCP server on 127.0.0.1 running ``handler(conn)`` for each connection in a thread; -> its port."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(('127.0.0.1', 0))
    server.listen(16)

    def serve():
        while True:
            try:
                conn, _peer = server.accept()
            except OSError:
                return
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def read_all_then_answer(conn):
    """Reads to the client's FIN, then answers with the byte count and the data reversed, and closes."""
    with contextlib.closing(conn):
        data = b''
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        conn.sendall(b'%d:' % len(data) + data[::-1])


@contextlib.contextmanager
def running_proxy(listeners, target='127.0.0.1'):
    """Proxy(listeners) served in a thread; the write end of a pipe stands for conmon (closing it ends the proxy)."""
    read_end, write_end = os.pipe()
    proxy = port_proxy.Proxy(listeners, socket.AF_INET, target, read_end, 0, None)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        os.close(write_end)
        thread.join(10)
        os.close(read_end)
        assert not thread.is_alive(), 'the proxy did not end with what it watches'


def assert_reset(port, make=None):
    """A connection to [::1]:port is reset: at its connect (the proxy's RST can come first on loopback) or at its
    first read; a plain close fails."""
    with pytest.raises(ConnectionResetError):
        sock = (make or socket.socket)(socket.AF_INET6, socket.SOCK_STREAM)
        with contextlib.closing(sock):
            sock.settimeout(10)
            sock.connect(('::1', port))
            sock.sendall(b'x')
            if not sock.recv(10):
                raise AssertionError('closed, not reset')


def listener(kind=socket.SOCK_STREAM):
    sock = socket.socket(socket.AF_INET6, kind)
    sock.bind(('::1', 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    return sock


def test_tcp_is_spliced_both_ways_with_half_close_and_back_pressure():
    big = os.urandom(4 * 1024 * 1024)  # far beyond the buffers: the proxy must stop reading while a side lags
    with tcp_upstream(read_all_then_answer) as port, contextlib.closing(listener()) as front:
        with running_proxy([(front, 'tcp', port)]) as proxy:
            client = socket.create_connection(('::1', front.getsockname()[1]), timeout=10)
            with contextlib.closing(client):
                sender = threading.Thread(target=lambda: (client.sendall(big), client.shutdown(socket.SHUT_WR)))
                sender.start()
                answer = b''
                while True:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
                sender.join()
            assert answer == b'%d:' % len(big) + big[::-1]
            assert wait(lambda: not proxy.connections), 'the finished connection is forgotten'


def test_a_connection_the_container_refuses_is_reset():
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(('127.0.0.1', 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    with contextlib.closing(listener()) as front, running_proxy([(front, 'tcp', port)]) as proxy:
        assert_reset(front.getsockname()[1])
        assert wait(lambda: not proxy.connections)


def test_tcp_connections_beyond_the_limit_are_reset(monkeypatch):
    monkeypatch.setattr(port_proxy, 'TCP_CONNECTIONS', 1)
    held = threading.Event()

    def hold(conn):
        held.wait(10)
        conn.close()

    with tcp_upstream(hold) as port, contextlib.closing(listener()) as front:
        with running_proxy([(front, 'tcp', port)]) as proxy:
            first = socket.create_connection(('::1', front.getsockname()[1]), timeout=10)
            assert wait(lambda: len(proxy.connections) == 1)
            with contextlib.closing(first):
                assert_reset(front.getsockname()[1])
            held.set()


def test_out_of_descriptors_resets_the_client_and_the_listener_waits(monkeypatch):
    """No descriptor for the connection to the container (EMFILE): that client is reset, the listener is left alone
    (no busy loop on a readable listener) until descriptors are free again; the proxy goes on."""
    real = socket.socket
    failures = []

    def scarce(family=-1, kind=-1, *args, **kwargs):
        if kind == socket.SOCK_STREAM and family == socket.AF_INET and not failures:
            failures.append(1)
            raise OSError(24, 'Too many open files')
        return real(family, kind, *args, **kwargs)

    with tcp_upstream(read_all_then_answer) as port, contextlib.closing(listener()) as front:
        with running_proxy([(front, 'tcp', port)]) as proxy:
            monkeypatch.setattr(port_proxy.socket, 'socket', scarce)
            assert_reset(front.getsockname()[1], make=real)
            assert failures
            monkeypatch.undo()
            assert wait(lambda: not proxy.paused, timeout=5), 'and is watched again a moment later'
            second = socket.create_connection(('::1', front.getsockname()[1]), timeout=10)
            with contextlib.closing(second):
                second.sendall(b'abc')
                second.shutdown(socket.SHUT_WR)
                assert second.recv(100) == b'3:cba'


def test_the_limits_follow_the_open_file_limit(monkeypatch):
    import resource  # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(resource, 'getrlimit', lambda which: (1024, 4096))
    assert port_proxy._limits() == (360, 240)  # pylint: disable=protected-access  # (1024 - 64 - 240) // 2 TCP
    monkeypatch.setattr(resource, 'getrlimit', lambda which: (1048576, 1048576))
    assert port_proxy._limits() == (port_proxy.TCP_CONNECTIONS, port_proxy.UDP_SESSIONS)  # pylint: disable=protected-access


def test_udp_clients_get_their_own_replies_and_idle_ones_are_forgotten(monkeypatch):
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.bind(('127.0.0.1', 0))

    def echo():
        while True:
            try:
                data, peer = upstream.recvfrom(2048)
            except OSError:
                return
            upstream.sendto(data + b' from %d' % peer[1], peer)

    threading.Thread(target=echo, daemon=True).start()
    with contextlib.closing(upstream), contextlib.closing(listener(socket.SOCK_DGRAM)) as front:
        with running_proxy([(front, 'udp', upstream.getsockname()[1])]) as proxy:
            clients = [socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _index in range(2)]
            answers = []
            for index, client in enumerate(clients):
                client.settimeout(5)
                client.sendto(b'ask %d' % index, front.getsockname()[:2])
                answers.append(client.recvfrom(2048))
            assert [data.split(b' from ')[0] for data, _source in answers] == [b'ask 0', b'ask 1']
            assert all(source[0] == '::1' and source[1] == front.getsockname()[1] for _data, source in answers)
            # Each client its own socket to the container (two source ports there).
            assert len(set(data.split(b' from ')[1] for data, _source in answers)) == 2
            assert len(proxy.sessions) == 2
            monkeypatch.setattr(port_proxy, 'UDP_IDLE', 0.0)
            assert wait(lambda: not proxy.sessions, timeout=5), 'idle UDP clients are forgotten'
            for client in clients:
                client.close()


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- the process ------------------------------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='the proxy drops root: the test runs as root')


@needs_root
def test_the_proxy_process_serves_as_nobody_and_ends_with_what_it_watches(tmp_path):
    lib = payload.install(str(tmp_path))
    conmon = subprocess.Popen(['sleep', '60'])  # stands for conmon
    try:
        with tcp_upstream(read_all_then_answer) as port, contextlib.closing(listener()) as front:
            mapping = PortMapping('::1', front.getsockname()[1], port)
            entry = port_proxy.start(lib, [(mapping, front)], '127.0.0.1', conmon.pid, _start(conmon.pid))
            front.close()  # the proxy holds its own
            assert port_proxy.alive(entry)
            with open('/proc/%d/status' % entry['pid']) as handle:
                status = dict(line.split(':', 1) for line in handle.read().splitlines())
            uid = str(port_proxy.PROXY_UID)
            assert status['Uid'].split() == [uid] * 4 and status['Gid'].split() == [uid] * 4, status
            assert status['CapEff'].strip() == '0' * 16 and status['CapPrm'].strip() == '0' * 16
            assert status['NoNewPrivs'].strip() == '1'
            client = socket.create_connection(('::1', mapping.host_port), timeout=10)
            with contextlib.closing(client):
                client.sendall(b'abc')
                client.shutdown(socket.SHUT_WR)
                assert client.recv(100) == b'3:cba'
            conmon.kill()
            conmon.wait()
            assert wait(lambda: not port_proxy.alive(entry), timeout=5), 'it outlived conmon'
            port_proxy.stop(entry)  # nothing left to stop: no error
    finally:
        if conmon.poll() is None:
            conmon.kill()
            conmon.wait()


@needs_root
def test_stop_ends_a_running_proxy_and_a_proxy_of_a_gone_conmon_does_not_start(tmp_path):
    lib = payload.install(str(tmp_path))
    conmon = subprocess.Popen(['sleep', '60'])
    try:
        with contextlib.closing(listener()) as front:
            mapping = PortMapping('::1', front.getsockname()[1], 80)
            entry = port_proxy.start(lib, [(mapping, front)], '127.0.0.1', conmon.pid, _start(conmon.pid))
            port_proxy.stop(entry)
            assert not process_alive(entry['pid'], entry['start'])
            with pytest.raises(port_proxy.RuncibleError, match=r'did not start: --port-proxy: conmon \(pid \d+\) is gone'):
                port_proxy.start(lib, [(mapping, front)], '127.0.0.1', conmon.pid, 12345)
    finally:
        conmon.kill()
        conmon.wait()


def test_main_refuses_bad_arguments(capsys):
    assert port_proxy.main(['127.0.0.1', 'tcp:notanfd:80']) == 2
    assert port_proxy.main(['not-an-address']) == 2
    assert 'bad arguments' in capsys.readouterr().err


@needs_root
def test_a_proxy_spawned_for_a_launch_that_failed_ends_without_serving(tmp_path):
    """Spawned before conmon; the launch fails: told nothing, it ends, and the port is free again."""
    lib = payload.install(str(tmp_path))
    front = listener()
    port = front.getsockname()[1]
    spawned = port_proxy.spawn(lib, [(PortMapping('::1', port, 80), front)], '127.0.0.1')
    front.close()
    assert port_proxy.finish(spawned, None, None) == {}
    assert spawned.proc.returncode == 1
    with contextlib.closing(socket.socket(socket.AF_INET6, socket.SOCK_STREAM)) as again:
        again.bind(('::1', port))


def _start(pid):
    return read_proc_stat(pid)[1]


def test_which_running_containers_need_their_proxy_repaired():
    own = {'pid': os.getpid(), 'start': read_proc_stat(os.getpid())[1]}
    ports6 = {'published_ports': ['[::1]:8080:80/tcp']}
    assert not port_proxy.needed({'config': ports6, 'network': {'ip_address': '10.89.0.2', 'proxy': own}})
    assert port_proxy.needed({'config': ports6, 'network': {'ip_address': '10.89.0.2', 'proxy': dict(own, start=1)}})
    # A pid without its start time is never taken for the proxy (a reused pid), nor killed.
    assert port_proxy.needed({'config': ports6, 'network': {'proxy': {'pid': os.getpid(), 'start': None}}})
    port_proxy.stop({'pid': os.getpid(), 'start': None})
    # Launched by an older version (no proxy entry): conmon holds its [::] port, nothing to repair until a restart.
    assert not port_proxy.needed({'config': {'published_ports': ['[::]:8080:80/tcp']}, 'network': {'ip_address': 'x'}})
    assert not port_proxy.needed({'config': {'published_ports': ['[fd00::1]:8080:80/tcp']}, 'network': {'proxy': {}}})
    assert not port_proxy.needed({'config': {'published_ports': ['8080:80/tcp']}, 'network': {'proxy': {}}})
