# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small rtnetlink client: the link, address, neighbour and route requests of bridge networks.

Written from the kernel's uapi headers (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h,
neighbour.h, veth.h) with nothing but ``socket`` and ``struct``: a fresh module process compiles
and imports it in a few milliseconds, where importing pyroute2 took it 0.2 s and more. It does
only what network.py needs:

* links: look up an index by name, add a bridge, add a veth pair whose peer is created directly
  in another network namespace, set up / master / alias, delete;
* IPv4 addresses: list (a dump), add, delete;
* neighbours: delete one entry;
* routes: add an IPv4 default route through a gateway.

Every request carries NLM_F_REQUEST|NLM_F_ACK (new objects also NLM_F_CREATE|NLM_F_EXCL) and a
sequence number of its own; the replies with that number are read up to its acknowledgement (an
NLMSG_ERROR whose error is 0, or the negative errno of the failure). A dump (NLM_F_REQUEST|
NLM_F_DUMP: the kernel never acknowledges one) is read up to its NLMSG_DONE instead. A failure
raises OSError(errno, text naming the request and the interface), with the kernel's extended-ACK
message appended when it gives one.

Layouts (native byte order; ``=`` in struct formats)::

    nlmsghdr   len u32, type u16, flags u16, seq u32, pid u32                             16 bytes
    nlmsgerr   error s32, the request's nlmsghdr (its payload too unless NLM_F_CAPPED), TLVs
    ifinfomsg  family u8, pad u8, type u16, index s32, flags u32, change u32              16 bytes
    ifaddrmsg  family u8, prefixlen u8, flags u8, scope u8, index u32                      8 bytes
    rtmsg      family, dst_len, src_len, tos, table, protocol, scope, type (u8); flags u32 12 bytes
    ndmsg      family u8, pad u8, pad u16, ifindex s32, state u16, flags u8, type u8      12 bytes
    rtattr     len u16 (header and value, not the padding), type u16, value, padding to 4 bytes

Messages and attributes are padded to 4 bytes (NLMSG_ALIGN, NLA_ALIGN). Strings are sent with
their NUL, except IFLA_IFALIAS, whose value the kernel stores with the length it is given.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from typing import TYPE_CHECKING

from . import libc

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any, Literal

    Message = tuple[int, int, int, int, bytes]  # type, flags, seq, pid, payload
    Reply = tuple[int, bytes]  # type, payload

# linux/netlink.h
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLM_F_REQUEST = 0x01
NLM_F_ACK = 0x04
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH (GET requests)
NLM_F_EXCL = 0x200  # NEW requests: these share bits with the GET ones
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100  # ACK flags
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff

# linux/rtnetlink.h
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELNEIGH = 29
RTN_UNICAST = 1
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_TABLE_MAIN = 254
RTA_GATEWAY = 5

# linux/if_link.h, linux/veth.h, linux/if.h
IFLA_IFNAME = 3
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFF_UP = 0x1

# linux/if_addr.h, linux/neighbour.h
IFA_ADDRESS = 1
IFA_LOCAL = 2
NDA_DST = 1

CLONE_NEWNET = 0x40000000

NLMSGHDR = struct.Struct('=IHHII')
NLMSGERR = struct.Struct('=i')
RTATTR = struct.Struct('=HH')
IFINFOMSG = struct.Struct('=BxHiII')
IFADDRMSG = struct.Struct('=BBBBI')
RTMSG = struct.Struct('=BBBBBBBBI')
NDMSG = struct.Struct('=BxxxiHBB')
U32 = struct.Struct('=I')

RECEIVE_SIZE = 1 << 17
REPLY_TIMEOUT = 60.0
DUMP_ATTEMPTS = 5


def align(length: int) -> int:
    """NLMSG_ALIGN / NLA_ALIGN: ``length`` rounded up to a multiple of 4."""
    return (length + 3) & ~3


# -- encoding ---------------------------------------------------------------------------------------

def attr(kind: int, value: bytes) -> bytes:
    """One attribute (struct rtattr and its value), padded to 4 bytes."""
    length = RTATTR.size + len(value)
    return RTATTR.pack(length, kind) + value + b'\0' * (align(length) - length)


def attr_str(kind: int, text: str) -> bytes:
    """A string attribute, with its terminating NUL."""
    return attr(kind, text.encode() + b'\0')


def attr_u32(kind: int, number: int) -> bytes:
    return attr(kind, U32.pack(number))


def nested(kind: int, *attrs: bytes) -> bytes:
    """An attribute holding attributes (NLA_F_NESTED set, as the kernel's nla_nest_start() does)."""
    return attr(kind | NLA_F_NESTED, b''.join(attrs))


def ip_bytes(address: str, family: int = socket.AF_INET) -> bytes:
    return socket.inet_pton(family, str(address))


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0, family: int = socket.AF_UNSPEC, link_type: int = 0) -> bytes:
    return IFINFOMSG.pack(family, link_type, index, flags, change)


def ifaddrmsg(index: int, prefixlen: int, family: int = socket.AF_INET, flags: int = 0, scope: int = RT_SCOPE_UNIVERSE) -> bytes:
    return IFADDRMSG.pack(family, prefixlen, flags, scope, index)


def rtmsg(family: int = socket.AF_INET, dst_len: int = 0, table: int = RT_TABLE_MAIN, protocol: int = RTPROT_BOOT,
          scope: int = RT_SCOPE_UNIVERSE, route_type: int = RTN_UNICAST, flags: int = 0) -> bytes:
    return RTMSG.pack(family, dst_len, 0, 0, table, protocol, scope, route_type, flags)


def ndmsg(index: int, family: int = socket.AF_INET, state: int = 0, flags: int = 0, neigh_type: int = 0) -> bytes:
    return NDMSG.pack(family, index, state, flags, neigh_type)


def message(kind: int, flags: int, seq: int, payload: bytes, pid: int = 0) -> bytes:
    """One netlink message: struct nlmsghdr, then the payload (padded to 4 bytes)."""
    length = NLMSGHDR.size + len(payload)
    return NLMSGHDR.pack(length, kind, flags, seq, pid) + payload + b'\0' * (align(length) - length)


# -- decoding ---------------------------------------------------------------------------------------

def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes in ``data[offset:]`` -> {type (flags masked): value}; the first of a type wins."""
    attrs: dict[int, bytes] = {}
    end = len(data)
    while offset + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size or offset + length > end:
            break  # truncated: what came before stands
        attrs.setdefault(kind & NLA_TYPE_MASK, data[offset + RTATTR.size:offset + length])
        offset += align(length)
    return attrs


def parse_messages(data: bytes) -> list[Message]:
    """Netlink messages of one datagram -> [(type, flags, seq, pid, payload)]."""
    messages: list[Message] = []
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, flags, seq, pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size or offset + length > len(data):
            raise OSError(errno.EBADMSG, 'netlink: a message of %d bytes at offset %d of a datagram of %d bytes'
                          % (length, offset, len(data)))
        messages.append((kind, flags, seq, pid, data[offset + NLMSGHDR.size:offset + length]))
        offset += align(length)
    return messages


def parse_error(flags: int, payload: bytes, done: bool = False) -> tuple[int, str | None]:
    """The errno of an NLMSG_ERROR (struct nlmsgerr) or NLMSG_DONE (an int) -> (errno, kernel message or None).

    An errno of 0 is an acknowledgement (or a dump's good end). With NLM_F_ACK_TLVS attributes
    follow, NLMSGERR_ATTR_MSG the text of the error: in an NLMSG_ERROR after the request's header
    (and its payload, unless NLM_F_CAPPED), in an NLMSG_DONE right after the int.
    """
    if len(payload) < NLMSGERR.size:
        raise OSError(errno.EBADMSG, 'netlink: an error message of %d bytes' % len(payload))
    code = -NLMSGERR.unpack_from(payload)[0]
    text = None
    if flags & NLM_F_ACK_TLVS:
        offset = NLMSGERR.size
        if not done:
            if len(payload) < NLMSGERR.size + NLMSGHDR.size:
                return code, None
            request_length = NLMSGHDR.unpack_from(payload, offset)[0]
            offset += NLMSGHDR.size if flags & NLM_F_CAPPED else align(request_length)
        value = parse_attrs(payload, offset).get(NLMSGERR_ATTR_MSG)
        if value:
            text = value.split(b'\0', 1)[0].decode('utf-8', 'replace') or None
    return code, text


def parse_address(payload: bytes) -> tuple[int, int, int, str | None]:
    """An RTM_NEWADDR payload -> (family, prefixlen, index, address text or None)."""
    family, prefixlen, _flags, _scope, index = IFADDRMSG.unpack_from(payload)
    attrs = parse_attrs(payload, align(IFADDRMSG.size))
    value = attrs.get(IFA_ADDRESS) or attrs.get(IFA_LOCAL)
    address = socket.inet_ntop(family, value) if value and family in (socket.AF_INET, socket.AF_INET6) else None
    return family, prefixlen, index, address


def failure(code: int, what: str, text: str | None = None) -> OSError:
    """The OSError of a failed request: errno ``code``, ``what`` (names request and interface), why."""
    detail = os.strerror(code) if code > 0 else 'error %d' % code
    if text:
        detail = '%s (%s)' % (detail, text)
    return OSError(code, '%s: %s' % (what, detail))


def _label(name: str | None, index: int) -> str:
    return name or 'index %d' % index


# -- namespaces -------------------------------------------------------------------------------------

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


# -- the client -------------------------------------------------------------------------------------

class Netlink(object):
    """A NETLINK_ROUTE socket and the requests network.py makes on it; a context manager closing it.

    ``sock``: a netlink socket to use (and close), e.g. one opened in another network namespace;
    the requests then act in that namespace. Else a new one in the caller's namespace.
    """

    def __init__(self, sock: socket.socket | None = None, timeout: float = REPLY_TIMEOUT) -> None:
        if sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock = sock
        self.timeout = timeout
        try:
            for option in (NETLINK_EXT_ACK, NETLINK_CAP_ACK):
                try:
                    sock.setsockopt(SOL_NETLINK, option, 1)
                except OSError:
                    pass  # older kernels: plain acknowledgements, the request echoed back
            if sock.getsockname()[0] == 0:
                sock.bind((0, 0))  # the kernel picks our port id
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        self.seq = int.from_bytes(os.urandom(4), 'little') & 0x7fffffff

    @classmethod
    def in_netns(cls, path: str, timeout: float = REPLY_TIMEOUT) -> Netlink:
        """A client acting in the network namespace bound at ``path``."""
        return cls(socket_in_netns(path), timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        self.close()
        return False

    # -- transport ----------------------------------------------------------------------------------

    def _send(self, kind: int, flags: int, payload: bytes, what: str) -> int:
        self.seq = self.seq % 0xffffffff + 1
        try:
            self.sock.send(message(kind, flags, self.seq, payload))
        except OSError as exc:
            raise OSError(exc.errno, '%s: cannot send the request: %s' % (what, exc.strerror or exc))
        return self.seq

    def _receive(self, what: str) -> list[Message]:
        """The messages of the next datagram from the kernel."""
        while True:
            try:
                data, _ancillary, flags, address = self.sock.recvmsg(RECEIVE_SIZE)
            except socket.timeout:
                raise OSError(errno.ETIMEDOUT, '%s: no answer from the kernel in %d s' % (what, self.timeout))
            except OSError as exc:
                raise OSError(exc.errno, '%s: cannot read the answer: %s' % (what, exc.strerror or exc))
            if flags & socket.MSG_TRUNC:
                raise OSError(errno.EMSGSIZE, '%s: an answer larger than %d bytes' % (what, RECEIVE_SIZE))
            if address and address[0] != 0:
                continue  # not from the kernel
            return parse_messages(data)

    def request(self, kind: int, payload: bytes, flags: int = 0, what: str = 'netlink request') -> list[Reply]:
        """A request acknowledged by the kernel; -> [(type, payload)] of the replies before the ACK.

        ``flags``: added to NLM_F_REQUEST|NLM_F_ACK (NLM_F_CREATE|NLM_F_EXCL for a new object).
        """
        seq = self._send(kind, NLM_F_REQUEST | NLM_F_ACK | flags, payload, what)
        replies: list[Reply] = []
        while True:
            for reply_kind, reply_flags, reply_seq, _pid, reply in self._receive(what):
                if reply_seq != seq or reply_kind in (NLMSG_NOOP, NLMSG_DONE):
                    continue  # a late answer to an earlier request
                if reply_kind == NLMSG_ERROR:
                    code, text = parse_error(reply_flags, reply)
                    if code:
                        raise failure(code, what, text)
                    return replies
                if reply_kind == NLMSG_OVERRUN:
                    raise OSError(errno.ENOBUFS, '%s: the kernel lost part of its answer' % what)
                replies.append((reply_kind, reply))

    def dump(self, kind: int, payload: bytes, what: str = 'netlink dump') -> list[Reply]:
        """A dump request; -> [(type, payload)] of every part up to NLMSG_DONE.

        A dump the kernel marks inconsistent (NLM_F_DUMP_INTR: changed while it was read) is asked
        for again, a few times; the last one is taken as it is.
        """
        attempt = 1
        while True:
            parts, interrupted = self._dump_once(kind, payload, what)
            if not interrupted or attempt >= DUMP_ATTEMPTS:
                return parts
            attempt += 1

    def _dump_once(self, kind: int, payload: bytes, what: str) -> tuple[list[Reply], bool]:
        seq = self._send(kind, NLM_F_REQUEST | NLM_F_DUMP, payload, what)
        parts: list[Reply] = []
        interrupted = False
        while True:
            for part_kind, part_flags, part_seq, _pid, part in self._receive(what):
                if part_seq != seq or part_kind == NLMSG_NOOP:
                    continue
                interrupted = interrupted or bool(part_flags & NLM_F_DUMP_INTR)
                if part_kind in (NLMSG_DONE, NLMSG_ERROR):
                    code, text = (0, None)
                    if len(part) >= NLMSGERR.size:
                        code, text = parse_error(part_flags, part, done=part_kind == NLMSG_DONE)
                    if code:
                        raise failure(code, what, text)
                    return parts, interrupted
                if part_kind == NLMSG_OVERRUN:
                    raise OSError(errno.ENOBUFS, '%s: the kernel lost part of its answer' % what)
                parts.append((part_kind, part))

    # -- links --------------------------------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        """The index of the interface ``name`` in this socket's namespace, or None when there is none."""
        try:
            replies = self.request(RTM_GETLINK, ifinfomsg() + attr_str(IFLA_IFNAME, name),
                                   what='cannot look up the interface %s' % name)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        for kind, payload in replies:
            if kind == RTM_NEWLINK and len(payload) >= IFINFOMSG.size:
                return IFINFOMSG.unpack_from(payload)[2]
        return None

    def add_bridge(self, name: str) -> None:
        payload = ifinfomsg() + attr_str(IFLA_IFNAME, name) + nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, 'bridge'))
        self.request(RTM_NEWLINK, payload, NLM_F_CREATE | NLM_F_EXCL, 'cannot add the bridge %s' % name)

    def add_veth(self, name: str, peer: str, peer_netns_fd: int) -> None:
        """A veth pair ``name`` here, ``peer`` made directly in the namespace of the open fd ``peer_netns_fd``."""
        peer_info = ifinfomsg() + attr_str(IFLA_IFNAME, peer) + attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
        payload = ifinfomsg() + attr_str(IFLA_IFNAME, name) + nested(
            IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, 'veth'), nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info)))
        self.request(RTM_NEWLINK, payload, NLM_F_CREATE | NLM_F_EXCL,
                     'cannot add the veth pair %s (peer %s in another namespace)' % (name, peer))

    def set_link(self, index: int, name: str | None = None, up: bool | None = None, master: int | None = None,
                 alias: str | None = None) -> None:
        """Change the link ``index`` (``name`` only for messages): up/down, bridge master, alias."""
        flags = IFF_UP if up else 0
        change = IFF_UP if up is not None else 0
        attrs = b''
        if master is not None:
            attrs += attr_u32(IFLA_MASTER, master)
        if alias is not None:
            attrs += attr(IFLA_IFALIAS, alias.encode())
        changes = [item for item, given in (('up' if up else 'down', up is not None), ('master', master is not None),
                                            ('alias', alias is not None)) if given]
        self.request(RTM_NEWLINK, ifinfomsg(index, flags, change) + attrs,
                     what='cannot set %s of the interface %s' % (', '.join(changes) or 'nothing', _label(name, index)))

    def delete_link(self, index: int, name: str | None = None) -> None:
        self.request(RTM_DELLINK, ifinfomsg(index), what='cannot delete the interface %s' % _label(name, index))

    # -- addresses, neighbours, routes ----------------------------------------------------------------

    def addresses(self, index: int, name: str | None = None, family: int = socket.AF_INET) -> list[tuple[str, int]]:
        """The addresses of the link ``index`` -> [(address text, prefixlen)], in the kernel's order."""
        found = []
        for kind, payload in self.dump(RTM_GETADDR, ifaddrmsg(0, 0, family),
                                       'cannot list the addresses of %s' % _label(name, index)):
            if kind != RTM_NEWADDR or len(payload) < IFADDRMSG.size:
                continue
            address_family, prefixlen, address_index, address = parse_address(payload)
            if address_index == index and address_family == family and address is not None:
                found.append((address, prefixlen))
        return found

    def _address(self, kind: int, index: int, address: str, prefixlen: int, flags: int, what: str) -> None:
        value = ip_bytes(address)
        payload = ifaddrmsg(index, prefixlen) + attr(IFA_LOCAL, value) + attr(IFA_ADDRESS, value)
        self.request(kind, payload, flags, what)

    def add_address(self, index: int, address: str, prefixlen: int, name: str | None = None) -> None:
        self._address(RTM_NEWADDR, index, address, prefixlen, NLM_F_CREATE | NLM_F_EXCL,
                      'cannot add the address %s/%d to %s' % (address, prefixlen, _label(name, index)))

    def delete_address(self, index: int, address: str, prefixlen: int, name: str | None = None) -> None:
        self._address(RTM_DELADDR, index, address, prefixlen, 0,
                      'cannot delete the address %s/%d of %s' % (address, prefixlen, _label(name, index)))

    def delete_neighbour(self, index: int, address: str, name: str | None = None) -> None:
        """Forget the neighbour (ARP) entry of ``address`` on the link ``index``."""
        self.request(RTM_DELNEIGH, ndmsg(index) + attr(NDA_DST, ip_bytes(address)),
                     what='cannot delete the neighbour %s of %s' % (address, _label(name, index)))

    def add_default_route(self, gateway: str) -> None:
        """The IPv4 default route of the main table through ``gateway`` (as ``ip route add default via``)."""
        self.request(RTM_NEWROUTE, rtmsg() + attr(RTA_GATEWAY, ip_bytes(gateway)), NLM_F_CREATE | NLM_F_EXCL,
                     'cannot add the default route via %s' % gateway)
