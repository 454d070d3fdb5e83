#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: network
short_description: Bridge networks for runcible.oci containers, with outbound NAT and published ports
version_added: 0.2.0
description:
  - Manages one named bridge network on the managed host for M(runcible.oci.container), that is a Linux
    bridge with the network's gateway address and nftables rules for outbound NAT (masquerade)
    unless the network is internal.
  - Containers join it with the container option O(runcible.oci.container#module:network); each
    gets a network namespace of its own, a veth pair with one end on the bridge, an address of
    the subnet (allocated, or pinned with O(runcible.oci.container#module:ip_address)) and, unless
    the network is internal, a default route through the gateway.
  - The default network C(runcible) (bridge C(runcible0)) is created on first use by a container
    with O(runcible.oci.container#module:network=bridge), the container default; this module can
    create it beforehand with another subnet, or remove it when no container uses it.
  - Networks are host objects, so they are host-wide whatever C(root) containers use; their
    definitions and the containers' address allocations are kept in
    C(/var/lib/runcible/networks/networks.json), changed under a lock so that parallel tasks never
    hand out one address twice.
  - Idempotent. A bridge or firewall rules lost behind its back (a reboot, C(nft flush ruleset))
    are made again and reported as V(repaired).
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would change and writes nothing (no registry change, bridge or rule).
  diff_mode:
    support: full
    details: Before and after of the definition fields that differ, or of the whole network when it is created or
      removed.
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the network, 1 to 64 characters from C([a-zA-Z0-9_.-]), starting with a letter or
        digit. V(none), V(host) and V(bridge) are not network names (they are values of the
        container's C(network) option).
    type: str
    required: true
  state:
    description:
      - V(present) creates the network, changes it, or repairs its bridge and rules.
      - V(absent) removes the bridge, the rules and the definition; it fails while containers have
        addresses on the network (remove them first). A bridge the collection did not create is left
        as it is, with a warning (see O(bridge)).
    type: str
    default: present
    choices: [present, absent]
  subnet:
    description:
      - IPv4 subnet in CIDR form, a V(/29) or larger, e.g. V(10.89.5.0/24).
      - When a new network has none, the first free V(/24) of C(10.89.0.0/16) is taken, free
        meaning that it overlaps neither another network nor any route of the host.
      - Changing the subnet of an existing network needs it to have no containers.
    type: str
  gateway:
    description:
      - Address of the bridge, the containers' gateway; a host address of O(subnet). Defaults to
        its first host address.
    type: str
  internal:
    description:
      - An internal network has no outbound NAT, no default route in its containers and no
        forwarding to or from other interfaces; its containers reach only each other (and the
        host's address on the bridge). Published ports still work from the host.
      - Defaults to V(false) for a new network.
    type: bool
  bridge:
    description:
      - Name of the Linux bridge. Defaults to V(runcible0) for the network C(runcible), and to
        C(rcb-NAME) for others (a hash when that is longer than 15 characters).
      - The module creates the bridge and marks it as its own with the interface alias
        C(runcible.oci network NAME) (bridges made by earlier versions carry it too). It never
        changes or deletes an interface without that alias. When an interface of this name already
        exists and is not the network's own, the task fails and changes nothing, in check mode too;
        choose another bridge name, or remove that interface if nothing needs it.
    type: str
  dns:
    description:
      - Whether the network serves the names of its containers. Containers on it resolve each other
        by container name and by their O(runcible.oci.container#module:aliases) through
        C(aardvark-dns) (Debian C(aardvark-dns)), which listens on the gateway address, port 53,
        and forwards other names to the container's O(runcible.oci.container#module:dns) servers or
        the host's resolvers. Their C(/etc/resolv.conf) names the gateway as their name server.
      - One C(aardvark-dns) process serves every DNS-enabled network of the host. It is started when
        the first container joins such a network, told of every change by SIGHUP, and ends with the
        last container. A task that attaches or detaches a container, or this module, starts it
        again when it was killed (V(repaired)).
      - Defaults to V(true) for a new network, V(false) for the default network C(runcible) made
        on first use and for networks defined by earlier versions. Changing it needs the network to
        have no containers.
    type: bool
  ipv6:
    description:
      - Whether the network is dual-stack. The bridge gets the first address of O(ipv6_subnet) as
        the containers' IPv6 gateway, and every container on it an IPv6 address of that subnet
        besides its IPv4 one (allocated, or pinned with the C(ipv6_address) of its
        O(runcible.oci.container#module:networks) entry), an IPv6 default route (unless the network is
        internal), and its AAAA record on the network's DNS.
      - Outbound IPv6 traffic is masqueraded (NAT66) to the host's address on the way out, as IPv4's;
        the ULA subnet is not routed to other hosts. Published IPv6 ports
        (O(runcible.oci.container#module:published_ports) V([::]:8080:80)) are forwarded with DNAT in
        the nftables table C(ip6 runcible).
      - Containers and neighbours on the bridge cannot reconfigure the host or each other through
        IPv6 router advertisements or redirects (C(accept_ra) and C(accept_redirects) are 0 on the
        bridge and in the containers).
      - Defaults to V(false) for a new network (and to true when O(ipv6_subnet) is given). Changing
        it needs the network to have no containers.
    type: bool
  ipv6_subnet:
    description:
      - The network's IPv6 subnet in CIDR form without host bits, a V(/48) to V(/120), e.g.
        V(fd12:3456:789a::/64).
      - Defaults to a unique local (ULA, RFC 4193) V(/64) derived from the network's name, so the
        same name gives the same subnet on every host. C(fd), then the first 40 bits of the SHA-256 of
        C(runcible.oci network NAME) as the global ID, then subnet ID 0. A clash with another
        network's subnet fails the task, asking for another O(ipv6_subnet).
      - Changing it needs the network to have no containers.
    type: str
notes:
  - The module must run as root on the managed host, and needs nftables (Debian C(nftables)).
    It makes and repairs the bridge over rtnetlink with the Python library pyroute2 (Debian
    C(python3-pyroute2)), imported only when a bridge is made, repaired or deleted.
  - The firewall is nftables, not iptables. Everything lives in one table of the collection's
    own, C(ip runcible), which is rewritten whole, in one atomic transaction, from the network
    registry whenever a network or a published port changes. So no other tool's chains are
    touched (with iptables we would insert into the shared built-in chains that Docker, firewalld
    or ufw also edit), a change is never half applied (iptables takes one process per rule and has
    no transaction), rules of a container killed behind our back vanish at the next change, and a
    flushed ruleset is rebuilt by the next task. Every rule carries a comment naming its network
    (C(net=NAME)) or container (C(ctr=ID12 NAME)); C(nft list table ip runcible) shows them. The
    rules are loaded through libnftables when it is installed (no process), else with C(nft -f -).
    Debian 11+, RHEL 8+ and Ubuntu 20.04+ run iptables on the nftables kernel API anyway; a drop
    policy in another table (or in iptables-legacy) still drops forwarded traffic.
  - Outbound traffic of a non-internal network needs IPv4 forwarding (C(net.ipv4.ip_forward=1));
    the module never changes that host setting, and warns when it is off. Forwarding is enabled
    on the network's own bridge, and C(route_localnet) too, so that the host reaches its published
    ports at C(127.0.0.1) (the replies come back through the bridge).
  - Loopback stays the host's own. A port published on a loopback address (any of C(127.0.0.0/8))
    is forwarded only for the host's own connections, never for traffic from an interface, so a
    neighbour or container that routes C(127.0.0.1) through the host cannot reach it. And on
    every bridge of the collection, packets from or to C(127.0.0.0/8) are dropped as they arrive
    (an nftables chain at raw priority, before conntrack), so C(route_localnet) does not open the
    host's loopback services to the containers and neighbours on the bridge.
  - IPv6 is configured in containers only on networks with O(ipv6). Elsewhere a container's
    interfaces have their IPv6 link-local addresses only.
  - Outbound IPv6 traffic of a non-internal network needs C(net.ipv6.conf.all.forwarding=1); the
    module never changes it, and warns when it is off.
seealso:
  - module: runcible.oci.container
'''

EXAMPLES = r'''
- name: A network for the backend, on a subnet of our choosing
  runcible.oci.network:
    name: backend
    subnet: 10.89.5.0/24

- name: A network without container names (no aardvark-dns)
  runcible.oci.network:
    name: plain
    dns: false

- name: An internal network (no way out of the host)
  runcible.oci.network:
    name: secrets
    subnet: 10.89.1.0/24
    internal: true

- name: A container on it, at a fixed address
  runcible.oci.container:
    name: vault
    rootfs: /srv/rootfs/vault
    command: /usr/bin/vault server -config /etc/vault.hcl
    network: secrets
    ip_address: 10.89.1.10

- name: Make the network backend dual-stack (no containers on it yet; IPv6 subnet a ULA /64 derived from its name)
  runcible.oci.network:
    name: backend
    subnet: 10.89.5.0/24
    ipv6: true

- name: A container on two networks (eth0 on backend, eth1 on plain), known as api-public on backend too
  runcible.oci.container:
    name: api
    rootfs: /srv/rootfs/busybox
    command: httpd -f -p 80
    networks:
      - name: backend
        aliases: [api-public]
      - name: plain
    published_ports:
      - 8080:80
      - '[::]:8080:80'

- name: Which containers are on backend, with their IPv4 and IPv6 addresses
  runcible.oci.network_info:
    name: backend

- name: Remove the container api
  runcible.oci.container:
    name: api
    state: absent

- name: Remove the network (its containers first)
  runcible.oci.network:
    name: backend
    state: absent
'''

RETURN = r'''
actions:
  description: What was done (V(created), V(updated), V(repaired), V(removed)); empty when nothing changed.
  returned: always
  type: list
  elements: str
  sample: [created]
network:
  description: The network after the task; empty when it is absent.
  returned: always
  type: dict
  contains:
    name:
      description: Network name.
      type: str
    bridge:
      description: Name of its Linux bridge.
      type: str
    subnet:
      description: Its IPv4 subnet.
      type: str
    gateway:
      description: The bridge's address, the containers' gateway.
      type: str
    internal:
      description: Whether it is internal (no outbound NAT, no route out).
      type: bool
    dns:
      description: Whether its containers resolve each other's names (aardvark-dns on its gateway).
      type: bool
    ipv6:
      description: Whether it is dual-stack (only present when true).
      type: bool
      returned: when the network has IPv6
    ipv6_subnet:
      description: Its IPv6 subnet.
      type: str
      returned: when the network has IPv6
    ipv6_gateway:
      description: The bridge's IPv6 address, the containers' IPv6 gateway.
      type: str
      returned: when the network has IPv6
    containers:
      description: The containers that have an address on it, with the C(root) they live in, their
        C(ip_address) and C(ipv6_address) there.
      type: list
      elements: dict
  sample:
    name: backend
    bridge: rcb-backend
    subnet: 10.89.5.0/24
    gateway: 10.89.5.1
    internal: false
    dns: true
    containers:
      - name: db
        root: /var/lib/runcible
        ip_address: 10.89.5.2
        ipv6_address: null
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _network
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_network.Task, _network.argument_spec())


if __name__ == '__main__':
    main()
