# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A two-container application on a systemd host: one serves (busybox httpd), the other reaches it by its name and
by its alias through the network's aardvark-dns; everything goes with the containers and the network."""

from __future__ import annotations

import pytest

from vmhosts import GUEST_ROOTFS

SERVE = "trap 'exit 0' TERM; mkdir -p /www; echo 'hello from web' > /www/index.html; httpd -f -p 80 -h /www & wait"
LOOP = "trap 'exit 0' TERM; while true; do sleep 1; done"
NETWORK = 'vmt-app'


@pytest.mark.quick
def test_two_containers_on_a_dns_network_reach_each_other_by_name(vm_b, play):
    base = {'rootfs': GUEST_ROOTFS, 'runtime': 'runc', 'stop_timeout': 2, 'network': NETWORK}
    fetch = 'busybox timeout 10 busybox wget -q -O - http://%s/index.html'
    try:
        results = play.run(
            [{'action': 'runcible.oci.network', 'args': {'name': NETWORK}},
             {'runcible.oci.container': dict(base, name='web', command=['sh', '-c', SERVE], aliases=['www'])},
             {'runcible.oci.container': dict(base, name='client', command=['sh', '-c', LOOP])}]
            + [{'runcible.oci.container_exec': {'container': 'client', 'argv': ['sh', '-c', fetch % name]},
                'retries': 10, 'delay': 1, 'register': 'got', 'until': 'got.rc == 0'} for name in ('web', 'www')]
            + [{'action': 'runcible.oci.network_info', 'args': {'name': NETWORK}}], hosts='vm-b')
        assert [result['stdout'].strip() for result in results[3:5]] == ['hello from web'] * 2, results[3:5]
        assert sorted(ctr['name'] for ctr in results[5]['networks'][0]['containers']) == ['client', 'web']
    finally:
        play.run([{'runcible.oci.container': {'name': name, 'state': 'absent'}} for name in ('client', 'web')]
                 + [{'action': 'runcible.oci.network', 'args': {'name': NETWORK, 'state': 'absent'}}], hosts='vm-b')
    assert vm_b.sh('pgrep -x aardvark-dns || echo none').strip() == 'none'
