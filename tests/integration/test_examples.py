# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's EXAMPLES, run as written on this host (issue 20).

For each module, its ``EXAMPLES`` (read from plugins/modules/NAME.py, never copied here) are run in
order as one play on localhost, in the test's own store, and every task must succeed (or be
skipped by its own ``when``). An example assumes things a reader has (a prepared root filesystem,
a registry, a container named web...): what it assumes is made first by the module's SETUP tasks,
never by changing the example, and what it leaves outside the store is removed afterwards.

Only what cannot be the same on a test host is substituted, by the table SUBSTITUTIONS below
(text of the EXAMPLES -> what this run uses, and why), plus two structural ones:

* ``root``/``run_root``: every runcible.oci task gets the test's store (the examples use the
  default store ``/var/lib/runcible``, which belongs to the host);
* network names (``backend``, ``plain``, ``secrets``, ``shop``): networks are host-wide, so each
  gets a unique name for this run, in the ``name`` of runcible.oci.network and wherever a
  container or deployment names it;
* ``vault_*`` variables: play variables with test values (a reader's would come from a vault);
* ``tls_verify: false`` as a module default of image and container, and in a deployment's
  ``defaults`` that name an image: the test registry (Debian's docker-registry on 127.0.0.1)
  speaks plain HTTP, where registry.example.com has TLS;
* the compose file ``compose.yaml`` of the deployment examples: one service from the test's OCI
  layout, beside the playbook.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import ipaddress
import json
import os
import secrets as random_secrets
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

from conftest import BIN, CALLBACKS, COLLECTIONS, REPO
import test_image_registry  # puts tests/ on sys.path; its registry fixture and push() are used here
from oci_build import LayoutBuilder  # noqa: E402

from ansible_collections.runcible.oci.plugins.module_utils._runtime import network_registry as netreg  # noqa: E402

registry = test_image_registry.registry  # the fixture: docker-registry on 127.0.0.1
push = test_image_registry.push

MODULES_DIR = os.path.join(REPO, 'plugins', 'modules')
MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith('.py') and not name.startswith('_'))
# busybox has no adduser applet: the user app (and its group) as adduser would write them
ADD_USER = "echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group"
LOOP = "trap 'exit 0' TERM; while true; do echo tick; sleep 0.2; done"

# (what the EXAMPLES say, what this run uses, why). Applied to the text in this order.
SUBSTITUTIONS = [
    ('/srv/rootfs/busybox', '{scratch}/rootfs/busybox',
     "a busybox root filesystem the reader prepared: the tests' one with every applet linked (httpd...)"),
    ('/srv/rootfs/debian', '{debian_rootfs}', "a Debian root filesystem: the tests' one"),
    ('/srv/rootfs/', '{scratch}/rootfs/',
     "other prepared root filesystems (db, vault): copies of the busybox one with the example's program added by SETUP"),
    ('[/usr/sbin/dbd, --foreground]', '[sleep, infinity]',
     'a database in the Debian root filesystem, which is shared by all tests and cannot get the program'),
    ('[/usr/sbin/nginx, -g, daemon off;]', '[sleep, infinity]', 'nginx, likewise'),
    ('/srv/www', '{scratch}/www', 'host directories and files the reader has'),
    ('/srv/config/', '{scratch}/config/', 'likewise'),
    ('/srv/blog', '{scratch}/blog', 'likewise'),
    ('/srv/images/', '{scratch}/images/', 'an OCI layout the reader built: one built by the test'),
    ('/var/tmp/', '{scratch}/var-tmp/', 'archives and fetched files: into the scratch directory'),
    ('/root/.config/containers/auth.json', '{scratch}/auth.json', "the reader's registry credentials: an empty auth file"),
    ('registry.example.com', '{registry}', "a registry: Debian's docker-registry on 127.0.0.1, the test image pushed"),
    ('127.0.0.1:5000', '{registry}', 'likewise (the registry listens on a free port)'),
    ('docker.io/library/', '{registry}/library/', 'Docker Hub is out of reach: the test registry'),
    ('/dev/vdb1', '{disk}', 'a disk: a loop device over a 16 MiB ext4 image'),
    ('10.89.5.', '{subnet_a}.', 'subnets: free ones of this host (networks are host-wide)'),
    ('10.89.20.', '{subnet_b}.', 'likewise'),
    ('10.89.1.', '{subnet_c}.', 'likewise'),
    ('8080', '{port_a}', 'host ports: free ones'),
    ('8443', '{port_b}', 'likewise'),
]
NETWORK_NAMES = ('backend', 'plain', 'secrets', 'shop')
VARIABLES = {
    'vault_db_password': 'example-db-password',
    'vault_api_token': 'example-api-token',
    'vault_checkpoint_key': 'example-checkpoint-key-0123456789',
    'vault_token': 'example-token',
}
COMPOSE = '''services:
  web:
    image: oci:{layout}:1.4
    network_mode: none
'''


def examples_of(module):
    with open(os.path.join(MODULES_DIR, module + '.py'), encoding='utf-8') as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'EXAMPLES' for t in node.targets):
            return node.value.value
    raise AssertionError('%s has no EXAMPLES' % module)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def free_subnets(count):
    """/24s of 10.89.0.0/16 no network of this host has and no route of this host covers."""
    taken = [ipaddress.ip_network(n['subnet']) for n in netreg.NetworkRegistry().load()['networks'].values()
             if n.get('subnet')]
    routes = subprocess.run(['ip', '-4', 'route', 'show'], capture_output=True, text=True, check=False).stdout
    for line in routes.splitlines():
        try:
            taken.append(ipaddress.ip_network(line.split()[0], strict=False))
        except ValueError:
            pass
    found = []
    for third in random_secrets.SystemRandom().sample(range(100, 250), 150):
        candidate = ipaddress.ip_network('10.89.{0}.0/24'.format(third))
        if not any(candidate.overlaps(other) for other in taken):
            found.append('10.89.{0}'.format(third))
            if len(found) == count:
                return found
    pytest.fail('no free /24 in 10.89.0.0/16 for the examples')


def rootfs_with(rootfs, dest, programs):
    """A copy of the busybox root filesystem with shell-script programs added."""
    shutil.copytree(rootfs, dest, symlinks=True)
    for path, script in programs.items():
        target = os.path.join(dest, path.lstrip('/'))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, 'w') as handle:
            handle.write(script)
        os.chmod(target, 0o755)


def in_container(container, path, content, mode='0755'):
    return {'name': 'SETUP: %s in %s' % (path, container),
            'runcible.oci.container_copy': {'container': container, 'dest': path, 'content': content,
                                            'mode': mode, 'parents': True}}


def sh(container, script):
    return {'name': 'SETUP: %s' % script, 'runcible.oci.container_exec': {'container': container, 'argv': ['sh', '-c', script]}}


def busybox_container(name):
    return {'name': 'SETUP: container %s' % name,
            'runcible.oci.container': {'name': name, 'rootfs': '/srv/rootfs/busybox', 'command': ['sh', '-c', LOOP],
                                       'network': 'none', 'stop_signal': 'SIGKILL'}}


# What each module's examples assume (run before them) and what they leave outside the store
# (removed after them, whatever happened). '{...}' are filled as the substitutions are.
SETUP = {
    'container': [
        {'name': 'SETUP: the network backend', 'runcible.oci.network': {'name': 'backend', 'subnet': '10.89.5.0/24'}},
    ],
    'container_checkpoint': [
        {'name': 'SETUP: a container counter',
         'runcible.oci.container': {'name': 'counter', 'rootfs': '/srv/rootfs/busybox', 'network': 'none',
                                    'command': ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done']}},
    ],
    'container_copy': [
        busybox_container('web'),
        sh('web', ADD_USER + ' && mkdir -p /etc/nginx/conf.d /var/log/nginx && echo oops > /var/log/nginx/error.log && '
           'echo "listen 80;" > /etc/nginx/conf.d/v1.conf && ln -s v1.conf /etc/nginx/conf.d/current'),
    ],
    'container_exec': [
        busybox_container('web'),
        busybox_container('db'),
        sh('web', ADD_USER + ' && echo "NAME=busybox" > /etc/os-release && mkdir -p /var/log && echo ERROR > /var/log/app.log'),
        in_container('web', '/usr/local/bin/worker', '#!/bin/sh\nwhile true; do sleep 1; done\n'),
        in_container('db', '/usr/local/bin/init-db', '#!/bin/sh\nmkdir -p "$2" && touch "$2/.initialised"\n'),
    ],
    'container_info': [
        busybox_container('web'),
        busybox_container('db'),
    ],
    'image_info': [
        {'name': 'SETUP: the busybox image in the store', 'runcible.oci.image': {'name': 'docker://docker.io/library/busybox:latest'}},
    ],
    'volume_info': [
        {'name': 'SETUP: the volume pgdata', 'runcible.oci.volume': {'name': 'pgdata', 'labels': {'app': 'postgres'}}},
    ],
}
TEARDOWN = {
    'container': [{'runcible.oci.container': {'name': name, 'state': 'absent'}}
                  for name in ('web', 'web2', 'db', 'backend-db', 'app')]
    + [{'runcible.oci.network': {'name': 'backend', 'state': 'absent'}}],
    'container_checkpoint': [{'runcible.oci.container': {'name': 'counter', 'state': 'absent',
                                                         'root': '{store2}/root', 'run_root': '{store2}/run'}}],
    'network': [{'runcible.oci.container': {'name': 'vault', 'state': 'absent'}}]
    + [{'runcible.oci.network': {'name': name, 'state': 'absent'}} for name in ('backend', 'plain', 'secrets')],
    'volume': [{'runcible.oci.volume': {'name': name, 'state': 'absent'}} for name in ('pgdata', 'scratch', 'site', 'media')],
    'volume_info': [{'runcible.oci.volume': {'name': 'pgdata', 'state': 'absent'}}],
    'deployment': [{'runcible.oci.deployment': {'name': name, 'state': 'absent'}} for name in ('shop', 'workers', 'blog')]
    + [{'runcible.oci.network': {'name': 'shop', 'state': 'absent'}}],
}
# Examples written for another host: the task runs against a second store of this host.
OTHER_HOST = {('container_checkpoint', 'On another host, create the container from the archive and restore it')}


def fill(value, values):
    if isinstance(value, str):
        for name, replacement in values.items():
            value = value.replace('{%s}' % name, str(replacement))
        return value
    if isinstance(value, list):
        return [fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: fill(item, values) for key, item in value.items()}
    return value


def substitute_text(text, values):
    for said, used, _why in SUBSTITUTIONS:
        text = text.replace(said, fill(used, values))
    return text


def plain_http_registry(tasks):
    """A deployment's containers pull from the test registry, which speaks plain HTTP."""
    for task in tasks:
        args = task.get('runcible.oci.deployment')
        if isinstance(args, dict) and isinstance(args.get('defaults'), dict) and 'image' in args['defaults']:
            args['defaults'].setdefault('tls_verify', False)
    return tasks


def rename_networks(tasks, names):
    """The host-wide network names of the examples -> this run's."""
    for task in tasks:
        for module, args in task.items():
            if not module.startswith('runcible.oci.') or not isinstance(args, dict):
                continue
            if module in ('runcible.oci.network', 'runcible.oci.network_info') and args.get('name') in names:
                args['name'] = names[args['name']]
            for holder in [args, args.get('defaults') or {}] + list(args.get('containers') or []):
                if isinstance(holder, dict) and holder.get('network') in names:
                    holder['network'] = names[holder['network']]
            for network in args.get('networks') or []:
                if isinstance(network, dict) and network.get('name') in names:
                    network['name'] = names[network['name']]
    return tasks


@pytest.fixture
def host(env, registry, tmp_path):  # pylint: disable=redefined-outer-name
    """What the examples assume of a host, made for this test; removed after it."""
    scratch = str(tmp_path)
    for sub in ('www', 'config', 'blog', 'var-tmp', 'images', 'store2'):
        os.makedirs(os.path.join(scratch, sub))
    with open(os.path.join(scratch, 'www', 'index.html'), 'w') as handle:
        handle.write('hello\n')
    with open(os.path.join(scratch, 'config', 'nginx.conf'), 'w') as handle:
        handle.write('events {}\n')
    with open(os.path.join(scratch, 'auth.json'), 'w') as handle:
        json.dump({'auths': {}}, handle)
    busybox = os.path.join(scratch, 'rootfs', 'busybox')
    rootfs_with(env.rootfs, busybox, {})
    applets = subprocess.run([os.path.join(busybox, 'bin', 'busybox'), '--list'], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        if not any(os.path.lexists(os.path.join(busybox, d, applet)) for d in ('bin', 'sbin', 'usr/bin', 'usr/sbin')):
            os.symlink('busybox', os.path.join(busybox, 'bin', applet))
    rootfs_with(busybox, os.path.join(scratch, 'rootfs', 'db'),
                {'/usr/sbin/dbd': '#!/bin/sh\nexec sleep 1000000\n'})
    rootfs_with(busybox, os.path.join(scratch, 'rootfs', 'vault'),
                {'/usr/bin/vault': '#!/bin/sh\nexec sleep 1000000\n', '/etc/vault.hcl': ''})
    # the images: app:1.4 in an OCI layout; team/app:stable, team/worker:stable, app:latest and
    # library/busybox:latest in the registry (all the busybox root filesystem running a loop)
    layout_path = os.path.join(scratch, 'images', 'app')
    layout = LayoutBuilder(layout_path)
    layers = [layout.layer_from_dir(env.rootfs)]
    layout.image(layers, {'Cmd': ['sh', '-c', LOOP]}, tag='1.4')
    for reference in ('team/app:stable', 'team/worker:stable', 'app:latest', 'library/busybox:latest'):
        push(layout_path, '1.4', 'docker://%s/%s' % (registry['host'], reference))
    # a disk: an ext4 image on a loop device
    image = os.path.join(scratch, 'disk.img')
    with open(image, 'wb') as handle:
        handle.truncate(16 << 20)
    subprocess.run(['mkfs.ext4', '-q', '-F', image], check=True, stdin=subprocess.DEVNULL)
    disk = subprocess.run(['losetup', '--find', '--show', image], check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(env.base, 'compose.yaml'), 'w') as handle:
        handle.write(COMPOSE.format(layout=layout_path))
    subnets = free_subnets(3)
    values = {'rootfs': env.rootfs, 'debian_rootfs': os.environ.get('RUNCIBLE_DEBIAN_ROOTFS', os.path.join(REPO, 'build', 'rootfs', 'debian')),
              'scratch': scratch, 'registry': registry['host'], 'disk': disk, 'store2': os.path.join(scratch, 'store2'),
              'subnet_a': subnets[0], 'subnet_b': subnets[1], 'subnet_c': subnets[2],
              'port_a': free_port(), 'port_b': free_port()}
    unique = random_secrets.token_hex(3)
    networks = {name: 'rcx%s%s' % (unique, name[:3]) for name in NETWORK_NAMES}
    try:
        yield {'values': values, 'networks': networks}
    finally:
        subprocess.run(['umount', '-l', os.path.join(scratch, 'store2', 'root')], check=False, capture_output=True)
        subprocess.run(['losetup', '-d', disk], check=False)


def as_tasks(text, values, networks):
    tasks = yaml.safe_load(text) or []
    for task in tasks:
        for key in list(task):
            if key.startswith('runcible.oci.') and task[key] is None:
                task[key] = {}  # `module:` with no options: the same task with an empty dict
    return plain_http_registry(rename_networks(tasks, networks))


# runcible.oci modules without a store of their own (host-wide state): no root/run_root for them
STORELESS = {'runcible.oci.network', 'runcible.oci.network_info'}


def run_play(env, tasks, ignore_errors=False):
    """Like conftest's Env.playbook, with the test's store given only to the modules that take one."""
    tasks = copy.deepcopy(tasks)
    for task in tasks:
        for key, args in task.items():
            if key.startswith('runcible.oci.') and key not in STORELESS and isinstance(args, dict):
                args.setdefault('root', env.root)
                args.setdefault('run_root', env.run_root)
        if ignore_errors:
            task['ignore_errors'] = True
    play = {'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks, 'vars': dict(VARIABLES),
            'module_defaults': {'runcible.oci.image': {'tls_verify': False},
                                'runcible.oci.container': {'tls_verify': False}}}
    book = os.path.join(env.base, 'play.yml')
    results = os.path.join(env.base, 'results.json')
    with open(book, 'w') as handle:
        json.dump([play], handle, indent=1)
    with contextlib.suppress(OSError):
        os.unlink(results)
    environ = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED='record_results',
                   RUNCIBLE_RESULTS=results, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
                   ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_DEPRECATION_WARNINGS='0')
    argv = [os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
            '-e', 'ansible_python_interpreter=' + sys.executable, book]
    proc = subprocess.run(argv, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=600, check=False, cwd=env.base)
    output = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0:
        raise AssertionError('ansible-playbook failed (rc %d):\n%s' % (proc.returncode, output))
    with open(results) as handle:
        found = json.load(handle)
    for result in found:
        env.seen(result)
    return found


@pytest.mark.parametrize('module', MODULES)
def test_examples_run_as_written(env, host, module):
    values, networks = host['values'], host['networks']
    examples = as_tasks(substitute_text(examples_of(module), values), values, networks)
    assert examples, '%s: EXAMPLES holds no task' % module
    for task in examples:
        if (module, task.get('name')) in OTHER_HOST:
            args = next(v for k, v in task.items() if k.startswith('runcible.oci.'))
            args.setdefault('root', values['store2'] + '/root')
            args.setdefault('run_root', values['store2'] + '/run')
    setup = rename_networks(fill(as_tasks(substitute_text(yaml.safe_dump(SETUP.get(module, [])), values), values, networks),
                                 values), networks)
    teardown = rename_networks(fill(copy.deepcopy(TEARDOWN.get(module, [])), values), networks)
    try:
        results = run_play(env, setup + examples)
    finally:
        if teardown:
            run_play(env, teardown, ignore_errors=True)
    ran = results[len(setup):]
    assert len(ran) == len(examples), [r['_task'] for r in ran]
    failed = [(r['_task'], r.get('msg')) for r in ran if r['_status'] not in ('ok', 'skipped')]
    assert not failed, '%s: examples that failed as written: %s' % (module, failed)


PLUGIN_DIRS = {'module': 'modules', 'connection': 'connection', 'inventory': 'inventory'}


def ansible_doc_list(plugin_type):
    proc = subprocess.run([os.path.join(BIN, 'ansible-doc'), '-t', plugin_type, '-l', '--json', 'runcible.oci'],
                          # Python warnings of Ansible's own dependencies are not this listing's
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', PYTHONWARNINGS='ignore'),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    return json.loads(proc.stdout)


def test_ansible_doc_lists_everything_with_a_one_line_description():
    """`ansible-doc -l` lists every module and plugin, and every role, each with a one-line description."""
    for plugin_type, directory in PLUGIN_DIRS.items():
        path = os.path.join(REPO, 'plugins', directory)
        files = os.listdir(path) if os.path.isdir(path) else []
        expected = {'runcible.oci.' + name[:-3] for name in files if name.endswith('.py') and not name.startswith('_')}
        listing = ansible_doc_list(plugin_type)
        assert set(listing) == expected, (plugin_type, sorted(listing), sorted(expected))
        for name, description in listing.items():
            assert isinstance(description, str) and description.strip() and description != 'UNDOCUMENTED', name
            assert '\n' not in description and len(description) <= 100 and not description.endswith('.'), (name, description)
    roles = {'runcible.oci.' + name for name in os.listdir(os.path.join(REPO, 'roles'))
             if os.path.isfile(os.path.join(REPO, 'roles', name, 'meta', 'argument_specs.yml'))}
    listing = ansible_doc_list('role')
    assert set(listing) == roles, (sorted(listing), sorted(roles))
    for name, summary in listing.items():
        description = summary['entry_points']['main']
        assert description.strip() and '\n' not in description and len(description) <= 100, (name, description)


def test_the_substitution_table_is_used():
    """Every row of SUBSTITUTIONS matches some module's EXAMPLES (no stale row hides a change)."""
    text = ''.join(examples_of(module) for module in MODULES) + yaml.safe_dump(SETUP)
    unused = [said for said, _used, _why in SUBSTITUTIONS if said not in text]
    assert not unused, 'rows of SUBSTITUTIONS no example needs any more: %s' % unused


if __name__ == '__main__':  # print the substitution table
    for said, used, why in SUBSTITUTIONS:
        print('%-40s -> %-22s %s' % (said, used, why))
    sys.exit(0)
