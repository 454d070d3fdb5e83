# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy what an image has at a declared volume's path into the new, empty volume (as docker and podman do).

The image is an author's: its path is resolved inside the container's root filesystem (:mod:`.inroot`),
and the copy never follows a link. Directories and regular files are copied with their owner, mode and
times; symbolic links are copied as links (the container resolves them, inside itself); devices, FIFOs
and sockets are left out. Every file is made with ``O_EXCL | O_NOFOLLOW`` relative to its directory's fd,
so nothing in the volume can redirect a write. The copy takes no more room than the image's layers:
hard links stay links and the holes of a sparse file stay holes (an image author cannot turn a small
layer into a disk-filling volume).
"""

from __future__ import annotations

import os
import stat

from . import inroot

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
CHUNK = 1 << 20
MAX_DEPTH = 256


def copy_up(rootfs: str, path: str, data_dir: str) -> bool:
    """Copy ``path`` of the root filesystem ``rootfs`` into the empty directory ``data_dir``; -> False when the
    image has nothing (or no directory) there, or ``data_dir`` is not empty (never overwritten)."""
    try:
        found = inroot.lookup(rootfs, path)
    except OSError:
        return False
    try:
        if not stat.S_ISDIR(os.fstat(found).st_mode):
            return False
        # The same directory, opened for reading (the magic link is the fd's own: nothing to follow).
        source = os.open('/proc/self/fd/%d' % found, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(found)
    try:
        target = os.open(data_dir, _DIR)
        try:
            if os.listdir(target):
                return False
            info = os.fstat(source)
            os.fchown(target, info.st_uid, info.st_gid)
            os.fchmod(target, stat.S_IMODE(info.st_mode))
            linked: dict[tuple[int, int], tuple[int, str]] = {}
            try:
                _copy_dir(source, target, 0, linked)
            finally:
                for fd, _name in linked.values():
                    os.close(fd)
            os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(target)
    finally:
        os.close(source)
    return True


def _copy_dir(source: int, target: int, depth: int, linked: dict[tuple[int, int], tuple[int, str]]) -> None:
    """``linked``: (device, inode) of a file with more than one link -> (a directory fd kept open, its name there)."""
    if depth > MAX_DEPTH:
        raise OSError('the image\'s volume content is nested more than %d directories deep' % MAX_DEPTH)
    for name in sorted(os.listdir(source)):
        info = os.stat(name, dir_fd=source, follow_symlinks=False)
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISDIR(info.st_mode):
            os.mkdir(name, 0o700, dir_fd=target)
            child_source = os.open(name, _DIR, dir_fd=source)
            try:
                child_target = os.open(name, _DIR, dir_fd=target)
                try:
                    _copy_dir(child_source, child_target, depth + 1, linked)
                    os.fchown(child_target, info.st_uid, info.st_gid)
                    os.fchmod(child_target, mode)
                    os.utime(child_target, ns=(info.st_atime_ns, info.st_mtime_ns))
                finally:
                    os.close(child_target)
            finally:
                os.close(child_source)
        elif stat.S_ISREG(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if info.st_nlink > 1 and key in linked:
                first_dir, first_name = linked[key]
                os.link(first_name, name, src_dir_fd=first_dir, dst_dir_fd=target, follow_symlinks=False)
                continue
            _copy_file(source, target, name, info)
            if info.st_nlink > 1:
                linked[key] = (os.dup(target), name)
        elif stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(name, dir_fd=source), name, dir_fd=target)
            os.chown(name, info.st_uid, info.st_gid, dir_fd=target, follow_symlinks=False)
        # devices, FIFOs and sockets: not copied


def _copy_file(source: int, target: int, name: str, info: os.stat_result) -> None:
    reader = os.open(name, _READ, dir_fd=source)
    try:
        if not stat.S_ISREG(os.fstat(reader).st_mode):
            return  # swapped for something else meanwhile
        writer = os.open(name, _WRITE, 0o600, dir_fd=target)
        try:
            _copy_data(reader, writer, os.fstat(reader).st_size)
            os.fchown(writer, info.st_uid, info.st_gid)
            os.fchmod(writer, stat.S_IMODE(info.st_mode))  # after the chown, which clears set-id bits
            os.utime(writer, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(writer)
    finally:
        os.close(reader)


def _copy_data(reader: int, writer: int, size: int) -> None:
    """The data segments of the file only (SEEK_DATA/SEEK_HOLE): holes stay holes, then the size is set."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(reader, offset, os.SEEK_DATA)
        except OSError:
            break  # only a hole is left (ENXIO)
        end = os.lseek(reader, start, os.SEEK_HOLE)
        os.lseek(writer, start, os.SEEK_SET)
        os.lseek(reader, start, os.SEEK_SET)
        left = end - start
        while left > 0:
            chunk = os.read(reader, min(CHUNK, left))
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(writer, view):]
            left -= len(chunk)
        offset = end
    os.ftruncate(writer, size)


def empty_dir(path: str) -> None:
    """Remove everything in the directory ``path`` (links removed, never followed), keeping the directory."""
    fd = os.open(path, _DIR)
    try:
        for name in os.listdir(fd):
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                _remove_tree(fd, name)
            else:
                os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)


def _remove_tree(parent: int, name: str, depth: int = 0) -> None:
    """rm -r of ``name`` in the directory ``parent``, by fds (Python 3.9 has no shutil.rmtree(dir_fd=))."""
    if depth > MAX_DEPTH:
        raise OSError('more than %d directories deep' % MAX_DEPTH)
    fd = os.open(name, _DIR, dir_fd=parent)
    try:
        for child in os.listdir(fd):
            if stat.S_ISDIR(os.stat(child, dir_fd=fd, follow_symlinks=False).st_mode):
                _remove_tree(fd, child, depth + 1)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
