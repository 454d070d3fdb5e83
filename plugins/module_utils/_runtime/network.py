# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network stage of a launch: a bridged container's address, namespace, veth pair, ports and rules.

Per container (``ID`` = its id)::

    /run/netns/rc-ID16        its network namespace (the spec's network namespace path)
    rcvID12, rc1ID12...       the host ends of its veth pairs, one per network, enslaved to the network's bridge
    eth0, eth1...             the other ends, in the namespace: addresses (IPv6 too on an ipv6 network), default
                              routes through the first network that is not internal
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
import copy
import ipaddress
import os
import threading

from . import dns, port_proxy, ports
from .bridges import (Link, bridge_ready, container_ifname, ensure_bridge, interface_exists, plumb_all,
                      require_own_bridge, veth_name)
from .errors import RuncibleError, ValidationError
from .etc_files import write_etc_files
from .host import process_alive, wait_until
from .netns import create_netns, netns_path, remove_netns
from .rtnl import preload as preload_rtnl, require as require_rtnl
from .network_registry import (DEFAULT_NETWORK, NetworkRegistry, allocation_key, attachments_of, collect_garbage,
                               define, holder_of, holder_text, ip_forward_warning, keys_of, network_of)

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
                              [ports.PortMapping.from_dict(item) for item in allocation['ports']],
                              allocation.get('ip6')))
    ports.apply(ports.render(networks, published) + ports.render6(networks, published))


class Attachment(object):
    """What attach() made for one launch: the reserved port sockets (their fds go to conmon, those of IPv6
    loopback to the port proxy) and the plumbing of the veth pair, which may still be running in a thread
    while conmon creates the container.

    Used as a context manager around conmon's launch: on leaving, the plumbing is waited for and the port
    proxy started (spawned by the caller before conmon, told ``conmon``'s (pid, start time) now), then our
    copies of the sockets are closed (conmon and the proxy hold their own); when something
    failed, the container is killed (``undo_launch``, the caller's: it was only created, never started) and
    its network detached.

    ``entry`` is what the record keeps of the attachment (name, ip_address, netns, veth), ``warnings``
    what the task should say; the caller puts them where they belong.
    """

    def __init__(self, record: RecordLike | None = None, undo_launch: Callable[[], Any] | None = None) -> None:
        self.record = record
        self.sockets: list[tuple[PortMapping, socket.socket]] = []  # conmon's
        self.proxied: list[tuple[PortMapping, socket.socket]] = []
        self.target: str | None = None  # the container's address the proxy connects to
        self.proxy: port_proxy.Spawned | None = None  # spawned before conmon, told its pid after
        self.conmon: tuple[int, int | None] | None = None
        self.worker: threading.Thread | None = None
        self.undo_launch = undo_launch
        self.error: BaseException | None = None
        self.entry: dict[str, Any] | None = None
        self.warnings: list[str] = []

    @property
    def fds(self) -> list[int]:
        return [sock.fileno() for _mapping, sock in self.sockets]

    def close(self) -> None:
        for _mapping, sock in self.sockets + self.proxied:
            sock.close()
        self.sockets, self.proxied = [], []
        if self.proxy is not None:  # the launch failed before the proxy was told its conmon: it ends now
            spawned, self.proxy = self.proxy, None
            with contextlib.suppress(Exception):
                port_proxy.finish(spawned, None, None)

    def spawn_proxy(self, lib: str) -> None:
        """The port proxy of the IPv6 loopback ports, spawned before conmon runs (``lib``: the installed library)."""
        if self.proxied and self.target is not None:
            self.proxy = port_proxy.spawn(lib, self.proxied, self.target)

    def start_proxy(self) -> None:
        """Tell the spawned proxy its conmon, which runs now (its entry goes to the record's network)."""
        if self.proxy is None or self.entry is None:
            return
        if self.conmon is None:
            raise RuncibleError('internal error: the port proxy needs the pid of conmon')
        spawned, self.proxy = self.proxy, None
        self.entry['proxy'] = port_proxy.finish(spawned, *self.conmon)

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
        if exc_type is not None:
            self.close()
            with contextlib.suppress(Exception):
                self.wait()
            self._undo(launched=False)
            return False
        try:
            try:
                self.wait()
                self.start_proxy()
            finally:
                self.close()
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


def firewall_has(network: dict[str, Any], listed: list[str] | None = None) -> bool:
    """Does our nftables table hold every rule this version renders for ``network`` (a dict)? Not when it was
    flushed, nor when an older version wrote it (without the loopback guard, say): it is rewritten then.
    ``listed``: the tables' rules, when the caller listed them once for several networks."""
    listed = ports.listed_rules() if listed is None else listed
    return all(any(comment in rule for rule in listed) for comment in ports.expected_comments(network))


def firewall_has_all(networks: list[dict[str, Any]]) -> bool:
    """firewall_has() of every network, with one listing of the tables."""
    listed = ports.listed_rules()
    return all(firewall_has(network, listed) for network in networks)


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
    wanted = attachments_of(config)
    if not wanted:
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
            networks = []
            for item in wanted:
                network, made = _network_for(data, item['name'], attachment)
                changed = changed or made
                networks.append(network)
            if any(mapping.ipv6() and mapping.host_ip != '::1' for mapping in mappings) and \
                    not networks[0].get('ipv6'):
                raise ValidationError('published_ports: IPv6 host addresses need an IPv6 address of the container on '
                                      'its first network: network %s has no ipv6 (runcible.oci.network ipv6: true)'
                                      % networks[0]['name'])
            previous = dict((key, data['allocations'].pop(key)) for key in keys_of(data, container_id))
            sockets, dropped = _reserve(data, mappings, container_id)
            for mapping, sock in zip(mappings, sockets):  # IPv6 loopback's go to the proxy, the others to conmon
                (attachment.proxied if port_proxy.proxied(mapping) else attachment.sockets).append((mapping, sock))
            stale_rules = bool(previous.get(container_id, {}).get('attached') and previous[container_id].get('ports'))
            links, entries = [], []
            for index, (item, network) in enumerate(zip(wanted, networks)):
                link, entry = _allocate(data, record, root, index, item, network, networks, previous.get(
                    allocation_key(container_id, index)) or {}, [mapping.as_dict() for mapping in mappings])
                links.append(link)
                entries.append(entry)
            changed = changed or set(previous) != set(keys_of(data, container_id))
            registry.save(data)
            attachment.entry = _record_entry(container_id, entries)
            attachment.target = entries[0]['ipv6_address'] or entries[0]['ip_address']
            for network in networks:
                if not bridge_ready(network):
                    ensure_bridge(network)
            dns.sync(data)  # its names served (aardvark-dns started with the first one, restarted if killed)
        firewall = bool(mappings or changed or dropped or stale_rules)
        write_etc_files(bundle, config, record['name'], [(link.address, link.address6) for link in links],
                        dns_servers=[network['gateway'] for network in networks if dns.enabled(network)])
        inside_socket = create_netns(netns_path(container_id), netlink=True)

        def plumbing() -> None:
            try:
                if firewall or not firewall_has_all(networks):
                    refresh_firewall(registry)
                plumb_all(links, container_id, record['name'], inside_socket)
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


def _allocate(data: Data, record: RecordLike, root: str, index: int, item: dict[str, Any], network: dict[str, Any],
              networks: list[dict[str, Any]], allocation: dict[str, Any],
              published: list[dict[str, Any]]) -> tuple[Link, dict[str, Any]]:
    """The container's allocation on its ``index``-th network (``item`` of attachments_of, ``allocation`` its previous
    one) into the registry ``data``; -> its Link (default routes through the first network that is not internal)
    and the record's entry of it."""
    container_id = record['id']
    key = allocation_key(container_id, index)
    address = _address_for(data, network, key, item.get('ip_address'), allocation)
    address6 = _address6_for(data, network, key, item.get('ipv6_address'), allocation) if network.get('ipv6') else None
    entry = {'network': network['name'], 'ip': address, 'root': root, 'name': record['name'], 'attached': True,
             'ports': published if index == 0 else []}
    if address6:
        entry['ip6'] = address6
    data['allocations'][key] = entry
    _dns_entry(entry, network, item, record['config'])
    earlier = networks[:index]
    link = Link(network, index, address, address6,
                default4=not network.get('internal') and not any(not other.get('internal') for other in earlier),
                default6=bool(address6) and not network.get('internal') and not any(
                    other.get('ipv6') and not other.get('internal') for other in earlier))
    return link, {'name': network['name'], 'ip_address': address, 'ipv6_address': address6,
                  'interface': container_ifname(index), 'veth': veth_name(container_id, index)}


def _dns_entry(entry: dict[str, Any], network: dict[str, Any], item: dict[str, Any], config: dict[str, Any]) -> None:
    """What aardvark-dns says of the container on a DNS-enabled network besides its name and address."""
    if dns.enabled(network):
        entry.update(aliases=list(item.get('aliases') or []), dns_servers=list(config.get('dns') or []))


def _record_entry(container_id: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What the record keeps of the container's networks (its first one flat, every one under ``networks``)."""
    entry = {'name': entries[0]['name'], 'ip_address': entries[0]['ip_address'], 'netns': netns_path(container_id),
             'veth': entries[0]['veth']}
    if len(entries) > 1 or entries[0]['ipv6_address']:
        entry['networks'] = entries
    return entry


def change_live(record: RecordLike, config: dict[str, Any], root: str, bundle: str) -> dict[str, Any]:
    """Attach the networks ``config`` appends to a running container's, detach those it leaves out at its end, and
    give its names their new aliases (live_change() said it can); -> its record's network entry. When an
    attachment fails, what this call attached is detached again and the registry is as it was."""
    require_rtnl()
    container_id, name = record['id'], record['name']
    old, new = attachments_of(record['config']), attachments_of(config)
    registry = NetworkRegistry()
    links: list[Link] = []
    made = False
    with registry.lock():
        previous = registry.load()
        data = copy.deepcopy(previous)
        networks = []
        for item in new:
            network, created = _network_for(data, item['name'], Attachment())
            made = made or created
            networks.append(network)
        for index in range(len(new), len(old)):  # detached: their names leave aardvark-dns with their allocations
            data['allocations'].pop(allocation_key(container_id, index), None)
        entries = []
        for index, (item, network) in enumerate(zip(new, networks)):
            allocation = data['allocations'].get(allocation_key(container_id, index))
            if index < len(old) and allocation is not None:
                _dns_entry(allocation, network, item, config)
                entries.append({'name': network['name'], 'ip_address': allocation['ip'],
                                'ipv6_address': allocation.get('ip6'), 'interface': container_ifname(index),
                                'veth': veth_name(container_id, index)})
                continue
            link, entry = _allocate(data, {'id': container_id, 'name': name, 'config': config}, root, index, item,
                                    network, networks, {}, [])
            links.append(link)
            entries.append(entry)
        registry.save(data)
        try:
            for network in networks:
                if not bridge_ready(network):
                    ensure_bridge(network)
            if links:
                plumb_all(links, container_id, name)
            # The detached veth pairs go before another task (waiting for this lock) can take their addresses.
            _unplumb(container_id, range(len(new), len(old)))
            dns.sync(data)  # names of the attached served, of the detached gone, aliases as they are now
            if made or not firewall_has_all(networks):
                apply_firewall(data)
            write_etc_files(bundle, config, name, [(entry['ip_address'], entry['ipv6_address']) for entry in entries],
                            dns_servers=[network['gateway'] for network in networks if dns.enabled(network)],
                            in_place=True)
        except BaseException:
            with contextlib.suppress(Exception):
                _unplumb(container_id, [link.index for link in links])
            registry.save(previous)
            with contextlib.suppress(Exception):
                dns.sync(previous)
            raise
    entry = _record_entry(container_id, entries)
    if (record.get('network') or {}).get('proxy'):
        entry['proxy'] = record['network']['proxy']
    return entry


def _unplumb(container_id: str, indexes: Iterable[int]) -> None:
    """Delete the host ends of the container's veth pairs ``indexes`` (the pair goes with it)."""
    names = [veth_name(container_id, index) for index in indexes]
    names = [veth for veth in names if interface_exists(veth)]
    if not names:
        return
    from .rtnl import Rtnl  # pylint: disable=import-outside-toplevel
    with Rtnl() as rtnl:
        for veth in names:
            index = rtnl.link_index(veth)
            if index is not None:
                rtnl.delete_link(index, veth)


def _network_for(data: Data, network_name: str, attachment: Attachment) -> tuple[dict[str, Any], bool]:
    """The definition of ``network_name`` (the default network made on first use); -> (network, made)."""
    network = data['networks'].get(network_name)
    if network is None:
        if network_name != DEFAULT_NETWORK:
            raise ValidationError('network %s does not exist: create it first with runcible.oci.network'
                                  % network_name)
        network = define(data, DEFAULT_NETWORK)
        data['networks'][DEFAULT_NETWORK] = network
        warning = ip_forward_warning(network)
        if warning:
            attachment.warnings.append(warning)
        return network, True
    require_own_bridge(network)  # before anything is written: never plumbed into someone else's bridge
    return network, False


def _address6_for(data: Data, network: dict[str, Any], key: str, pinned: str | None,
                  allocation: dict[str, Any]) -> str:
    """The container's IPv6 address on ``network``: pinned, kept, or the lowest free after the gateway."""
    subnet = ipaddress.IPv6Network(network['ipv6_subnet'])
    taken = set(item.get('ip6') for other, item in data['allocations'].items()
                if other != key and item['network'] == network['name'])
    if pinned:
        if pinned in taken:
            holder = [item for other, item in data['allocations'].items() if item.get('ip6') == pinned
                      and item['network'] == network['name'] and other != key][0]
            raise ValidationError('ipv6_address: %s is already the address of %s' % (pinned, holder_text(holder)))
        return pinned
    if allocation.get('ip6') and allocation.get('network') == network['name'] and allocation['ip6'] not in taken \
            and ipaddress.ip_address(allocation['ip6']) in subnet:
        return str(allocation['ip6'])
    candidate = subnet.network_address + 2
    last = subnet.broadcast_address
    while candidate <= last:
        if str(candidate) not in taken:
            return str(candidate)
        candidate += 1
    raise RuncibleError('network %s (%s) has no free IPv6 address left' % (network['name'], network['ipv6_subnet']))


def _address_for(data: Data, network: dict[str, Any], container_id: str, pinned: str | None,
                 allocation: dict[str, Any]) -> str:
    subnet = ipaddress.ip_network(network['subnet'])
    taken = set(item['ip'] for cid, item in data['allocations'].items()
                if cid != container_id and item['network'] == network['name'])  # container_id: its allocation key
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


def repair_proxy(record: RecordLike, lib: str) -> None:
    """Bind the IPv6 loopback ports of a running container again and start their proxy (into its network entry)."""
    mappings = [mapping for mapping in ports.expand(record['config'].get('published_ports'))
                if port_proxy.proxied(mapping)]
    entry = record['network']
    first = (entry.get('networks') or [entry])[0]
    target = first.get('ipv6_address') or first.get('ip_address')
    port_proxy.stop(entry.get('proxy'))
    try:
        sockets = ports.reserve(mappings)
    except ports.PortInUse as exc:
        raise ValidationError('published_ports: %s by another process, since the port proxy of container %s ended; '
                              'free it, or restart the container' % (exc.msg, record['name']), port=exc.mapping.text())
    try:
        entry['proxy'] = port_proxy.start(lib, list(zip(mappings, sockets)), target,
                                          record['conmon_pid'], record.get('conmon_start'))
    finally:
        for sock in sockets:
            sock.close()


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
        port_proxy.stop((record.get('network') or {}).get('proxy'))  # it ends with conmon; now, for its ports
    remove_netns(netns_path(container_id))
    registry = NetworkRegistry()
    if not os.path.exists(registry.path):
        return
    with registry.lock():
        data = registry.load()
        keys = keys_of(data, container_id)
        if not any(forget or data['allocations'][key].get('attached') for key in keys):
            return
        had_ports = any(data['allocations'][key].get('attached') and data['allocations'][key].get('ports')
                        for key in keys)
        for key in keys:
            if forget:
                del data['allocations'][key]
            else:
                data['allocations'][key]['attached'] = False
                data['allocations'][key]['ports'] = []
        registry.save(data)
        dns.sync(data)  # its names gone; aardvark-dns ends with the last container of DNS-enabled networks
        if had_ports:
            apply_firewall(data)


def ip_address(record: RecordLike) -> str | None:
    return (record.get('network') or {}).get('ip_address')
