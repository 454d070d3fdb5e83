# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``systemd: true``: systemd as PID 1 (its command, stop signal, tmpfs and a cgroup tree it may write),
and the hosts where that cannot be given safely."""

from __future__ import annotations

import signal

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._container_options import api as options
from ansible_collections.runcible.oci.plugins.module_utils._container_options import process
from ansible_collections.runcible.oci.plugins.module_utils._runtime import host
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import ValidationError

MOUNTINFO_V2 = ('25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 '
                'rw,%s\n'
                '30 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n')


@pytest.fixture
def cgroup_v2(monkeypatch, tmp_path):
    """A cgroup v2 host whose cgroup2 is mounted with nsdelegate (as systemd mounts it)."""
    mountinfo = tmp_path / 'mountinfo'
    mountinfo.write_text(MOUNTINFO_V2 % 'nsdelegate,memory_recursiveprot')
    monkeypatch.setattr(host, 'cgroup_mode', lambda *args: 'unified')
    real = process.cgroup2_nsdelegate
    monkeypatch.setattr(process, 'cgroup2_nsdelegate', lambda: real(str(mountinfo)))
    return mountinfo


def build(params, name='test-sd'):
    context = options.Context(name, '/var/lib/runcible')
    given = options.normalise(params, context)
    return given, options.build_spec(options.complete(given, context), 'c' * 64)


def mount_at(spec, destination):
    found = [mount for mount in spec['mounts'] if mount['destination'] == destination]
    assert len(found) == 1, (destination, found)
    return found[0]


def test_systemd_runs_init_and_stops_with_sigrtmin_3_unless_told_otherwise(cgroup_v2):
    given, spec = build({'rootfs': '/', 'systemd': True, 'cgroupns': 'private'})
    assert given['command'] == ['/sbin/init'] and given['stop_signal'] == signal.SIGRTMIN + 3
    assert spec['process']['args'] == ['/sbin/init']
    given, spec = build({'rootfs': '/', 'systemd': True, 'command': ['/lib/systemd/systemd', '--log-level=debug'],
                         'stop_signal': 'SIGTERM'})
    assert given['command'] == ['/lib/systemd/systemd', '--log-level=debug'] and given['stop_signal'] == 15
    # Without systemd nothing is finished: the image's command and SIGTERM stay the defaults.
    given, spec = build({'rootfs': '/'})
    assert 'command' not in given and 'stop_signal' not in given
    assert not [mount for mount in spec['mounts'] if mount['destination'] == '/run']


def test_on_cgroup_v2_its_own_cgroup_is_writable_and_its_tmpfs_are_there(cgroup_v2):
    _given, spec = build({'rootfs': '/', 'systemd': True, 'tmpfs': {'/tmp': 'size=10m'}})
    assert 'rw' in mount_at(spec, '/sys/fs/cgroup')['options'] and 'ro' not in mount_at(spec, '/sys/fs/cgroup')['options']
    assert {'type': 'cgroup'} in spec['linux']['namespaces']
    for target in ('/run', '/run/lock', '/var/log/journal'):
        assert mount_at(spec, target)['type'] == 'tmpfs'
    # The task's own /tmp wins over systemd's.
    assert 'size=10240k' in mount_at(spec, '/tmp')['options']
    # /run comes before /run/lock (a tmpfs below another goes after it).
    targets = [mount['destination'] for mount in spec['mounts']]
    assert targets.index('/run') < targets.index('/run/lock')
    # No host cgroup hierarchy is bound in.
    assert not [mount for mount in spec['mounts'] if mount['destination'].startswith('/sys/fs/cgroup/')]
    # A container without systemd keeps its cgroup tree read-only.
    _given, spec = build({'rootfs': '/'})
    assert 'ro' in mount_at(spec, '/sys/fs/cgroup')['options']


def test_on_cgroup_v2_without_nsdelegate_or_a_cgroup_namespace_it_is_refused(cgroup_v2):
    with pytest.raises(ValidationError, match='needs cgroupns: private'):
        build({'rootfs': '/', 'systemd': True, 'cgroupns': 'host'})
    cgroup_v2.write_text(MOUNTINFO_V2 % 'memory_recursiveprot')
    with pytest.raises(ValidationError, match='nsdelegate.*cannot raise its own limits'):
        build({'rootfs': '/', 'systemd': True})
    # privileged gives a writable cgroup tree anyway: no refusal, and the tree is rw.
    _given, spec = build({'rootfs': '/', 'systemd': True, 'privileged': True})
    assert 'rw' in mount_at(spec, '/sys/fs/cgroup')['options']


def test_on_cgroup_v1_only_the_containers_own_name_systemd_cgroup_is_bound(monkeypatch):
    """Not the host's whole name=systemd tree: root in the container could make and move into any host unit's
    cgroup there. Its own cgroup of that hierarchy (the runtime makes it before it mounts) has no release_agent."""
    monkeypatch.setattr(host, 'cgroup_mode', lambda *args: 'hybrid')
    monkeypatch.setattr(process.os.path, 'isdir', lambda path: path == '/sys/fs/cgroup/systemd' or path == '/')
    _given, spec = build({'rootfs': '/', 'systemd': True, 'cgroup_manager': 'cgroupfs'})
    bound = mount_at(spec, '/sys/fs/cgroup/systemd')
    assert bound['source'] == '/sys/fs/cgroup/systemd/runcible/runcible-' + 'c' * 64 and 'rw' in bound['options']
    assert 'rbind' not in bound['options']
    assert not [mount for mount in spec['mounts'] if 'release_agent' in mount['destination']]
    assert 'ro' in mount_at(spec, '/sys/fs/cgroup')['options']


def test_on_cgroup_v1_without_a_name_systemd_hierarchy_it_is_refused(monkeypatch):
    monkeypatch.setattr(host, 'cgroup_mode', lambda *args: 'legacy')
    monkeypatch.setattr(process.os.path, 'isdir', lambda path: path == '/')
    with pytest.raises(ValidationError, match='name=systemd hierarchy'):
        build({'rootfs': '/', 'systemd': True})


@pytest.mark.parametrize('options_field, expected', [
    ('rw,nsdelegate,memory_recursiveprot', True), ('rw,memory_recursiveprot', False), ('rw', False),
])
def test_nsdelegate_is_read_from_the_cgroup2_mount_at_sys_fs_cgroup(tmp_path, options_field, expected):
    mountinfo = tmp_path / 'mountinfo'
    mountinfo.write_text(MOUNTINFO_V2 % options_field.replace('rw,', '', 1))
    assert process.cgroup2_nsdelegate(str(mountinfo)) is expected
    # A cgroup2 mounted elsewhere (the hybrid layout's unified/) does not count.
    mountinfo.write_text('41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n')
    assert process.cgroup2_nsdelegate(str(mountinfo)) is False
