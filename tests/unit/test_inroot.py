# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_runtime/inroot.py: paths resolved and files read inside a root, never out of it.

Every test runs twice: with openat2(2) (RESOLVE_IN_ROOT), and with the component walk the module
uses where the kernel has no openat2 (forced here). Both must give the same answers.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys

import pytest

from ansible_collections.runcible.oci.plugins.module_utils._runtime import inroot

HOST_SECRET = b'hostonly:x:4321:4321:host only:/host-only-home:/bin/sh\n'
INSIDE = b'root:x:0:0:root:/root:/bin/sh\n'


@pytest.fixture
def world(tmp_path):
    """A root ``tmp/root`` next to a "host" file ``tmp/host-passwd`` and dir ``tmp/host-etc``, with links at them.

    -> (root, host_file). The host file must never be what a lookup in the root finds.
    """
    root = tmp_path / 'root'
    host = tmp_path / 'host-passwd'
    host.write_bytes(HOST_SECRET)
    (tmp_path / 'host-etc').mkdir()
    (tmp_path / 'host-etc' / 'passwd').write_bytes(HOST_SECRET)
    for directory in ('etc', 'tmp', 'a/b/c', 'usr/share', 'dev'):
        (root / directory).mkdir(parents=True)
    (root / 'usr' / 'share' / 'passwd').write_bytes(INSIDE)
    links = {
        'etc/abs-host': str(host),                             # absolute: the host's file, by the host's reading
        'etc/rel-host': '../../host-passwd',                   # relative, climbing out of the root
        'etc/deep-rel-host': '../../../../../../../host-passwd',
        'a/b/c/chain1': '../chain2',                           # a chain of relative links that climbs out
        'a/b/chain2': '../../../host-passwd',
        'etc/host-etc': str(tmp_path / 'host-etc'),           # a directory link to the host
        'etc/honest-abs': '/usr/share/passwd',                 # absolute, meant inside the container
        'etc/honest-rel': '../usr/share/passwd',
        'etc/share-link': '/usr/share',
        'tmp/loop1': '/tmp/loop2',
        'tmp/loop2': '/tmp/loop1',
        'tmp/self': 'self',
        'tmp/dangling': '/nowhere',
        'etc/fifo-link': '/tmp/fifo',
        'etc/proc-link': '/proc/self/root/etc/passwd',
    }
    for name, target in links.items():
        os.symlink(target, str(root / name))
    os.mkfifo(str(root / 'tmp' / 'fifo'))
    (root / 'tmp' / 'file').write_bytes(b'file\n')
    return str(root), str(host)


# Where each path leads inside the root: bytes read, or the errno that refused it.
CASES = [
    ('/usr/share/passwd', INSIDE),
    ('/etc/honest-abs', INSIDE),
    ('/etc/honest-rel', INSIDE),
    ('/tmp/../usr/./share//passwd', INSIDE),
    ('/../../../../usr/share/passwd', INSIDE),
    ('usr/share/passwd', INSIDE),
    ('/a/b/c/../../../usr/share/passwd', INSIDE),
    ('/etc/share-link/../share/passwd', INSIDE),
    ('/etc/host-etc/../../usr/share/passwd', errno.ENOENT),
    ('/etc/abs-host', errno.ENOENT),
    ('/etc/rel-host', errno.ENOENT),
    ('/etc/deep-rel-host', errno.ENOENT),
    ('/a/b/c/chain1', errno.ENOENT),
    ('/etc/host-etc/passwd', errno.ENOENT),
    ('/../host-passwd', errno.ENOENT),
    ('/../../../../../../host-passwd', errno.ENOENT),
    ('/tmp/loop1', errno.ELOOP),
    ('/tmp/self', errno.ELOOP),
    ('/tmp/dangling', errno.ENOENT),
    ('/tmp/fifo', errno.EINVAL),
    ('/etc/fifo-link', errno.EINVAL),
    ('/tmp', errno.EINVAL),
    ('/', errno.EINVAL),
    ('/tmp/file/', errno.ENOTDIR),
    ('/tmp/file/.', errno.ENOTDIR),
    ('/tmp/file/x', errno.ENOTDIR),
    ('/etc/proc-link', errno.ENOENT),
]


def outcome(root, path, **kwargs):
    try:
        return inroot.read_file(root, path, **kwargs)
    except OSError as exc:
        return exc.errno


@pytest.mark.timeout(20)
@pytest.mark.parametrize('path, expected', CASES)
def test_read_file_stays_inside_the_root(lookup_mode, world, path, expected):
    root, _host = world
    assert outcome(root, path) == expected


@pytest.mark.timeout(20)
def test_both_lookups_give_the_same_answers(world, monkeypatch):
    root, _host = world
    monkeypatch.setattr(inroot, '_openat2', None)
    if not inroot.have_openat2():
        pytest.skip('this kernel has no openat2(2): nothing to compare the component walk with')
    kernel = [outcome(root, path) for path, _expected in CASES]
    monkeypatch.setattr(inroot, '_openat2', False)
    walked = [outcome(root, path) for path, _expected in CASES]
    assert kernel == walked


def test_the_host_file_is_what_a_plain_open_would_read(world):
    """The attack is real: the host following the links reads the host's file."""
    root, _host = world
    for name in ('etc/abs-host', 'etc/rel-host', 'a/b/c/chain1', 'etc/host-etc/passwd'):
        with open(os.path.join(root, name), 'rb') as handle:
            assert handle.read() == HOST_SECRET


def test_an_absolute_link_finds_the_file_of_that_name_inside_the_root(lookup_mode, world):
    root, host = world
    planted = os.path.join(root, host.lstrip('/'))
    os.makedirs(os.path.dirname(planted))
    with open(planted, 'wb') as handle:
        handle.write(INSIDE)
    assert inroot.read_file(root, '/etc/abs-host') == INSIDE
    assert outcome(root, '/etc/rel-host') == errno.ENOENT, 'climbs to the root only: <root>/host-passwd'


def test_root_may_be_an_fd(lookup_mode, world):
    root, _host = world
    fd = inroot.open_root(root)
    try:
        assert inroot.read_file(fd, '/etc/honest-abs') == INSIDE
        assert outcome(fd, '/etc/abs-host') == errno.ENOENT
        assert os.fstat(fd)  # still open: the caller's
    finally:
        os.close(fd)


def test_symlink_limit_is_the_kernels(lookup_mode, tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    (root / 'target').write_bytes(b'end')
    os.symlink('target', str(root / 'l0'))
    for index in range(1, 41):
        os.symlink('l%d' % (index - 1), str(root / ('l%d' % index)))
    assert inroot.read_file(str(root), '/l39') == b'end', '40 links are followed'
    assert outcome(str(root), '/l40') == errno.ELOOP, 'the 41st is refused'


@pytest.mark.timeout(20)
def test_fifo_socket_device_and_directory_are_refused_without_opening_them(lookup_mode, tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    os.mkfifo(str(root / 'fifo'))
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(root / 'sock'))
    try:
        kinds = {'fifo': 'a FIFO', 'sock': 'a socket'}
        if os.geteuid() == 0:
            os.mknod(str(root / 'null'), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
            kinds['null'] = 'a character device'
        os.mkdir(str(root / 'dir'))
        kinds['dir'] = 'a directory'
        for name, kind in kinds.items():
            with pytest.raises(OSError) as info:
                inroot.read_file(str(root), '/' + name)
            assert info.value.errno == errno.EINVAL
            assert inroot.reason(info.value) == '%s, not a regular file' % kind
    finally:
        listener.close()


def test_size_is_bounded(lookup_mode, tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    (root / 'big').write_bytes(b'x' * (inroot.MAX_FILE_SIZE + 1))
    (root / 'limit').write_bytes(b'y' * inroot.MAX_FILE_SIZE)
    with pytest.raises(OSError) as info:
        inroot.read_file(str(root), '/big')
    assert info.value.errno == errno.EFBIG
    assert inroot.reason(info.value) == 'larger than 4 MiB, the most that is read'
    assert len(inroot.read_file(str(root), '/limit')) == inroot.MAX_FILE_SIZE
    assert outcome(str(root), '/limit', limit=10) == errno.EFBIG


def test_size_is_bounded_when_the_file_says_it_is_empty(lookup_mode):
    """procfs files show a size of 0 and yet have content: the read itself is bounded too."""
    assert len(inroot.read_file('/', '/proc/self/status')) > 10
    assert outcome('/', '/proc/self/status', limit=10) == errno.EFBIG


class FakeClock(object):
    """time.monotonic() that moves 10 s on every call: any deadline passes at its first check."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        self.now += 10.0
        return self.now


def test_a_slow_read_is_refused_at_the_deadline(lookup_mode, world, monkeypatch):
    root, _host = world
    monkeypatch.setattr(inroot, 'time', FakeClock())
    with pytest.raises(OSError) as info:
        inroot.read_file(root, '/usr/share/passwd', timeout=5)
    assert info.value.errno == errno.ETIMEDOUT and inroot.reason(info.value) == 'not read within 5 s'


def test_exists(lookup_mode, world):
    root, _host = world
    assert inroot.exists(root, '/etc/honest-abs') and inroot.exists(root, '/tmp/fifo')
    assert inroot.exists(root, '/') and inroot.exists(root, '/tmp/') and inroot.exists(root, '/../../tmp')
    for path in ('/etc/abs-host', '/etc/rel-host', '/a/b/c/chain1', '/etc/host-etc/passwd', '/tmp/dangling',
                 '/tmp/file/x', '/tmp/file/', '/' + 'x' * 300):
        assert not inroot.exists(root, path), path
    with pytest.raises(OSError) as info:
        inroot.exists(root, '/tmp/loop1/x')
    assert info.value.errno == errno.ELOOP


def test_listdir(lookup_mode, world):
    root, _host = world
    assert sorted(inroot.listdir(root, '/a/b/c/../..')) == ['b']
    assert sorted(inroot.listdir(root, '/etc/share-link/..')) == ['share'], '".." after a link: its target\'s parent'
    with pytest.raises(FileNotFoundError):
        inroot.listdir(root, '/etc/host-etc')
    with pytest.raises(FileNotFoundError):
        inroot.listdir(root, '/etc/host-etc/../../usr'), 'the link is followed before "..", and leads nowhere'
    with pytest.raises(NotADirectoryError):
        inroot.listdir(root, '/tmp/file')
    with pytest.raises(NotADirectoryError):
        inroot.listdir(root, '/tmp/fifo')


def test_resolve_path_names_the_place_inside_the_root(world):
    root, host = world
    assert inroot.resolve_path(root, '/etc/honest-abs') == '/usr/share/passwd'
    assert inroot.resolve_path(root, '/a/b/c/chain1') == '/host-passwd'
    assert inroot.resolve_path(root, '/etc/abs-host') == host
    assert inroot.resolve_path(root, '/etc/host-etc/passwd') == str(os.path.dirname(host)) + '/host-etc/passwd'
    assert inroot.resolve_path(root, '/../..') == '/'
    assert inroot.resolve_path(root, '/tmp/file/x') == '/tmp/file/x'
    with pytest.raises(OSError):
        inroot.resolve_path(root, '/tmp/loop1')


def test_kind_names_what_a_path_leads_to_without_opening_it(lookup_mode, world):
    root, _host = world
    assert inroot.kind(root, '/etc/honest-abs') == 'a regular file'
    assert inroot.kind(root, '/etc/fifo-link') == 'a FIFO'
    assert inroot.kind(root, '/etc/share-link') == 'a directory'
    for path in ('/etc/abs-host', '/tmp/loop1', '/tmp/dangling'):
        assert inroot.kind(root, path) is None, path


def test_a_nul_byte_is_refused(lookup_mode, world):
    root, _host = world
    assert outcome(root, '/etc/\0passwd') == errno.EINVAL


def test_importing_it_does_no_work():
    """No ctypes (nor anything else heavy) at import: it is loaded on the first lookup."""
    code = ('import sys; from ansible_collections.runcible.oci.plugins.module_utils._runtime import inroot; '
            'before = "ctypes" in sys.modules; inroot.read_file("/", "/proc/self/status"); '
            'print(before, "ctypes" in sys.modules or not inroot.have_openat2())')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    out = subprocess.run([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE, check=True).stdout
    assert out.split() == [b'False', b'True']
