# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one ``runcible.oci.network`` task does; ``run(params, check_mode)`` is its Python API.

    params   -> wanted definition (validated: name, subnet, gateway, bridge, internal)
    registry -> the network as defined, plus what the kernel has (bridge up with its address, rules)
    compare  -> nothing | created | updated | repaired | removed     (+ diff before/after)
    apply    -> registry write, bridge (rtnetlink: pyroute2), nftables table rewrite (skipped in check mode)
"""

from __future__ import annotations

import contextlib

from ._runtime import bridges
from ._runtime import network as net
from ._runtime import network_registry as netreg
from ._runtime.errors import ValidationError
from ._task import with_defaults

STATES = ('present', 'absent')
FIELDS = ('bridge', 'subnet', 'gateway', 'internal', 'dns', 'ipv6', 'ipv6_subnet', 'ipv6_gateway')
DEFAULTS = {'dns': False, 'ipv6': False}  # what a definition written before the field says


def argument_spec():
    """No root, run_root or runtime: networks are the host's, in one registry for every store."""
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(STATES)),
        subnet=dict(type='str'),
        gateway=dict(type='str'),
        internal=dict(type='bool'),
        bridge=dict(type='str'),
        dns=dict(type='bool'),
        ipv6=dict(type='bool'),
        ipv6_subnet=dict(type='str'),
    )


class Task(object):
    def __init__(self, params, check_mode=False, registry=None):
        """``params``: complete, as ``_task.with_defaults(argument_spec(), ...)`` gives them."""
        self.params = params
        self.check_mode = check_mode
        self.name = netreg.validate_network_name(params['name'])
        self.state = params['state']
        if self.state not in STATES:
            raise ValidationError('state: %r is not one of %s' % (self.state, ', '.join(STATES)))
        self.registry = registry or netreg.NetworkRegistry()
        self.actions = []
        self.warnings = []
        self.before = {}
        self.after = {}

    def run(self):
        lock = contextlib.nullcontext() if self.check_mode else self.registry.lock()
        with lock:
            data = self.registry.load()
            netreg.collect_garbage(data)
            existing = data['networks'].get(self.name)
            if self.state == 'absent':
                network = self._absent(data, existing)
            else:
                network = self._present(data, existing)
        return self.result(data, network)

    # -- the cases -------------------------------------------------------------------------------
    def _wanted(self, data, existing):
        params = self.params
        if existing is None:
            return netreg.define(data, self.name, subnet=params.get('subnet'), gateway=params.get('gateway'),
                                 internal=bool(params.get('internal')), bridge=params.get('bridge'),
                                 dns=params.get('dns') is not False, ipv6=_ipv6_wanted(params, False),
                                 ipv6_subnet=params.get('ipv6_subnet'))
        subnet = params.get('subnet') or existing['subnet']
        same_subnet = netreg.same_subnet(subnet, existing['subnet'])
        gateway = params.get('gateway') or (existing['gateway'] if same_subnet else None)
        internal = existing['internal'] if params.get('internal') is None else params['internal']
        dns = _field(existing, 'dns') if params.get('dns') is None else params['dns']
        ipv6 = _ipv6_wanted(params, _field(existing, 'ipv6'))
        ipv6_subnet = params.get('ipv6_subnet') or (_field(existing, 'ipv6_subnet') if ipv6 else None)
        return netreg.define(data, self.name, subnet=subnet, gateway=gateway, internal=internal,
                             bridge=params.get('bridge') or existing['bridge'], dns=dns, ipv6=ipv6,
                             ipv6_subnet=ipv6_subnet)

    def _present(self, data, existing):
        wanted = self._wanted(data, existing)
        if existing is None:
            self.actions.append('created')
            self.before = {'state': 'absent'}
            self.after = dict(wanted, state='present')
            if not self.check_mode:
                data['networks'][self.name] = wanted
                self.registry.save(data)
                self._bring_up(data, wanted, previous=None)
            self._warn(wanted)
            return wanted
        changed = [field for field in FIELDS if _field(wanted, field) != _field(existing, field)]
        if changed:
            users = netreg.containers_on(data, self.name)
            if users:
                raise ValidationError('network %s cannot change its %s while containers have addresses on it (%s): '
                                      'remove them first' % (self.name, ', '.join(changed), _names(users)))
            self.actions.append('updated')
            self.before = dict((field, _field(existing, field)) for field in changed)
            self.after = dict((field, _field(wanted, field)) for field in changed)
            if not self.check_mode:
                data['networks'][self.name] = wanted
                self.registry.save(data)
                self._bring_up(data, wanted, previous=existing)
            self._warn(wanted)
            return wanted
        broken = self._kernel_problems(existing, data)
        if broken:
            # Gone with a reboot, or removed or flushed behind our back: made again.
            self.actions.append('repaired')
            self.before = {'kernel': broken}
            self.after = {'kernel': []}
            if not self.check_mode:
                self._bring_up(data, existing, previous=None)
        self._warn(existing)
        return existing

    def _absent(self, data, existing):
        if existing is None:
            return None
        users = netreg.containers_on(data, self.name)
        if users:
            raise ValidationError('network %s still has containers with addresses on it (%s): remove them first'
                                  % (self.name, _names(users)))
        self.actions.append('removed')
        self.before = dict(existing, state='present')
        self.after = {'state': 'absent'}
        if self.check_mode:
            self._warn_foreign(existing)
            return None
        # The bridge first: a failure leaves the network defined, and the task can be run again.
        if not bridges.delete_bridge(existing):
            self._warn_foreign(existing)
        del data['networks'][self.name]
        self.registry.save(data)
        net.apply_firewall(data)
        return None

    # -- kernel ----------------------------------------------------------------------------------
    @staticmethod
    def _kernel_problems(network, data):
        problems = []
        if _field(network, 'dns'):
            from ._runtime import dns  # pylint: disable=import-outside-toplevel
            problems.extend(dns.problems(data))
        if not bridges.bridge_ready(network):
            problems.append('bridge %s missing, down, without %s or without its own MAC address'
                            % (network['bridge'], network['gateway']))
        if not net.firewall_has(network):
            problems.append('nftables rules of the network missing')
        return problems

    def _bring_up(self, data, network, previous):
        """The kernel side of ``network``: rules first (its bridge's loopback guard with them), then the bridge.

        Only bridges the collection made are changed or deleted (bridges.bridge_owner); define() has already
        refused a wanted bridge name that someone else's interface has.
        """
        if previous is not None and previous['bridge'] != network['bridge']:
            if not bridges.delete_bridge(previous):
                self._warn_foreign(previous)
        net.apply_firewall(data)
        bridges.ensure_bridge(network)  # replaces the gateway address when it changed
        if _field(network, 'dns') or (previous is not None and _field(previous, 'dns')):
            from ._runtime import dns  # pylint: disable=import-outside-toplevel
            dns.sync(data)  # a killed aardvark-dns started again

    def _warn_foreign(self, network):
        """Warn when the network's bridge name is someone else's interface, left as it is."""
        if bridges.bridge_owner(network) == 'foreign':
            self.warnings.append('bridge %s of network %s was not created by runcible.oci: it was left as it is. An '
                                 'older version may have set its address to %s and route_localnet=1 on it; check '
                                 'its configuration' % (network['bridge'], network['name'], network['gateway']))

    def _warn(self, network):
        warning = netreg.ip_forward_warning(network)
        if warning:
            self.warnings.append(warning)

    # -- result ----------------------------------------------------------------------------------
    def result(self, data, network):
        result = {'changed': bool(self.actions), 'actions': self.actions,
                  'diff': {'before': self.before, 'after': self.after}}
        if network is None:
            result['network'] = {}
        else:
            result['network'] = dict(network, dns=_field(network, 'dns'), containers=netreg.containers_on(data, self.name))
        if self.warnings:
            result['warnings'] = self.warnings
        return result


def _ipv6_wanted(params, current):
    """``ipv6`` as given; not given: what the network has, or true when an ``ipv6_subnet`` is given."""
    if params.get('ipv6') is not None:
        return bool(params['ipv6'])
    return bool(current or params.get('ipv6_subnet'))


def _field(network, field):
    return network.get(field, DEFAULTS.get(field))


def _names(users):
    return ', '.join('%s (root %s)' % (user['name'], user['root']) for user in users)


def info_argument_spec():
    """Networks are the host's: no root, run_root or runtime."""
    return dict(name=dict(type='str'))


class InfoTask(object):
    """``runcible.oci.network_info``: the networks of the host (one or all) with their containers. Reads only."""

    def __init__(self, params, check_mode=False, registry=None):
        self.params = params
        self.check_mode = check_mode
        self.name = None if params.get('name') is None else netreg.validate_network_name(params['name'])
        self.registry = registry or netreg.NetworkRegistry()

    def run(self):
        data = self.registry.load()
        netreg.collect_garbage(data)  # (in memory only: a container removed with its store is not listed)
        names = sorted(data['networks']) if self.name is None else [self.name] if self.name in data['networks'] else []
        found = [dict(data['networks'][name], dns=_field(data['networks'][name], 'dns'),
                      ipv6=_field(data['networks'][name], 'ipv6'), containers=netreg.containers_on(data, name))
                 for name in names]
        result = {'changed': False, 'networks': found}
        if self.name is not None:
            result['exists'] = bool(found)
        return result


def info(params, registry=None):
    """Read networks; -> the module result."""
    return InfoTask(with_defaults(info_argument_spec(), params), registry=registry).run()


def run(params, check_mode=False, registry=None):
    """Run one network task; -> the module result (raises RuncibleError subclasses on failure)."""
    return Task(with_defaults(argument_spec(), params), check_mode=check_mode, registry=registry).run()
