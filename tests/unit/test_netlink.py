# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/netlink.py: the rtnetlink client, against a fake socket (no kernel).

The expected requests are written out byte by byte from the uapi struct layouts (linux/netlink.h,
rtnetlink.h, if_link.h, if_addr.h, neighbour.h, veth.h) for a little-endian host; the kernel's
answers are built here with struct, not with the code under test.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import netlink as nl

pytestmark = pytest.mark.skipif(sys.byteorder != 'little', reason='the expected bytes are little-endian')

PORT_ID = 4242


def h(text):
    """Bytes from hex written with spaces between the fields."""
    return bytes.fromhex(''.join(text.split()))


def kernel_message(kind, flags, seq, payload):
    """A message as the kernel sends it: nlmsghdr (len, type, flags, seq, pid) + payload, padded to 4."""
    length = 16 + len(payload)
    return struct.pack('=IHHII', length, kind, flags, seq, PORT_ID) + payload + b'\0' * (-length % 4)


def tlv(kind, value):
    return struct.pack('=HH', 4 + len(value), kind) + value + b'\0' * (-len(value) % 4)


def ack(code=0, text=None, capped=True):
    """An NLMSG_ERROR answering the request of ``seq``: errno ``code`` (0: an ACK), optional extended-ACK text."""
    def answer(seq, request):
        flags = nl.NLM_F_CAPPED if capped else 0
        payload = struct.pack('=i', -code) + (request[:16] if capped else request)
        if text is not None:
            flags |= nl.NLM_F_ACK_TLVS
            payload += tlv(nl.NLMSGERR_ATTR_MSG, text.encode() + b'\0')
        return [kernel_message(nl.NLMSG_ERROR, flags, seq, payload)]
    return answer


class FakeSocket(object):
    """A netlink socket that records every request and answers each with the datagrams of the next answer
    function (called with the request's sequence number and bytes)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent = []
        self.queue = []
        self.options = {}
        self.timeout = None
        self.closed = False

    def setsockopt(self, level, option, value):
        self.options[(level, option)] = value

    def getsockname(self):
        return (PORT_ID, 0)  # bound already

    def bind(self, address):
        raise AssertionError('a bound socket is bound again')

    def settimeout(self, timeout):
        self.timeout = timeout

    def send(self, data):
        self.sent.append(data)
        seq = struct.unpack_from('=I', data, 8)[0]
        self.queue.extend(self.answers.pop(0)(seq, data))
        return len(data)

    def recvmsg(self, size):
        item = self.queue.pop(0)
        data, address = item if isinstance(item, tuple) else (item, (0, 0))
        return data, [], 0, address

    def close(self):
        self.closed = True


def client(*answers):
    """A client on a FakeSocket whose next request gets the sequence number 7."""
    fake = FakeSocket(*answers)
    rtnl = nl.Netlink(fake)
    rtnl.seq = 6
    return rtnl, fake


# -- encoding ---------------------------------------------------------------------------------------

def test_attributes_are_padded_to_four_bytes():
    assert nl.attr(nl.IFLA_IFNAME, b'eth0\0') == h('0900 0300  65746830 00  000000')
    assert nl.attr_str(nl.IFLA_IFNAME, 'br0') == h('0800 0300  62723000')
    assert nl.attr_u32(nl.IFLA_MASTER, 3) == h('0800 0a00  03000000')
    assert nl.attr(nl.IFLA_IFALIAS, b'') == h('0400 1400')
    assert nl.nested(nl.IFLA_LINKINFO, nl.attr_str(nl.IFLA_INFO_KIND, 'veth')) == h(
        '1000 1280  0900 0100 76657468 00 000000')  # type 18 | NLA_F_NESTED


def test_header_structs_have_the_uapi_sizes():
    assert (nl.NLMSGHDR.size, nl.IFINFOMSG.size, nl.IFADDRMSG.size, nl.RTMSG.size, nl.NDMSG.size) == (16, 16, 8, 12, 12)
    assert nl.message(nl.RTM_GETLINK, nl.NLM_F_REQUEST, 1, b'\1') == h('11000000 1200 0100 01000000 00000000  01 000000')


def test_add_bridge_request():
    rtnl, fake = client(ack())
    rtnl.add_bridge('br0')
    assert fake.sent == [
        h('38000000 1000 0506 07000000 00000000')     # nlmsghdr: 56 bytes, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE, seq 7
        + h('00 00 0000 00000000 00000000 00000000')  # ifinfomsg: AF_UNSPEC, index 0
        + h('0800 0300 62723000')                      # IFLA_IFNAME "br0"
        + h('1000 1280')                               # IFLA_LINKINFO, 16 bytes, nested
        + h('0b00 0100 627269646765 00 00')]           # IFLA_INFO_KIND "bridge", padded


def test_add_veth_request_makes_the_peer_in_another_namespace():
    rtnl, fake = client(ack())
    rtnl.add_veth('rcvX', 'eth0', 5)
    expected = (
        h('68000000 1000 0506 07000000 00000000')   # nlmsghdr: 104 bytes, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
        + h('00 00 0000 00000000 00000000 00000000')  # ifinfomsg
        + h('0900 0300 72637658 00 000000')            # IFLA_IFNAME "rcvX"
        + h('3c00 1280')                               # IFLA_LINKINFO, 60 bytes, nested
        + h('0900 0100 76657468 00 000000')            # IFLA_INFO_KIND "veth"
        + h('2c00 0280')                               # IFLA_INFO_DATA, 44 bytes, nested
        + h('2800 0100')                               # VETH_INFO_PEER, 40 bytes: an ifinfomsg and its attributes
        + h('00 00 0000 00000000 00000000 00000000')  # the peer's ifinfomsg
        + h('0900 0300 65746830 00 000000')            # IFLA_IFNAME "eth0"
        + h('0800 1c00 05000000'))                     # IFLA_NET_NS_FD 5
    assert fake.sent == [expected]


def test_set_link_request_up_master_alias():
    rtnl, fake = client(ack(), ack())
    rtnl.set_link(7, 'rcvX', up=True, master=3, alias='ab')
    rtnl.set_link(1, 'lo', up=False)
    assert fake.sent[0] == (
        h('30000000 1000 0500 07000000 00000000')     # 48 bytes, RTM_NEWLINK, REQUEST|ACK (no CREATE: a change)
        + h('00 00 0000 07000000 01000000 01000000')  # index 7, flags IFF_UP, change IFF_UP
        + h('0800 0a00 03000000')                      # IFLA_MASTER 3
        + h('0600 1400 6162 0000'))                    # IFLA_IFALIAS "ab" (no NUL), padded
    assert fake.sent[1][16:] == h('00 00 0000 01000000 00000000 01000000')  # down: flags 0, change IFF_UP


def test_delete_link_request():
    rtnl, fake = client(ack())
    rtnl.delete_link(9, 'br0')
    assert fake.sent == [h('20000000 1100 0500 07000000 00000000  00 00 0000 09000000 00000000 00000000')]


def test_address_requests():
    rtnl, fake = client(ack(), ack())
    rtnl.add_address(3, '10.89.0.1', 24)
    rtnl.delete_address(3, '10.89.0.1', 24)
    body = (h('02 18 00 00 03000000')   # ifaddrmsg: AF_INET, /24, flags 0, scope universe, index 3
            + h('0800 0200 0a590001')   # IFA_LOCAL 10.89.0.1
            + h('0800 0100 0a590001'))  # IFA_ADDRESS 10.89.0.1
    assert fake.sent[0] == h('28000000 1400 0506 07000000 00000000') + body  # RTM_NEWADDR, CREATE|EXCL
    assert fake.sent[1] == h('28000000 1500 0500 08000000 00000000') + body  # RTM_DELADDR, seq 8


def test_delete_neighbour_request():
    rtnl, fake = client(ack())
    rtnl.delete_neighbour(4, '10.89.0.2')
    assert fake.sent == [
        h('24000000 1d00 0500 07000000 00000000')  # 36 bytes, RTM_DELNEIGH
        + h('02 00 0000 04000000 0000 00 00')      # ndmsg: AF_INET, ifindex 4
        + h('0800 0100 0a590002')]                 # NDA_DST 10.89.0.2


def test_default_route_request():
    rtnl, fake = client(ack())
    rtnl.add_default_route('10.89.0.1')
    assert fake.sent == [
        h('24000000 1800 0506 07000000 00000000')  # 36 bytes, RTM_NEWROUTE, REQUEST|ACK|EXCL|CREATE
        # rtmsg: AF_INET, dst_len 0, src_len 0, tos 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST
        + h('02 00 00 00 fe 03 00 01 00000000')
        + h('0800 0500 0a590001')]                 # RTA_GATEWAY 10.89.0.1


# -- decoding ---------------------------------------------------------------------------------------

def test_parse_attrs_masks_flags_keeps_the_first_and_stops_at_a_truncated_one():
    data = tlv(3 | nl.NLA_F_NESTED, b'abc') + tlv(3, b'zz') + tlv(1, b'\1\2\3\4') + h('0800 0500 01')  # truncated
    assert nl.parse_attrs(data) == {3: b'abc', 1: b'\1\2\3\4'}
    assert nl.parse_attrs(b'\0' * 8 + tlv(2, b'x'), 8) == {2: b'x'}


def test_parse_messages_follows_the_padding():
    first = struct.pack('=IHHII', 21, 99, 0, 1, 0) + b'hello' + b'\0\0\0'
    second = struct.pack('=IHHII', 16, nl.NLMSG_DONE, 2, 2, 0)  # NLM_F_MULTI
    assert nl.parse_messages(first + second) == [(99, 0, 1, 0, b'hello'), (nl.NLMSG_DONE, 2, 2, 0, b'')]
    with pytest.raises(OSError) as info:
        nl.parse_messages(struct.pack('=IHHII', 64, 99, 0, 1, 0))
    assert info.value.errno == errno.EBADMSG


def test_parse_error_reads_the_extended_ack_message_capped_or_not():
    request = struct.pack('=IHHII', 20, nl.RTM_NEWLINK, 5, 1, 0) + b'\1\2\3\4'
    capped = struct.pack('=i', -17) + request[:16] + tlv(nl.NLMSGERR_ATTR_MSG, b'exists\0')
    full = struct.pack('=i', -17) + request + tlv(nl.NLMSGERR_ATTR_MSG, b'exists\0')
    tlvs = nl.NLM_F_ACK_TLVS
    assert nl.parse_error(tlvs | nl.NLM_F_CAPPED, capped) == (17, 'exists')
    assert nl.parse_error(tlvs, full) == (17, 'exists')
    assert nl.parse_error(nl.NLM_F_CAPPED, struct.pack('=i', 0) + request[:16]) == (0, None)
    assert nl.parse_error(tlvs, struct.pack('=i', -22) + tlv(nl.NLMSGERR_ATTR_MSG, b'bad\0'), done=True) == (22, 'bad')


# -- requests and answers -----------------------------------------------------------------------------

def test_setup_asks_for_extended_acks_and_sets_a_timeout():
    rtnl, fake = client()
    assert fake.options == {(nl.SOL_NETLINK, nl.NETLINK_EXT_ACK): 1, (nl.SOL_NETLINK, nl.NETLINK_CAP_ACK): 1}
    assert fake.timeout == nl.REPLY_TIMEOUT
    with rtnl:
        pass
    assert fake.closed


def test_an_error_raises_oserror_naming_the_request_and_the_interface():
    rtnl, _fake = client(ack(errno.EEXIST, 'ipv4: Address already assigned'))
    with pytest.raises(OSError) as info:
        rtnl.add_address(3, '10.89.0.1', 24, 'runcible0')
    assert info.value.errno == errno.EEXIST
    assert info.value.strerror == ('cannot add the address 10.89.0.1/24 to runcible0: %s (ipv4: Address already '
                                   'assigned)' % os.strerror(errno.EEXIST))
    rtnl, _fake = client(ack(errno.ENODEV, capped=False))
    with pytest.raises(OSError, match='cannot delete the interface index 9: ') as info:
        rtnl.delete_link(9)
    assert info.value.errno == errno.ENODEV


def test_answers_of_other_requests_and_senders_are_skipped():
    def answer(seq, request):
        return [kernel_message(nl.NLMSG_ERROR, nl.NLM_F_CAPPED, seq - 1, struct.pack('=i', -errno.EEXIST) + request[:16]),
                (kernel_message(nl.NLMSG_ERROR, nl.NLM_F_CAPPED, seq, struct.pack('=i', -errno.EPERM) + request[:16]),
                 (777, 0)),  # not from the kernel (port id 0)
                kernel_message(nl.NLMSG_NOOP, 0, seq, b'')
                + kernel_message(nl.NLMSG_ERROR, nl.NLM_F_CAPPED, seq, struct.pack('=i', 0) + request[:16])]
    rtnl, fake = client(answer)
    rtnl.delete_link(9)
    assert fake.queue == []


def test_link_index_from_the_reply_or_none():
    def newlink(seq, request):
        link = struct.pack('=BxHiII', 0, 1, 2, 0x1043, 0) + tlv(nl.IFLA_IFNAME, b'eth0\0')
        return [kernel_message(nl.RTM_NEWLINK, 0, seq, link)] + ack()(seq, request)
    rtnl, fake = client(newlink, ack(errno.ENODEV))
    assert rtnl.link_index('eth0') == 2
    assert fake.sent[0] == (h('2c000000 1200 0500 07000000 00000000')  # RTM_GETLINK, REQUEST|ACK
                            + h('00 00 0000 00000000 00000000 00000000')
                            + h('0900 0300 65746830 00 000000'))
    assert rtnl.link_index('nope') is None


def addr_message(seq, index, address, prefixlen, family=socket.AF_INET, flags=2):
    payload = struct.pack('=BBBBI', family, prefixlen, 0x80, 0, index)
    packed = socket.inet_pton(family, address)
    payload += tlv(nl.IFA_ADDRESS, packed) + tlv(nl.IFA_LOCAL, packed) + tlv(3, b'x\0')
    return kernel_message(nl.RTM_NEWADDR, flags, seq, payload)


def test_addresses_dump_until_done_filtered_by_index_and_family():
    def dump(seq, request):
        return [addr_message(seq, 3, '10.89.0.1', 24) + addr_message(seq, 5, '10.89.7.1', 24)
                + addr_message(seq, 3, 'fe80::1', 64, socket.AF_INET6),
                addr_message(seq, 3, '192.0.2.9', 28) + addr_message(seq - 1, 3, '198.51.100.1', 24),
                kernel_message(nl.NLMSG_DONE, 2, seq, struct.pack('=i', 0))]
    rtnl, fake = client(dump)
    assert rtnl.addresses(3, 'runcible0') == [('10.89.0.1', 24), ('192.0.2.9', 28)]
    assert fake.sent == [h('18000000 1600 0103 07000000 00000000  02 00 00 00 00000000')]  # REQUEST|DUMP, AF_INET


def test_an_interrupted_dump_is_asked_for_again():
    def interrupted(seq, request):
        return [addr_message(seq, 3, '10.0.0.1', 8, flags=2 | nl.NLM_F_DUMP_INTR),
                kernel_message(nl.NLMSG_DONE, 2 | nl.NLM_F_DUMP_INTR, seq, struct.pack('=i', 0))]

    def good(seq, request):
        return [addr_message(seq, 3, '10.89.0.1', 24), kernel_message(nl.NLMSG_DONE, 2, seq, struct.pack('=i', 0))]
    rtnl, fake = client(interrupted, good)
    assert rtnl.addresses(3) == [('10.89.0.1', 24)]
    assert len(fake.sent) == 2


def test_a_dump_that_fails_raises():
    def failed(seq, request):
        return [kernel_message(nl.NLMSG_DONE, 2 | nl.NLM_F_ACK_TLVS, seq,
                               struct.pack('=i', -errno.EINVAL) + tlv(nl.NLMSGERR_ATTR_MSG, b'no\0'))]
    rtnl, _fake = client(failed)
    with pytest.raises(OSError, match=r'cannot list the addresses of br0: .* \(no\)') as info:
        rtnl.addresses(3, 'br0')
    assert info.value.errno == errno.EINVAL
    rtnl, _fake = client(ack(errno.EPERM))
    with pytest.raises(OSError) as info:
        rtnl.addresses(3, 'br0')
    assert info.value.errno == errno.EPERM


def test_a_truncated_datagram_and_a_silent_kernel_raise():
    class Truncating(FakeSocket):
        def recvmsg(self, size):
            return b'', [], socket.MSG_TRUNC, (0, 0)

    class Silent(FakeSocket):
        def recvmsg(self, size):
            raise socket.timeout('timed out')
    rtnl = nl.Netlink(Truncating(lambda seq, request: []))
    with pytest.raises(OSError, match='larger than') as info:
        rtnl.delete_link(1, 'lo')
    assert info.value.errno == errno.EMSGSIZE
    rtnl = nl.Netlink(Silent(lambda seq, request: []), timeout=3)
    with pytest.raises(OSError, match='cannot delete the interface lo: no answer from the kernel in 3 s') as info:
        rtnl.delete_link(1, 'lo')
    assert info.value.errno == errno.ETIMEDOUT


def test_sequence_numbers_grow_and_wrap():
    rtnl, fake = client(ack(), ack())
    rtnl.seq = 0xffffffff
    rtnl.delete_link(1)
    rtnl.delete_link(1)
    assert [struct.unpack_from('=I', data, 8)[0] for data in fake.sent] == [1, 2]
