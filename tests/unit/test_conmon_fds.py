# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""conmon's fds: placed at 3, 4, ... in the child between fork and exec, whatever numbers they had.

The launch once named the parent's fd numbers to ``Popen(pass_fds=...)``; with other threads closing
fds, a number could be free at the fork and the child failed with EBADF under load. Now the child
copies its own fds into place (``conmon.place_child_fds``); these tests run it in a real forked child
with sources that sit on each other's targets, and with strays that must not reach conmon.
"""

from __future__ import annotations

import json
import os

from ansible_collections.runcible.oci.plugins.module_utils._runtime import conmon


def identity(fd):
    st = os.fstat(fd)
    return [st.st_dev, st.st_ino]


def in_child(arrange):
    """Fork; in the child ``arrange()`` -> (child_fds, expected identities, fds that must be gone), then
    place_child_fds; -> what the child saw (the identities at 3.., and which strays are still open)."""
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            child_fds, expected, strays = arrange()
            keep_report = os.dup(report_w)  # non-inheritable: placement must leave it alone
            conmon.place_child_fds(child_fds)
            seen = [identity(3 + index) for index in range(len(child_fds))]
            inheritable = [os.get_inheritable(3 + index) for index in range(len(child_fds))]
            open_strays = []
            for fd in strays:
                try:
                    os.fstat(fd)
                    open_strays.append(fd)
                except OSError:
                    pass
            os.write(keep_report, json.dumps({'seen': seen, 'expected': expected, 'inheritable': inheritable,
                                              'open_strays': open_strays}).encode())
        finally:
            os._exit(0)
    os.close(report_w)
    data = b''
    while True:
        chunk = os.read(report_r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(report_r)
    os.waitpid(pid, 0)
    return json.loads(data)


def test_sources_sitting_on_each_others_targets_are_swapped_not_lost():
    def arrange():
        # Two pipes moved to 3 and 4, to be placed the other way round (4 -> 3, 3 -> 4), plus one at 9 -> 5.
        a_r, a_w = os.pipe()
        b_r, b_w = os.pipe()
        c_r, _c_w = os.pipe()
        os.dup2(a_r, 3)
        os.dup2(b_r, 4)
        os.dup2(c_r, 9)
        expected = [identity(4), identity(3), identity(9)]
        return [4, 3, 9], expected, []
    report = in_child(arrange)
    assert report['seen'] == report['expected']
    assert all(report['inheritable'])


def test_inheritable_strays_are_closed_and_close_on_exec_ones_are_left():
    def arrange():
        wanted_r, _wanted_w = os.pipe()
        stray_r, _stray_w = os.pipe()
        os.set_inheritable(stray_r, True)  # e.g. a pipe another thread made inheritable
        high = os.dup2(stray_r, 40)  # inheritable
        return [wanted_r], [identity(wanted_r)], [stray_r, high]
    report = in_child(arrange)
    assert report['seen'] == report['expected']
    assert report['open_strays'] == []
