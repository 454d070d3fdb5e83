# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network namespaces of containers: made with unshare(2) in a thread, bound at ``/run/netns/rc-ID16``.

``ip netns`` sees them (the same directory, a shared mount point), the runtime joins one by path,
and a netlink socket opened inside it (``create_netns(netlink=True)``, ``socket_in_netns``) configures it
without a process in the namespace.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
# overload is a decorator, so it runs on import; typing itself is imported for TYPE_CHECKING anyway.
from typing import TYPE_CHECKING, overload

from . import libc
from .errors import RuncibleError

if TYPE_CHECKING:
    from typing import Any, Literal

NETNS_DIR = '/run/netns'
NETNS_PREFIX = 'rc-'
NETLINK_ROUTE = 0  # the protocol number of rtnetlink (fixed by the kernel ABI)
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2


def netns_name(container_id: str) -> str:
    return NETNS_PREFIX + container_id[:16]


def netns_path(container_id: str) -> str:
    return os.path.join(NETNS_DIR, netns_name(container_id))


def _os_error(what: str, path: str, exc: OSError) -> OSError:
    return OSError(exc.errno, '%s: %s' % (what, exc.strerror), path)


def _share_netns_dir() -> None:
    """Make /run/netns a shared mount point, as iproute2 does, so every mount namespace sees our namespaces."""
    os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
    try:
        libc.mount('none', NETNS_DIR, None, MS_SHARED | MS_REC, None)
        return
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise _os_error('cannot make %s shared' % NETNS_DIR, NETNS_DIR, exc)
    # Not a mount point yet: bind it onto itself, then share it.
    try:
        libc.mount(NETNS_DIR, NETNS_DIR, 'none', MS_BIND | MS_REC, None)
    except OSError as exc:
        raise _os_error('cannot bind-mount %s' % NETNS_DIR, NETNS_DIR, exc)
    try:
        libc.mount('none', NETNS_DIR, None, MS_SHARED | MS_REC, None)
    except OSError as exc:
        raise _os_error('cannot make %s shared' % NETNS_DIR, NETNS_DIR, exc)


@overload
def create_netns(path: str, netlink: Literal[True]) -> socket.socket:
    ...


@overload
def create_netns(path: str, netlink: bool = False) -> socket.socket | None:
    ...


def create_netns(path: str, netlink: bool = False) -> socket.socket | None:
    """Create a network namespace bound at ``path`` (a new one; a leftover at ``path`` is removed first).

    ``netlink``: also return a NETLINK_ROUTE socket opened inside it (no process needed to configure it).
    """
    if os.path.lexists(path):
        remove_netns(path)
    _share_netns_dir()
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    outcome: dict[str, Any] = {}  # error: an OSError, socket: the netlink socket

    def unshare_and_bind() -> None:
        # A thread of its own: unshare(CLONE_NEWNET) moves only the calling thread, which then ends.
        try:
            libc.unshare(CLONE_NEWNET)
        except OSError as exc:
            outcome['error'] = _os_error('unshare(CLONE_NEWNET) failed', path, exc)
            return
        try:
            libc.mount('/proc/thread-self/ns/net', path, 'none', MS_BIND, None)
        except OSError as exc:
            outcome['error'] = _os_error('cannot bind the new network namespace', path, exc)
            return
        # Addresses are reused: a gratuitous ARP when eth0 comes up tells the bridge's neighbours
        # (the host, the other containers) its new MAC at once (sysctls are the opener's namespace's).
        # IPv6: its interfaces take no router advertisement nor redirect (a neighbour on a bridge would route
        # the container's traffic through itself), and no duplicate address detection (addresses are ours,
        # allocated under the registry lock: usable at once).
        for setting, value in (('ipv4/conf/default/arp_notify', '1'), ('ipv6/conf/default/accept_ra', '0'),
                               ('ipv6/conf/default/accept_redirects', '0'), ('ipv6/conf/default/accept_dad', '0'),
                               ('ipv6/conf/all/accept_redirects', '0')):
            try:
                with open('/proc/sys/net/' + setting, 'w') as handle:
                    handle.write(value)
            except (IOError, OSError):
                pass  # (no IPv6 in this kernel, say)
        if netlink:
            # A socket belongs to the namespace it was made in, whichever thread uses it later.
            outcome['socket'] = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)

    worker = threading.Thread(target=unshare_and_bind, name='runcible-netns')
    worker.start()
    worker.join()
    if 'error' in outcome:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise RuncibleError('cannot create the network namespace %s: %s' % (path, outcome['error']))
    return outcome.get('socket')


def socket_in_netns(path: str, family: int = socket.AF_NETLINK, kind: int = socket.SOCK_RAW,
                    proto: int = NETLINK_ROUTE) -> socket.socket:
    """A socket made inside the network namespace bound at ``path`` (it stays there, whoever uses it).

    A thread of its own enters the namespace (setns moves only the calling thread), makes the
    socket and ends.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    outcome: dict[str, Any] = {}  # socket: the socket, error: an OSError

    def enter_and_open() -> None:
        try:
            libc.setns(fd, CLONE_NEWNET)
            outcome['socket'] = socket.socket(family, kind, proto)
        except OSError as exc:
            outcome['error'] = exc

    try:
        worker = threading.Thread(target=enter_and_open, name='runcible-setns')
        worker.start()
        worker.join()
    finally:
        os.close(fd)
    if 'error' in outcome:
        exc = outcome['error']
        raise OSError(exc.errno, 'cannot open a socket in the network namespace %s: %s' % (path, exc.strerror))
    return outcome['socket']


def remove_netns(path: str) -> None:
    """Unmount and delete a namespace file; the kernel frees the namespace, and its veth pair, when unused."""
    try:
        libc.umount2(path, MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise RuncibleError('cannot unmount the network namespace %s: %s' % (path, exc.strerror))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
