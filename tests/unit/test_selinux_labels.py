# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/selinux_labels.py: contexts, unique MCS levels (allocated, released, a crash in between), z/Z sources.

Labels on a real SELinux kernel are tested in the VM (tests/vm/test_vm_confinement.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import selinux_labels
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError

LXC_CONTEXTS = '''process = "system_u:system_r:container_t:s0"
content = "system_u:object_r:virt_var_lib_t:s0"
file = "system_u:object_r:container_file_t:s0"
ro_file = "system_u:object_r:container_ro_file_t:s0"
'''


def test_the_policy_contexts_are_read_from_lxc_contexts(tmp_path):
    path = tmp_path / 'lxc_contexts'
    path.write_text(LXC_CONTEXTS.replace('container_t', 'my_container_t'))

    def every(context):
        return True
    assert selinux_labels.container_contexts(str(path), every) == ('system_u:system_r:my_container_t:s0',
                                                                   'system_u:object_r:container_file_t:s0')
    assert selinux_labels.container_contexts(str(tmp_path / 'none'), every) == (selinux_labels.DEFAULT_PROCESS,
                                                                                selinux_labels.DEFAULT_FILE)


def test_a_policy_without_container_types_falls_back_to_svirt_or_fails_clearly(tmp_path):
    path = tmp_path / 'lxc_contexts'
    path.write_text(LXC_CONTEXTS)

    def debian(context):
        return 'container' not in context and 'lxc' not in context and 'sandbox' not in context
    assert selinux_labels.container_contexts(str(path), debian) == ('system_u:system_r:svirt_t:s0',
                                                                    'system_u:object_r:svirt_image_t:s0')
    with pytest.raises(ValidationError, match='knows neither the container types'):
        selinux_labels.container_contexts(str(path), lambda context: False)
    with pytest.raises(ValidationError, match='process label u:r:bad_t:s0 is not a context'):
        selinux_labels.check_labels({'process': 'u:r:bad_t:s0', 'mount': 'u:r:f_t:s0'}, lambda context: 'bad' not in context)


def test_labels_take_the_parts_given_and_the_level():
    contexts = (selinux_labels.DEFAULT_PROCESS, selinux_labels.DEFAULT_FILE)
    assert selinux_labels.labels_for({}, 's0:c1,c2', contexts) == {
        'process': 'system_u:system_r:container_t:s0:c1,c2', 'mount': 'system_u:object_r:container_file_t:s0:c1,c2'}
    assert selinux_labels.labels_for({'type': 'spc_t', 'user': 'u', 'file_type': 'my_file_t'}, 's0', contexts) == {
        'process': 'u:system_r:spc_t:s0', 'mount': 'system_u:object_r:my_file_t:s0'}
    assert selinux_labels.split_context('a:b:c:s0:c1,c2') == {'user': 'a', 'role': 'b', 'type': 'c', 'level': 's0:c1,c2'}
    assert selinux_labels.shared_context('system_u:object_r:container_file_t:s0:c1,c2') == \
        'system_u:object_r:container_file_t:s0'
    with pytest.raises(ValidationError):
        selinux_labels.split_context('container_t')


def test_levels_are_unique_kept_per_container_and_released(tmp_path):
    allocator = selinux_labels.LevelAllocator(str(tmp_path))
    levels = [allocator.allocate('id%d' % number, ['id%d' % other for other in range(number)]) for number in range(200)]
    assert len(set(levels)) == 200
    for level in levels:
        first, second = (int(part[1:]) for part in level[3:].split(','))
        assert level.startswith('s0:c') and 0 <= first < second < selinux_labels.CATEGORIES
    assert allocator.allocate('id7', ['id%d' % n for n in range(200)]) == levels[7]   # asked again: the same one
    assert allocator.release('id7') is True and allocator.release('id7') is False
    assert levels[7] not in allocator.allocated() and len(allocator.allocated()) == 199
    assert oct(os.stat(allocator.path).st_mode & 0o777) == '0o600'


def test_levels_pinned_by_other_containers_are_never_drawn(tmp_path):
    allocator = selinux_labels.LevelAllocator(str(tmp_path))
    draws = iter([3, 5, 1, 2])
    assert allocator.allocate('a', [], randbelow=lambda limit: next(draws), taken=['s0:c3,c5']) == 's0:c1,c2'


def test_a_collision_draws_again(tmp_path):
    allocator = selinux_labels.LevelAllocator(str(tmp_path))
    draws = iter([3, 5, 5, 3, 7, 7, 1, 2])
    assert allocator.allocate('a', [], randbelow=lambda limit: next(draws)) == 's0:c3,c5'
    # 5,3 is the same level as 3,5; 7,7 is no pair: both drawn again.
    assert allocator.allocate('b', ['a'], randbelow=lambda limit: next(draws)) == 's0:c1,c2'


def test_an_allocation_whose_task_died_is_taken_back_after_the_grace(tmp_path):
    clock = [1000.0]
    allocator = selinux_labels.LevelAllocator(str(tmp_path), clock=lambda: clock[0])
    orphan = allocator.allocate('killed-before-its-record', [])
    kept = allocator.allocate('alive', [])
    clock[0] += 60
    allocator.allocate('third', ['alive'])          # within the grace: a task may be creating it right now
    assert orphan in allocator.allocated()
    clock[0] += selinux_labels.ALLOCATION_GRACE
    allocator.allocate('fourth', ['alive', 'third'])
    assert orphan not in allocator.allocated() and kept in allocator.allocated()


def _allocate_many(root, prefix, queue):
    allocator = selinux_labels.LevelAllocator(root)
    queue.put([allocator.allocate('%s-%d' % (prefix, number), []) for number in range(40)])


def test_concurrent_allocations_never_share_a_level(tmp_path):
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_allocate_many, args=(str(tmp_path), name, queue)) for name in 'abcd']
    for worker in workers:
        worker.start()
    found = [level for _worker in workers for level in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
    assert len(found) == 160 and len(set(found)) == 160
    with open(os.path.join(str(tmp_path), 'selinux', 'levels.json')) as handle:
        assert len(json.load(handle)) == 160


def test_a_damaged_allocation_file_is_an_error_naming_it(tmp_path):
    allocator = selinux_labels.LevelAllocator(str(tmp_path))
    os.makedirs(os.path.dirname(allocator.path))
    with open(allocator.path, 'w') as handle:
        handle.write('{not json')
    with pytest.raises(Exception, match='levels.json'):
        allocator.allocate('x', [])


@pytest.mark.parametrize('path', ['/', '/etc', '/usr/', '/home', '/home/alice', '/root', '/var/lib', '/tmp', '/etc/ssh',
                                  '/usr/lib/x', '/home/alice/.ssh', '/home/bob/.config/app', '/var/lib/runcible/x'])
def test_system_and_home_directories_are_never_relabelled(path):
    with pytest.raises(ValidationError, match='cannot be relabelled'):
        selinux_labels.check_relabel_source(path, forbidden=['/var/lib/runcible', '/run/runcible'])


@pytest.mark.parametrize('path', ['/srv/app/data', '/home/alice/project', '/var/lib/app', '/opt/x/y'])
def test_own_directories_may_be_relabelled(path):
    selinux_labels.check_relabel_source(path)


def test_no_selinux_here_needs_no_bindings(tmp_path):
    assert selinux_labels.enabled(str(tmp_path)) is False
    (tmp_path / 'enforce').write_text('0')
    assert selinux_labels.enabled(str(tmp_path)) is True


class FakeBindings(object):
    """Stands in for libselinux's lgetfilecon/lsetfilecon: records what would be labelled (our walk is tested)."""

    def __init__(self, labels=None):
        self.labels = dict(labels or {})
        self.set = []

    def lgetfilecon(self, path):
        if path not in self.labels:
            raise OSError(61, 'No data available')
        return 0, self.labels[path]

    def lsetfilecon(self, path, context):
        self.set.append(path)
        self.labels[path] = context


@pytest.fixture
def fake_bindings(monkeypatch):
    fake = FakeBindings()
    monkeypatch.setattr(selinux_labels, 'bindings', lambda: fake)
    return fake


def test_relabel_walks_the_source_without_following_links(tmp_path, fake_bindings):
    source = tmp_path / 'data'
    (source / 'sub').mkdir(parents=True)
    (source / 'sub' / 'file').write_text('x')
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'secret').write_text('s')
    os.symlink(str(outside), str(source / 'link'))
    selinux_labels.relabel(str(source), 'u:r:t:s0:c1,c2')
    labelled = set(fake_bindings.set)
    assert labelled == {str(source), str(source / 'sub'), str(source / 'sub' / 'file'), str(source / 'link')}
    assert str(outside / 'secret') not in labelled
    fake_bindings.set.clear()
    selinux_labels.relabel(str(source), 'u:r:t:s0:c1,c2')   # its top has the label: nothing is walked
    assert fake_bindings.set == []


def test_a_source_that_became_a_link_is_refused(tmp_path, fake_bindings):
    target = tmp_path / 'etc-like'
    target.mkdir()
    link = tmp_path / 'data'
    os.symlink(str(target), str(link))
    with pytest.raises(Exception, match='symbolic link'):
        selinux_labels.relabel(str(link), 'u:r:t:s0')
    real = tmp_path / 'real'
    (real / 'inner').mkdir(parents=True)
    os.symlink(str(real), str(tmp_path / 'via'))
    with pytest.raises(Exception, match='symbolic link'):
        selinux_labels.relabel(str(tmp_path / 'via' / 'inner'), 'u:r:t:s0')
    with pytest.raises(ValidationError, match='store'):
        selinux_labels.relabel(str(real), 'u:r:t:s0', forbidden=[str(tmp_path)])
    assert fake_bindings.set == []
