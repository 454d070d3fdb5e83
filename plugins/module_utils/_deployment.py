# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one ``runcible.oci.deployment`` task does: a named set of containers, with their networks and volumes.

    params   -> entries: ``containers`` (and a Compose ``definition``, mapped by _compose.py), each on top of
                ``defaults``, checked against the container module's own argument_spec (types, unknown
                options), labelled with the set's label; depends_on checked (unknown names, cycles)
    networks, volumes -> present, through the network and volume task layers (before any container)
    prune    -> the store's containers with the set's label that are no longer listed: removed
    down     -> entries to stop or remove, dependants first, all at once (they mostly wait out grace periods)
    up       -> the other entries, dependencies first, up to ``parallel`` at a time
                each entry is one ``_container.Task`` run: the container module's own code path
    result   -> changed, containers {name: the container module's result}, removed, networks, volumes,
                diff (one entry per changed object); failed entries listed, their dependants skipped

``run(params, check_mode)`` is the Python API the module wraps. _deployment_graph.py says why threads.
"""

from __future__ import annotations

import difflib

from . import _container
from . import _deployment_graph as graph
from ._runtime.errors import RuncibleError, ValidationError
from ._runtime.store import Store
from ._task import common_argument_spec, with_defaults

STATES = ('started', 'created', 'stopped', 'restarted', 'absent')
DEFAULT_LABEL = 'io.runcible.deploy'
DEFAULT_PARALLEL = 8
STOP_WORKERS = 128  # stops and removals at once: they mostly wait for a container to end
DOWN = ('stopped', 'absent')
SET_OPTIONS = ('root', 'run_root')  # the deployment's, never an entry's
MUTUALLY_EXCLUSIVE = [('definition', 'compose_file')]


def argument_spec():
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='started', choices=list(STATES)),
        containers=dict(type='list', elements='dict', default=[]),
        defaults=dict(type='dict', default={}),
        networks=dict(type='list', elements='dict', default=[]),
        volumes=dict(type='list', elements='dict', default=[]),
        prune=dict(type='bool', default=False),
        label=dict(type='str', default=DEFAULT_LABEL),
        parallel=dict(type='int', default=DEFAULT_PARALLEL),
        keep_volumes=dict(type='bool', default=True),
        definition=dict(type='dict'),
        compose_file=dict(type='path'),
        project_dir=dict(type='path'),
        secrets=dict(type='dict', no_log=True),
    )
    spec.update(common_argument_spec())
    return spec


def entry_argument_spec(container_spec=None):
    """An entry of ``containers``: the container module's options (without the store's), plus depends_on."""
    spec = dict(container_spec or _container.argument_spec())
    for name in SET_OPTIONS:
        spec.pop(name)
    spec['depends_on'] = dict(type='list', elements='str', default=[])
    return spec


class Entry(object):
    __slots__ = ('name', 'params', 'depends_on', 'given')

    def __init__(self, name, params, depends_on, given):
        self.name = name
        self.params = params  # complete container task params
        self.depends_on = depends_on
        self.given = given  # the container options the entry (or defaults) gave: what its diff shows


class Task(object):
    def __init__(self, params, check_mode=False):
        """``params``: complete, as ``_task.with_defaults(argument_spec(), ...)`` gives them."""
        self.params = params
        self.check_mode = check_mode
        self.name = params['name']
        if not self.name or not isinstance(self.name, str):
            raise ValidationError('name: give the name of the deployment')
        self.state = params['state']
        if self.state not in STATES:
            raise ValidationError('state: %r is not one of %s' % (self.state, ', '.join(STATES)))
        self.label = params['label']
        self.parallel = params['parallel']
        if not isinstance(self.parallel, int) or self.parallel < 1:
            raise ValidationError('parallel: %r must be 1 or more' % (self.parallel,))
        if params.get('compose_file'):
            raise ValidationError('compose_file is read on the controller by the action plugin of '
                                  'runcible.oci.deployment; through the Python API give definition (the parsed document)')
        self.store = Store(params['root'], params['run_root'])
        self.container_spec = _container.argument_spec()
        self.warnings = []
        self.networks = []  # network task params
        self.volumes = []  # volume task params
        self.entries = self._entries()
        self.results = {}
        self.network_results = {}
        self.volume_results = {}
        self.planned_networks = set()  # created only in check mode: their containers cannot be checked yet
        self.removed = []

    # -- input -----------------------------------------------------------------------------------
    def _entries(self):
        raw = list(self.params['containers'] or [])
        self.networks = [self._checked('networks[%d]' % index, item, _network_spec())
                         for index, item in enumerate(self.params['networks'] or [])]
        self.volumes = [self._checked('volumes[%d]' % index, item, _volume_spec())
                        for index, item in enumerate(self.params['volumes'] or [])]
        if self.params.get('definition') is not None:
            from ._compose import from_compose  # pylint: disable=import-outside-toplevel
            compose = from_compose(self.params['definition'], self.name, self.params.get('project_dir'))
            raw.extend(compose.containers)
            known = set(network['name'] for network in self.networks)
            self.networks.extend(self._checked('compose network %s' % item['name'], item, _network_spec())
                                 for item in compose.networks if item['name'] not in known)
            known = set(volume['name'] for volume in self.volumes)
            self.volumes.extend(self._checked('compose volume %s' % item['name'], item, _volume_spec())
                                for item in compose.volumes if item['name'] not in known)
            self.warnings.extend(compose.warnings)
        defaults = dict(self.params['defaults'] or {})
        for key in ('name', 'depends_on') + SET_OPTIONS:
            if key in defaults:
                raise ValidationError('defaults: %s is not a default: %s' % (
                    key, 'the deployment has root and run_root' if key in SET_OPTIONS else 'give it in each entry'))
        spec = entry_argument_spec(self.container_spec)
        from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # pylint: disable=import-outside-toplevel
        validator = ArgumentSpecValidator(spec)
        secrets = self.params.get('secrets') or {}
        entries = {}
        for index, item in enumerate(raw):
            entry = self._entry(index, item, defaults, secrets, validator, spec)
            if entry.name in entries:
                raise ValidationError('containers: %s is listed more than once' % entry.name)
            entries[entry.name] = entry
        unknown = sorted(set(secrets) - set(entries) - set(['*']))
        if unknown:
            raise ValidationError('secrets: %s %s not a container of the deployment' % (
                ', '.join(unknown), 'is' if len(unknown) == 1 else 'are'))
        graph.check_graph(list(entries), dict((name, entry.depends_on) for name, entry in entries.items()))
        return entries

    def _checked(self, where, item, spec):
        """``item`` checked against a task's argument_spec ``spec`` (state and the store are the deployment's)."""
        if not isinstance(item, dict):
            raise ValidationError('%s: must be a dictionary of options, got %r' % (where, item))
        item = dict(item)
        for key in ('state',) + SET_OPTIONS:
            if key in item:
                raise ValidationError('%s: %s is the deployment\'s, not given here' % (where, key))
        return _validate(where, item, spec)

    def _entry(self, index, item, defaults, secrets, validator, spec):
        where = 'containers[%d]' % index
        if not isinstance(item, dict):
            raise ValidationError('%s: must be a dictionary of runcible.oci.container options, got %r' % (where, item))
        if item.get('name'):
            where += ' (%s)' % item['name']
        for key in SET_OPTIONS:
            if key in item:
                raise ValidationError('%s: %s is the deployment\'s (give it to the deployment, once)' % (where, key))
        merged = dict(defaults)
        merged.update(item)
        labels = dict(defaults.get('labels') or {})
        labels.update(item.get('labels') or {})
        if labels.get(self.label, self.name) != self.name:
            raise ValidationError('%s: labels: %s is the label of the deployment (%s); another value would take the '
                                  'container out of it' % (where, self.label, self.name))
        labels[self.label] = self.name
        merged['labels'] = labels
        own_secrets = dict(secrets.get('*') or {})
        own_secrets.update(secrets.get(item.get('name')) or {})
        if own_secrets:
            merged['secrets'] = dict(merged.get('secrets') or {}, **own_secrets)
        given = [key for key in merged if key in spec and key not in ('name', 'depends_on', 'state')]
        explicit_state = merged.get('state')
        params = _validate(where, merged, spec, validator)
        depends_on = params.pop('depends_on') or []
        params = with_defaults(self.container_spec, dict(params, root=self.params['root'], run_root=self.params['run_root']))
        if params.get('runtime') is None:
            params['runtime'] = self.params.get('runtime')
        params['state'] = self._wanted_state(explicit_state, params['state'])
        return Entry(params['name'], params, depends_on, given)

    def _wanted_state(self, explicit, state):
        if self.state in ('stopped', 'absent'):
            return self.state
        if self.state == 'restarted':
            return 'restarted' if state == 'started' else state
        if self.state == 'created' and explicit is None:
            return 'created'
        return state

    # -- the run ---------------------------------------------------------------------------------
    def run(self):
        if self.state != 'absent':
            self._networks_and_volumes('present')
        members = self._members()
        unlisted = [name for name in members if name not in self.entries]
        prune = unlisted if (self.params['prune'] or self.state == 'absent') else []
        if unlisted and not prune:
            self.warnings.append('containers %s carry the label %s=%s but are not listed: prune: true removes them'
                                 % (', '.join(unlisted), self.label, self.name))
        down = [name for name, entry in self.entries.items() if entry.params['state'] in DOWN]
        up = [name for name in self.entries if name not in down]
        depends = dict((name, entry.depends_on) for name, entry in self.entries.items())
        # Down: prune and the entries to stop or remove, each after the ones that depend on it.
        names = prune + down
        before = graph.reverse(down, depends)
        outcomes = graph.run_ordered(names, before, self._work, min(STOP_WORKERS, max(self.parallel, len(names))))
        # Up: each after the ones it depends on.
        outcomes.update(graph.run_ordered(up, depends, self._work, self.parallel))
        self.removed = [name for name in prune if outcomes[name][0] == graph.OK]
        if self.state == 'absent':
            self._networks_and_volumes('absent')
        return self.result(outcomes, prune)

    def _members(self):
        """Names of the store's containers that carry the set's label with its name (the set, by the store)."""
        members = []
        for name in self.store.names():
            try:
                record = self.store.load(name)
            except RuncibleError:
                continue  # a broken record is the container task's to report, when it is listed
            if record is not None and (record['config'].get('labels') or {}).get(self.label) == self.name:
                members.append(name)
        return members

    def _work(self, name):
        entry = self.entries.get(name)
        if entry is None:  # pruned
            params = with_defaults(self.container_spec, dict(
                name=name, state='absent', keep_volumes=self.params['keep_volumes'], root=self.params['root'],
                run_root=self.params['run_root']))
            return _container.Task(params, check_mode=self.check_mode).run()
        params = entry.params
        if params['state'] == 'absent' and not self.params['keep_volumes']:
            params = dict(params, keep_volumes=False)
        planned = [name for name in _network_names(params) if name in self.planned_networks]
        if self.check_mode and planned and params['state'] not in DOWN:
            return _planned(entry, planned[0])
        return _container.Task(params, check_mode=self.check_mode).run()

    def _networks_and_volumes(self, state):
        if not self.networks and not self.volumes:
            return  # and the network and volume task layers are never imported
        from . import _network, _volume  # pylint: disable=import-outside-toplevel
        store = {'root': self.params['root'], 'run_root': self.params['run_root']}
        steps = [('volume', _volume, dict(params, **store), self.volume_results) for params in self.volumes] + \
            [('network', _network, params, self.network_results) for params in self.networks]
        if state == 'present':
            steps.reverse()  # networks first: a container's network must exist when it is checked
        for kind, task_module, params, results in steps:
            if kind == 'volume' and state == 'absent' and self.params['keep_volumes']:
                continue
            try:
                result = task_module.run(dict(params, state=state), check_mode=self.check_mode)
            except ValidationError as exc:
                if state != 'absent':
                    raise ValidationError('%s %s: %s' % (kind, params['name'], exc.msg))
                result = self._still_used(kind, params['name'], exc.msg)
            except RuncibleError as exc:
                raise RuncibleError('%s %s: %s' % (kind, params['name'], exc.msg))
            for warning in result.pop('warnings', None) or []:
                self.warnings.append('%s %s: %s' % (kind, params['name'], warning))
            results[params['name']] = result
            if kind == 'network' and self.check_mode and 'created' in result['actions']:
                self.planned_networks.add(params['name'])

    def _still_used(self, kind, name, message):
        """A network or volume of the set that others still use is kept (a warning). In check mode the set's own
        containers are still there: when they are its only users, it would be removed."""
        if self.check_mode and kind == 'network':
            from ._runtime import network_registry as netreg  # pylint: disable=import-outside-toplevel
            users = netreg.containers_on(netreg.NetworkRegistry().load(), name)
            gone = set(self.entries) | set(self._members())
            if all(user['name'] in gone and user['root'] == self.store.root for user in users):
                return {'changed': True, 'actions': ['removed'], 'diff': {'before': {'state': 'present'},
                                                                          'after': {'state': 'absent'}}}
        self.warnings.append('%s %s was kept: %s' % (kind, name, message))
        return {'changed': False, 'actions': [], 'diff': {'before': {}, 'after': {}}}

    # -- result ----------------------------------------------------------------------------------
    def result(self, outcomes, prune):
        containers = {}
        failed, skipped, diffs = [], [], []
        said = {}  # a warning -> the containers that gave it (one line for fifty containers saying the same)
        for name in list(self.entries) + prune:
            status, value = outcomes[name]
            if status == graph.OK:
                result = dict(value)
                for warning in result.pop('warnings', None) or []:
                    said.setdefault(warning, []).append(name)
            elif status == graph.FAILED:
                failed.append('%s: %s' % (name, graph.failure_text(value)))
                result = {'failed': True, 'msg': graph.failure_text(value), 'changed': False, 'actions': []}
                if not isinstance(value, RuncibleError):
                    import traceback  # pylint: disable=import-outside-toplevel
                    result['exception'] = ''.join(traceback.format_exception(type(value), value, value.__traceback__))
            else:
                skipped.append('%s (%s)' % (name, value))
                result = {'skipped': True, 'msg': value, 'changed': False, 'actions': []}
            containers[name] = result
            if result.get('changed'):
                diffs.append(self._diff('container', name, result))
        for kind, results in (('network', self.network_results), ('volume', self.volume_results)):
            for name, result in results.items():
                if result.get('changed'):
                    diffs.append(self._diff(kind, name, result))
        for warning, names in said.items():
            self.warnings.append('container%s %s: %s' % ('s' if len(names) > 1 else '', ', '.join(names), warning))
        changed = any(result.get('changed') for result in containers.values()) or any(
            result.get('changed') for result in list(self.network_results.values()) + list(self.volume_results.values()))
        result = {'changed': changed, 'containers': containers, 'removed': self.removed,
                  'networks': self.network_results, 'volumes': self.volume_results, 'diff': diffs}
        if self.warnings:
            result['warnings'] = self.warnings
        if failed:
            result['failed'] = True
            result['failed_containers'] = [text.split(':', 1)[0] for text in failed]
            result['skipped_containers'] = [text.split(' ', 1)[0] for text in skipped]
            result['msg'] = 'deployment %s: %d of %d containers failed: %s%s' % (
                self.name, len(failed), len(containers), '; '.join(failed),
                '. Skipped: %s' % '; '.join(skipped) if skipped else '')
        return result

    def _diff(self, kind, name, result):
        """One diff entry per changed object; a new container shows the options its entry gave, not every default."""
        diff = result.get('diff') or {}
        before, after = diff.get('before') or {}, diff.get('after') or {}
        entry = self.entries.get(name) if kind == 'container' else None
        if entry is not None and before.get('status') == 'absent':
            after = dict((key, after[key]) for key in entry.given + ['status'] if key in after)
        return {'before_header': '%s %s' % (kind, name), 'after_header': '%s %s' % (kind, name),
                'before': before, 'after': after}


def _validate(where, params, spec, validator=None):
    """``params`` through Ansible's own argument_spec checks (types, choices, unknown options) -> validated params."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # pylint: disable=import-outside-toplevel
    validator = validator or ArgumentSpecValidator(spec)
    result = validator.validate(params)
    problems = []
    for name in sorted(result.unsupported_parameters):
        close = difflib.get_close_matches(str(name), list(spec), n=1)
        problems.append('unknown option %s%s' % (name, ' (did you mean %s?)' % close[0] if close else ''))
    for error in result.errors:
        if type(error).__name__ != 'UnsupportedError':
            problems.append(str(error))
    if problems:
        raise ValidationError('%s: %s' % (where, '; '.join(problems)))
    return result.validated_parameters


def _network_spec():
    from . import _network  # pylint: disable=import-outside-toplevel
    spec = _network.argument_spec()
    spec.pop('state')
    return spec


def _volume_spec():
    from . import _volume  # pylint: disable=import-outside-toplevel
    spec = _volume.argument_spec()
    for name in ('state',) + SET_OPTIONS + ('runtime',):
        spec.pop(name, None)
    return spec


def _network_names(params):
    """The networks a container's params name: ``network`` and every ``networks`` entry (a name or {name: ...})."""
    names = [params.get('network')]
    for item in params.get('networks') or []:
        names.append(item.get('name') if isinstance(item, dict) else item)
    return [name for name in names if name]


def _planned(entry, network):
    """Check mode, a container on a network the task would create first: created (its options checked when the
    network exists)."""
    state = entry.params['state']
    status = {'created': 'created', 'paused': 'paused'}.get(state, 'running')
    actions = ['created'] + (['started'] if status != 'created' else []) + (['paused'] if status == 'paused' else [])
    after = dict((key, entry.params[key]) for key in entry.given if entry.params.get(key) is not None)
    after['status'] = status
    return {'changed': True, 'actions': actions, 'container': {},
            'diff': {'before': {'status': 'absent'}, 'after': after},
            'warnings': ['network %s does not exist yet: the container\'s options are checked when it does' % network]}


def run(params, check_mode=False):
    """Run one deployment task; -> the module result (raises RuncibleError subclasses on failure)."""
    return Task(with_defaults(argument_spec(), params), check_mode=check_mode).run()
