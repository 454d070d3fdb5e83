# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit-managed containers on a host without systemd as PID 1 (this one): refused clearly, in check mode too,
with nothing made -- no record, no lock file, no unit file. The real behaviour is tests/vm/test_vm_units.py."""

from __future__ import annotations

import os

import pytest

NAME = 'test-unit'
UNIT = '/etc/systemd/system/runcible-%s.service' % NAME


def args(env, **params):
    base = {'name': NAME, 'rootfs': env.rootfs, 'command': ['sleep', '60'], 'network': 'none'}
    base.update(params)
    return base


@pytest.fixture(autouse=True)
def no_systemd():
    if os.path.isdir('/run/systemd/system'):
        pytest.skip('this host runs systemd: the refusal is for hosts without it (the VM tests run units)')


@pytest.mark.parametrize('params, message', [
    ({'systemd_unit': True}, 'systemd_unit: this host does not run systemd as PID 1'),
    ({'systemd_unit': True, 'sdnotify': 'container', 'systemd_socket': ['8080']},
     'systemd_unit: this host does not run systemd as PID 1'),
    ({'sdnotify': 'container'}, 'sdnotify: container is how a unit of the container tells systemd'),
    ({'systemd_socket': ['8080']}, 'systemd_socket: the sockets of a unit that runs the container'),
    ({'systemd_socket': ['80; rm -rf /']}, 'systemd_socket'),
])
def test_a_unit_is_refused_without_systemd_and_nothing_is_made(env, params, message):
    tasks = [{'runcible.oci.container': args(env, **params), 'check_mode': check, 'ignore_errors': True}
             for check in (True, False)]
    results = env.playbook(tasks)
    for result in results:
        assert result['_status'] == 'failed' and message in result['msg'], result
        assert not result.get('changed')
    assert not os.path.exists(os.path.join(env.root, 'containers', NAME))
    assert not os.path.exists(os.path.join(env.root, 'locks', NAME + '.lock'))
    assert not os.path.lexists(UNIT)
    assert env.leftovers() == []


def test_an_existing_container_cannot_become_unit_managed_here(env):
    env.run(**args(env))
    with pytest.raises(Exception, match='does not run systemd as PID 1'):
        env.run(**args(env, systemd_unit=True))
    assert env.inspect(NAME)['status'] == 'running' and not os.path.lexists(UNIT)  # untouched
    env.run(name=NAME, state='absent')
