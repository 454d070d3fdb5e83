# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checkpoint and restore of containers on a bridge network (the default).

runc hands CRIU the container's network namespace as external (it is given by path in the spec:
``--external net[INODE]:extRootNetNS``), so CRIU dumps the processes and their sockets but not the
namespace; on restore runc passes the namespace at the same path, which attach() made again with
the container's address (kept allocated while it is checkpointed).
"""

from __future__ import annotations

import glob
import os
import socket
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _checkpoint
from ansible_collections.runcible.oci.plugins.module_utils._runtime import netns
from ansible_collections.runcible.oci.plugins.module_utils._runtime import ports
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError
from conftest import read_log, wait_for
from netfixtures import free_port
from netfixtures import netenv, restore_default_network  # pylint: disable=unused-import  # fixtures

COUNTER = "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"
ECHO_SERVER = ['nc', '-ll', '-p', '7000', '-e', '/bin/cat']

pytestmark = pytest.mark.timeout(300)


def ckpt(env, **params):
    params.setdefault('root', env.root)
    params.setdefault('run_root', env.run_root)
    return _checkpoint.run(params)


def counts(log_path):
    return [int(line) for line in read_log(log_path) if line.strip().isdigit()]


def port_reserved(port):
    sock = socket.socket()
    try:
        sock.bind(('0.0.0.0', port))
    except OSError:
        return True
    finally:
        sock.close()
    return False


def test_checkpoint_and_restore_keep_the_address_and_the_published_port(netenv):
    env = netenv.env
    port = free_port()
    container = netenv.run(name='test-ckn', rootfs=env.rootfs, command=['sh', '-c', COUNTER],
                           published_ports=['%d:80' % port])['container']
    assert wait_for(lambda: len(counts(container['log_path'])) >= 5)
    assert port_reserved(port)

    dumped = ckpt(env, name='test-ckn')
    assert dumped['actions'] == ['checkpointed', 'stopped']
    # Checkpointed = stopped: its namespace, veth, rule and port are released; its address is kept.
    assert wait_for(lambda: not netenv.leftovers([container['id']]) or
                    netenv.leftovers([container['id']]) == ['address allocation %s (test-ckn)'
                                                            % container['ip_address']])
    assert not os.path.exists(netns.netns_path(container['id']))
    assert not ports.listed_rules('ctr=%s ' % container['id'][:12])
    assert not port_reserved(port)
    before = counts(container['log_path'])

    restored = ckpt(env, name='test-ckn', state='restored')
    again = restored['container']
    assert again['status'] == 'running' and again['ip_address'] == container['ip_address']
    assert wait_for(lambda: len(counts(container['log_path'])) >= len(before) + 5)
    after = counts(container['log_path'])[len(before):]
    assert after[0] == before[-1] + 1, 'it continued, not restarted: %s then %s' % (before[-3:], after[:3])
    assert os.path.exists(netns.netns_path(container['id']))
    assert len(ports.listed_rules('ctr=%s ' % container['id'][:12])) == 1
    assert port_reserved(port), 'conmon of the restored container holds the port again'


def _criu_cannot_dump_tcp(base):
    """The CRIU log lines saying it could not dump a socket, when that is why the checkpoint failed."""
    lines = []
    for log in glob.glob(os.path.join(base, 'containers', '*', 'checkpoints', '*', 'work', 'dump.log')):
        with open(log) as handle:
            lines += [line.strip() for line in handle if 'Error' in line]
    return [line for line in lines if 'sockets' in line or 'inet' in line or 'tcp' in line.lower()]


def test_tcp_connection_survives_checkpoint_with_tcp_established(netenv):
    """Issue 4: a server in the container, a client in a namespace of the test; one TCP connection."""
    env = netenv.env
    server = netenv.run(name='test-tcp', rootfs=env.rootfs, command=ECHO_SERVER, stop_timeout=1)['container']
    client = netenv.client()
    conn = wait_for(lambda: _connected(client, server['ip_address']), timeout=10)
    assert conn, 'the echo server in the container does not answer'
    try:
        conn.sendall(b'before\n')
        assert conn.recv(100) == b'before\n'
        try:
            ckpt(env, name='test-tcp', tcp_established=True, keep=True)
        except RuncibleError as exc:
            reasons = _criu_cannot_dump_tcp(env.root)
            if reasons:
                message = ('CRIU on this host cannot dump TCP sockets (kernel %s): %s. Newer kernels (6.16+) answer '
                           'EOPNOTSUPP for SO_PASSCRED/SO_PASSSEC on inet sockets and this CRIU treats that as fatal; '
                           'a CRIU that skips those two options for non-unix sockets runs this test'
                           % (os.uname().release, '; '.join(reasons[:3])))
                print(message)
                pytest.skip(message)
            raise AssertionError('checkpoint failed for another reason: %s' % exc.msg)
        assert not os.path.exists(netns.netns_path(server['id']))
        time.sleep(0.5)
        restored = ckpt(env, name='test-tcp', state='restored')
        assert restored['container']['ip_address'] == server['ip_address']
        conn.sendall(b'after\n')
        assert conn.recv(100) == b'after\n', 'the same connection goes on after the restore'
    finally:
        conn.close()


def _connected(client, address):
    conn = client.socket()
    conn.settimeout(10)
    try:
        conn.connect((address, 7000))
    except OSError:
        conn.close()
        return None
    return conn
