# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""make bench: what runcible.oci costs per container, next to the floor of the bare runtime.

Two views, both on the busybox root filesystem of the tests:

* module work: the container task run in-process through the Python API (what the module does
  once Ansible has started it), median over N containers;
* through ansible-playbook: a loop over N containers, minus the same loop of ansible.builtin.ping
  (Ansible's own per-item floor), per container.

The floor is ``runc run`` of ``echo`` on the same root filesystem and the same kind of bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.environ.get('RUNCIBLE_REPO') or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = (os.environ.get('ANSIBLE_COLLECTIONS_PATH') or os.path.join(REPO, 'build', 'collections')).split(':')[0]
sys.path.insert(0, COLLECTIONS)

from ansible_collections.runcible.oci.plugins.module_utils import _checkpoint, _container, _exec  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.apparmor import enabled as apparmor_enabled  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.checkpoint import find_criu  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.engine import Engine  # noqa: E402
from ansible_collections.runcible.oci.plugins.module_utils._runtime.host import find_program  # noqa: E402

N = int(os.environ.get('BENCH_N', '10'))
REPEATS = int(os.environ.get('BENCH_REPEATS', '3'))
ROOTFS = os.environ.get('RUNCIBLE_TEST_ROOTFS') or os.path.join(REPO, 'build', 'rootfs', 'busybox')
LOOP = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
# One container task in a new Python, as a module runs (interpreter start and imports included).
FRESH_TASK = ('import json, sys; sys.path.insert(0, %r); '
              'from ansible_collections.runcible.oci.plugins.module_utils import _container; '
              '_container.run(json.loads(sys.argv[1]))' % COLLECTIONS)


def ms(seconds):
    return seconds * 1000.0


def timed(func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return time.perf_counter() - start, result


def runc_floor(base):
    """Median wall time of ``runc run`` (create, start, wait, delete) of echo, with our own spec."""
    runc = find_program('runc')
    params = dict(name='bench-floor', rootfs=ROOTFS, command=['echo', 'hi'], root=base + '/root',
                  run_root=base + '/run', state='stopped', rootfs_mode='direct', network='none')
    result = _container.run(params)
    bundle = result['container']['bundle']
    times = []
    for index in range(N):
        argv = [runc, '--root', base + '/floor', 'run', '--bundle', bundle, 'floor-%d' % index]
        elapsed, proc = timed(subprocess.run, argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise SystemExit('runc run failed: %s' % proc.stderr.decode())
        times.append(elapsed)
    _container.run(dict(params, state='absent'))
    return statistics.median(times)


def api_costs(base):
    root, run_root = base + '/root', base + '/run'
    names = ['bench-%d' % index for index in range(N)]
    phases = {}

    def phase(label, **params):
        times = []
        for name in names:
            args = dict(name=name, root=root, run_root=run_root, **params)
            elapsed, result = timed(_container.run, args)
            times.append(elapsed)
            last[label] = result
        phases[label] = statistics.median(times)

    last = {}
    create = dict(rootfs=ROOTFS, command=['sh', '-c', LOOP], memory='64m', stop_timeout=5)
    # network none here: these rows measure the container itself; network_costs() has the bridge.
    phase('create+start', network='none', **create)
    assert last['create+start']['changed']
    phase('idempotent re-run', network='none', **create)
    assert not last['idempotent re-run']['changed']
    env_file = os.path.join(base, 'bench.env')
    with open(env_file, 'w') as handle:
        handle.write('FROM_FILE=1\nOTHER=2\n')
    # 40 container options (the 4 of create among them).
    many = dict(create, env={'A': '1', 'B': '2', 'C': '3'}, workdir='/tmp', user='app', hostname='bench',
                read_only=False, mounts=['/tmp:/hosttmp:ro'], network='none', cpus=0.5, pids_limit=64,
                stop_signal='SIGTERM', labels={'role': 'bench', 'tier': 'x'}, rootfs_mode='overlay',
                entrypoint=[], env_file=[env_file], group_add=['app'], umask='0022', oom_score_adj=100,
                ulimits={'nofile': '1024:2048'}, sysctls={'net.ipv4.ping_group_range': '0 0'}, shm_size='32m',
                tmpfs={'/scratch': 'size=8m'}, init=bool(find_program('catatonit')), cap_drop=['NET_RAW'],
                cap_add=['CHOWN'], no_new_privileges=True, seccomp_profile='default', privileged=False,
                memory_reservation='32m', memory_swap='128m', cpu_shares=512, cpuset_cpus='0', cpuset_mems='0',
                log_driver='k8s-file', log_size_max='1m', devices=[], published_ports=[], comparisons={'labels': 'strict'})
    phase('recreate (40 options)', **many)
    phase('idempotent, 40 options', **many)
    assert not last['idempotent, 40 options']['changed']
    updated = dict(many)
    updated.update(memory='96m', cpus=0.75, pids_limit=96)
    phase('live update (memory, cpus, pids)', **updated)
    assert last['live update (memory, cpus, pids)']['actions'] == ['updated']
    phase('stop', state='stopped')
    phase('start again', state='started')
    phase('remove', state='absent')
    # The cost of the default confinement (seccomp filter, AppArmor where enabled): the same containers with and
    # without it, interleaved (one of each in turn), so that both see the same store and the same host load.
    times = {'confined': [], 'unconfined': []}
    unconfined = {'seccomp_profile': 'unconfined', 'apparmor_profile': 'unconfined'}
    for name in names:
        for kind, extra in (('confined', {}), ('unconfined', unconfined)):
            args = dict(name='%s-%s' % (name, kind), root=root, run_root=run_root, network='none', **dict(create, **extra))
            elapsed, _result = timed(_container.run, args)
            times[kind].append(elapsed)
    for name in names:
        for kind in times:
            _container.run(dict(name='%s-%s' % (name, kind), root=root, run_root=run_root, state='absent'))
    phases['create+start, confined'] = statistics.median(times['confined'])
    phases['create+start, unconfined'] = statistics.median(times['unconfined'])
    return phases


def checkpoint_costs(base):
    """Checkpoint + restore of an idle busybox container: module work vs bare runc checkpoint/restore."""
    root, run_root = base + '/ck-root', base + '/ck-run'
    idle = dict(rootfs=ROOTFS, command=['sh', '-c', LOOP], root=root, run_root=run_root, stop_timeout=1)
    rounds = max(3, N // 2)
    # The floor: runc alone on the same kind of container (made by the module, untimed), each round a
    # fresh one: a process restored by bare runc keeps runc's /dev/null stdio, which CRIU will not dump again.
    engine = Engine(root, run_root)
    criu = find_criu(run_root)
    raw = []
    for index in range(rounds):
        _container.run(dict(idle, name='bench-ck-raw'))
        record, _live = engine.inspect('bench-ck-raw')
        runtime = engine.runtime_for(record)
        runtime.criu_path = criu
        images = '%s/raw-%d' % (base, index)
        os.makedirs(images)
        try:
            start = time.perf_counter()
            runtime.run(['checkpoint', '--image-path', images, '--work-path', images, record['id']])
            restore = [runtime.path] + runtime.global_args() + [
                'restore', '--detach', '--image-path', images, '--work-path', images,
                '--bundle', engine.paths(record).bundle, record['id']]
            # The restored process keeps runc's stdio: /dev/null, or we would wait for its EOF forever.
            proc = subprocess.run(restore, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=120, check=False)
            raw.append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise SystemExit('runc restore failed (see %s)' % runtime.log_path)
        finally:
            with engine.store.lock('bench-ck-raw'):
                engine.remove(engine.store.load('bench-ck-raw'), stop_timeout=0)
    _container.run(dict(idle, name='bench-ck'))
    module = []
    for _index in range(rounds):
        start = time.perf_counter()
        dumped = _checkpoint.run(dict(name='bench-ck', root=root, run_root=run_root))
        restored = _checkpoint.run(dict(name='bench-ck', root=root, run_root=run_root, state='restored'))
        module.append(time.perf_counter() - start)
        assert dumped['changed'] and restored['container']['status'] == 'running'
    _container.run(dict(idle, name='bench-ck', state='absent'))
    return {'raw': statistics.median(raw), 'module': statistics.median(module)}


def exec_costs(base):
    """Exec of ``true`` into one running container: module work vs bare ``runc exec``, interleaved."""
    root, run_root = base + '/ex-root', base + '/ex-run'
    _container.run(dict(name='bench-exec', rootfs=ROOTFS, command=['sh', '-c', LOOP], root=root, run_root=run_root,
                        stop_timeout=1))
    engine = Engine(root, run_root)
    record, _live = engine.inspect('bench-exec')
    runtime = engine.runtime_for(record)
    floor_argv = [runtime.path, '--root', runtime.state_root, 'exec', record['id'], 'true']
    params = dict(container='bench-exec', argv=['true'], root=root, run_root=run_root)
    raw, module = [], []
    for _index in range(3 * N):
        elapsed, proc = timed(subprocess.run, floor_argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise SystemExit('runc exec failed: %s' % proc.stderr.decode())
        raw.append(elapsed)
        elapsed, result = timed(_exec.run, params)
        assert result['rc'] == 0 and not result.get('failed'), result
        module.append(elapsed)
    _container.run(dict(name='bench-exec', root=root, run_root=run_root, state='absent'))
    return {'raw': statistics.median(raw), 'module': statistics.median(module)}


def image_costs(base):
    """First container from an image (verify + unpack every layer) vs a second one (layers shared)."""
    sys.path.insert(0, os.path.join(REPO, 'tests'))
    from oci_build import LayoutBuilder, dir_member, file_member  # pylint: disable=import-outside-toplevel
    layout = LayoutBuilder(os.path.join(base, 'img-layout'))
    layers = [layout.layer_from_dir(ROOTFS), layout.layer([dir_member('app'), file_member('app/VERSION', b'1\n')])]
    layout.image(layers, {'Entrypoint': ['sh', '-c'], 'Cmd': [LOOP], 'WorkingDir': '/app'}, tag='bench')
    ref = 'oci:%s:bench' % layout.path
    first, second = [], []
    for index in range(max(3, N // 2)):
        params = dict(image=ref, network='none', stop_timeout=1, root='%s/img-root-%d' % (base, index),
                      run_root='%s/img-run-%d' % (base, index))
        elapsed, result = timed(_container.run, dict(params, name='bench-img-a'))
        assert result['actions'] == ['created', 'started'], result
        first.append(elapsed)
        elapsed, result = timed(_container.run, dict(params, name='bench-img-b'))
        assert result['actions'] == ['created', 'started'], result
        second.append(elapsed)
        for name in ('bench-img-a', 'bench-img-b'):
            _container.run(dict(params, name=name, state='absent'))
    unpacked = sum(len(layer.tar) for layer in layers) / 1e6
    podman = find_program('podman')
    podman_times = None
    if podman:
        store = ['--root', base + '/podman-root', '--runroot', base + '/podman-run']
        podman_times = []
        for name in ('bench-podman-a', 'bench-podman-b'):
            elapsed, proc = timed(subprocess.run, [podman] + store + ['create', '--name', name, ref],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  check=False)
            if proc.returncode != 0:
                raise SystemExit('podman create failed: %s' % proc.stderr.decode())
            podman_times.append(elapsed)
        subprocess.run([podman] + store + ['rm', '--all', '--force'], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        subprocess.run([podman] + store + ['system', 'reset', '--force'], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return {'first': statistics.median(first), 'second': statistics.median(second), 'layers': len(layers),
            'unpacked_mb': unpacked, 'podman': podman_times}


def network_costs(base):
    """create+start (and remove) with the default bridge network and one published port, vs network none.

    In-process, and in a new Python per task as a module runs (interpreter start and imports
    included, as every task pays them).
    """
    root, run_root = base + '/net-root', base + '/net-run'
    first_port = 41000
    costs = {}
    for label, extra in (('none', {'network': 'none'}), ('bridge', {})):
        create, remove = [], []
        for index in range(N):
            params = dict(name='bench-net-%d' % index, rootfs=ROOTFS, command=['sh', '-c', LOOP], root=root,
                          run_root=run_root, stop_timeout=5, **extra)
            if label == 'bridge':
                params['published_ports'] = ['%d:80' % (first_port + index)]
            elapsed, result = timed(_container.run, params)
            assert result['changed'] and (label == 'none') != bool(result['container']['ip_address'])
            create.append(elapsed)
        for index in range(N):
            elapsed, _result = timed(_container.run, dict(name='bench-net-%d' % index, state='absent', root=root,
                                                          run_root=run_root))
            remove.append(elapsed)
        costs[label] = statistics.median(create)
        costs[label + ' remove'] = statistics.median(remove)
    # As a module runs: a new Python per task; none and bridge interleaved, so that load drift hits both.
    fresh = {'none': [], 'bridge': []}
    for index in range(N):
        for label in ('none', 'bridge'):
            params = dict(name='bench-fresh-%s-%d' % (label, index), rootfs=ROOTFS, command=['sh', '-c', LOOP],
                          root=root, run_root=run_root, stop_timeout=5)
            if label == 'none':
                params['network'] = 'none'
            else:
                params['published_ports'] = ['%d:80' % (first_port + index)]
            elapsed, proc = timed(subprocess.run, [sys.executable, '-c', FRESH_TASK, json.dumps(params)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                raise SystemExit(proc.stdout.decode())
            fresh[label].append(elapsed)
    for label in ('none', 'bridge'):
        for index in range(N):
            _container.run(dict(name='bench-fresh-%s-%d' % (label, index), state='absent', root=root,
                                run_root=run_root))
    costs['fresh none'] = statistics.median(fresh['none'])
    costs['fresh bridge'] = statistics.median(fresh['bridge'])
    return costs


def live_network_costs(base):
    """A port on [::1] (its proxy process started after conmon) vs the same port on 127.0.0.1 (DNAT only), in-process,
    interleaved; and a second network attached to / detached from a running container live vs a recreate."""
    from ansible_collections.runcible.oci.plugins.module_utils import _network  # pylint: disable=import-outside-toplevel
    root, run_root = base + '/live-root', base + '/live-run'
    first_port = 42000
    times = {'127.0.0.1': [], '[::1]': [], 'attach': [], 'detach': [], 'recreate': []}
    second = 'rcbench%d' % os.getpid()
    _network.run({'name': second})
    try:
        for index in range(N):
            for host in ('127.0.0.1', '[::1]'):
                params = dict(name='bench-lo-%d' % index, rootfs=ROOTFS, command=['sh', '-c', LOOP], root=root,
                              run_root=run_root, stop_timeout=5, published_ports=['%s:%d:80' % (host, first_port + index)])
                elapsed, result = timed(_container.run, params)
                assert result['actions'] == ['created', 'started'], result['actions']
                times[host].append(elapsed)
                _container.run(dict(name='bench-lo-%d' % index, state='absent', root=root, run_root=run_root))
        for index in range(N):
            params = dict(name='bench-live-%d' % index, rootfs=ROOTFS, command=['sh', '-c', LOOP], root=root,
                          run_root=run_root, stop_timeout=0, networks=['runcible'])
            _container.run(params)
            for label, networks in (('attach', ['runcible', second]), ('detach', ['runcible']),
                                    ('recreate', [second])):
                elapsed, result = timed(_container.run, dict(params, networks=networks))
                assert ('recreated' in result['actions']) == (label == 'recreate'), result['actions']
                times[label].append(elapsed)
            _container.run(dict(name='bench-live-%d' % index, state='absent', root=root, run_root=run_root))
    finally:
        _network.run({'name': second, 'state': 'absent'})
    return dict((label, statistics.median(values)) for label, values in times.items())


# A task in a new Python that says which pyroute2 modules it imported (none on an idempotent run).
FRESH_TASK_PYROUTE2 = FRESH_TASK + '; print(sorted(m for m in sys.modules if m.split(".")[0] == "pyroute2"))'


def pyroute2_costs(base):
    """pyroute2's import in a new Python (above an empty one), and create+start with a bridge (no published
    port) vs network none, each in a new Python as a module runs, interleaved; the idempotent re-run of the
    bridged container must not import pyroute2."""
    empty, imported = [], []
    for _index in range(N):
        empty.append(timed(subprocess.run, [sys.executable, '-c', 'pass'], check=True)[0])
        imported.append(timed(subprocess.run, [sys.executable, '-c', 'from pyroute2.iproute.linux import IPRoute'],
                              check=True)[0])
    root, run_root = base + '/pr2-root', base + '/pr2-run'
    fresh = {'none': [], 'bridge': []}
    idempotent_imports = None
    try:
        for index in range(N):
            for label in ('none', 'bridge'):
                params = dict(name='bench-pr2-%s-%d' % (label, index), rootfs=ROOTFS, command=['sh', '-c', LOOP],
                              root=root, run_root=run_root, stop_timeout=5)
                if label == 'none':
                    params['network'] = 'none'
                elapsed, proc = timed(subprocess.run, [sys.executable, '-c', FRESH_TASK, json.dumps(params)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                if proc.returncode != 0:
                    raise SystemExit(proc.stdout.decode())
                fresh[label].append(elapsed)
        again = dict(name='bench-pr2-bridge-0', rootfs=ROOTFS, command=['sh', '-c', LOOP], root=root,
                     run_root=run_root, stop_timeout=5)
        proc = subprocess.run([sys.executable, '-c', FRESH_TASK_PYROUTE2, json.dumps(again)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True)
        idempotent_imports = json.loads(proc.stdout.decode().strip().splitlines()[-1].replace("'", '"'))
    finally:
        for label in ('none', 'bridge'):
            for index in range(N):
                _container.run(dict(name='bench-pr2-%s-%d' % (label, index), state='absent', root=root,
                                    run_root=run_root))
    return {'import': statistics.median(imported) - statistics.median(empty),
            'fresh none': statistics.median(fresh['none']), 'fresh bridge': statistics.median(fresh['bridge']),
            'idempotent imports': idempotent_imports}


NODE_ROUNDS = int(os.environ.get('BENCH_NODE_ROUNDS', '15'))


def payload(base, module, args):
    """The AnsiballZ payload Ansible sends for ``module`` with ``args`` (kept by ANSIBLE_KEEP_REMOTE_FILES);
    building it runs the module once."""
    remote = tempfile.mkdtemp(prefix='payload-', dir=base)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_KEEP_REMOTE_FILES='1',
               ANSIBLE_REMOTE_TMP=remote, ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_NOCOLOR='1')
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible'), 'localhost', '-c', 'local', '-i', 'localhost,',
            '-e', 'ansible_python_interpreter=' + sys.executable, '-m', module] + (['-a', json.dumps(args)] if args else [])
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stdout.decode())
    for directory, _dirs, files in os.walk(remote):
        for name in files:
            if name.startswith('AnsiballZ_'):
                return os.path.join(directory, name)
    raise SystemExit('no AnsiballZ payload kept for %s' % module)


def run_payload(path):
    elapsed, proc = timed(subprocess.run, [sys.executable, path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise SystemExit('%s failed: %s' % (path, proc.stdout.decode()[-2000:]))
    return elapsed


def import_times(path, top=8):
    """The collection's modules a payload imports, by cumulative import time (python -X importtime)."""
    proc = subprocess.run([sys.executable, '-X', 'importtime', path], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    entries = []
    for line in proc.stderr.decode().splitlines():
        fields = [field.strip() for field in line.split('|')]
        if len(fields) == 3 and 'runcible.oci.plugins' in fields[2]:
            entries.append((int(fields[1]), fields[2].split('module_utils.')[-1]))
    count = len(entries)
    return count, sorted(entries, reverse=True)[:top]


def node_costs(base):
    """What a task costs on the managed node: Ansible's payload of the module vs the payload of a ping.

    The payloads are run as Ansible runs them (a new Python, the zip unpacked, every module_utils file
    compiled from source), alternately, NODE_ROUNDS times; the median of the differences.
    """
    root, run_root = base + '/node-root', base + '/node-run'
    common = {'root': root, 'run_root': run_root}
    container = dict(common, name='bench-node', rootfs=ROOTFS, command=['sh', '-c', LOOP], network='none',
                     memory='64m')
    remove = dict(common, name='bench-node-new', state='absent')
    samples = {'idempotent': [], 'info': [], 'create': []}
    try:
        ping = payload(base, 'ansible.builtin.ping', {})
        idempotent = payload(base, 'runcible.oci.container', container)  # creates it; then idempotent
        info = payload(base, 'runcible.oci.container_info', dict(common, name='bench-node'))
        create = payload(base, 'runcible.oci.container', dict(container, name='bench-node-new'))
        _container.run(remove)
        for _round in range(NODE_ROUNDS):
            for label, path in (('idempotent', idempotent), ('info', info), ('create', create)):
                floor = run_payload(ping)
                samples[label].append(run_payload(path) - floor)
                if label == 'create':
                    _container.run(remove)
        pings = [run_payload(ping) for _round in range(5)]
        imports = import_times(idempotent)  # the container still exists: the idempotent path
    finally:  # an interrupted bench leaves no container behind
        _container.run(remove)
        _container.run(dict(common, name='bench-node', state='absent'))
    costs = dict((label, statistics.median(values)) for label, values in samples.items())
    costs['ping'] = statistics.median(pings)
    costs['sizes'] = dict((label, os.path.getsize(path)) for label, path in
                          (('ping', ping), ('container', idempotent), ('info', info)))
    costs['imports'] = imports
    return costs


def playbook_costs(base):
    root, run_root = base + '/root', base + '/run'
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')

    def play(tasks):
        book = os.path.join(base, 'bench.yml')
        with open(book, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle)
        argv = [os.path.join(bin_dir, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                '-e', 'ansible_python_interpreter=' + sys.executable, book]
        elapsed, proc = timed(subprocess.run, argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise SystemExit(proc.stdout.decode())
        return elapsed

    items = list(range(N))
    container = {'name': 'bench-pb-{{ item }}', 'rootfs': ROOTFS, 'command': ['sh', '-c', LOOP],
                 'root': root, 'run_root': run_root, 'memory': '64m', 'network': 'none'}
    remove = {'name': 'bench-pb-{{ item }}', 'state': 'absent', 'root': root, 'run_root': run_root}
    # ansible-playbook's own time varies by hundreds of ms run to run here: best of REPEATS.
    floor, create, again = [], [], []
    for _repeat in range(REPEATS):
        floor.append(play([{'ansible.builtin.ping': {}, 'loop': items}]))
        create.append(play([{'runcible.oci.container': container, 'loop': items}]))
        again.append(play([{'runcible.oci.container': container, 'loop': items}]))
        play([{'runcible.oci.container': remove, 'loop': items}])
    return {'floor': min(floor) / N, 'create+start': (min(create) - min(floor)) / N,
            'idempotent re-run': (min(again) - min(floor)) / N}


DEPLOY_N = int(os.environ.get('BENCH_DEPLOY_N', '50'))
DEPLOY_REPEATS = int(os.environ.get('BENCH_DEPLOY_REPEATS', '2'))
# Quiet busybox loops (one sleep a second each: fifty containers forking twenty times a second would load the host).
IDLE = "trap 'exit 0' TERM; while true; do sleep 1; done"
DEAF = "trap '' TERM; while true; do sleep 1; done"  # ignores SIGTERM: a stop waits its whole stop_timeout


def deployment_costs(base):
    """DEPLOY_N busybox containers in one playbook each way: one runcible.oci.deployment task vs a loop of
    runcible.oci.container tasks (create+start), the deployment's idempotent re-run, and its stop of containers
    that ignore SIGTERM (stop_timeout 2). Each time is the task's own, taken in the play between two set_fact
    timestamps (no ansible-playbook start-up); best of DEPLOY_REPEATS."""
    root, run_root = base + '/dep-root', base + '/dep-run'
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0')
    store = {'root': root, 'run_root': run_root}

    def task_time(task):
        tasks = [{'ansible.builtin.set_fact': {'bench_t0': '{{ now().timestamp() }}'}}, task,
                 {'ansible.builtin.set_fact': {'bench_t1': '{{ now().timestamp() }}'}},
                 {'ansible.builtin.debug': {'msg': 'BENCH_ELAPSED={{ bench_t1 | float - bench_t0 | float }}'}}]
        book = os.path.join(base, 'deploy-bench.yml')
        with open(book, 'w') as handle:
            json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle)
        argv = [os.path.join(bin_dir, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                '-e', 'ansible_python_interpreter=' + sys.executable, book]
        proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              check=False)
        output = proc.stdout.decode()
        if proc.returncode != 0:
            raise SystemExit(output)
        return float(output.split('BENCH_ELAPSED=')[1].split('"')[0])

    names = ['bench-dep-%d' % index for index in range(DEPLOY_N)]
    container = dict(store, rootfs=ROOTFS, command=['sh', '-c', IDLE], network='none', memory='64m')
    # The looped ones carry the set's label too, so that the deployment's state absent removes them.
    looped = {'runcible.oci.container': dict(container, name='{{ item }}', labels={'io.runcible.deploy': 'bench-dep'}),
              'loop': names}
    deployment = {'runcible.oci.deployment': dict(store, name='bench-dep', containers=[{'name': name} for name in names],
                                                  defaults=dict((key, value) for key, value in container.items()
                                                                if key not in store))}
    absent = {'runcible.oci.deployment': dict(store, name='bench-dep', state='absent')}
    rows = {'loop': [], 'deployment': [], 'idempotent': [], 'stop': []}
    try:
        for _repeat in range(DEPLOY_REPEATS):
            rows['loop'].append(task_time(looped))
            task_time(absent)
            rows['deployment'].append(task_time(deployment))
            rows['idempotent'].append(task_time(deployment))
            task_time(absent)
            deaf = json.loads(json.dumps(deployment))
            deaf['runcible.oci.deployment']['defaults'].update(command=['sh', '-c', DEAF], stop_timeout=2)
            task_time(deaf)
            deaf['runcible.oci.deployment']['state'] = 'stopped'
            rows['stop'].append(task_time(deaf))
            task_time(absent)
    finally:
        _container_cleanup(names, store)
    return dict((label, min(values)) for label, values in rows.items())


def _container_cleanup(names, store):
    for name in names:
        _container.run(dict(store, name=name, state='absent'))


def deployment_rows(dep):
    return [
        ('%d containers, loop of container tasks: create+start' % DEPLOY_N, ms(dep['loop']), 'the whole looped task'),
        ('%d containers, one deployment task: create+start' % DEPLOY_N, ms(dep['deployment']),
         'target >= 5x faster than the loop (%.1fx)' % (dep['loop'] / dep['deployment'])),
        ('%d containers, one deployment task: idempotent' % DEPLOY_N, ms(dep['idempotent']), 'target <= 1000 ms'),
        ('%d containers, one deployment task: stop (SIGTERM ignored, stop_timeout 2)' % DEPLOY_N, ms(dep['stop']),
         'target <= 4000 ms (serially: %d s of grace periods)' % (2 * DEPLOY_N)),
    ]


def live_network_rows(live):
    return [
        ('port on 127.0.0.1: create+start', ms(live['127.0.0.1']), 'module work, DNAT only'),
        ('port on [::1]: create+start', ms(live['[::1]']), '+%.0f ms: its port proxy (a process, after conmon)'
         % ms(live['[::1]'] - live['127.0.0.1'])),
        ('second network: attach live', ms(live['attach']), 'the same process goes on'),
        ('second network: detach live', ms(live['detach']), ''),
        ('network changed: recreate', ms(live['recreate']), 'what attach and detach cost before (%.1fx attach)'
         % (live['recreate'] / live['attach'])),
    ]


def print_rows(rows):
    for label, value, note in rows:
        print('%-42s %10.1f  %s' % (label, value, note))


def restart_costs(base):
    """Restart latency (SIGKILL of the process -> its replacement running, restart_policy always; the first
    restart of a streak has no back-off) and what the runtime library's install adds to a store's first launch."""
    import signal  # pylint: disable=import-outside-toplevel
    from ansible_collections.runcible.oci.plugins.module_utils._runtime import payload  # noqa: E402
    root, run_root = base + '/restart-root', base + '/restart-run'
    create = dict(rootfs=ROOTFS, command=['sh', '-c', LOOP], network='none', stop_timeout=5, root=root, run_root=run_root)
    store = Engine(root, run_root).store
    installs, latencies = [], []
    for index in range(N):
        payload._cache.clear()  # pylint: disable=protected-access
        started = time.perf_counter()
        payload.install('%s/install-%d' % (base, index))  # a fresh store each time
        installs.append(time.perf_counter() - started)
    for index in range(N + 1):  # the first restart compiles the installed library (once per version): not counted
        result = _container.run(dict(create, name='bench-restart-%d' % index, restart_policy='always'))
        pid = result['container']['pid']
        killed = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        while True:
            record, live = store.inspect('bench-restart-%d' % index)
            if live['status'] == 'running' and live['pid'] not in (0, pid):
                if index:
                    latencies.append(time.perf_counter() - killed)
                break
            if time.perf_counter() - killed > 10:
                raise RuntimeError('bench-restart-%d did not come back within 10 s' % index)
            time.sleep(0.005)
    for index in range(N + 1):
        _container.run(dict(name='bench-restart-%d' % index, state='absent', root=root, run_root=run_root))
    return {'latency': statistics.median(latencies), 'install': statistics.median(installs)}


def api_rows(floor, api):
    """The rows of the module's own work (api_costs), the last one the cost of the default confinement."""
    return [
        ('runc run (echo), the floor', ms(floor), ''),
        ('module work: create+start', ms(api['create+start']), 'target <= 3x floor = %.0f ms (%.1fx)'
         % (3 * ms(floor), api['create+start'] / floor)),
        ('module work: idempotent re-run', ms(api['idempotent re-run']), 'target <= 15 ms'),
        ('module work: idempotent, 40 options', ms(api['idempotent, 40 options']), 'target <= 15 ms'),
        ('module work: recreate (40 options)', ms(api['recreate (40 options)']), ''),
        ('module work: live update (memory, cpus, pids)', ms(api['live update (memory, cpus, pids)']),
         'same pid; vs recreate above'),
        ('module work: stop (SIGTERM honoured)', ms(api['stop']), ''),
        ('module work: start again', ms(api['start again']), ''),
        ('module work: remove', ms(api['remove']), ''),
        ('module work: create+start, unconfined', ms(api['create+start, unconfined']),
         'vs %.1f ms confined, interleaved: the default confinement (seccomp%s) costs %+.1f ms (%+.0f%%; target <= +15%%)'
         % (ms(api['create+start, confined']), ', AppArmor' if apparmor_enabled() else '',
            ms(api['create+start, confined']) - ms(api['create+start, unconfined']),
            100.0 * (api['create+start, confined'] / api['create+start, unconfined'] - 1))),
    ]


def main():
    if not os.path.isdir(ROOTFS):
        raise SystemExit('no root filesystem at %s: run make setup' % ROOTFS)
    if sys.argv[1:] == ['deployment']:  # only the deployment rows: python tests/bench/bench.py deployment
        base = tempfile.mkdtemp(prefix='rcb-', dir='/tmp')
        try:
            print_rows(deployment_rows(deployment_costs(base)))
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    if sys.argv[1:] == ['confinement']:  # the floor and the cost of the default confinement only
        base = tempfile.mkdtemp(prefix='rcb-', dir='/tmp')
        try:
            floor, api = runc_floor(base), api_costs(base)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        print_rows([row for row in api_rows(floor, api) if 'create+start' in row[0] or 'floor' in row[0]])
        return
    if sys.argv[1:] == ['networks']:  # only the rows of IPv6 loopback ports and live network changes
        base = tempfile.mkdtemp(prefix='rcb-', dir='/tmp')
        try:
            print_rows(live_network_rows(live_network_costs(base)))
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
    base = tempfile.mkdtemp(prefix='rcb-', dir='/tmp')
    try:
        floor = runc_floor(base)
        api = api_costs(base)
        rst = restart_costs(base)
        ck = checkpoint_costs(base)
        ex = exec_costs(base)
        img = image_costs(base)
        net = network_costs(base)
        pr2 = pyroute2_costs(base)
        live = live_network_costs(base)
        node = node_costs(base)
        pb = playbook_costs(base)
        dep = deployment_costs(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = api_rows(floor, api)[:-1] + [
        ('restart: SIGKILL -> running again', ms(rst['latency']), 'restart_policy always, no back-off (the first '
         'of a streak); target <= 1000 ms'),
        ('restart: runtime library install', ms(rst['install']), "added once to a store's first launch (and after "
         'an upgrade)'),
        api_rows(floor, api)[-1],
        ('runc checkpoint + runc restore, the floor', ms(ck['raw']), ''),
        ('module work: checkpoint + restore', ms(ck['module']), 'target <= 1.5x floor (%.2fx)'
         % (ck['module'] / ck['raw'])),
        ('runc exec (true), the floor', ms(ex['raw']), ''),
        ('module work: exec true', ms(ex['module']), 'target <= 2x floor (%.2fx)' % (ex['module'] / ex['raw'])),
        ('image: first container (unpack)', ms(img['first']),
         'create+start incl. verify + unpack of %d layers, %.1f MB' % (img['layers'], img['unpacked_mb'])),
        ('image: second container (shared layers)', ms(img['second']), 'create+start, layers reused (%.1fx faster)'
         % (img['first'] / img['second'])),
        ('podman create, same image: first', ms(img['podman'][0]) if img['podman'] else float('nan'),
         'podman pulls from the same OCI layout' if img['podman'] else 'podman not installed'),
        ('podman create, same image: second', ms(img['podman'][1]) if img['podman'] else float('nan'),
         '' if img['podman'] else 'podman not installed'),
        ('network none: create+start', ms(net['none']), 'module work, as the first row but its own run'),
        ('bridge + 1 published port: create+start', ms(net['bridge']), 'module work: +%.0f ms vs network none'
         % ms(net['bridge'] - net['none'])),
        ('bridge + 1 published port: remove', ms(net['bridge remove']), '+%.0f ms vs network none (%.0f ms)'
         % (ms(net['bridge remove'] - net['none remove']), ms(net['none remove']))),
        ('new Python per task: network none', ms(net['fresh none']), 'create+start, imports included'),
        ('new Python per task: bridge + 1 port', ms(net['fresh bridge']), '+%.0f ms vs network none'
         % ms(net['fresh bridge'] - net['fresh none'])),
        ('pyroute2 import, new Python', ms(pr2['import']), 'above an empty Python; only tasks that make links pay it'),
        ('new Python per task: bridge, no port', ms(pr2['fresh bridge']), '+%.0f ms vs network none (%.0f ms); '
         'target <= +150 ms' % (ms(pr2['fresh bridge'] - pr2['fresh none']), ms(pr2['fresh none']))),
        ('new Python per task: bridged, idempotent', len(pr2['idempotent imports'] or []),
         'pyroute2 modules imported (target 0)'),
    ] + live_network_rows(live) + [
        ('node: ansible.builtin.ping payload', ms(node['ping']), 'a new Python running the payload, %d KB'
         % (node['sizes']['ping'] // 1024)),
        ('node: idempotent container, above ping', ms(node['idempotent']), 'target <= +30 ms; payload %d KB'
         % (node['sizes']['container'] // 1024)),
        ('node: create+start (network none), above ping', ms(node['create']), 'target <= +120 ms, module work included'),
        ('node: container_info of one, above ping', ms(node['info']), 'target <= +30 ms; payload %d KB'
         % (node['sizes']['info'] // 1024)),
        ('playbook, per item: ansible.builtin.ping', ms(pb['floor']), "Ansible's own per-task floor here"),
        ('playbook, per container: create+start', ms(pb['create+start']), 'above the ansible.builtin.ping loop'),
        ('playbook, per container: idempotent', ms(pb['idempotent re-run']), 'above the ansible.builtin.ping loop'),
    ]
    print('runcible.oci bench: %d containers, median (playbooks: best of %d), busybox rootfs, runtime runc'
          % (N, REPEATS))
    print('%-42s %10s  %s' % ('measure', 'ms', 'note'))
    print('-' * 100)
    for label, value, note in rows:
        print('%-42s %10.1f  %s' % (label, value, note))
    print_rows(deployment_rows(dep))
    count, top = node['imports']
    print()
    print('idempotent container payload: %d module_utils files of the collection imported; the costliest '
          '(python -X importtime, cumulative us):' % count)
    for micros, name in top:
        print('  %8d  %s' % (micros, name))


if __name__ == '__main__':
    main()
