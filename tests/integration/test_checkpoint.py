# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""runcible.oci.container_checkpoint on the real runc, conmon and CRIU."""

from __future__ import annotations

import copy
import io
import json
import os
import tarfile
import tempfile
import time

import pytest

from ansible_collections.runcible.oci.plugins.module_utils import _checkpoint
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError
from conftest import read_log, wait_for

COUNTER = "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"
MODULE = 'runcible.oci.container_checkpoint'


def counts(log_path):
    return [int(line) for line in read_log(log_path) if line.strip().isdigit()]


def start_counter(env, name='test-ckpt'):
    result = env.run(name=name, rootfs=env.rootfs, command=['sh', '-c', COUNTER])
    log = result['container']['log_path']
    assert wait_for(lambda: len(counts(log)) >= 10), read_log(log)
    return result['container']


def ckpt(env, check_mode=False, **params):
    params.setdefault('root', env.root)
    params.setdefault('run_root', env.run_root)
    return _checkpoint.run(params, check_mode=check_mode)


def assert_continues(log_path, from_count, lines_before):
    """The restored process counts on from ``from_count``: a restart would print 1 again."""
    assert wait_for(lambda: len(counts(log_path)) >= lines_before + 5), read_log(log_path)
    after = counts(log_path)[lines_before:]
    assert after[0] == from_count + 1, (from_count, after[:10])
    assert after == list(range(from_count + 1, from_count + 1 + len(after)))


def test_checkpoint_and_restore_four_ways(env):
    container = start_counter(env)
    log = container['log_path']
    results = env.four_ways({'name': 'test-ckpt', 'state': 'checkpointed'}, module=MODULE)
    check, apply = results[0], results[1]
    assert check['actions'] == ['checkpointed', 'stopped'] and check['container']['status'] == 'stopped'
    assert apply['actions'] == ['checkpointed', 'stopped']
    assert apply['container']['status'] == 'stopped' and apply['container']['pid'] == 0
    meta = apply['checkpoint']
    assert meta['size'] > 0 and meta['dump_seconds'] > 0 and meta['criu_version'][0].isdigit()
    assert 'runc' in meta['runtime_version']
    assert os.path.isdir(meta['images'])
    assert results[2]['checkpoint']['id'] == meta['id']
    assert not env.mounts(), 'a checkpointed container holds no mount'
    dumped = counts(log)
    time.sleep(0.3)
    assert counts(log) == dumped, 'the process must not run after the checkpoint'

    restored = env.four_ways({'name': 'test-ckpt', 'state': 'restored'}, module=MODULE)
    assert restored[1]['actions'] == ['restored'] and restored[1]['container']['status'] == 'running'
    assert restored[1]['checkpoint']['restore_seconds'] > 0
    assert_continues(log, dumped[-1], len(dumped))
    assert restored[2]['container']['pid'] == restored[1]['container']['pid']

    # Supervised by conmon like a started process: stop works and its exit code is read.
    stopped = env.run(name='test-ckpt', state='stopped')
    assert stopped['container']['status'] == 'stopped' and stopped['container']['exit_code'] == 0


def test_leave_running_keeps_it_running_and_the_checkpoint_restorable(env):
    container = start_counter(env, 'test-live')
    results = env.four_ways({'name': 'test-live', 'leave_running': True}, module=MODULE)
    assert results[1]['actions'] == ['checkpointed']
    assert results[1]['container']['pid'] == container['pid'] and results[1]['container']['status'] == 'running'
    forced = ckpt(env, name='test-live', leave_running=True, force=True)
    assert forced['changed'] and forced['checkpoint']['id'] != results[1]['checkpoint']['id']
    # The process was frozen for the dump at about the last count written when the task returned.
    at_checkpoint = counts(container['log_path'])[-1]
    time.sleep(0.5)
    env.run(name='test-live', state='stopped')
    at_stop = counts(container['log_path'])[-1]
    assert at_stop >= at_checkpoint + 5, 'it kept running after the checkpoint'
    lines = len(counts(container['log_path']))
    restored = ckpt(env, name='test-live', state='restored')
    assert restored['actions'] == ['restored']
    after = wait_for(lambda: counts(container['log_path'])[lines:lines + 3])
    assert after, read_log(container['log_path'])[-5:]
    assert at_checkpoint - 2 <= after[0] <= at_checkpoint + 2 and after[0] < at_stop, (at_checkpoint, at_stop, after)


def test_export_remove_import_under_a_new_name(env, tmp_path):
    container = start_counter(env, 'test-exp')
    archive = str(tmp_path / 'exp.tar.zst')
    results = env.four_ways({'name': 'test-exp', 'export': archive}, module=MODULE)
    assert results[1]['actions'] == ['checkpointed', 'stopped', 'exported']
    assert os.path.getsize(archive) > 1000
    assert results[2]['actions'] == [] and results[3]['actions'] == []
    dumped = counts(container['log_path'])
    mtime = os.stat(archive).st_mtime_ns
    env.run(name='test-exp', state='absent')
    assert os.stat(archive).st_mtime_ns == mtime

    imported = env.four_ways({'name': 'test-imp', 'state': 'restored', 'import': archive, 'rootfs': env.rootfs},
                             module=MODULE)
    assert imported[0]['actions'] == ['imported', 'restored'] and imported[0]['container']['id'] is None
    assert imported[1]['actions'] == ['imported', 'restored']
    new = imported[1]['container']
    assert new['status'] == 'running' and new['name'] == 'test-imp' and new['id'] != container['id']
    assert imported[2]['container']['pid'] == new['pid']
    assert_continues(new['log_path'], dumped[-1], len(dumped))
    stopped = env.run(name='test-imp', state='stopped')
    assert stopped['container']['exit_code'] == 0


@pytest.mark.parametrize('compress', ['gzip', 'none'])
def test_other_compressions(env, tmp_path, compress):
    container = start_counter(env, 'test-cmp')
    archive = str(tmp_path / ('a.tar' + ('.gz' if compress == 'gzip' else '')))
    ckpt(env, name='test-cmp', export=archive, compress=compress)
    dumped = counts(container['log_path'])
    env.run(name='test-cmp', state='absent')
    result = ckpt(env, name='test-cmp2', state='restored', rootfs=env.rootfs, **{'import': archive})
    assert_continues(result['container']['log_path'], dumped[-1], len(dumped))


def test_rootfs_changes_travel_in_the_archive(env, tmp_path):
    script = "echo data > /etc/written; rm /bin/true; mkdir -p /d; touch /d/x; " + COUNTER
    result = env.run(name='test-upper', rootfs=env.rootfs, command=['sh', '-c', script])
    assert wait_for(lambda: len(counts(result['container']['log_path'])) >= 3)
    archive = str(tmp_path / 'u.tar.zst')
    ckpt(env, name='test-upper', export=archive)
    env.run(name='test-upper', state='absent')
    imported = ckpt(env, name='test-upper2', state='restored', rootfs=env.rootfs, **{'import': archive})
    upper = os.path.join(env.root, 'containers', 'test-upper2', 'upper')
    assert open(os.path.join(upper, 'etc', 'written')).read() == 'data\n'
    whiteout = os.lstat(os.path.join(upper, 'bin', 'true'))
    assert os.major(whiteout.st_rdev) == 0 and os.minor(whiteout.st_rdev) == 0, 'whiteout kept'
    assert imported['container']['status'] == 'running'
    assert not os.path.exists(os.path.join(imported['container']['rootfs'], 'bin', 'true'))


def test_check_mode_leaves_no_trace(env, tmp_path):
    container = start_counter(env, 'test-ckchk')
    archive = str(tmp_path / 'c.tar.zst')
    result = ckpt(env, check_mode=True, name='test-ckchk', export=archive)
    assert result['changed'] and result['actions'] == ['checkpointed', 'stopped', 'exported']
    assert not os.path.exists(archive)
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-ckchk', 'checkpoints'))
    assert env.inspect('test-ckchk')['pid'] == container['pid']
    assert not os.path.exists(os.path.join(env.run_root, 'criu-check.json'))


# -- failures: clear messages, nothing touched ---------------------------------------------------------

def test_checkpoint_of_a_stopped_container_fails(env):
    env.run(name='test-cks', rootfs=env.rootfs, command=['true'], state='stopped')
    with pytest.raises(RuncibleError, match='stopped and has no checkpoint'):
        ckpt(env, name='test-cks')
    with pytest.raises(RuncibleError, match='no checkpoint to restore'):
        ckpt(env, name='test-cks', state='restored')
    with pytest.raises(RuncibleError, match='does not exist'):
        ckpt(env, name='test-nothere')
    with pytest.raises(RuncibleError, match='does not exist'):
        ckpt(env, name='test-nothere', state='restored')
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-nothere'))


def test_failures_through_the_playbook(env):
    results = env.playbook([
        {MODULE: {'name': 'test-absent'}, 'ignore_errors': True},
        {MODULE: {'name': 'test-absent', 'state': 'restored', 'import': '/nonexistent.tar'}, 'ignore_errors': True},
    ])
    assert [r['_status'] for r in results] == ['failed', 'failed']
    assert 'does not exist' in results[0]['msg'] and 'does not exist' in results[1]['msg']


CHECKPOINT_ID = '5e' * 16


def _manifest(**changes):
    document = {'format': 'runcible.oci/checkpoint', 'version': 1, 'checkpoint_id': CHECKPOINT_ID, 'name': 'evil',
                'config': {}, 'runtime': 'runc'}
    document.update(changes)
    return document


def _archive(path, members, first_manifest=True, manifest=None):
    with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as archive:
        if first_manifest:
            data = json.dumps(manifest or _manifest()).encode()
            info = tarfile.TarInfo('manifest.json')
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)


def _file(name, data=b'x'):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _device(name, major, minor):
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = major, minor
    return info, None


HOSTILE = {
    'dotdot': ([_file('config.json'), _file('images/../../escaped')], 'contains ".."'),
    'absolute': ([_file('config.json'), _file('/tmp/escaped-abs')], 'absolute path'),
    'symlink then write through it': ([_file('config.json'), _file('images/x'), _link('upper/evil', '{victim_dir}'),
                                       _file('upper/evil/escaped')], 'lies below upper/evil, which is a symlink'),
    'symlink then a regular member of the same name': ([_file('config.json'), _file('images/x'),
                                                        _link('upper/v', '{victim}'), _file('upper/v', b'pwned')],
                                                       'appears twice'),
    'symlink to a dir, then ./ through it': ([_file('config.json'), _file('images/x'), _link('upper/d', '{victim_dir}'),
                                              _file('upper/./d/x', b'pwned')], 'lies below upper/d'),
    'symlink to a dir, then // through it': ([_file('config.json'), _file('images/x'), _link('upper/d', '{victim_dir}'),
                                              _file('upper//d/x', b'pwned')], 'lies below upper/d'),
    'hard link to a host file': ([_file('config.json'), _file('images/x'),
                                  _link('upper/passwd', '{victim}', tarfile.LNKTYPE)], 'absolute path'),
    'device node': ([_file('config.json'), _file('images/x'), _device('upper/dev-null', 1, 3)], 'device node'),
    'foreign member': ([_file('config.json'), _file('images/x'), _file('etc/shadow')], 'not part of'),
}


@pytest.fixture(scope='module')
def base_archive(stack, tmp_path_factory):
    """A real exported checkpoint (plain tar) to build hostile archives on: a well-formed manifest and config."""
    import shutil
    from conftest import Env
    base = tempfile.mkdtemp(prefix='rci-', dir='/tmp')
    source = Env(base, stack['rootfs'])
    try:
        start_counter(source, 'test-base')
        archive = str(tmp_path_factory.mktemp('base') / 'base.tar')
        ckpt(source, name='test-base', export=archive, compress='none')
    finally:
        source.remove_all()
        shutil.rmtree(base, ignore_errors=True)
    return archive


def _with_members(source, target, members):
    """A copy of a real archive with ``members`` added after its own (the manifest stays first)."""
    with tarfile.open(source) as old, tarfile.open(target, 'w', format=tarfile.PAX_FORMAT) as new:
        for member in old:
            new.addfile(member, old.extractfile(member) if member.isreg() else None)
        for info, data in members:
            new.addfile(info, io.BytesIO(data) if data is not None else None)


@pytest.mark.parametrize('check_mode', [True, False], ids=['check', 'apply'])
@pytest.mark.parametrize('case', sorted(HOSTILE))
def test_hostile_archives_are_refused_and_write_nothing(env, tmp_path, case, check_mode, base_archive):
    """Item 1 of the hostile-input issue: nothing is ever written through a link or outside the store.

    The hostile members ride on a real archive (a valid manifest and config), as an attacker's would.
    """
    victim = tmp_path / 'victim'
    victim.write_text('host file\n')
    victim_dir = tmp_path / 'victim-dir'
    victim_dir.mkdir()
    members, message = HOSTILE[case]
    prepared = []
    for info, data in members:
        if info.name in ('config.json', 'images/x'):
            continue  # the real archive has them
        info = copy.copy(info)
        info.linkname = info.linkname.replace('{victim_dir}', str(victim_dir)).replace('{victim}', str(victim))
        prepared.append((info, data))
    archive = str(tmp_path / 'evil.tar')
    _with_members(base_archive, archive, prepared)
    with pytest.raises(RuncibleError, match=message):
        ckpt(env, check_mode=check_mode, name='test-evil', state='restored', rootfs=env.rootfs, **{'import': archive})
    assert victim.read_text() == 'host file\n' and os.listdir(str(victim_dir)) == []
    assert not os.path.exists('/tmp/escaped-abs')
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-evil'))
    assert not os.path.exists(os.path.join(env.root, 'imports'))
    assert env.leftovers() == []


def test_a_hostile_archive_without_a_valid_config_is_refused_too(env, tmp_path):
    archive = str(tmp_path / 'evil.tar')
    _archive(archive, [_file('config.json'), _file('images/x'), _link('upper/v', str(tmp_path / 'victim')),
                       _file('upper/v', b'pwned')])
    with pytest.raises(RuncibleError, match='appears twice'):
        ckpt(env, name='test-evil', state='restored', rootfs=env.rootfs, **{'import': archive})
    assert not os.path.exists(str(tmp_path / 'victim'))


def _rewrite(source, target, **changes):
    """A copy of a real (plain tar) archive whose manifest (and nothing else) says something else."""
    with tarfile.open(source) as old, tarfile.open(target, 'w', format=tarfile.PAX_FORMAT) as new:
        for member in old:
            data = old.extractfile(member).read() if member.isreg() else None
            if member.name == 'manifest.json':
                manifest = json.loads(data)
                for key, value in changes.items():
                    if key.startswith('config.'):
                        manifest['config'][key[len('config.'):]] = value
                    else:
                        manifest[key] = value
                data = json.dumps(manifest).encode()
                member.size = len(data)
            new.addfile(member, io.BytesIO(data) if data is not None else None)


@pytest.fixture
def real_archive(env, tmp_path):
    """A plain-tar archive of a real checkpointed counter (the container removed afterwards)."""
    start_counter(env, 'test-src')
    archive = str(tmp_path / 'real.tar')
    ckpt(env, name='test-src', export=archive, compress='none')
    env.run(name='test-src', state='absent')
    return archive


def test_manifest_fields_and_config_are_not_trusted(env, tmp_path, real_archive):
    """Item 2: identifiers by pattern; host paths, runtime paths and unknown options never come from an archive."""
    outside = os.path.join(os.path.dirname(env.root), 'x')
    cases = [
        ({'checkpoint_id': '../../../../x'}, 'not a checkpoint id', {}),
        ({'config.mounts': [{'source': '/', 'target': '/host', 'type': 'bind', 'options': ['rbind', 'rw']}]},
         'binds host paths at /host', {'rootfs': env.rootfs}),
        ({'config.rootfs_mode': 'direct', 'config.rootfs': '/'}, 'give rootfs', {}),
        ({'config.rootfs': '/'}, 'may not choose host paths', {}),
        ({'config.surprise': 1}, 'unknown options surprise', {'rootfs': env.rootfs}),
        ({'config.image': 'docker://evil/x@sha256:' + '0' * 64, 'config.image_config': {'layers': ['../../../etc']},
          'config.rootfs': None}, 'not in the local image store', {}),
        ({'config.memory': 'lots'}, 'memory', {'rootfs': env.rootfs}),
        ({'config.log_driver': 'syslog'}, 'log_driver', {'rootfs': env.rootfs}),
        ({'runtime': '/tmp/evil/runc'}, 'runtime', {'rootfs': env.rootfs}),
        # Confinement: never loosened by an archive that is not verified; host devices and profile files never.
        ({'config.privileged': True}, r'less confinement than the default \(privileged: True\)', {'rootfs': env.rootfs}),
        ({'config.privileged': 'yes'}, r'less confinement than the default \(privileged: True\)', {'rootfs': env.rootfs}),
        ({'config.no_new_privileges': 0}, 'less confinement.*no_new_privileges', {'rootfs': env.rootfs}),
        ({'config.network': 'host'}, 'less confinement.*network: host', {'rootfs': env.rootfs}),
        ({'config.cap_add': ['CAP_SYS_ADMIN']}, 'less confinement.*cap_add', {'rootfs': env.rootfs}),
        ({'config.no_new_privileges': False}, 'less confinement.*no_new_privileges', {'rootfs': env.rootfs}),
        ({'config.seccomp_profile': 'unconfined'}, 'less confinement.*seccomp_profile', {'rootfs': env.rootfs}),
        ({'config.devices': [{'host': '/dev/sda', 'container': '/dev/sda', 'permissions': 'rwm'}]}, 'host devices',
         {'rootfs': env.rootfs}),
        ({'config.seccomp_profile': {'path': '/etc/hostname', 'digest': 'sha256:' + '0' * 64}}, 'seccomp profile file',
         {'rootfs': env.rootfs}),
        # env_file holds the variables its files gave; paths would make this host read its own files into env.
        ({'config.env_file': ['/etc/shadow']}, 'not the variables of its files', {'rootfs': env.rootfs}),
    ]
    for index, (changes, message, params) in enumerate(cases):
        target = str(tmp_path / ('evil-%d.tar' % index))
        _rewrite(real_archive, target, **changes)
        for check_mode in (True, False):
            with pytest.raises(RuncibleError, match=message):
                ckpt(env, check_mode=check_mode, name='test-evil', state='restored', **dict(params, **{'import': target}))
            assert not os.path.exists(os.path.join(env.root, 'containers', 'test-evil')), changes
            assert not os.path.exists(os.path.join(env.root, 'imports')), changes
            assert not os.path.exists(outside), changes
    assert env.leftovers() == []


def test_the_runtime_is_chosen_by_name_never_by_the_archives_path(env, tmp_path, real_archive):
    """A manifest config naming a runtime *path* (that conmon would run as root) gets this host's runc instead."""
    marker = tmp_path / 'evil-ran'
    evil = tmp_path / 'runc'
    evil.write_text('#!/bin/sh\ntouch %s\nexec runc "$@"\n' % marker)
    evil.chmod(0o755)
    target = str(tmp_path / 'evil-runtime.tar')
    _rewrite(real_archive, target, **{'config.runtime': str(evil)})
    result = ckpt(env, name='test-rt', state='restored', rootfs=env.rootfs, **{'import': target})
    assert result['container']['status'] == 'running'
    assert result['container']['config']['runtime'] != str(evil) and not marker.exists()
    assert result['integrity'] == 'unsigned'


def test_derived_groups_and_env_file_variables_of_an_archive_are_made_again(env, tmp_path, real_archive):
    """user_groups (root's groups: 0 = root, 6 = disk) is recomputed from the root's /etc/group, never taken."""
    target = str(tmp_path / 'evil-groups.tar')
    _rewrite(real_archive, target, **{'config.user_groups': [0, 6], 'config.env_file': {'FROM_FILE': 'a', 'B': 'file'},
                                      'config.env': {'B': 'env'}})
    result = ckpt(env, name='test-groups', state='restored', rootfs=env.rootfs, **{'import': target})
    config = result['container']['config']
    assert config['user_groups'] == [] and config['env_file'] == {'FROM_FILE': 'a', 'B': 'file'}
    assert config['env']['B'] == 'env' and 'FROM_FILE' not in config['env']  # as recorded: a re-run compares equal
    with open('/proc/%d/status' % result['container']['pid']) as handle:
        assert [line.split()[1:] for line in handle if line.startswith('Groups:')] == [[]]


def test_integrity_key_four_ways_and_tampering(env, tmp_path):
    container = start_counter(env, 'test-sig')
    archive = str(tmp_path / 'sig.tar')
    key = 'k' * 24
    ckpt(env, name='test-sig', export=archive, compress='none', integrity_key=key)
    dumped = counts(container['log_path'])
    env.run(name='test-sig', state='absent')
    tampered = str(tmp_path / 'tampered.tar')
    _rewrite(archive, tampered, **{'config.env': {'INJECTED': '1'}})
    for bad, message in ((tampered, 'changed after its export'),):
        with pytest.raises(RuncibleError, match=message):
            ckpt(env, name='test-sig2', state='restored', rootfs=env.rootfs, integrity_key=key, **{'import': bad})
    with pytest.raises(RuncibleError, match='changed after its export, or exported with another key'):
        ckpt(env, name='test-sig2', state='restored', rootfs=env.rootfs, integrity_key='z' * 24, **{'import': archive})
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-sig2'))
    results = env.four_ways({'name': 'test-sig2', 'state': 'restored', 'import': archive, 'rootfs': env.rootfs,
                             'integrity_key': key}, module=MODULE)
    assert [r.get('integrity') for r in results] == ['verified'] * 4
    assert key not in results[0]['_output'], 'the key is no_log'
    assert_continues(results[1]['container']['log_path'], dumped[-1], len(dumped))
    record = json.dumps(env.engine.store.load('test-sig2').to_dict())
    assert key not in record


def test_a_verified_archive_may_carry_added_capabilities(env, tmp_path):
    env.run(name='test-caps', rootfs=env.rootfs, command=['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done'],
            network='none', cap_add=['NET_ADMIN'])
    archive = str(tmp_path / 'caps.tar')
    key = 'q' * 24
    ckpt(env, name='test-caps', export=archive, compress='none', integrity_key=key)
    env.run(name='test-caps', state='absent')
    with pytest.raises(RuncibleError, match='less confinement than the default .cap_add.*give integrity_key'):
        ckpt(env, name='test-caps', state='restored', rootfs=env.rootfs, **{'import': archive})
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-caps'))
    result = ckpt(env, name='test-caps', state='restored', rootfs=env.rootfs, integrity_key=key, **{'import': archive})
    assert result['integrity'] == 'verified' and result['container']['config']['cap_add'] == ['CAP_NET_ADMIN']


def test_export_is_private_and_never_follows_a_planted_link(env, tmp_path):
    """Item 3: 0600, created exclusively next to the destination; a symlink there is replaced, not followed."""
    start_counter(env, 'test-priv')
    victim = tmp_path / 'victim'
    victim.write_text('host file\n')
    archive = tmp_path / 'priv.tar.zst'
    os.symlink(str(victim), str(archive))
    for pid in range(os.getpid() - 20, os.getpid() + 20):
        os.symlink(str(victim), str(tmp_path / ('.priv.tar.zst.tmp-%d' % pid)))
    ckpt(env, name='test-priv', export=str(archive))
    assert victim.read_text() == 'host file\n'
    assert not os.path.islink(str(archive)) and os.stat(str(archive)).st_mode & 0o777 == 0o600


def test_corrupt_foreign_and_truncated_archives(env, tmp_path):
    garbage = tmp_path / 'garbage.tar.zst'
    garbage.write_bytes(b'\x28\xb5\x2f\xfd' + os.urandom(4096))
    with pytest.raises(RuncibleError, match='not a readable checkpoint archive'):
        ckpt(env, name='test-bad', state='restored', **{'import': str(garbage)})
    foreign = str(tmp_path / 'foreign.tar')
    _archive(foreign, [_file('hello.txt')], first_manifest=False)
    with pytest.raises(RuncibleError, match='not (part of )?a runcible.oci checkpoint archive'):
        ckpt(env, name='test-bad', state='restored', **{'import': foreign})
    container = start_counter(env, 'test-trunc')
    good = str(tmp_path / 'good.tar.gz')
    ckpt(env, name='test-trunc', export=good, compress='gzip')
    truncated = tmp_path / 'truncated.tar.gz'
    truncated.write_bytes(open(good, 'rb').read()[:os.path.getsize(good) // 2])
    with pytest.raises(RuncibleError, match='corrupt or truncated'):
        ckpt(env, name='test-bad', state='restored', **{'import': str(truncated)})
    assert not os.path.exists(os.path.join(env.root, 'containers', 'test-bad'))
    assert container['id']


def test_import_name_clash_leaves_the_existing_container_alone(env, tmp_path):
    source = start_counter(env, 'test-src')
    archive = str(tmp_path / 's.tar.zst')
    ckpt(env, name='test-src', export=archive, leave_running=True)
    other = start_counter(env, 'test-other')
    with pytest.raises(RuncibleError, match='already exists'):
        ckpt(env, name='test-other', state='restored', rootfs=env.rootfs, **{'import': archive})
    assert env.inspect('test-other')['pid'] == other['pid']
    assert env.inspect('test-src')['pid'] == source['pid']


def test_non_root_process(env):
    """Where root lacks CAP_SYS_RESOURCE (this sandbox), CRIU cannot dump another uid's process: a clear error first."""
    from ansible_collections.runcible.oci.plugins.module_utils._runtime.checkpoint import (
        CAP_SYS_RESOURCE, effective_capabilities)
    result = env.run(name='test-ckuser', rootfs=env.rootfs, command=['sh', '-c', COUNTER], user='app')
    assert wait_for(lambda: len(counts(result['container']['log_path'])) >= 3)
    if effective_capabilities() & (1 << CAP_SYS_RESOURCE):
        dumped = ckpt(env, name='test-ckuser')
        assert dumped['container']['status'] == 'stopped'
        assert ckpt(env, name='test-ckuser', state='restored')['container']['status'] == 'running'
    else:
        with pytest.raises(RuncibleError, match='CAP_SYS_RESOURCE'):
            ckpt(env, name='test-ckuser')
        assert env.inspect('test-ckuser')['pid'] == result['container']['pid'], 'left running, untouched'
        assert not os.path.exists(os.path.join(env.root, 'containers', 'test-ckuser', 'checkpoints'))
