# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/rtnl.py: our requests on pyroute2's IPRoute (a fake one here, no kernel), pyroute2's errors in
our words, and pyroute2 imported only when a request is made (the real library: tests/integration)."""

from __future__ import annotations

import ast
import errno
import os
import socket
import subprocess
import sys

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import rtnl
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import MissingLibraryError


class FakeNetlinkError(Exception):
    """pyroute2's NetlinkError: (code, message), the message the extended ACK's or the errno's text."""

    def __init__(self, code, msg=None):
        super(FakeNetlinkError, self).__init__(code, msg or os.strerror(code))
        self.code = code


class FakeMessage(dict):
    def __init__(self, attrs=None, **fields):
        super(FakeMessage, self).__init__(fields)
        self.attrs = attrs or {}

    def get_attr(self, name):
        return self.attrs.get(name)


class FakeIPRoute(object):
    """Records (method, args, kwargs); ``fail``: method -> the error it raises; ``answers``: method -> reply."""

    made = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []
        self.fail = {}
        self.answers = {}
        self.closed = False
        self.made.append(self)

    def close(self):
        self.closed = True

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self.calls.append((method, args, kwargs))
            if method in self.fail:
                raise self.fail[method]
            return self.answers.get(method, [])
        return call


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(FakeIPRoute, 'made', [])
    monkeypatch.setattr(rtnl, '_library', (FakeIPRoute, FakeNetlinkError))
    return FakeIPRoute


def test_requests_in_pyroute2_terms(fake):
    with rtnl.Rtnl() as client:
        client.add_bridge('rcb-web')
        client.add_veth('rcvabc', 'eth0', 7)
        client.set_link(5, 'rcvabc', up=True, master=3, alias='runcible.oci container web')
        client.delete_link(9)
        client.add_address(3, '10.89.0.1', 24, 'rcb-web')
        client.delete_address(3, '10.89.0.9', 16)
        client.delete_neighbour(3, '10.89.0.2')
        client.add_default_route('10.89.0.1')
    [ipr] = fake.made
    assert ipr.kwargs == {'ext_ack': True} and ipr.closed
    assert ipr.calls == [
        ('link', ('add',), {'ifname': 'rcb-web', 'kind': 'bridge'}),
        ('link', ('add',), {'ifname': 'rcvabc', 'kind': 'veth', 'peer': {'ifname': 'eth0', 'net_ns_fd': 7}}),
        ('link', ('set',), {'index': 5, 'state': 'up', 'master': 3, 'ifalias': 'runcible.oci container web'}),
        ('link', ('del',), {'index': 9}),
        ('addr', ('add',), {'index': 3, 'address': '10.89.0.1', 'prefixlen': 24}),
        ('addr', ('del',), {'index': 3, 'address': '10.89.0.9', 'prefixlen': 16}),
        ('neigh', ('del',), {'ifindex': 3, 'dst': '10.89.0.2', 'family': socket.AF_INET}),
        ('route', ('add',), {'dst': '0.0.0.0/0', 'gateway': '10.89.0.1', 'table': 254, 'proto': 3})]


def test_a_socket_of_another_namespace_is_handed_over(fake):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # stands for a netlink socket made in the namespace
    fileno = sock.fileno()
    client = rtnl.Rtnl(sock)
    assert fake.made[0].kwargs == {'fileno': fileno, 'ext_ack': True}
    assert sock.fileno() == -1, 'the fd is pyroute2\'s now (it closes it)'
    os.close(fileno)
    client.close()


def test_link_index_and_addresses(fake):
    client = rtnl.Rtnl()
    ipr = fake.made[0]
    ipr.answers['link'] = [FakeMessage(index=12)]
    assert client.link_index('eth0') == 12
    ipr.fail['link'] = FakeNetlinkError(errno.ENODEV)
    assert client.link_index('nosuch') is None
    ipr.fail['link'] = FakeNetlinkError(errno.EPERM)
    with pytest.raises(OSError, match='cannot look up the interface x: Operation not permitted$'):
        client.link_index('x')
    ipr.answers['get_addr'] = [FakeMessage({'IFA_ADDRESS': '10.89.0.1'}, index=3, prefixlen=24),
                               FakeMessage({'IFA_LOCAL': '10.89.1.1'}, index=3, prefixlen=16),
                               FakeMessage({'IFA_ADDRESS': '10.9.9.9'}, index=4, prefixlen=8)]
    assert client.addresses(3, 'br') == [('10.89.0.1', 24), ('10.89.1.1', 16)]
    assert ipr.calls[-1] == ('get_addr', (), {'index': 3, 'family': socket.AF_INET})


@pytest.mark.parametrize('error, expected', [
    (FakeNetlinkError(errno.EEXIST, 'ipv4: Address already assigned'),
     'cannot add the address 10.89.0.1/24 to runcible0: %s (ipv4: Address already assigned)' % os.strerror(errno.EEXIST)),
    (FakeNetlinkError(errno.EEXIST), 'cannot add the address 10.89.0.1/24 to runcible0: %s' % os.strerror(errno.EEXIST)),
    (FakeNetlinkError(errno.EEXIST, ''), 'cannot add the address 10.89.0.1/24 to runcible0: %s' % os.strerror(errno.EEXIST)),
    (OSError(errno.ENOBUFS, 'No buffer space available'),
     'cannot add the address 10.89.0.1/24 to runcible0: No buffer space available'),
])
def test_errors_name_the_request_the_interface_and_the_kernels_reason(fake, error, expected):
    client = rtnl.Rtnl()
    fake.made[0].fail['addr'] = error
    with pytest.raises(OSError) as caught:
        client.add_address(3, '10.89.0.1', 24, 'runcible0')
    assert caught.value.errno == error.args[0]
    assert caught.value.strerror == expected


def test_unnamed_interfaces_are_named_by_index(fake):
    client = rtnl.Rtnl()
    fake.made[0].fail['link'] = FakeNetlinkError(errno.ENODEV)
    with pytest.raises(OSError, match='cannot delete the interface index 9: No such device'):
        client.delete_link(9)
    with pytest.raises(OSError, match='cannot set up, master of the interface index 9: No such device'):
        client.set_link(9, up=True, master=2)


def test_the_real_netlink_error_is_translated():
    pytest.importorskip('pyroute2')
    from pyroute2.netlink.exceptions import NetlinkError
    error = NetlinkError(errno.EEXIST, 'ipv4: Address already assigned')
    assert rtnl.kernel_error(error.code, error.args[1], 'what').strerror == \
        'what: %s (ipv4: Address already assigned)' % os.strerror(errno.EEXIST)
    plain = NetlinkError(errno.ENODEV)
    assert rtnl.kernel_error(plain.code, plain.args[1], 'what').strerror == 'what: No such device'


def test_a_missing_pyroute2_is_a_missing_library(monkeypatch):
    monkeypatch.setattr(rtnl, '_library', None)
    monkeypatch.setattr(rtnl.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(MissingLibraryError) as caught:
        rtnl.require()
    assert caught.value.library == 'pyroute2' and 'python3-pyroute2' in caught.value.msg
    monkeypatch.setitem(sys.modules, 'pyroute2', None)  # import pyroute2 -> ImportError
    monkeypatch.delitem(sys.modules, 'pyroute2.iproute.linux', raising=False)
    with pytest.raises(MissingLibraryError) as caught:
        rtnl.Rtnl()
    assert 'ImportError' in caught.value.import_traceback or 'ModuleNotFoundError' in caught.value.import_traceback


def test_pyroute2_is_imported_only_by_a_request():
    """No import of pyroute2 at the top of rtnl.py, nor of rtnl's importers: only _load() imports it."""
    tree = ast.parse(open(rtnl.__file__).read())
    for node in tree.body:
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
            [node.module or ''] if isinstance(node, ast.ImportFrom) else []
        assert not [name for name in names if name.startswith('pyroute2')], 'pyroute2 imported at the top'
    code = ('import sys; from ansible_collections.runcible.oci.plugins.module_utils._runtime import network, bridges, '
            'rtnl; from ansible_collections.runcible.oci.plugins.module_utils import _network; '
            'print(any(m.startswith("pyroute2") for m in sys.modules))')
    proc = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, check=True, env=dict(
        os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert proc.stdout.decode().strip() == 'False'
