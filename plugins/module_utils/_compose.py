# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Compose document (already parsed: a dict) -> the deployment's containers, networks and volumes.

    from_compose(definition, project, project_dir) -> Compose(containers, networks, volumes, warnings)

Only the common subset of the Compose specification is mapped, each key onto the ``container`` module's own
options (which then validate and normalise the values as for any container); a key outside the subset fails
with the service's name and the key, never with a traceback. docs/deployments.md has the table.
Names: container ``<project>-<service>`` (or ``container_name``), network and volume ``<project>_<key>`` (or
their ``name``; ``external`` ones are used as they are and never created or removed).
"""

from __future__ import annotations

import hashlib
import os
import re

from ._runtime.errors import ValidationError

TRANSPORTS = ('docker://', 'oci:', 'oci-archive:', 'sha256:')
IGNORED_TOP = ('version',)
HINTS = {
    'build': 'build the image first (e.g. with buildah) and give image',
    'deploy': 'replicas and placement are a swarm\'s; declare one service per container',
    'secrets': 'give the container module\'s secrets option in containers or defaults',
    'configs': 'mount the file with a bind volume',
    'extends': 'write the service out in full',
    'links': 'use a network; DNS names between containers arrive with another issue (pin ipv4_address)',
    'extra_hosts': 'not supported yet',
    'dns': 'not supported yet',
    'logging': 'the container logs with log_driver (k8s-file, journald) through defaults',
    'expose': 'containers on one network reach every port of each other; nothing to expose',
    'profiles': 'choose the services with Jinja before passing the definition',
}


class Compose(object):
    __slots__ = ('project', 'containers', 'networks', 'volumes', 'warnings', 'healthy_needed')

    def __init__(self, project):
        self.project = project
        self.containers = []
        self.networks = []
        self.volumes = []
        self.warnings = []
        self.healthy_needed = {}  # container name -> service, of the services others wait for as service_healthy


def from_compose(definition, project, project_dir=None):
    """``definition``: the parsed document; ``project``: the deployment's name unless the document has ``name``;
    ``project_dir``: where relative paths (bind sources, env_file) are, on the managed node."""
    if not isinstance(definition, dict):
        raise ValidationError('definition: the compose document must be a mapping with services, got a %s'
                              % type(definition).__name__)
    unknown = [key for key in definition if not _extension(key) and key not in
               ('name', 'services', 'networks', 'volumes') + IGNORED_TOP]
    if unknown:
        raise ValidationError('compose: top-level key %s is not supported%s' % (_keys(unknown), _hint(unknown[0])))
    project = str(definition.get('name') or project)
    services = definition.get('services')
    if not isinstance(services, dict) or not services:
        raise ValidationError('compose: services must be a mapping of at least one service')
    compose = Compose(project)
    networks = _networks(compose, _mapping(definition.get('networks'), 'compose networks'))
    volumes = _volumes(compose, _mapping(definition.get('volumes'), 'compose volumes'))
    names = {}
    for service, body in services.items():
        if not isinstance(body, dict):
            raise ValidationError('compose service %s: must be a mapping of keys, got a %s' % (service, type(body).__name__))
        names[service] = str(body.get('container_name') or '%s-%s' % (project, service))
    used_default = False
    for service, body in services.items():
        mapper = _Service(compose, str(service), body, names, networks, volumes, project_dir)
        entry = mapper.entry()
        used_default = used_default or mapper.on_default
        compose.containers.append(entry)
    # A service others wait for as service_healthy is brought to state healthy (its check passes) before them.
    for entry in compose.containers:
        if entry['name'] in compose.healthy_needed:
            if not entry.get('healthcheck'):
                raise ValidationError('compose service %s: others depend on it with condition service_healthy, but it '
                                      'has no healthcheck' % compose.healthy_needed[entry['name']])
            entry.setdefault('state', 'healthy')
    if used_default and 'default' not in networks:
        compose.networks.append({'name': _default_network(project)})
    return compose


def _extension(key):
    return isinstance(key, str) and key.startswith('x-')


def _keys(keys):
    return ', '.join(repr(str(key)) for key in keys)


def _hint(key):
    return ' (%s)' % HINTS[key] if key in HINTS else ''


def _mapping(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError('%s: must be a mapping, got a %s' % (where, type(value).__name__))
    return value


def _default_network(project):
    return '%s_default' % project


def _check_keys(where, body, known):
    unknown = [key for key in body if not _extension(key) and key not in known]
    if unknown:
        raise ValidationError('%s: key %s is not supported%s; supported: %s'
                              % (where, _keys(unknown), _hint(str(unknown[0])), ', '.join(sorted(known))))


def _networks(compose, networks):
    """Top-level networks -> {compose key: runcible network name}; the ones to create go to compose.networks."""
    names = {}
    for key, body in networks.items():
        where = 'compose network %s' % key
        body = _mapping(body, where)
        _check_keys(where, body, ('driver', 'internal', 'ipam', 'name', 'external', 'labels', 'attachable',
                                  'driver_opts', 'enable_ipv6'))
        name = str(body.get('name') or ('%s_%s' % (compose.project, key)))
        names[key] = name
        if body.get('driver') not in (None, 'bridge'):
            raise ValidationError('%s: driver %r is not supported; networks are bridges' % (where, body['driver']))
        if body.get('driver_opts'):
            raise ValidationError('%s: driver_opts are not supported' % where)
        if body.get('external'):
            continue
        network = {'name': name}
        if body.get('internal') is not None:
            network['internal'] = bool(body['internal'])
        if body.get('enable_ipv6'):
            network['ipv6'] = True
        ipam = _mapping(body.get('ipam'), where + ' ipam')
        _check_keys(where + ' ipam', ipam, ('driver', 'config'))
        configs = ipam.get('config') or []
        if not isinstance(configs, list) or len(configs) > 2:
            raise ValidationError('%s: ipam config must be a list of one IPv4 subnet (and one IPv6 subnet with '
                                  'enable_ipv6)' % where)
        for config in configs:
            config = _mapping(config, where + ' ipam config')
            _check_keys(where + ' ipam config', config, ('subnet', 'gateway'))
            if ':' in str(config.get('subnet') or ''):  # the IPv6 subnet: its gateway is always its first address
                if not body.get('enable_ipv6') or 'ipv6_subnet' in network or config.get('gateway'):
                    raise ValidationError('%s: an IPv6 ipam subnet needs enable_ipv6, comes once, and takes no gateway '
                                          '(the first address is the gateway)' % where)
                network['ipv6_subnet'] = str(config['subnet'])
                continue
            if 'subnet' in network:
                raise ValidationError('%s: ipam config must be a list of one IPv4 subnet (and one IPv6 subnet with '
                                      'enable_ipv6)' % where)
            network.update((field, str(config[field])) for field in ('subnet', 'gateway') if config.get(field))
        compose.networks.append(network)
    if 'default' in networks:
        names.setdefault('default', _default_network(compose.project))
    return names


def _volumes(compose, volumes):
    """Top-level volumes -> {compose key: runcible volume name}; the ones to create go to compose.volumes."""
    names = {}
    for key, body in volumes.items():
        where = 'compose volume %s' % key
        body = _mapping(body, where)
        _check_keys(where, body, ('driver', 'driver_opts', 'labels', 'name', 'external'))
        name = str(body.get('name') or ('%s_%s' % (compose.project, key)))
        names[key] = name
        if body.get('driver') not in (None, 'local'):
            raise ValidationError('%s: driver %r is not supported; the only driver is local' % (where, body['driver']))
        if body.get('external'):
            continue
        volume = {'name': name}
        if body.get('labels'):
            volume['labels'] = _pairs(body['labels'], where + ' labels')
        if body.get('driver_opts'):
            volume['options'] = dict((str(k), str(v)) for k, v in _mapping(body['driver_opts'], where).items())
        compose.volumes.append(volume)
    return names


def _pairs(value, where, allow_empty=False):
    """A list of ``KEY=VALUE`` or a mapping -> dict (values as given; a bare ``KEY`` only when ``allow_empty``)."""
    if isinstance(value, dict):
        return dict((str(key), item) for key, item in value.items())
    if not isinstance(value, list):
        raise ValidationError('%s: must be a list of KEY=VALUE or a mapping' % where)
    result = {}
    for item in value:
        key, equals, text = str(item).partition('=')
        if not key:
            raise ValidationError('%s: %r is not KEY=VALUE' % (where, item))
        result[key] = text if equals or not allow_empty else None
    return result


def _duration(value, where):
    """``10s``, ``1m30s``, ``500ms``, a number of seconds -> whole seconds (rounded up)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(-(-value // 1))
    text = str(value).strip()
    parts = re.findall(r'(\d+(?:\.\d+)?)(ms|us|h|m|s)', text)
    if not parts or ''.join(number + unit for number, unit in parts) != text:
        raise ValidationError('%s: %r is not a duration such as 10s or 1m30s' % (where, value))
    scale = {'h': 3600, 'm': 60, 's': 1, 'ms': 0.001, 'us': 0.000001}
    seconds = sum(float(number) * scale[unit] for number, unit in parts)
    return int(-(-seconds // 1))


class _Service(object):
    """One service -> one container entry."""

    KNOWN = ('image', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'volumes', 'tmpfs', 'networks',
             'network_mode', 'depends_on', 'restart', 'healthcheck', 'labels', 'user', 'working_dir', 'cap_add',
             'cap_drop', 'ulimits', 'container_name', 'hostname', 'stop_signal', 'stop_grace_period', 'read_only',
             'privileged', 'init', 'mem_limit', 'mem_reservation', 'memswap_limit', 'cpus', 'cpu_shares', 'cpuset',
             'pids_limit', 'shm_size', 'sysctls', 'devices', 'group_add', 'pull_policy', 'oom_score_adj',
             'security_opt', 'tty', 'stdin_open')
    # Compose key -> container option, the value as it is (the option's normaliser checks it).
    SAME = {'user': 'user', 'working_dir': 'workdir', 'cap_add': 'cap_add', 'cap_drop': 'cap_drop', 'ulimits': 'ulimits',
            'hostname': 'hostname', 'stop_signal': 'stop_signal', 'read_only': 'read_only', 'privileged': 'privileged',
            'init': 'init', 'mem_limit': 'memory', 'mem_reservation': 'memory_reservation',
            'memswap_limit': 'memory_swap', 'cpus': 'cpus', 'cpu_shares': 'cpu_shares', 'cpuset': 'cpuset_cpus',
            'pids_limit': 'pids_limit', 'shm_size': 'shm_size', 'devices': 'devices', 'group_add': 'group_add',
            'oom_score_adj': 'oom_score_adj', 'tty': 'tty'}

    def __init__(self, compose, service, body, names, networks, volumes, project_dir):
        self.compose = compose
        self.service = service
        self.body = body
        self.names = names
        self.networks = networks
        self.volumes = volumes
        self.project_dir = project_dir
        self.where = 'compose service %s' % service
        self.on_default = False
        self.entry_ = {'name': names[service]}

    def entry(self):
        _check_keys(self.where, self.body, self.KNOWN)
        entry = self.entry_
        body = self.body
        for key, option in self.SAME.items():
            if body.get(key) is not None:
                entry[option] = body[key]
        if 'user' in entry:
            entry['user'] = str(entry['user'])
        self._image()
        for key in ('command', 'entrypoint'):
            if body.get(key) is not None:
                entry[key] = body[key] if isinstance(body[key], list) else str(body[key])
        self._environment()
        self._network()
        self._ports()
        self._mounts()
        self._depends_on()
        if body.get('labels') is not None:
            entry['labels'] = dict((key, '' if value is None else str(value))
                                   for key, value in _pairs(body['labels'], self.where + ' labels').items())
        self._restart_and_health()
        if body.get('stop_grace_period') is not None:
            entry['stop_timeout'] = _duration(body['stop_grace_period'], self.where + ' stop_grace_period')
        if body.get('sysctls') is not None:
            entry['sysctls'] = _pairs(body['sysctls'], self.where + ' sysctls')
        if body.get('pull_policy') is not None:
            policy = {'always': 'always', 'missing': 'missing', 'if_not_present': 'missing', 'never': 'never'}
            if body['pull_policy'] not in policy:
                raise ValidationError('%s: pull_policy %r is not supported; use always, missing or never'
                                      % (self.where, body['pull_policy']))
            entry['pull'] = policy[body['pull_policy']]
        self._security_opt()
        return entry

    def _fail(self, key, text):
        raise ValidationError('%s: %s: %s' % (self.where, key, text))

    def _image(self):
        image = self.body.get('image')
        if image is None:
            self._fail('image', 'a service needs an image (build is not supported)')
        image = str(image)
        self.entry_['image'] = image if image.startswith(TRANSPORTS) else 'docker://' + image

    def _environment(self):
        body = self.body
        if body.get('environment') is not None:
            values = _pairs(body['environment'], self.where + ' environment', allow_empty=True)
            missing = sorted(key for key, value in values.items() if value is None)
            if missing:
                self._fail('environment', '%s has no value (Compose would take it from the shell): give it one, '
                                          'e.g. with a lookup of the controller\'s environment' % ', '.join(missing))
            self.entry_['env'] = dict((key, 'true' if value is True else 'false' if value is False else str(value))
                                      for key, value in values.items())
        if body.get('env_file') is not None:
            files = body['env_file'] if isinstance(body['env_file'], list) else [body['env_file']]
            paths = []
            for item in files:
                required = True
                if isinstance(item, dict):
                    _check_keys(self.where + ' env_file', item, ('path', 'required', 'format'))
                    required = item.get('required', True) is not False
                    item = item.get('path')
                path = self._path(item, 'env_file')
                if required or os.path.exists(path):
                    paths.append(path)
            if paths:
                self.entry_['env_file'] = paths

    def _path(self, value, key):
        """A path of the compose file: absolute, or relative to the project directory (``~`` is refused)."""
        text = str(value or '')
        if not text:
            self._fail(key, 'an empty path')
        if text.startswith('~'):
            self._fail(key, '%r: a home directory is not known here; give an absolute path' % text)
        if os.path.isabs(text):
            return os.path.normpath(text)
        if not self.project_dir:
            self._fail(key, '%r is relative: give project_dir (or compose_file, whose directory it then is)' % text)
        return os.path.normpath(os.path.join(self.project_dir, text))

    def _network(self):
        body = self.body
        mode = body.get('network_mode')
        if mode is not None:
            if body.get('networks'):
                self._fail('network_mode', 'give network_mode or networks, not both')
            if mode not in ('none', 'host', 'bridge'):
                self._fail('network_mode', '%r is not supported; use none, host or bridge (or networks)' % mode)
            self.entry_['network'] = mode
            return
        networks = body.get('networks')
        if not networks:
            self.on_default = True
            self.entry_['network'] = self.networks.get('default') or _default_network(self.compose.project)
            self.entry_['aliases'] = [self.service]  # services find each other by service name (the network's DNS)
            return
        if isinstance(networks, list):
            networks = dict((str(name), None) for name in networks)
        networks = _mapping(networks, self.where + ' networks')
        entries = []
        for key, settings in networks.items():
            if key not in self.networks:
                self._fail('networks', '%s is not a network of the top-level networks' % key)
            settings = _mapping(settings, '%s networks %s' % (self.where, key))
            _check_keys('%s networks %s' % (self.where, key), settings, ('ipv4_address', 'ipv6_address', 'aliases'))
            aliases = settings.get('aliases') or []
            if not isinstance(aliases, list):
                self._fail('networks', '%s: aliases must be a list of names' % key)
            # The service name and the given aliases, on the network's DNS (aardvark-dns), as Compose serves them.
            entry = {'name': self.networks[key],
                     'aliases': list(dict.fromkeys([self.service] + [str(alias) for alias in aliases]))}
            entry.update((field, str(settings[given])) for field, given in (('ip_address', 'ipv4_address'),
                                                                            ('ipv6_address', 'ipv6_address'))
                         if settings.get(given))
            entries.append(entry)
        if len(entries) == 1 and 'ipv6_address' not in entries[0]:  # the one-network shorthand, as before
            self.entry_['network'] = entries[0]['name']
            if entries[0].get('ip_address'):
                self.entry_['ip_address'] = entries[0]['ip_address']
            self.entry_['aliases'] = entries[0]['aliases']
        else:
            self.entry_['networks'] = entries  # several networks (in the order given), or an IPv6 address

    def _ports(self):
        ports = self.body.get('ports')
        if ports is None:
            return
        if not isinstance(ports, list):
            self._fail('ports', 'must be a list')
        published = []
        for port in ports:
            if isinstance(port, dict):
                _check_keys(self.where + ' ports', port, ('target', 'published', 'host_ip', 'protocol', 'mode', 'name',
                                                          'app_protocol'))
                if port.get('published') in (None, ''):
                    self._fail('ports', '%r has no published port (an ephemeral host port is not supported)' % (port,))
                text = '%s:%s' % (port['published'], port.get('target'))
                if port.get('host_ip'):
                    text = '%s:%s' % (port['host_ip'], text)
                if port.get('protocol'):
                    text += '/' + str(port['protocol'])
                published.append(text)
                continue
            text = str(port)
            if ':' not in text.split('/', maxsplit=1)[0]:
                self._fail('ports', '%r publishes no host port (an ephemeral host port is not supported): give '
                                    'HOST:CONTAINER' % text)
            published.append(text)
        self.entry_['published_ports'] = published

    def _mounts(self):
        mounts = []
        tmpfs = {}
        for item in self.body.get('volumes') or []:
            if isinstance(item, dict):
                mount = self._long_mount(item)
            else:
                mount = self._short_mount(str(item))
            if mount['type'] == 'tmpfs':
                tmpfs[mount['target']] = ','.join(mount['options'])
            else:
                mounts.append(mount)
        value = self.body.get('tmpfs')
        for item in ([value] if isinstance(value, str) else value or []):
            target, _sep, options = str(item).partition(':')
            tmpfs[target] = options
        if mounts:
            self.entry_['mounts'] = mounts
        if tmpfs:
            self.entry_['tmpfs'] = tmpfs

    def _short_mount(self, text):
        parts = text.split(':')
        if len(parts) == 1:
            return self._anonymous(parts[0], [])
        if len(parts) > 3:
            self._fail('volumes', '%r is not SOURCE:TARGET[:MODE]' % text)
        source, target = parts[0], parts[1]
        options = [option for option in (parts[2].split(',') if len(parts) == 3 else []) if option != 'nocopy']
        return self._mount(source, target, options, None)

    def _long_mount(self, item):
        _check_keys(self.where + ' volumes', item, ('type', 'source', 'target', 'read_only', 'bind', 'volume', 'tmpfs',
                                                    'consistency'))
        kind = item.get('type') or 'volume'
        target = item.get('target')
        if not target:
            self._fail('volumes', '%r has no target' % (item,))
        options = ['ro'] if item.get('read_only') else []
        if kind == 'tmpfs':
            settings = _mapping(item.get('tmpfs'), self.where + ' volumes tmpfs')
            _check_keys(self.where + ' volumes tmpfs', settings, ('size', 'mode'))
            options += ['size=%s' % settings['size']] if settings.get('size') else []
            options += ['mode=%o' % settings['mode'] if isinstance(settings['mode'], int) else 'mode=%s' % settings['mode']] \
                if settings.get('mode') is not None else []
            return {'type': 'tmpfs', 'target': str(target), 'options': options}
        if kind == 'bind':
            settings = _mapping(item.get('bind'), self.where + ' volumes bind')
            _check_keys(self.where + ' volumes bind', settings, ('propagation', 'create_host_path', 'selinux'))
            options += [settings['propagation']] if settings.get('propagation') else []
            options += [settings['selinux']] if settings.get('selinux') else []
        elif kind == 'volume':
            settings = _mapping(item.get('volume'), self.where + ' volumes volume')
            _check_keys(self.where + ' volumes volume', settings, ('nocopy',))
            if not item.get('source'):
                return self._anonymous(str(target), options)
        else:
            self._fail('volumes', 'type %r is not supported; use volume, bind or tmpfs' % kind)
        return self._mount(str(item.get('source') or ''), str(target), options, kind)

    def _mount(self, source, target, options, kind):
        if kind == 'bind' or (kind is None and (source.startswith(('/', '.', '~')))):
            return {'type': 'bind', 'source': self._path(source, 'volumes'), 'target': target, 'options': options}
        if source not in self.volumes:
            self._fail('volumes', 'volume %s is not declared in the top-level volumes (a bind source is a path: '
                                  'absolute, or starting with ./)' % source)
        return {'type': 'volume', 'source': self.volumes[source], 'target': target, 'options': options}

    def _anonymous(self, target, options):
        """A volume without a name: one of its own, named after the container and the path (found again on re-runs)."""
        digest = hashlib.sha256(target.encode('utf-8')).hexdigest()[:12]
        name = '%s-%s' % (self.entry_['name'], digest)
        if not any(volume['name'] == name for volume in self.compose.volumes):
            self.compose.volumes.append({'name': name})
        return {'type': 'volume', 'source': name, 'target': target, 'options': options}

    def _depends_on(self):
        value = self.body.get('depends_on')
        if value is None:
            return
        if isinstance(value, list):
            value = dict((str(name), None) for name in value)
        value = _mapping(value, self.where + ' depends_on')
        after = []
        for service, settings in value.items():
            where = '%s depends_on %s' % (self.where, service)
            settings = _mapping(settings, where)
            _check_keys(where, settings, ('condition', 'required', 'restart'))
            if service not in self.names:
                if settings.get('required') is False:
                    continue
                self._fail('depends_on', '%s is not a service of this compose file' % service)
            condition = settings.get('condition') or 'service_started'
            if condition == 'service_healthy':
                self.compose.healthy_needed[self.names[service]] = service
            elif condition != 'service_started':
                self._fail('depends_on', '%s: condition %s is not supported yet (only service_started and '
                                         'service_healthy)' % (service, condition))
            after.append(self.names[service])
        self.entry_['depends_on'] = after

    def _restart_and_health(self):
        restart = self.body.get('restart')
        if restart is not None and str(restart) not in ('no', 'False', 'false'):
            text = str(restart)
            if text not in ('always', 'unless-stopped') and not re.fullmatch(r'on-failure(:\d+)?', text):
                self._fail('restart', '%r is not no, always, unless-stopped or on-failure[:N]' % text)
            policy, _sep, retries = text.partition(':')
            self.entry_['restart_policy'] = policy
            if retries:
                self.entry_['restart_retries'] = int(retries)
        health = self.body.get('healthcheck')
        if health is not None:
            health = _mapping(health, self.where + ' healthcheck')
            _check_keys(self.where + ' healthcheck', health,
                        ('test', 'interval', 'timeout', 'retries', 'start_period', 'start_interval', 'disable'))
            disabled = health.get('disable') or health.get('test') in (['NONE'], 'NONE')
            if not disabled:
                self.entry_['healthcheck'] = dict((key, health[key]) for key in
                                                  ('test', 'interval', 'timeout', 'retries', 'start_period')
                                                  if health.get(key) is not None)

    def _security_opt(self):
        for item in self.body.get('security_opt') or []:
            key, _sep, value = str(item).replace('=', ':', 1).partition(':')
            if key == 'no-new-privileges':
                self.entry_['no_new_privileges'] = value in ('', 'true')
            elif key == 'seccomp':
                self.entry_['seccomp_profile'] = value
            elif key == 'apparmor':
                self.entry_['apparmor_profile'] = value
            elif key == 'label' and value == 'disable':
                self.entry_['label'] = 'disable'
            else:
                self._fail('security_opt', '%r is not supported (no-new-privileges, seccomp:, apparmor:, label:disable)'
                           % item)
