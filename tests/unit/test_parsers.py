# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/parsers.py: sizes, signals, commands, string dicts, mounts, users and names."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import parsers
from ansible_collections.runcible.oci.plugins.module_utils._runtime.errors import RuncibleError, ValidationError

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


# -- parse_size -------------------------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    (0, 0),
    (1, 1),
    (67108864, 64 * MIB),
    (64.0, 64),
    ('0', 0),
    ('512', 512),
    ('512b', 512),
    ('512k', 512 * KIB),
    ('512K', 512 * KIB),
    ('512kb', 512 * KIB),
    ('512KiB', 512 * KIB),
    ('64m', 64 * MIB),
    ('64M', 64 * MIB),
    ('64MB', 64 * MIB),
    ('64mb', 64 * MIB),
    ('64MiB', 64 * MIB),
    ('1g', GIB),
    ('1G', GIB),
    ('1GiB', GIB),
    ('1.5g', GIB + GIB // 2),
    ('0.5k', 512),
    ('2t', 2 * TIB),
    ('2TB', 2 * TIB),
    ('1p', 1 << 50),
    (' 64m ', 64 * MIB),
    ('64 m', 64 * MIB),
])
def test_parse_size_accepts(value, expected):
    result = parsers.parse_size(value)
    assert result == expected
    assert isinstance(result, int) and not isinstance(result, bool)


@pytest.mark.parametrize('value', [
    '', ' ', 'abc', 'm', '64x', '64mm', '1.5.2g', '1e3', '64 m b', '0x40', '1,5g', '64m64',
    '-1', '-64m', '- 1', -1, -64, -1.0,
    True, False, None, [], {}, float('inf'), float('nan'),
])
def test_parse_size_rejects(value):
    with pytest.raises(ValidationError) as info:
        parsers.parse_size(value, 'memory')
    assert info.value.msg.startswith('memory: ')


def test_parse_size_negative_message_says_negative():
    with pytest.raises(ValidationError, match='negative'):
        parsers.parse_size(-5, 'memory')


def test_validation_error_is_a_runcible_error():
    with pytest.raises(RuncibleError):
        parsers.parse_size('nope')


# -- parse_signal -----------------------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    ('SIGTERM', signal.SIGTERM),
    ('TERM', signal.SIGTERM),
    ('term', signal.SIGTERM),
    ('sigterm', signal.SIGTERM),
    (' HUP ', signal.SIGHUP),
    ('SIGKILL', signal.SIGKILL),
    ('int', signal.SIGINT),
    ('QUIT', signal.SIGQUIT),
    ('usr1', signal.SIGUSR1),
    ('SIGUSR2', signal.SIGUSR2),
    ('WINCH', signal.SIGWINCH),
    ('CHLD', signal.SIGCHLD),
    ('SIGIOT', signal.SIGABRT),
    (15, 15),
    (9, 9),
    (1, 1),
    (64, 64),
    ('15', 15),
    (' 9 ', 9),
    ('64', 64),
    ('RTMIN', signal.SIGRTMIN),
    ('SIGRTMIN', signal.SIGRTMIN),
    ('RTMIN+3', signal.SIGRTMIN + 3),
    ('sigrtmin+3', signal.SIGRTMIN + 3),
    ('SIGRTMIN+0', signal.SIGRTMIN),
    ('RTMAX', signal.SIGRTMAX),
    ('SIGRTMAX-2', signal.SIGRTMAX - 2),
])
def test_parse_signal_accepts(value, expected):
    result = parsers.parse_signal(value)
    assert result == int(expected)
    assert isinstance(result, int) and not isinstance(result, bool)


@pytest.mark.parametrize('value', [
    0, '0', signal.NSIG, str(signal.NSIG), 65, '65', 1000, -1, '-1', '+15',
    'SIGFOO', 'FOO', '', '   ', 'SIG', 'SIG_DFL', 'SIG_IGN', 'TERM15', 'SIGTERM,',
    'RTMIN-1', 'RTMAX+1', 'RTMIN+%d' % (int(signal.SIGRTMAX) - int(signal.SIGRTMIN) + 1),
    'RTMAX-%d' % (int(signal.SIGRTMAX) - int(signal.SIGRTMIN) + 1),
    True, False, None, 15.0, [15],
])
def test_parse_signal_rejects(value):
    with pytest.raises(ValidationError) as info:
        parsers.parse_signal(value)
    assert info.value.msg.startswith('stop_signal: ')


def test_parse_signal_superscript_digit_is_a_validation_error():
    with pytest.raises(ValidationError):
        parsers.parse_signal('\u00b2')


@pytest.mark.parametrize('number, name', [(15, 'SIGTERM'), (9, 'SIGKILL'), (2, 'SIGINT'), (999, '999')])
def test_signal_name(number, name):
    assert parsers.signal_name(number) == name


# -- split_command ----------------------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    (['sleep', '10'], ['sleep', '10']),
    (['sleep', 10], ['sleep', '10']),
    (('echo', 'a b'), ['echo', 'a b']),
    (['/bin/sh', '-c', 'echo $HOME; exit 3'], ['/bin/sh', '-c', 'echo $HOME; exit 3']),
    ('sleep 10', ['sleep', '10']),
    ('  ls   -l  ', ['ls', '-l']),
    ("sh -c 'echo hello world'", ['sh', '-c', 'echo hello world']),
    ('echo "a b" c\\ d', ['echo', 'a b', 'c d']),
    ("echo '$HOME' > /x", ['echo', '$HOME', '>', '/x']),
    ('httpd -f -p 8080 -h /srv', ['httpd', '-f', '-p', '8080', '-h', '/srv']),
    ('a\tb\nc', ['a', 'b', 'c']),
])
def test_split_command(value, expected):
    assert parsers.split_command(value) == expected


def test_split_command_none_is_none():
    assert parsers.split_command(None) is None


def test_split_command_keeps_the_callers_list():
    argv = ['sleep', '1']
    result = parsers.split_command(argv)
    result.append('x')
    assert argv == ['sleep', '1']


@pytest.mark.parametrize('value, fragment', [
    ('', 'must not be empty'),
    ('   ', 'must not be empty'),
    ([], 'must not be empty'),
    ((), 'must not be empty'),
    ("echo 'unbalanced", 'cannot split'),
    ('echo "unbalanced', 'cannot split'),
    ('echo trailing\\', 'cannot split'),
])
def test_split_command_rejects(value, fragment):
    with pytest.raises(ValidationError) as info:
        parsers.split_command(value)
    assert info.value.msg.startswith('command: ')
    assert fragment in info.value.msg


# -- string_dict ------------------------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [
    ({}, {}),
    ({'A': 'x'}, {'A': 'x'}),
    ({'A': 1, 'B': 1.5}, {'A': '1', 'B': '1.5'}),
    ({'T': True, 'F': False}, {'T': 'true', 'F': 'false'}),
    ({'EMPTY': None}, {'EMPTY': ''}),
    ({5: 'five'}, {'5': 'five'}),
    ({'WITH SPACE': ' v '}, {'WITH SPACE': ' v '}),
])
@pytest.mark.parametrize('option', ['env', 'labels'])
def test_string_dict(value, expected, option):
    result = parsers.string_dict(value, option)
    assert result == expected
    assert all(isinstance(key, str) and isinstance(item, str) for key, item in result.items())


@pytest.mark.parametrize('option', ['env', 'labels'])
def test_string_dict_none(option):
    assert parsers.string_dict(None, option) is None


@pytest.mark.parametrize('value, option', [
    ('A=1', 'env'),
    (['A', '1'], 'env'),
    ({'': 'x'}, 'env'),
    ({'': 'x'}, 'labels'),
    ({'A=B': 'x'}, 'env'),
])
def test_string_dict_rejects(value, option):
    with pytest.raises(ValidationError) as info:
        parsers.string_dict(value, option)
    assert info.value.msg.startswith(option + ': ')


def test_string_dict_labels_may_hold_equals_sign():
    assert parsers.string_dict({'a=b': 'c'}, 'labels') == {'a=b': 'c'}


# -- absolute_path ----------------------------------------------------------------------------------

@pytest.mark.parametrize('value, expected', [('/', '/'), ('/srv/', '/srv'), ('/a/./b/../c', '/a/c'), ('/a//b', '/a/b')])
def test_absolute_path(value, expected):
    assert parsers.absolute_path(value, 'workdir') == expected


@pytest.mark.parametrize('value', ['', 'srv', './srv', '~/x'])
def test_absolute_path_rejects(value):
    with pytest.raises(ValidationError, match='workdir: .* is not an absolute path'):
        parsers.absolute_path(value, 'workdir')


# -- parse_mount / normalise_mounts -----------------------------------------------------------------

def _mount(source, target, options):
    return {'source': source, 'target': target, 'type': 'bind', 'options': options}


@pytest.mark.parametrize('value, expected', [
    ('/src:/dst', _mount('/src', '/dst', ['rbind', 'rw'])),
    ('/src:/dst:ro', _mount('/src', '/dst', ['rbind', 'ro'])),
    ('/src:/dst:rw', _mount('/src', '/dst', ['rbind', 'rw'])),
    ('/src:/dst:ro,nosuid,nodev', _mount('/src', '/dst', ['nodev', 'nosuid', 'rbind', 'ro'])),
    ('/src/:/dst/', _mount('/src', '/dst', ['rbind', 'rw'])),
    ('/a/../b:/c/./d', _mount('/b', '/c/d', ['rbind', 'rw'])),
    ('/src:/dst:', _mount('/src', '/dst', ['rbind', 'rw'])),
    ({'source': '/s', 'target': '/t'}, _mount('/s', '/t', ['rbind', 'rw'])),
    ({'source': '/s', 'target': '/t', 'type': 'bind'}, _mount('/s', '/t', ['rbind', 'rw'])),
    ({'source': '/s', 'target': '/t', 'options': None}, _mount('/s', '/t', ['rbind', 'rw'])),
    ({'source': '/s', 'target': '/t', 'options': []}, _mount('/s', '/t', ['rbind', 'rw'])),
    ({'source': '/s', 'target': '/t', 'options': ['ro', 'nodev']}, _mount('/s', '/t', ['nodev', 'rbind', 'ro'])),
    ({'source': '/s', 'target': '/t', 'options': 'ro,nodev'}, _mount('/s', '/t', ['nodev', 'rbind', 'ro'])),
    ({'source': '/s', 'target': '/t', 'options': ' ro , nodev ,'}, _mount('/s', '/t', ['nodev', 'rbind', 'ro'])),
    ({'source': '/s', 'target': '/t', 'options': ['ro', 'ro']}, _mount('/s', '/t', ['rbind', 'ro'])),
    ({'source': '/s', 'target': '/t', 'options': ['bind']}, _mount('/s', '/t', ['bind', 'rw'])),
    ({'source': '/s', 'target': '/t', 'options': ['rbind', 'rprivate', 'noexec']},
     _mount('/s', '/t', ['noexec', 'rbind', 'rprivate', 'rw'])),
])
def test_parse_mount(value, expected):
    assert parsers.parse_mount(value) == expected


@pytest.mark.parametrize('value, fragment', [
    ('/src', 'must be "source:target"'),
    ('/a:/b:ro:x', 'must be "source:target"'),
    ('rel/x:/t', 'neither an absolute host path nor a volume name'),  # not a path: a volume name, and not a valid one
    ('/s:rel', 'not an absolute path'),
    ('/s:t/sub', 'not an absolute path'),
    (':/t', 'needs both a source and a target'),
    ('/s:', 'needs both a source and a target'),
    ('/s:/t:bogus', "unknown option 'bogus' for /t"),
    ('/s:/t:ro,rw', '/t cannot be both ro and rw'),
    ({'source': '/s'}, 'needs both a source and a target'),
    ({'target': '/t'}, 'needs both a source and a target'),
    ({'source': '/s', 'target': '/t', 'options': ['exec', 'size=1m']}, "unknown option 'size=1m'"),
    ({'source': '/s', 'target': '/t', 'options': 'rw,ro'}, 'cannot be both ro and rw'),
    ({'source': '/s', 'target': '/t', 'type': 'tmpfs'}, 'takes a target and no source'),
    ({'source': '/s', 'target': '/t', 'type': 'nfs'}, "type 'nfs' is not one of bind, volume, tmpfs"),
    ({'source': '/s', 'target': '/t', 'propagation': 'shared'}, "unknown keys ['propagation']"),
    ({'src': '/s', 'dst': '/t'}, 'unknown keys'),
    (42, 'must be a string'),
    (None, 'must be a string'),
    (['/s', '/t'], 'must be a string'),
])
def test_parse_mount_rejects(value, fragment):
    with pytest.raises(ValidationError) as info:
        parsers.parse_mount(value)
    assert info.value.msg.startswith('mounts')
    assert fragment in info.value.msg


def test_normalise_mounts_none_and_empty():
    assert parsers.normalise_mounts(None) is None
    assert parsers.normalise_mounts([]) == []


def test_normalise_mounts_sorts_by_target():
    mounts = ['/x:/var/lib', '/y:/etc:ro', {'source': '/z', 'target': '/var'}, '/w:/var-lib']
    result = parsers.normalise_mounts(mounts)
    assert [m['target'] for m in result] == ['/etc', '/var', '/var-lib', '/var/lib']
    assert result[0] == _mount('/y', '/etc', ['rbind', 'ro'])
    assert parsers.normalise_mounts(list(reversed(mounts))) == result


def test_normalise_mounts_parent_before_child():
    result = parsers.normalise_mounts(['/b:/data/sub/deeper', '/a:/data', '/c:/data/sub'])
    assert [m['target'] for m in result] == ['/data', '/data/sub', '/data/sub/deeper']


@pytest.mark.parametrize('mounts, duplicate', [
    (['/a:/t', '/b:/t'], '/t'),
    (['/a:/t/', {'source': '/b', 'target': '/t'}], '/t'),
    (['/a:/x/../t', '/b:/t:ro', '/c:/u'], '/t'),
])
def test_normalise_mounts_rejects_duplicate_targets(mounts, duplicate):
    with pytest.raises(ValidationError) as info:
        parsers.normalise_mounts(mounts)
    assert 'target %s is given more than once' % duplicate in info.value.msg


def test_normalise_mounts_reports_a_bad_item():
    with pytest.raises(ValidationError, match='unknown option'):
        parsers.normalise_mounts(['/a:/t', '/b:/u:nope'])


# -- resolve_user -----------------------------------------------------------------------------------

PASSWD = '''\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
odd:x:1001:xx::/:/bin/sh
broken:x:abc:5::/:/bin/sh
#hidden:x:7:7::/:/bin/sh
short:x:9
'''

GROUP = '''\
root:x:0:
daemon:x:1:
staff:x:50:app
app:x:1000:
badgid:x:zz:
#hiddengroup:x:77:
'''


@pytest.fixture
def user_rootfs(tmp_path):
    etc = tmp_path / 'rootfs' / 'etc'
    etc.mkdir(parents=True)
    (etc / 'passwd').write_text(PASSWD)
    (etc / 'group').write_text(GROUP)
    return str(tmp_path / 'rootfs')


@pytest.mark.parametrize('value, expected', [
    ('root', '0:0'),
    ('app', '1000:1000'),
    ('www-data', '33:33'),
    ('odd', '1001:0'),
    (' app ', '1000:1000'),
    ('0', '0:0'),
    ('1000', '1000:1000'),
    (1000, '1000:1000'),
    ('33', '33:33'),
    ('4242', '4242:0'),
    ('7', '7:0'),
    ('1000:', '1000:1000'),
    ('1000:50', '1000:50'),
    ('4242:7', '4242:7'),
    ('0:0', '0:0'),
    ('app:staff', '1000:50'),
    ('app:0', '1000:0'),
    ('1000:staff', '1000:50'),
    ('4242:staff', '4242:50'),
    ('root:app', '0:1000'),
    ('daemon:daemon', '1:1'),
])
def test_resolve_user(user_rootfs, value, expected):
    assert parsers.resolve_user(value, user_rootfs) == expected


def test_resolve_user_none():
    assert parsers.resolve_user(None, '/nonexistent') is None


@pytest.mark.parametrize('value, fragment', [
    ('nobody', "'nobody' is not in the root filesystem's /etc/passwd"),
    ('broken', "'broken' is not in"),
    ('hidden', "'hidden' is not in"),
    ('#hidden', "'#hidden' is not in"),
    ('short', "'short' is not in"),
    (':50', "'' is not in"),
    ('app:nogroup', "group 'nogroup' is not in the root filesystem's /etc/group"),
    ('1000:badgid', "group 'badgid'"),
    ('1000:hiddengroup', "group 'hiddengroup'"),
    ('', 'must not be empty'),
    ('  ', 'must not be empty'),
])
def test_resolve_user_rejects(user_rootfs, value, fragment):
    with pytest.raises(ValidationError) as info:
        parsers.resolve_user(value, user_rootfs)
    assert info.value.msg.startswith('user: ')
    assert fragment in info.value.msg


@pytest.mark.parametrize('rootfs', [None, ''])
def test_resolve_user_without_rootfs(rootfs):
    assert parsers.resolve_user('1000', rootfs) == '1000:0'
    assert parsers.resolve_user('1000:5', rootfs) == '1000:5'
    with pytest.raises(ValidationError):
        parsers.resolve_user('root', rootfs)
    with pytest.raises(ValidationError):
        parsers.resolve_user('0:root', rootfs)


def test_resolve_user_rootfs_without_etc(tmp_path):
    assert parsers.resolve_user('5', str(tmp_path)) == '5:0'
    with pytest.raises(ValidationError):
        parsers.resolve_user('root', str(tmp_path))


def test_resolve_user_superscript_digit_is_a_validation_error(user_rootfs):
    with pytest.raises(ValidationError):
        parsers.resolve_user('\u00b2', user_rootfs)


# -- resolve_user: the root filesystem's files are read inside it ------------------------------------

HOST_PASSWD = 'hostonly:x:4321:4321:host only:/host-only-home:/bin/sh\nroot:x:0:4321::/host-root:/bin/sh\n'
HOST_GROUP = 'hostgroup:x:4444:\n'


@pytest.fixture
def hostile_rootfs(tmp_path):
    """-> (rootfs, plant): ``plant(name, target)`` makes ``rootfs/etc/NAME`` a symlink to ``target``.

    ``tmp_path/host/passwd`` and ``group`` stand for the host's files: distinctive names, ids, homes.
    """
    host = tmp_path / 'host'
    host.mkdir()
    (host / 'passwd').write_text(HOST_PASSWD)
    (host / 'group').write_text(HOST_GROUP)
    rootfs = tmp_path / 'rootfs'
    (rootfs / 'etc').mkdir(parents=True)

    def plant(name, target):
        os.symlink(target, str(rootfs / 'etc' / name))
    return str(rootfs), plant


@pytest.mark.parametrize('link', ['{host}/passwd', '../../host/passwd', '../../../../../../..{host}/passwd',
                                  '/../../../..{host}/passwd'])
def test_resolve_user_never_reads_a_host_passwd_through_a_symlink(lookup_mode, hostile_rootfs, tmp_path, link):
    rootfs, plant = hostile_rootfs
    plant('passwd', link.format(host=str(tmp_path / 'host')))
    with pytest.raises(ValidationError, match="'hostonly' is not in the root filesystem's /etc/passwd"):
        parsers.resolve_user('hostonly', rootfs)
    assert parsers.resolve_user('4321', rootfs) == '4321:0', 'not the gid the host file gives uid 4321'
    with pytest.raises(ValidationError, match="'root' is not in"):
        parsers.resolve_user('root', rootfs)


def test_resolve_user_never_reads_a_host_group_through_a_symlink(lookup_mode, hostile_rootfs, tmp_path):
    rootfs, plant = hostile_rootfs
    plant('group', str(tmp_path / 'host' / 'group'))
    with pytest.raises(ValidationError, match="group 'hostgroup' is not in the root filesystem's /etc/group"):
        parsers.resolve_user('0:hostgroup', rootfs)


def test_resolve_user_through_a_symlinked_etc_dir(lookup_mode, tmp_path):
    rootfs = tmp_path / 'rootfs'
    (rootfs / 'usr' / 'etc').mkdir(parents=True)
    (rootfs / 'usr' / 'etc' / 'passwd').write_text(PASSWD)
    (tmp_path / 'host-etc').mkdir()
    (tmp_path / 'host-etc' / 'passwd').write_text(HOST_PASSWD)
    os.symlink(str(tmp_path / 'host-etc'), str(rootfs / 'etc'))
    with pytest.raises(ValidationError, match="'hostonly' is not in"):
        parsers.resolve_user('hostonly', str(rootfs))
    os.unlink(str(rootfs / 'etc'))
    os.symlink('/usr/etc', str(rootfs / 'etc'))
    assert parsers.resolve_user('app', str(rootfs)) == '1000:1000', 'an absolute link means the root filesystem\'s own path'


def test_resolve_user_follows_absolute_links_inside_the_rootfs(lookup_mode, hostile_rootfs):
    """An honest image: /etc/passwd -> /usr/share/base-passwd/passwd is that file of the image, not of the host."""
    rootfs, plant = hostile_rootfs
    os.makedirs(os.path.join(rootfs, 'usr/share/base-passwd'))
    with open(os.path.join(rootfs, 'usr/share/base-passwd/passwd'), 'w') as handle:
        handle.write(PASSWD)
    plant('passwd', '/usr/share/base-passwd/passwd')
    assert parsers.resolve_user('app', rootfs) == '1000:1000'
    assert parsers.resolve_user('www-data', rootfs) == '33:33'


@pytest.mark.timeout(20)
@pytest.mark.parametrize('fifo_at', ['etc/passwd', 'run/fifo'])
def test_resolve_user_refuses_a_fifo_without_hanging(lookup_mode, hostile_rootfs, fifo_at):
    rootfs, plant = hostile_rootfs
    os.makedirs(os.path.join(rootfs, 'run'))
    os.mkfifo(os.path.join(rootfs, fifo_at))
    if fifo_at != 'etc/passwd':
        plant('passwd', '/' + fifo_at)
    for value, wanted in (('app', "user 'app'"), ('1000', 'the group of uid 1000')):
        with pytest.raises(ValidationError) as info:
            parsers.resolve_user(value, rootfs)
        assert info.value.msg == ('user: cannot look up %s: /etc/passwd in the root filesystem is refused: a FIFO, not '
                                  'a regular file' % wanted)
    assert parsers.resolve_user('1000:1000', rootfs) == '1000:1000', 'a numeric uid:gid reads nothing'


def test_resolve_user_refuses_a_symlink_loop_and_a_huge_file(lookup_mode, hostile_rootfs):
    rootfs, plant = hostile_rootfs
    plant('passwd', 'passwd')
    with pytest.raises(ValidationError, match='refused: a symbolic link loop'):
        parsers.resolve_user('app', rootfs)
    with open(os.path.join(rootfs, 'etc/group'), 'w') as handle:
        handle.write('big:x:1:\n' * (1 << 20))
    with pytest.raises(ValidationError, match='/etc/group in the root filesystem is refused: larger than 4 MiB'):
        parsers.resolve_user('0:big', rootfs)


def test_resolve_user_in_an_fd_of_the_rootfs(lookup_mode, user_rootfs):
    fd = os.open(user_rootfs, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert parsers.resolve_user('app:staff', fd) == '1000:50'
    finally:
        os.close(fd)


@pytest.mark.timeout(20)
@pytest.mark.parametrize('name', ['passwd', 'group'])
def test_check_user_db_refuses_what_would_block_the_runtime(lookup_mode, user_rootfs, tmp_path, name):
    parsers.check_user_db(user_rootfs, 'cannot exec in container web')
    parsers.check_user_db(str(tmp_path / 'nothing-here'), 'cannot exec in container web')
    os.unlink(os.path.join(user_rootfs, 'etc', name))
    os.symlink(str(tmp_path / 'host-file'), os.path.join(user_rootfs, 'etc', name))
    os.mkfifo(str(tmp_path / 'host-file'))
    parsers.check_user_db(user_rootfs, 'cannot exec in container web')  # a link to a host FIFO leads nowhere inside
    os.unlink(os.path.join(user_rootfs, 'etc', name))
    os.mkfifo(os.path.join(user_rootfs, 'etc', name))
    with pytest.raises(ValidationError) as info:
        parsers.check_user_db(user_rootfs, 'cannot exec in container web')
    assert info.value.msg == ('cannot exec in container web: /etc/%s in its root filesystem is a FIFO, not a regular '
                              'file, and the OCI runtime would block reading it to set up the user; make it a regular '
                              'file' % name)


# -- validate_name ----------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['web', 'a', 'A1', '0', '9lives', 'web-1', 'web_1', 'web.1', 'x.y-z_1', 'a.',
                                  'a' * 128, '1' + '-' * 127])
def test_validate_name_accepts(name):
    assert parsers.validate_name(name) == name


@pytest.mark.parametrize('name', [
    '', 'a/b', 'web/', '/web', '../x', 'a..b', '..', '.', 'a b', ' web', 'web ', 'a\tb',
    'a' * 129, '.web', '-web', '_web', 'w\u00e9b', 'web:1', 'web@1', None, 5, ['web'],
])
def test_validate_name_rejects(name):
    with pytest.raises(ValidationError, match='invalid container name'):
        parsers.validate_name(name)


@pytest.mark.parametrize('name', ['web\n', 'a' * 128 + '\n'])
def test_validate_name_rejects_trailing_newline(name):
    with pytest.raises(ValidationError):
        parsers.validate_name(name)
