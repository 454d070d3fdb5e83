# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one ``runcible.oci.image`` or ``runcible.oci.image_info`` task does.

    present: the reference is local (and, with force, still what the source points to)? nothing.
             else resolve it at its source (read-only: a layout's index, ``skopeo inspect``) and,
             unless in check mode, pull / import it and tag it; an image left without a tag and
             used by no container is removed, with the layers only it had.
    absent:  untag; when that was the image's last tag (or it is named by digest) remove it,
             unless a container uses it and not force; then collect unused layers and blobs.

``run(params, check_mode)`` and ``info(params)`` are the Python API the modules wrap.
"""

from __future__ import annotations

from ._runtime.errors import ValidationError
from ._runtime.image_refs import hex_of, parse_reference
from ._runtime.image_sources import config_defaults, resolve
from ._runtime.image_store import ImageStore
from ._runtime.parsers import parse_size
from ._task import common_argument_spec, with_defaults

STATES = ('present', 'absent')


def argument_spec():
    """``run_root`` and ``runtime`` are accepted and not used: images live under ``root`` (module_defaults)."""
    spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=list(STATES)),
        force=dict(type='bool', default=False),
        tls_verify=dict(type='bool', default=True),
        auth_file=dict(type='path'),
        layer_size_limit=dict(type='raw'),
    )
    spec.update(common_argument_spec())
    return spec


def info_argument_spec():
    """``run_root`` and ``runtime`` are accepted and not used, as by argument_spec()."""
    spec = dict(
        name=dict(type='list', elements='str'),
    )
    spec.update(common_argument_spec())
    return spec


def _limits(value):
    from ._runtime.layers import Limits
    if value is None:
        return Limits()
    size = parse_size(value, 'layer_size_limit')
    if size <= 0:
        raise ValidationError('layer_size_limit: must be more than 0 bytes')
    return Limits(max_bytes=size)


class ImageTask(object):
    def __init__(self, params, check_mode=False):
        """``params``: complete, as ``_task.with_defaults(argument_spec(), ...)`` gives them."""
        self.params = params
        self.check_mode = check_mode
        self.state = params['state']
        if self.state not in STATES:
            raise ValidationError('state: %r is not one of %s' % (self.state, ', '.join(STATES)))
        self.reference = parse_reference(params['name'])
        self.store = ImageStore(params['root'], limits=_limits(params['layer_size_limit']),
                                tls_verify=params['tls_verify'] is not False, auth_file=params['auth_file'])
        self.actions = []
        self.before = {}
        self.after = {}

    def run(self):
        if self.state == 'absent':
            image = self._absent()
        else:
            image = self._present()
        return {'changed': bool(self.actions), 'actions': self.actions, 'image': image,
                'diff': {'before': self.before, 'after': self.after}}

    def _present(self):
        store = self.store
        index = store.load_index()
        local = store.find(self.reference, index)
        if self.reference.transport == 'local':
            if not local:
                raise ValidationError('image %s is not in the local image store (%s): name it by its source '
                                      '(oci:, oci-archive: or docker://) to pull it' % (self.reference.digest, store.dir))
            return store.view(local, index)
        missing = store.missing_layers(local, index) if local else []
        if local and not missing and not self.params.get('force'):
            return store.view(local, index)
        resolved = resolve(self.reference, store, tls_verify=store.tls_verify, auth_file=store.auth_file)
        missing = store.missing_layers(resolved.digest, index)
        if local == resolved.digest and not missing:
            return store.view(local, index)
        if resolved.digest not in index['images'] or missing:
            self.actions.append('pulled' if self.reference.transport == 'docker' else 'imported')
            if missing and resolved.digest in index['images']:
                self.actions.append('restored %d deleted layer%s' % (len(missing), '' if len(missing) == 1 else 's'))
        else:
            self.actions.append('tagged')
        self.before = {'digest': local, 'references': [self.reference.canonical] if local else []}
        self.after = {'digest': resolved.digest, 'references': [self.reference.canonical]}
        if self.check_mode:
            return self._planned(resolved, index)
        _record, previous, _pulled = store.pull(resolved)
        if previous:
            collected = store.prune_dangling([previous])
            if previous not in store.load_index()['images']:
                self.actions.append('removed %s (no tag, no container)' % previous)
            if collected.get('layers'):
                self.actions.append(_collected(collected))
        return store.view(resolved.digest)

    def _planned(self, resolved, index):
        """The ``image`` dict of an image not pulled yet (check mode)."""
        layers = resolved.manifest['layers']
        references = set(self.store.references_of(index, resolved.digest))
        references.add(self.reference.canonical)
        return {
            'digest': resolved.digest,
            'references': sorted(references),
            'media_type': resolved.manifest.get('mediaType'),
            'config_digest': resolved.manifest['config']['digest'],
            'created': resolved.config.get('created'),
            'architecture': resolved.config.get('architecture'),
            'os': resolved.config.get('os'),
            'size': None,
            'layers': [{'diff_id': diff_id, 'digest': layer['digest'], 'size': layer['size'],
                        'media_type': layer.get('mediaType'), 'unpacked_size': None,
                        'path': self.store.layer_diff(hex_of(diff_id))}
                       for layer, diff_id in zip(layers, resolved.diff_ids)],
            'config': config_defaults(resolved.config),
            'containers': [],
            'pulled_at': None,
        }

    def _absent(self):
        store = self.store
        index = store.load_index()
        plan = store.plan_removal(self.reference, force=bool(self.params.get('force')), index=index)
        if plan is None:
            return {}
        self.actions.append('removed' if plan['remove_image'] else 'untagged')
        if plan['remove_image'] and plan['containers']:
            self.actions.append('kept the layers of container%s %s until %s removed'
                                % ('s' if len(plan['containers']) > 1 else '', ', '.join(plan['containers']),
                                   'they are' if len(plan['containers']) > 1 else 'it is'))
        self.before = {'digest': plan['digest'], 'references': store.references_of(index, plan['digest'])}
        remaining = [name for name in self.before['references'] if name not in plan['untag']]
        self.after = {'digest': None if plan['remove_image'] else plan['digest'], 'references': remaining}
        if self.check_mode:
            return {} if plan['remove_image'] else store.view(plan['digest'], index)
        _plan, collected = store.remove(self.reference, force=bool(self.params.get('force')))
        if collected.get('layers'):
            self.actions.append(_collected(collected))
        if plan['remove_image']:
            return {}
        return store.view(plan['digest'])


def _collected(collected):
    count = len(collected['layers'])
    return 'collected %d unused layer%s' % (count, '' if count == 1 else 's')


class ImageInfoTask(object):
    """The ``runcible.oci.image_info`` task: every local image, or those the given references name."""

    def __init__(self, params, check_mode=False):
        """``params``: complete, as ``_task.with_defaults(info_argument_spec(), ...)`` gives them. Reads only, in
        check mode too (``check_mode`` is accepted as every task accepts it)."""
        self.params = params
        self.check_mode = check_mode
        self.store = ImageStore(params['root'])

    def run(self):
        store = self.store
        index = store.load_index()
        users = store.container_users()
        names = self.params['name']
        if names:
            digests = []
            for name in names:
                digest = store.find(parse_reference(name), index)
                if digest and digest not in digests:
                    digests.append(digest)
        else:
            digests = sorted(index['images'], key=lambda d: (store.references_of(index, d) or ['~'], d))
        return {'changed': False, 'images': [store.view(digest, index, users) for digest in digests]}


def run(params, check_mode=False):
    """Run one image task; -> the module result (raises RuncibleError subclasses on failure)."""
    return ImageTask(with_defaults(argument_spec(), params), check_mode=check_mode).run()


def info(params):
    """-> {'changed': False, 'images': [...]}: every local image, or those the given references name (unknown ones
    skipped); the image_info module's result."""
    return ImageInfoTask(with_defaults(info_argument_spec(), params)).run()
