# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bridge networks: a network namespace, a veth pair and an address per container, built over rtnetlink.

Networks are host objects (a bridge, a subnet route, firewall rules), so their registry is host-wide,
whatever ``root`` a container lives in: ``/var/lib/runcible/networks/networks.json`` holds every
network's definition and every container's address allocation (and, while it is attached, its
published ports), changed only under ``networks/lock``. Parallel tasks therefore never get the same
address or port, and two container stores on one host never fight over a bridge or a subnet.

Per container (``ID`` = its id)::

    /run/netns/rc-ID16        its network namespace (the spec's network namespace path)
    rcvID12                   the host end of its veth pair, enslaved to the network's bridge
    eth0                      the other end, in the namespace: address, default route (not internal)
    bundle/hosts, resolv.conf bind-mounted on /etc/hosts and /etc/resolv.conf

Attaching happens before conmon starts the container (the runtime joins the namespace by path);
the published host ports are bound then and handed to conmon (see ports.py). Detaching (on stop,
or by the next task on a container that died behind our back) removes the namespace, which takes
the veth pair with it, and the firewall rules; the address stays allocated until removal.

A bridge is the collection's only when it carries the alias ``runcible.oci network NAME`` (set when
it made the bridge, by this version and the older ones alike): an interface of the wanted name
without it belongs to someone else, and no network is defined on it, changed or deleted with it
(``define()``, ``ensure_bridge()``, ``delete_bridge()`` and ``bridge_ready()`` all ask
``bridge_owner()``). Every bridge of the registry gets the loopback guard of ports.py.

Bridges, veths, addresses and routes are made with netlink.py, a small rtnetlink client of our own
(no Python library to install, nothing slow to import); ``network: none`` and ``host`` need no
netlink at all, and neither does removing a container.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import socket
import threading
import time

from . import libc, netlink
from . import ports
from . import spec as oci_spec
from .errors import RuncibleError, ValidationError
from .store import atomic_write, process_alive

STATE_DIR = '/var/lib/runcible/networks'
NETNS_DIR = '/run/netns'
DEFAULT_NETWORK = 'runcible'
DEFAULT_BRIDGE = 'runcible0'
BRIDGE_ALIAS = 'bridge'
OWNED_BRIDGE_ALIAS = 'runcible.oci network %s'  # the alias of every bridge the collection makes
NOT_NETWORKS = ('none', 'host')
SUBNET_POOL = ipaddress.ip_network('10.89.0.0/16')
SUBNET_PREFIX = 24
NETWORK_NAME_RE = re.compile(r'[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}')
IFNAME_RE = re.compile(r'[a-zA-Z0-9_.-]{1,15}')
LOCK_TIMEOUT = 120.0
REGISTRY_VERSION = 1
NETNS_PREFIX = 'rc-'
VETH_PREFIX = 'rcv'
CONTAINER_IFNAME = 'eth0'
HOSTS_FILE = 'hosts'
RESOLV_FILE = 'resolv.conf'
RESOLV_PATHS = ('/etc/resolv.conf', '/run/systemd/resolve/resolv.conf')
ETC_MOUNT_OPTIONS = ['rbind', 'nosuid', 'nodev', 'noexec', 'rw']
IP_FORWARD = '/proc/sys/net/ipv4/ip_forward'
CONMON_EXIT_WAIT = 5.0

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2
NETLINK_ROUTE = netlink.NETLINK_ROUTE


# -- names --------------------------------------------------------------------------------------------

def netns_name(container_id):
    return NETNS_PREFIX + container_id[:16]


def netns_path(container_id):
    return os.path.join(NETNS_DIR, netns_name(container_id))


def veth_name(container_id):
    return VETH_PREFIX + container_id[:12]


def validate_network_name(name, option='name'):
    if not isinstance(name, str) or not NETWORK_NAME_RE.fullmatch(name) or '..' in name:
        raise ValidationError('%s: %r is not a valid network name: 1 to 64 characters from [a-zA-Z0-9_.-], starting '
                              'with a letter or digit' % (option, name))
    if name in NOT_NETWORKS or name == BRIDGE_ALIAS:
        raise ValidationError('%s: %r is reserved (network: none, host and bridge are not network names)' % (option, name))
    return name


def default_bridge_name(name):
    if name == DEFAULT_NETWORK:
        return DEFAULT_BRIDGE
    candidate = 'rcb-' + name
    if IFNAME_RE.fullmatch(candidate) and candidate not in ('.', '..'):
        return candidate
    return 'rcb-' + hashlib.sha1(name.encode()).hexdigest()[:11]


def validate_bridge_name(name):
    if not isinstance(name, str) or not IFNAME_RE.fullmatch(name) or name in ('.', '..'):
        raise ValidationError('bridge: %r is not a valid interface name (1 to 15 characters from [a-zA-Z0-9_.-])'
                              % (name,))
    if name.startswith((VETH_PREFIX, 'eth', 'lo')) and name != DEFAULT_BRIDGE:
        raise ValidationError('bridge: %r looks like a host or container interface name; choose another' % name)
    return name


# -- the container options (see _options.py) -----------------------------------------------------------

def normalise_network(value):
    """``none``, ``host``, ``bridge`` (= the default network) or a network name -> the stored value."""
    value = str(value).strip()
    if value in NOT_NETWORKS:
        return value
    if value == BRIDGE_ALIAS:
        return DEFAULT_NETWORK
    return validate_network_name(value, 'network')


def network_of(config):
    """The name of the bridge network of a container config, or None for none/host (or no network)."""
    value = (config or {}).get('network')
    if not value or value in NOT_NETWORKS:
        return None
    return DEFAULT_NETWORK if value == BRIDGE_ALIAS else value


def normalise_ip_address(value):
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ValidationError('ip_address: %r is not an IPv4 address' % (value,))
    if address.version != 4:
        raise ValidationError('ip_address: %r: only IPv4 addresses are supported' % (value,))
    return str(address)


def map_spec(spec, value, config):
    """The spec's network: none (a namespace of its own), host (none), a bridge network (the named netns)."""
    if network_of(config) is None:
        oci_spec.map_network(spec, value, config)
        return
    container_id = spec['annotations']['io.runcible.container.id']
    spec['linux']['namespaces'].append({'type': 'network', 'path': netns_path(container_id)})
    # Relative sources are relative to the bundle (where attach() writes them).
    for source, destination in ((HOSTS_FILE, '/etc/hosts'), (RESOLV_FILE, '/etc/resolv.conf')):
        spec['mounts'].append({'destination': destination, 'type': 'bind', 'source': source,
                               'options': list(ETC_MOUNT_OPTIONS)})


# -- the registry ---------------------------------------------------------------------------------------

class Registry(object):
    """Networks and address allocations of the host: one JSON file, changed under one lock."""

    def __init__(self, state_dir=None):
        self.dir = state_dir or STATE_DIR
        self.path = os.path.join(self.dir, 'networks.json')
        self.lock_path = os.path.join(self.dir, 'lock')

    @contextlib.contextmanager
    def lock(self, timeout=LOCK_TIMEOUT):
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except (IOError, OSError) as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise RuncibleError('timed out after %ds waiting for the network lock %s (another task holds '
                                            'it)' % (timeout, self.lock_path))
                    time.sleep(0.005)
            yield
        finally:
            os.close(fd)

    def load(self):
        try:
            with open(self.path, 'r') as handle:
                data = json.load(handle)
        except (IOError, OSError) as exc:
            if exc.errno != errno.ENOENT:
                raise RuncibleError('cannot read the network registry %s: %s' % (self.path, exc))
            data = {}
        except ValueError as exc:
            raise RuncibleError('the network registry %s is corrupt (%s); fix or remove it (its bridges and '
                                'addresses are then forgotten)' % (self.path, exc))
        data.setdefault('networks', {})
        data.setdefault('allocations', {})
        return data

    def save(self, data):
        data['version'] = REGISTRY_VERSION
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True))


def _record_of(allocation):
    path = os.path.join(allocation.get('root') or '/', 'containers', allocation.get('name') or '', 'record.json')
    try:
        with open(path, 'r') as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


def collect_garbage(data):
    """Forget allocations whose container no longer exists (its store removed, say); -> True if any."""
    stale = [cid for cid, allocation in data['allocations'].items()
             if (_record_of(allocation) or {}).get('id') != cid]
    for cid in stale:
        del data['allocations'][cid]
    return bool(stale)


def containers_on(data, network_name):
    return sorted(({'name': allocation['name'], 'root': allocation['root'], 'ip_address': allocation['ip']}
                   for allocation in data['allocations'].values() if allocation['network'] == network_name),
                  key=lambda item: (item['root'], item['name']))


def apply_firewall(data):
    """Rewrite our nftables table from the registry (one atomic transaction)."""
    networks = list(data['networks'].values())
    published = []
    for cid, allocation in data['allocations'].items():
        if allocation.get('attached') and allocation.get('ports'):
            published.append((cid, allocation['name'], allocation['ip'],
                              [ports.PortMapping.from_dict(item) for item in allocation['ports']]))
    ports.apply(ports.render(networks, published))


# -- network definitions ---------------------------------------------------------------------------------

def host_routes(exclude_devices=(), path='/proc/net/route'):
    """IPv4 routes of the main table (/proc/net/route) as (network, device), default route left out."""
    routes = []
    try:
        with open(path, 'r') as handle:
            lines = handle.read().splitlines()[1:]
    except (IOError, OSError):
        return routes
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0] in exclude_devices:
            continue
        destination = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, 'little'))
        mask = ipaddress.IPv4Address(int(fields[7], 16).to_bytes(4, 'little'))
        network = ipaddress.ip_network('%s/%s' % (destination, mask), strict=False)
        if network.prefixlen:
            routes.append((network, fields[0]))
    return routes


def _overlap(subnet, data, skip_network=None):
    """What ``subnet`` overlaps: another network of the registry or a host route; None when free."""
    own_bridge = None
    for name, network in data['networks'].items():
        if name == skip_network:
            own_bridge = network['bridge']
            continue
        if subnet.overlaps(ipaddress.ip_network(network['subnet'])):
            return 'network %s (%s)' % (name, network['subnet'])
    for route, device in host_routes(exclude_devices=(own_bridge,) if own_bridge else ()):
        if subnet.overlaps(route):
            return 'the host route %s dev %s' % (route, device)
    return None


def same_subnet(first, second):
    try:
        return ipaddress.ip_network(str(first), strict=False) == ipaddress.ip_network(str(second), strict=False)
    except ValueError:
        return False


def pick_subnet(data):
    for subnet in SUBNET_POOL.subnets(new_prefix=SUBNET_PREFIX):
        if _overlap(subnet, data) is None:
            return subnet
    raise ValidationError('no free /%d left in %s for a new network: give its subnet' % (SUBNET_PREFIX, SUBNET_POOL))


def define(data, name, subnet=None, gateway=None, internal=False, bridge=None):
    """A validated network definition (dict), not yet in ``data``."""
    validate_network_name(name)
    if subnet:
        try:
            network = ipaddress.ip_network(str(subnet), strict=False)
        except ValueError:
            raise ValidationError('subnet: %r is not an IPv4 network in CIDR form (e.g. 10.89.5.0/24)' % (subnet,))
        if network.version != 4:
            raise ValidationError('subnet: %r: only IPv4 networks are supported' % (subnet,))
        if str(network) != str(subnet).strip() and '/' in str(subnet):
            raise ValidationError('subnet: %r has host bits set; did you mean %s?' % (subnet, network))
        if network.prefixlen > 29:
            raise ValidationError('subnet: %s is too small: use a /29 or larger' % network)
        if network.is_loopback or network.is_multicast or network.is_link_local or network.is_unspecified:
            raise ValidationError('subnet: %s is not a usable network for containers' % network)
    else:
        network = pick_subnet(data)
    if gateway:
        try:
            gateway_address = ipaddress.ip_address(str(gateway))
        except ValueError:
            raise ValidationError('gateway: %r is not an IPv4 address' % (gateway,))
        if gateway_address not in network or gateway_address in (network.network_address, network.broadcast_address):
            raise ValidationError('gateway: %s is not a host address of the subnet %s' % (gateway_address, network))
    else:
        gateway_address = network.network_address + 1
    bridge = validate_bridge_name(bridge) if bridge else default_bridge_name(name)
    for other_name, other in data['networks'].items():
        if other_name != name and other['bridge'] == bridge:
            raise ValidationError('bridge %s already belongs to network %s' % (bridge, other_name))
    require_own_bridge({'name': name, 'bridge': bridge})
    clash = _overlap(network, data, skip_network=name)
    if clash:
        raise ValidationError('subnet %s of network %s overlaps %s; choose another subnet' % (network, name, clash))
    return {'name': name, 'bridge': bridge, 'subnet': str(network), 'gateway': str(gateway_address),
            'internal': bool(internal)}


def ip_forward_warning(network):
    """A warning when outbound traffic of a (non-internal) network cannot leave the host, else None."""
    if network.get('internal'):
        return None
    try:
        with open(IP_FORWARD) as handle:
            enabled = handle.read().strip() == '1'
    except (IOError, OSError):
        return None
    if enabled:
        return None
    return ('net.ipv4.ip_forward is 0 on this host: containers on network %s reach the host, each other and their '
            'published ports, but not other hosts. Set it to 1 (e.g. with ansible.posix.sysctl) to let their traffic '
            'out; runcible.oci does not change it for you' % network['name'])


# -- the kernel: namespaces (plain syscalls), bridges and veths (rtnetlink) ----------------------------

def _os_error(what, path, exc):
    return OSError(exc.errno, '%s: %s' % (what, exc.strerror), path)


def _share_netns_dir():
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


def create_netns(path, netlink=False):
    """Create a network namespace bound at ``path`` (a new one; a leftover at ``path`` is removed first).

    ``netlink``: also return a NETLINK_ROUTE socket opened inside it (no process needed to configure it).
    """
    if os.path.lexists(path):
        remove_netns(path)
    _share_netns_dir()
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    outcome = {}

    def unshare_and_bind():
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
        try:
            with open('/proc/sys/net/ipv4/conf/default/arp_notify', 'w') as handle:
                handle.write('1')
        except (IOError, OSError):
            pass
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


def remove_netns(path):
    """Unmount and delete a namespace file; the kernel frees the namespace, and its veth pair, when unused."""
    try:
        libc.umount2(path, MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise RuncibleError('cannot unmount the network namespace %s: %s' % (path, exc.strerror))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def interface_exists(name):
    return os.path.exists(os.path.join('/sys/class/net', name))


def _write_sysctl(path, value):
    try:
        with open(path, 'w') as handle:
            handle.write(value)
    except (IOError, OSError) as exc:
        raise RuncibleError('cannot set %s to %s: %s' % (path, value, exc))


def _bridge_sysctls(network):
    conf = '/proc/sys/net/ipv4/conf/%s/' % network['bridge']
    # 127.0.0.1:PORT on the host is DNATed out of this bridge, and the replies, de-NATed back to 127.0.0.1,
    # need loopback routing on it. The loopback guard of ports.py (every bridge of the registry) drops
    # whatever arrives on it from or to 127.0.0.0/8, so this opens no host loopback service to the bridge.
    _write_sysctl(conf + 'route_localnet', '1')
    # Forward what comes in from the containers (not for internal networks: no way out at all).
    _write_sysctl(conf + 'forwarding', '0' if network.get('internal') else '1')


# -- ownership of bridges -----------------------------------------------------------------------------

def owned_alias(network):
    return OWNED_BRIDGE_ALIAS % network['name']


def link_alias(name):
    """The alias of the interface ``name`` ('' when it has none), or None when there is no such interface."""
    try:
        with open(os.path.join('/sys/class/net', name, 'ifalias')) as handle:
            return handle.read().rstrip('\n')
    except FileNotFoundError:
        return None
    except (IOError, OSError) as exc:
        raise RuncibleError('cannot read the alias of the interface %s: %s' % (name, exc))


def bridge_owner(network):
    """Who has the network's bridge name: 'missing' (nobody), 'ours' (its alias is the network's) or 'foreign'."""
    alias = link_alias(network['bridge'])
    if alias is None:
        return 'missing'
    return 'ours' if alias == owned_alias(network) else 'foreign'


def foreign_bridge_message(network):
    alias = link_alias(network['bridge']) or ''
    return ('bridge %s already exists and was not created by runcible.oci for network %s (%s); runcible.oci never '
            'changes or deletes an interface it did not create: choose another bridge name for the network (option '
            'bridge), or remove the interface (ip link delete %s) if nothing else needs it'
            % (network['bridge'], network['name'], 'its alias is %r' % alias if alias else 'it has no alias',
               network['bridge']))


def require_own_bridge(network):
    """Raise ValidationError when the network's bridge name is taken by an interface that is not ours."""
    if bridge_owner(network) == 'foreign':
        raise ValidationError(foreign_bridge_message(network))


def bridge_ready(network):
    """True when the bridge exists, is ours, is up and has the gateway address (by /sys and /proc: no netlink)."""
    base = os.path.join('/sys/class/net', network['bridge'])
    if not os.path.isdir(os.path.join(base, 'bridge')) or bridge_owner(network) != 'ours':
        return False
    try:
        with open(os.path.join(base, 'flags')) as handle:
            if not int(handle.read().strip(), 16) & 1:
                return False
    except (IOError, OSError, ValueError):
        return False
    gateway = ipaddress.ip_address(network['gateway'])
    for route, device in host_routes():
        if device == network['bridge'] and gateway in route and str(route) == network['subnet']:
            return True
    return False


def _link_index(rtnl, name, where=''):
    """The index of the interface ``name`` (netlink.Netlink ``rtnl``'s namespace); OSError when missing."""
    index = rtnl.link_index(name)
    if index is None:
        raise OSError(errno.ENODEV, 'the interface %s%s is missing' % (name, where))
    return index


def _create_bridge(rtnl, network):
    """A new bridge with our alias; -> its index. The kernel takes no alias with RTM_NEWLINK's creation, so it is
    set right after; when that fails, the bridge just made (ours: NLM_F_EXCL) is deleted again."""
    bridge = network['bridge']
    rtnl.add_bridge(bridge)
    index = _link_index(rtnl, bridge)
    try:
        rtnl.set_link(index, bridge, alias=owned_alias(network))
    except BaseException:
        with contextlib.suppress(OSError):
            rtnl.delete_link(index, bridge)
        raise
    return index


def ensure_bridge(network, rtnl=None):
    """Create (or repair) the network's bridge: gateway address, up, sysctls; -> True when it changed.

    ``rtnl``: a netlink.Netlink of the host's namespace to use (else one of its own). An interface of
    that name that is not ours is never touched: ValidationError.
    """
    bridge = network['bridge']
    changed = False
    try:
        with contextlib.ExitStack() as stack:
            if rtnl is None:
                rtnl = stack.enter_context(netlink.Netlink())
            index = rtnl.link_index(bridge)
            if index is not None:
                require_own_bridge(network)
                if not os.path.isdir('/sys/class/net/%s/bridge' % bridge):
                    raise ValidationError('interface %s exists and is not a bridge: give network %s another bridge '
                                          'name' % (bridge, network['name']))
            else:
                index = _create_bridge(rtnl, network)
                changed = True
            prefixlen = ipaddress.ip_network(network['subnet']).prefixlen
            addresses = rtnl.addresses(index, bridge)
            if (network['gateway'], prefixlen) not in addresses:
                for address, other_prefixlen in addresses:
                    rtnl.delete_address(index, address, other_prefixlen, bridge)
                rtnl.add_address(index, network['gateway'], prefixlen, bridge)
                changed = True
            with open('/sys/class/net/%s/flags' % bridge) as handle:
                if not int(handle.read().strip(), 16) & 1:
                    rtnl.set_link(index, bridge, up=True)
                    changed = True
    except OSError as exc:
        raise RuncibleError('cannot set up the bridge %s of network %s: %s' % (bridge, network['name'], exc))
    _bridge_sysctls(network)
    return changed


def delete_bridge(network):
    """Delete the network's bridge when it is ours; -> True when deleted. An interface of that name that is
    not ours is left as it is (see bridge_owner(); the caller may warn)."""
    bridge = network['bridge']
    if bridge_owner(network) != 'ours':
        return False
    try:
        with netlink.Netlink() as rtnl:
            index = rtnl.link_index(bridge)
            if index is not None:
                rtnl.delete_link(index, bridge)
    except OSError as exc:
        raise RuncibleError('cannot delete the bridge %s of network %s: %s' % (bridge, network['name'], exc))
    return True


def plumb(network, container_id, address, name, inside_socket=None):
    """The veth pair of a container: host end on the bridge, eth0 in its namespace with address and routes.

    ``inside_socket``: a netlink socket opened in the container's namespace, used and closed here
    (else one is opened in it by a thread that enters the namespace).
    """
    path = netns_path(container_id)
    host_end = veth_name(container_id)
    prefixlen = ipaddress.ip_network(network['subnet']).prefixlen
    try:
        with netlink.Netlink() as rtnl:
            if not bridge_ready(network):
                ensure_bridge(network, rtnl)
            stale = rtnl.link_index(host_end) if interface_exists(host_end) else None
            if stale is not None:
                rtnl.delete_link(stale, host_end)
            netns_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                rtnl.add_veth(host_end, CONTAINER_IFNAME, netns_fd)
            finally:
                os.close(netns_fd)
            bridge_index = _link_index(rtnl, network['bridge'])
            rtnl.set_link(_link_index(rtnl, host_end), host_end, up=True, master=bridge_index,
                          alias='runcible.oci container %s' % name)
            # The host may still know the address with the MAC of its previous owner.
            with contextlib.suppress(OSError):
                rtnl.delete_neighbour(bridge_index, address, network['bridge'])
        if inside_socket is not None:
            inside = netlink.Netlink(inside_socket)
        else:
            inside = netlink.Netlink.in_netns(path)
        with inside:
            inside.set_link(1, 'lo', up=True)  # lo: always index 1 in a namespace
            eth0 = _link_index(inside, CONTAINER_IFNAME, ' in the namespace')
            inside.add_address(eth0, address, prefixlen, CONTAINER_IFNAME)
            inside.set_link(eth0, CONTAINER_IFNAME, up=True)
            if not network.get('internal'):
                inside.add_default_route(network['gateway'])
    except OSError as exc:
        raise RuncibleError('cannot attach container %s to network %s (veth %s, namespace %s): %s'
                            % (name, network['name'], host_end, path, exc))


# -- /etc/hosts and /etc/resolv.conf of a container -------------------------------------------------------

def resolv_conf():
    """The host's resolver configuration without loopback name servers (unreachable from a container)."""
    for path in RESOLV_PATHS:
        try:
            with open(path) as handle:
                lines = handle.read().splitlines()
        except (IOError, OSError):
            continue
        kept, servers = [], 0
        for line in lines:
            fields = line.split()
            if fields and fields[0] == 'nameserver' and len(fields) > 1:
                try:
                    if ipaddress.ip_address(fields[1].split('%')[0]).is_loopback:
                        continue
                except ValueError:
                    continue
                servers += 1
            if fields and not fields[0].startswith(('#', ';')):
                kept.append(' '.join(fields))
        if servers:
            return '\n'.join(kept) + '\n'
    return '# runcible.oci: the host has no name server a container can reach\n'


def hosts_file(hostname, name, address):
    names = [hostname] + ([name] if name != hostname else [])
    return ('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n'
            % (address, ' '.join(names)))


def _replace_file(path, text):
    """Write by rename, without fsync: these files are written again at every start."""
    temp = '%s.tmp-%d' % (path, os.getpid())
    with open(temp, 'w') as handle:
        handle.write(text)
    os.chmod(temp, 0o644)
    os.rename(temp, path)


def write_etc_files(bundle, config, name, address):
    _replace_file(os.path.join(bundle, HOSTS_FILE), hosts_file(config.get('hostname') or name, name, address))
    _replace_file(os.path.join(bundle, RESOLV_FILE), resolv_conf())


# -- validation of a container task's options (no writes: check mode too) ---------------------------------

def _held_by(data, mapping, exclude_id=None):
    """The allocation (id, dict) of an attached container that publishes an overlapping host port."""
    for cid, allocation in data['allocations'].items():
        if cid == exclude_id or not allocation.get('attached'):
            continue
        for item in allocation.get('ports') or []:
            if ports.PortMapping.from_dict(item).overlaps(mapping):
                return cid, allocation
    return None


def _holder_text(allocation):
    return 'container %s (root %s)' % (allocation['name'], allocation['root'])


def _is_self(allocation, context):
    """Is ``allocation`` the container of this task (same name, and same root when known)?"""
    return allocation['name'] == context.get('name') and (
        context.get('root') is None or allocation['root'] == os.path.normpath(context['root']))


def effective_network(context):
    """The bridge network a task's container will be on (None for none/host), from the options seen so far."""
    if context.get('network'):
        return network_of({'network': context['network']})
    record_config = context.get('record_config')
    if record_config:
        return network_of(record_config)
    return DEFAULT_NETWORK


def check_network(name, context, registry=None):
    """``network``: a named network must exist (the default one is made on first use)."""
    network_name = network_of({'network': name})
    if network_name and network_name != DEFAULT_NETWORK:
        if network_name not in (registry or Registry()).load()['networks']:
            raise ValidationError('network %s does not exist: create it first with runcible.oci.network' % network_name)
    return name


def check_ip_address(address, context, registry=None):
    """``ip_address``: a free host address of the container's network."""
    network_name = effective_network(context)
    if network_name is None:
        raise ValidationError('ip_address needs a bridge network (network: bridge or a network name); the container '
                              'has network: %s' % (context.get('network') or 'none'))
    data = (registry or Registry()).load()
    network = data['networks'].get(network_name)
    if network is None:
        return address  # the default network, made on first use: its subnet is checked then
    subnet = ipaddress.ip_network(network['subnet'])
    value = ipaddress.ip_address(address)
    if value not in subnet or value in (subnet.network_address, subnet.broadcast_address):
        raise ValidationError('ip_address: %s is not a host address of network %s (%s)' % (address, network_name, subnet))
    if address == network['gateway']:
        raise ValidationError('ip_address: %s is the gateway of network %s' % (address, network_name))
    for allocation in data['allocations'].values():
        if allocation['ip'] == address and allocation['network'] == network_name and not _is_self(allocation, context):
            raise ValidationError('ip_address: %s is already the address of %s' % (address, _holder_text(allocation)))
    return address


def check_published_ports(canonical, context, registry=None):
    """``published_ports``: a bridge network, and host ports that are free or already this container's."""
    if not canonical:
        return canonical
    if effective_network(context) is None:
        raise ValidationError('published_ports needs a bridge network (network: bridge or a network name); the '
                              'container has network: %s' % (context.get('network') or 'none'))
    data = (registry or Registry()).load()
    for mapping in ports.expand(canonical):
        holder = _held_by(data, mapping)
        if holder and _is_self(holder[1], context):
            continue
        try:
            ports.probe([mapping])
        except ports.PortInUse as exc:
            who = _holder_text(holder[1]) if holder else 'another process'
            raise ValidationError('published_ports: %s by %s; nothing was changed' % (exc.msg, who), port=mapping.text())
    return canonical


# -- the engine's hooks -------------------------------------------------------------------------------------

class Attachment(object):
    """What attach() made for one launch: the reserved port sockets (their fds go to conmon) and the
    plumbing of the veth pair, which may still be running in a thread while conmon creates the container.

    Used as a context manager around conmon's launch: on leaving, our copies of the sockets are closed
    (conmon holds its own), and the plumbing is waited for; when it or the launch failed, the container
    is killed (it was only created, never started) and its network detached.
    """

    def __init__(self, engine=None, record=None, sockets=(), worker=None):
        self.engine = engine
        self.record = record
        self.sockets = list(sockets)
        self.worker = worker
        self.error = None

    @property
    def fds(self):
        return [sock.fileno() for sock in self.sockets]

    def close(self):
        for sock in self.sockets:
            sock.close()
        self.sockets = []

    def wait(self):
        """Wait for the plumbing; raise what it raised."""
        if self.worker is not None:
            self.worker.join()
            self.worker = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
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

    def _undo(self, launched):
        if self.engine is None:
            return
        if launched:
            # conmon created the container (not started): kill it, conmon then exits.
            with contextlib.suppress(Exception):
                self.engine.runtime_for(self.record).delete(self.record['id'], force=True)
        with contextlib.suppress(Exception):
            detach(self.engine, self.record)


def firewall_has(network):
    """Does our nftables table hold every rule this version renders for ``network`` (a dict)? Not when it was
    flushed, nor when an older version wrote it (without the loopback guard, say): it is rewritten then."""
    listed = ports.listed_rules()
    return all(any(comment in rule for rule in listed) for comment in ports.expected_comments(network))


def refresh_firewall(registry):
    with registry.lock():
        apply_firewall(registry.load())


def attach(engine, record, restore=False):
    """Set up the container's network before conmon starts it; -> Attachment (a no-op for none/host).

    At once, under the registry lock: the address (kept, pinned or the lowest free), the host ports
    bound, the bridge made if missing. Then the namespace (the runtime joins it by path) and the
    /etc files. The veth pair and the firewall follow in a thread while conmon creates the container
    (they only have to be ready before it starts); for a restore, at once (the process runs at once).
    """
    config = record['config']
    network_name = network_of(config)
    if network_name is None:
        return Attachment()
    container_id = record['id']
    mappings = ports.expand(config.get('published_ports'))
    registry = Registry()
    attachment = Attachment(engine, record)
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
                if warning and warning not in engine.warnings:
                    engine.warnings.append(warning)
            else:
                require_own_bridge(network)  # before anything is written: never plumbed into someone else's bridge
            allocation = data['allocations'].get(container_id) or {}
            address = _address_for(data, network, container_id, config.get('ip_address'), allocation)
            attachment.sockets, dropped = _reserve(data, mappings, container_id)
            stale_rules = bool(allocation.get('attached') and allocation.get('ports'))
            data['allocations'][container_id] = {
                'network': network_name, 'ip': address, 'root': engine.store.root, 'name': record['name'],
                'attached': True, 'ports': [mapping.as_dict() for mapping in mappings]}
            registry.save(data)
            record['network'] = {'name': network_name, 'ip_address': address, 'netns': netns_path(container_id),
                                 'veth': veth_name(container_id)}
            if not bridge_ready(network):
                ensure_bridge(network)
        firewall = bool(mappings or changed or dropped or stale_rules)
        write_etc_files(engine.paths(record).bundle, config, record['name'], address)
        inside_socket = create_netns(netns_path(container_id), netlink=True)

        def plumbing():
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
            detach(engine, record)
        raise
    return attachment


def _address_for(data, network, container_id, pinned, allocation):
    subnet = ipaddress.ip_network(network['subnet'])
    taken = set(item['ip'] for cid, item in data['allocations'].items()
                if cid != container_id and item['network'] == network['name'])
    if pinned:
        if pinned in taken:
            holder = [item for cid, item in data['allocations'].items() if item['ip'] == pinned
                      and item['network'] == network['name'] and cid != container_id][0]
            raise ValidationError('ip_address: %s is already the address of %s' % (pinned, _holder_text(holder)))
        return pinned
    if allocation.get('ip') and allocation.get('network') == network['name'] and allocation['ip'] not in taken:
        return allocation['ip']
    reserved = set([network['gateway'], str(subnet.network_address), str(subnet.broadcast_address)])
    for address in subnet.hosts():
        text = str(address)
        if text not in taken and text not in reserved:
            return text
    raise RuncibleError('network %s (%s) has no free address left' % (network['name'], network['subnet']))


def _reserve(data, mappings, container_id):
    """Bind every host port (all or nothing); -> (sockets, whether stale registry entries were dropped).

    A registry entry of another container whose port we could bind is stale (that container died
    behind our back and conmon let the port go): it is dropped, or its rule would shadow ours.
    """
    sockets = []
    dropped = False
    try:
        for mapping in mappings:
            holder = _held_by(data, mapping, exclude_id=container_id)
            try:
                sockets.append(ports.bind(mapping))
            except ports.PortInUse as exc:
                who = _holder_text(holder[1]) if holder else 'another process'
                raise ValidationError('published_ports: %s by %s; the container was not started' % (exc.msg, who),
                                      port=mapping.text())
            while holder:
                stale = holder[1]
                stale['ports'] = [item for item in stale.get('ports') or []
                                  if not ports.PortMapping.from_dict(item).overlaps(mapping)]
                dropped = True
                holder = _held_by(data, mapping, exclude_id=container_id)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets, dropped


def _wait_conmon_gone(record, timeout=CONMON_EXIT_WAIT):
    """conmon holds the reserved ports until it exits, a moment after the container's exit code is written:
    wait for that, so that the next task (another container on the same port, say) finds them free."""
    deadline = time.monotonic() + timeout
    while process_alive(record.get('conmon_pid'), record.get('conmon_start')) and time.monotonic() < deadline:
        time.sleep(0.005)


def detach(engine, record):
    """Undo attach(): namespace (and with it the veth pair), published ports; the address stays allocated."""
    container_id = record.get('id')
    if not container_id or (network_of(record.get('config')) is None and not record.get('network')):
        return
    if (record.get('config') or {}).get('published_ports'):
        _wait_conmon_gone(record)
    remove_netns(netns_path(container_id))
    registry = Registry()
    if not os.path.exists(registry.path):
        return
    with registry.lock():
        data = registry.load()
        allocation = data['allocations'].get(container_id)
        if allocation and allocation.get('attached'):
            allocation['attached'] = False
            had_ports = bool(allocation.get('ports'))
            allocation['ports'] = []
            registry.save(data)
            if had_ports:
                apply_firewall(data)


def release(engine, record):
    """Forget the container's address (on removal), after detach()."""
    container_id = record.get('id')
    if not container_id or (network_of(record.get('config')) is None and not record.get('network')):
        return
    detach(engine, record)
    registry = Registry()
    if not os.path.exists(registry.path):
        return
    with registry.lock():
        data = registry.load()
        if data['allocations'].pop(container_id, None) is not None:
            registry.save(data)


def ip_address(record):
    return (record.get('network') or {}).get('ip_address')


__all__ = ['attach', 'detach', 'release', 'check_network', 'check_ip_address', 'check_published_ports', 'ip_address', 'map_spec', 'normalise_network',
           'normalise_ip_address', 'Registry', 'define', 'ensure_bridge', 'delete_bridge', 'bridge_owner',
           'require_own_bridge', 'apply_firewall']
