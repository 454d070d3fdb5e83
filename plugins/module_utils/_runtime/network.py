# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network stage of a launch: a bridged container's address, namespace, veth pair, ports and rules.

Per container (``ID`` = its id)::

    /run/netns/rc-ID16        its network namespace (the spec's network namespace path)
    rcvID12                   the host end of its veth pair, enslaved to the network's bridge
    eth0                      the other end, in the namespace: address, default route (not internal)
    bundle/hosts, resolv.conf bind-mounted on /etc/hosts and /etc/resolv.conf
    DNS_DIR/NETWORK           on a DNS-enabled network: its name and aliases for aardvark-dns (dns.py)

attach() runs before conmon starts the container (the runtime joins the namespace by path); the
published host ports are bound then and handed to conmon (see ports.py). detach() (on stop, or by
the next task on a container that died behind our back) removes the namespace, which takes the veth
pair with it, and the firewall rules; the address stays allocated until release() on removal.

One-way: these functions take a record and what they need of the store and return what they made;
they never call the engine. ``network: none`` and ``host`` need no netlink at all, and neither does
removing a container; pyroute2 (rtnl.py) is imported only by the plumbing, which runs in a thread while
conmon creates the container, so its import cost mostly hides behind runc's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import contextlib
import ipaddress
import os
import threading

from . import dns, ports
from .bridges import bridge_ready, ensure_bridge, plumb, require_own_bridge, veth_name
from .errors import RuncibleError, ValidationError
from .etc_files import write_etc_files
from .host import process_alive, wait_until
from .netns import create_netns, netns_path, remove_netns
from .rtnl import preload as preload_rtnl, require as require_rtnl
from .network_registry import (DEFAULT_NETWORK, NetworkRegistry, collect_garbage, define, holder_of, holder_text,
                               ip_forward_warning, network_of)

if TYPE_CHECKING:
    import socket
    from typing import Any, Callable, Dict, Iterable, Literal, Union

    from .ports import PortMapping
    from .record import Record

    Data = dict[str, Any]  # the registry's document: networks and allocations
    RecordLike = Union[Record, Dict[str, Any]]

CONMON_EXIT_WAIT = 5.0


def apply_firewall(data: Data) -> None:
    """Rewrite our nftables table from the registry (one atomic transaction)."""
    networks = list(data['networks'].values())
    published = []
    for cid, allocation in data['allocations'].items():
        if allocation.get('attached') and allocation.get('ports'):
            published.append((cid, allocation['name'], allocation['ip'],
                              [ports.PortMapping.from_dict(item) for item in allocation['ports']]))
    ports.apply(ports.render(networks, published))


class Attachment(object):
    """What attach() made for one launch: the reserved port sockets (their fds go to conmon) and the
    plumbing of the veth pair, which may still be running in a thread while conmon creates the container.

    Used as a context manager around conmon's launch: on leaving, our copies of the sockets are closed
    (conmon holds its own), and the plumbing is waited for; when it or the launch failed, the container
    is killed (``undo_launch``, the caller's: it was only created, never started) and its network detached.

    ``entry`` is what the record keeps of the attachment (name, ip_address, netns, veth), ``warnings``
    what the task should say; the caller puts them where they belong.
    """

    def __init__(self, record: RecordLike | None = None, sockets: Iterable[socket.socket] = (),
                 worker: threading.Thread | None = None, undo_launch: Callable[[], Any] | None = None) -> None:
        self.record = record
        self.sockets = list(sockets)
        self.worker = worker
        self.undo_launch = undo_launch
        self.error: BaseException | None = None
        self.entry: dict[str, str] | None = None
        self.warnings: list[str] = []

    @property
    def fds(self) -> list[int]:
        return [sock.fileno() for sock in self.sockets]

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []

    def wait(self) -> None:
        """Wait for the plumbing; raise what it raised."""
        if self.worker is not None:
            self.worker.join()
            self.worker = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def __enter__(self) -> Attachment:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        self.close()
        if exc_type is not None:
            with contextlib.suppress(Exception):
                self.wait()
            self._undo(launched=False)
            return False
        try:
            self.wait()
        except BaseException:
            self._undo(launched=True)
            raise
        return False

    def _undo(self, launched: bool) -> None:
        if self.record is None:
            return
        if launched and self.undo_launch is not None:
            # conmon created the container (not started): kill it, conmon then exits.
            with contextlib.suppress(Exception):
                self.undo_launch()
        with contextlib.suppress(Exception):
            detach(self.record)


def firewall_has(network: dict[str, Any]) -> bool:
    """Does our nftables table hold every rule this version renders for ``network`` (a dict)? Not when it was
    flushed, nor when an older version wrote it (without the loopback guard, say): it is rewritten then."""
    listed = ports.listed_rules()
    return all(any(comment in rule for rule in listed) for comment in ports.expected_comments(network))


def refresh_firewall(registry: NetworkRegistry) -> None:
    with registry.lock():
        apply_firewall(registry.load())


def attach(record: RecordLike, root: str, bundle: str, restore: bool = False,
           undo_launch: Callable[[], Any] | None = None) -> Attachment:
    """Set up the container's network before conmon starts it; -> Attachment (a no-op for none/host).

    ``root``: the container's store (its allocation says where it lives); ``bundle``: where its /etc files
    go; ``undo_launch``: what kills the container if its network fails after conmon created it.

    At once, under the registry lock: the address (kept, pinned or the lowest free), the host ports
    bound, the bridge made if missing. Then the namespace (the runtime joins it by path) and the
    /etc files. The veth pair and the firewall follow in a thread while conmon creates the container
    (they only have to be ready before it starts); for a restore, at once (the process runs at once).
    """
    config = record['config']
    network_name = network_of(config)
    if network_name is None:
        return Attachment()
    require_rtnl()  # pyroute2 installed? (found, not imported)
    preload_rtnl()  # its import (0.1 s) in a thread, behind the registry, the namespace, nft and conmon
    container_id = record['id']
    mappings = ports.expand(config.get('published_ports'))
    registry = NetworkRegistry()
    attachment = Attachment(record, undo_launch=undo_launch)
    try:
        with registry.lock():
            data = registry.load()
            changed = collect_garbage(data)
            network = data['networks'].get(network_name)
            if network is None:
                if network_name != DEFAULT_NETWORK:
                    raise ValidationError('network %s does not exist: create it first with runcible.oci.network'
                                          % network_name)
                network = define(data, DEFAULT_NETWORK)
                data['networks'][DEFAULT_NETWORK] = network
                changed = True
                warning = ip_forward_warning(network)
                if warning:
                    attachment.warnings.append(warning)
            else:
                require_own_bridge(network)  # before anything is written: never plumbed into someone else's bridge
            allocation = data['allocations'].get(container_id) or {}
            address = _address_for(data, network, container_id, config.get('ip_address'), allocation)
            attachment.sockets, dropped = _reserve(data, mappings, container_id)
            stale_rules = bool(allocation.get('attached') and allocation.get('ports'))
            data['allocations'][container_id] = {
                'network': network_name, 'ip': address, 'root': root, 'name': record['name'],
                'attached': True, 'ports': [mapping.as_dict() for mapping in mappings]}
            if dns.enabled(network):  # what aardvark-dns says of it besides its name and address
                data['allocations'][container_id].update(aliases=list(config.get('aliases') or []),
                                                         dns_servers=list(config.get('dns') or []))
            registry.save(data)
            attachment.entry = {'name': network_name, 'ip_address': address, 'netns': netns_path(container_id),
                                'veth': veth_name(container_id)}
            if not bridge_ready(network):
                ensure_bridge(network)
            dns.sync(data)  # its names served (aardvark-dns started with the first one, restarted if killed)
        firewall = bool(mappings or changed or dropped or stale_rules)
        write_etc_files(bundle, config, record['name'], address,
                        dns_server=network['gateway'] if dns.enabled(network) else None)
        inside_socket = create_netns(netns_path(container_id), netlink=True)

        def plumbing() -> None:
            try:
                if firewall or not firewall_has(network):
                    refresh_firewall(registry)
                plumb(network, container_id, address, record['name'], inside_socket)
            except BaseException as exc:  # handed to the caller by Attachment.wait()
                attachment.error = exc
                inside_socket.close()

        if restore:
            plumbing()
            attachment.wait()
        else:
            attachment.worker = threading.Thread(target=plumbing, name='runcible-plumb')
            attachment.worker.start()
    except BaseException:
        attachment.close()
        with contextlib.suppress(Exception):
            detach(record)
        raise
    return attachment


def _address_for(data: Data, network: dict[str, Any], container_id: str, pinned: str | None,
                 allocation: dict[str, Any]) -> str:
    subnet = ipaddress.ip_network(network['subnet'])
    taken = set(item['ip'] for cid, item in data['allocations'].items()
                if cid != container_id and item['network'] == network['name'])
    if pinned:
        if pinned in taken:
            holder = [item for cid, item in data['allocations'].items() if item['ip'] == pinned
                      and item['network'] == network['name'] and cid != container_id][0]
            raise ValidationError('ip_address: %s is already the address of %s' % (pinned, holder_text(holder)))
        return pinned
    if allocation.get('ip') and allocation.get('network') == network['name'] and allocation['ip'] not in taken:
        return allocation['ip']
    reserved = set([network['gateway'], str(subnet.network_address), str(subnet.broadcast_address)])
    for address in subnet.hosts():
        text = str(address)
        if text not in taken and text not in reserved:
            return text
    raise RuncibleError('network %s (%s) has no free address left' % (network['name'], network['subnet']))


def _reserve(data: Data, mappings: list[PortMapping], container_id: str) -> tuple[list[socket.socket], bool]:
    """Bind every host port (all or nothing); -> (sockets, whether stale registry entries were dropped).

    A registry entry of another container whose port we could bind is stale (that container died
    behind our back and conmon let the port go): it is dropped, or its rule would shadow ours.
    """
    sockets = []
    dropped = False
    try:
        for mapping in mappings:
            holder = holder_of(data, mapping, exclude_id=container_id)
            try:
                sockets.append(ports.bind(mapping))
            except ports.PortInUse as exc:
                who = holder_text(holder[1]) if holder else 'another process'
                raise ValidationError('published_ports: %s by %s; the container was not started' % (exc.msg, who),
                                      port=mapping.text())
            while holder:
                stale = holder[1]
                stale['ports'] = [item for item in stale.get('ports') or []
                                  if not ports.PortMapping.from_dict(item).overlaps(mapping)]
                dropped = True
                holder = holder_of(data, mapping, exclude_id=container_id)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets, dropped


def _wait_conmon_gone(record: RecordLike, timeout: float = CONMON_EXIT_WAIT) -> None:
    """conmon holds the reserved ports until it exits, a moment after the container's exit code is written:
    wait for that, so that the next task (another container on the same port, say) finds them free."""
    wait_until(lambda: not process_alive(record.get('conmon_pid'), record.get('conmon_start')), timeout,
               first_delay=0.005, max_delay=0.005)


def detach(record: RecordLike) -> None:
    """Undo attach(): namespace (and with it the veth pair), published ports; the address stays allocated."""
    _undo(record, forget=False)


def release(record: RecordLike) -> None:
    """detach(), and forget the container's address (on removal)."""
    _undo(record, forget=True)


def _undo(record: RecordLike, forget: bool) -> None:
    container_id = record.get('id')
    if not container_id or (network_of(record.get('config')) is None and not record.get('network')):
        return
    if (record.get('config') or {}).get('published_ports'):
        _wait_conmon_gone(record)
    remove_netns(netns_path(container_id))
    registry = NetworkRegistry()
    if not os.path.exists(registry.path):
        return
    with registry.lock():
        data = registry.load()
        allocation = data['allocations'].get(container_id)
        if allocation is None or not (forget or allocation.get('attached')):
            return
        had_ports = bool(allocation.get('attached') and allocation.get('ports'))
        if forget:
            del data['allocations'][container_id]
        else:
            allocation['attached'] = False
            allocation['ports'] = []
        registry.save(data)
        dns.sync(data)  # its names gone; aardvark-dns ends with the last container of DNS-enabled networks
        if had_ports:
            apply_firewall(data)


def ip_address(record: RecordLike) -> str | None:
    return (record.get('network') or {}).get('ip_address')
