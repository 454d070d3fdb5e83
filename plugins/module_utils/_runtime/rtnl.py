# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rtnetlink requests of bridge networks, made with pyroute2 (Debian: python3-pyroute2).

pyroute2 costs a fresh module process about 0.12 s to import, more than a whole idempotent task,
so it is imported only here, and only when a request is made: by the first ``Rtnl()`` of a task
that changes links (a launch on a bridge network, a network task that makes, repairs or deletes
a bridge). Reading what exists (is the bridge ours, up, with its address?) never needs it: that
is /sys and /proc (bridges.py). ``require()`` says whether it is installed without importing it,
so a launch fails before it has changed anything when it is missing.

``Rtnl`` offers only what network.py needs, in our words:

* links: look up an index by name, add a bridge, add a veth pair whose peer is created directly
  in another network namespace, set up / master / alias, delete;
* IPv4 and IPv6 addresses: list, add (IPv6 without duplicate address detection), delete; neighbours:
  delete one entry;
* routes: add an IPv4 or IPv6 default route through a gateway.

Every failure is an OSError(errno, text naming the request and the interface: the errno's text,
and the kernel's extended-ACK message in brackets when it gave one), as
``cannot add the address 10.89.0.2/24 to eth0: File exists (ipv4: Address already assigned)``.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
import threading
import traceback
from typing import TYPE_CHECKING

from .errors import MissingLibraryError
from .netns import socket_in_netns

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, Callable, Literal

LIBRARY = 'pyroute2'
WHY = 'to plug containers into bridge networks and to make their bridges (Debian: python3-pyroute2)'
RTPROT_BOOT = 3
RT_TABLE_MAIN = 254
IFA_F_NODAD = 0x02

_library: Any = None  # (IPRoute, NetlinkError) once imported


def require() -> None:
    """Raise MissingLibraryError when pyroute2 is not installed (found, not imported: cheap)."""
    if _library is None and importlib.util.find_spec(LIBRARY) is None:
        raise MissingLibraryError(LIBRARY, WHY, 'ModuleNotFoundError: No module named %r' % LIBRARY)


def _load() -> Any:
    global _library  # pylint: disable=global-statement
    if _library is None:
        try:
            # pylint: disable-next=import-outside-toplevel
            from pyroute2.iproute.linux import IPRoute  # type: ignore[import-not-found,import-untyped,unused-ignore]
            # pylint: disable-next=import-outside-toplevel
            from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except ImportError:
            raise MissingLibraryError(LIBRARY, WHY, traceback.format_exc())
        _library = (IPRoute, NetlinkError)
    return _library


def preload() -> None:
    """Import pyroute2 in a thread of its own, now, so that its import overlaps what the caller does next
    (a launch: the registry, the namespace, nft, conmon); the first Rtnl() then waits for it, if at all."""
    if _library is None:
        threading.Thread(target=_preload, name='runcible-pyroute2', daemon=True).start()


def _preload() -> None:
    try:
        _load()
    except Exception:  # pylint: disable=broad-exception-caught
        pass  # said again, in its place, by the Rtnl() that needs it


def failure(code: int, what: str, text: str | None = None) -> OSError:
    """The OSError of a failed request: errno ``code``, ``what`` (names request and interface), why."""
    detail = os.strerror(code) if code > 0 else 'error %d' % code
    if text and text != detail:
        detail = '%s (%s)' % (detail, text)
    return OSError(code, '%s: %s' % (what, detail))


def kernel_error(code: int, message: Any, what: str) -> OSError:
    """pyroute2's NetlinkError(code, message) in our words: its message is the kernel's extended ACK when
    the kernel gave one, else the errno's text (which we say anyway)."""
    text = message if isinstance(message, str) and message.strip() else None
    return failure(code, what, text)


def _label(name: str | None, index: int) -> str:
    return name or 'index %d' % index


class Rtnl(object):
    """A NETLINK_ROUTE socket (pyroute2's IPRoute) and the requests network.py makes on it; a context manager.

    ``sock``: a netlink socket to use (and close), e.g. one opened in another network namespace (the
    requests then act there); else a new one in the caller's namespace.
    """

    def __init__(self, sock: socket.socket | None = None) -> None:
        iproute, self._netlink_error = _load()
        try:
            if sock is not None:
                self.ipr = iproute(fileno=sock.detach(), ext_ack=True)
            else:
                self.ipr = iproute(ext_ack=True)
        except OSError as exc:
            raise OSError(exc.errno, 'cannot open a netlink socket: %s' % (exc.strerror or exc))

    @classmethod
    def in_netns(cls, path: str) -> Rtnl:
        """A client acting in the network namespace bound at ``path``."""
        return cls(socket_in_netns(path))

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        self.close()
        return False

    def _call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except self._netlink_error as exc:
            raise kernel_error(exc.code, exc.args[1] if len(exc.args) > 1 else None, what)
        except OSError as exc:
            raise OSError(exc.errno, '%s: %s' % (what, exc.strerror or exc))

    # -- links --------------------------------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        """The index of the interface ``name`` in this socket's namespace, or None when there is none."""
        try:
            replies = self._call('cannot look up the interface %s' % name, self.ipr.link, 'get', ifname=name)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        for reply in replies:
            return int(reply['index'])
        return None

    def add_bridge(self, name: str) -> None:
        self._call('cannot add the bridge %s' % name, self.ipr.link, 'add', ifname=name, kind='bridge')

    def add_veth(self, name: str, peer: str, peer_netns_fd: int) -> None:
        """A veth pair ``name`` here, ``peer`` made directly in the namespace of the open fd ``peer_netns_fd``."""
        self._call('cannot add the veth pair %s (peer %s in another namespace)' % (name, peer), self.ipr.link, 'add',
                   ifname=name, kind='veth', peer={'ifname': peer, 'net_ns_fd': peer_netns_fd})

    def set_link(self, index: int, name: str | None = None, up: bool | None = None, master: int | None = None,
                 alias: str | None = None, mac: str | None = None) -> None:
        """Change the link ``index`` (``name`` only for messages): up/down, bridge master, alias, MAC address."""
        changes: dict[str, Any] = {}
        if mac is not None:
            changes['address'] = mac
        if up is not None:
            changes['state'] = 'up' if up else 'down'
        if master is not None:
            changes['master'] = master
        if alias is not None:
            changes['ifalias'] = alias
        said = [item for item, given in (('up' if up else 'down', up is not None), ('master', master is not None),
                                         ('alias', alias is not None), ('MAC address', mac is not None)) if given]
        self._call('cannot set %s of the interface %s' % (', '.join(said) or 'nothing', _label(name, index)),
                   self.ipr.link, 'set', index=index, **changes)

    def delete_link(self, index: int, name: str | None = None) -> None:
        self._call('cannot delete the interface %s' % _label(name, index), self.ipr.link, 'del', index=index)

    # -- addresses, neighbours, routes ----------------------------------------------------------------

    def addresses(self, index: int, name: str | None = None, family: int = socket.AF_INET) -> list[tuple[str, int]]:
        """The addresses of the link ``index`` -> [(address text, prefixlen)], in the kernel's order."""
        found = []
        for reply in self._call('cannot list the addresses of %s' % _label(name, index), self.ipr.get_addr,
                                index=index, family=family):
            address = reply.get_attr('IFA_ADDRESS') or reply.get_attr('IFA_LOCAL')
            if address is not None and reply['index'] == index:
                found.append((address, int(reply['prefixlen'])))
        return found

    def add_address(self, index: int, address: str, prefixlen: int, name: str | None = None) -> None:
        """Add ``address`` (IPv4, or IPv6: flagged nodad, usable at once) to the link ``index``."""
        extra: dict[str, Any] = {'family': socket.AF_INET6, 'flags': IFA_F_NODAD} if ':' in address else {}
        self._call('cannot add the address %s/%d to %s' % (address, prefixlen, _label(name, index)), self.ipr.addr,
                   'add', index=index, address=address, prefixlen=prefixlen, **extra)

    def delete_address(self, index: int, address: str, prefixlen: int, name: str | None = None) -> None:
        extra = {'family': socket.AF_INET6} if ':' in address else {}
        self._call('cannot delete the address %s/%d of %s' % (address, prefixlen, _label(name, index)), self.ipr.addr,
                   'del', index=index, address=address, prefixlen=prefixlen, **extra)

    def delete_neighbour(self, index: int, address: str, name: str | None = None) -> None:
        """Forget the neighbour (ARP) entry of ``address`` on the link ``index``."""
        self._call('cannot delete the neighbour %s of %s' % (address, _label(name, index)), self.ipr.neigh, 'del',
                   ifindex=index, dst=address, family=socket.AF_INET6 if ':' in address else socket.AF_INET)

    def add_default_route(self, gateway: str) -> None:
        """The default route of the main table through ``gateway`` (IPv4 or IPv6; as ``ip route add default via``)."""
        if ':' in gateway:
            self._call('cannot add the IPv6 default route via %s' % gateway, self.ipr.route, 'add', dst='::/0',
                       family=socket.AF_INET6, gateway=gateway, table=RT_TABLE_MAIN, proto=RTPROT_BOOT)
            return
        self._call('cannot add the default route via %s' % gateway, self.ipr.route, 'add', dst='0.0.0.0/0',
                   gateway=gateway, table=RT_TABLE_MAIN, proto=RTPROT_BOOT)
