# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot, reach and shut down the Debian VMs of the VM tests (qemu software emulation, SSH on 127.0.0.1).

Run with Python 3.9 or newer (``python3 scripts/vm/vm.py ...``; the Makefile uses build/venv's):

    vm.py build                 build the image if its recipe changed; print its directory
    vm.py boot NAME...          boot VMs (in parallel) and wait until SSH answers
    vm.py stop [NAME...]        shut VMs down cleanly (all of the run directory without NAME)
    vm.py ssh NAME [CMD...]     a shell, or CMD, on a VM as root
    vm.py status                the VMs of the run directory

Every VM runs from a qcow2 overlay of its own backed by the read-only image, so the cached image
is never modified and any number of VMs run from one image. Its state lives in
``RUN_DIR/NAME/`` (``--run-dir``, default ``build/vm/run``): ``vm.json`` (qemu's pid, port, image),
``port`` and ``id_ed25519`` (read by ``tests/vm/inventory.yml``), the serial console log, the QMP
socket and the ssh master socket. Shutting down is ``poweroff`` over SSH, then ACPI power-off over
QMP, then SIGTERM and SIGKILL to that qemu's own pid (checked against its command line); never
a signal to anything else.

The library side (``Machine``, ``boot_all``, ``build_image``) is what ``tests/vm/conftest.py`` uses.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_DIR = os.path.join(REPO, 'build', 'vm')
DEFAULT_RUN_DIR = os.path.join(VM_DIR, 'run')
BUILD_SCRIPT = os.path.join(REPO, 'scripts', 'vm', 'build-image.sh')
QEMU = 'qemu-system-x86_64'
MEMORY_MB = int(os.environ.get('RUNCIBLE_VM_MEMORY', '2048'))
CPUS = int(os.environ.get('RUNCIBLE_VM_CPUS', '2'))
BOOT_TIMEOUT = float(os.environ.get('RUNCIBLE_VM_BOOT_TIMEOUT', '900'))
# A guest whose console says nothing for this long before SSH answers hung in early boot (it happens
# under TCG now and then); it is killed and booted again, at most BOOT_RETRIES times.
STALL_SECONDS = float(os.environ.get('RUNCIBLE_VM_STALL_SECONDS', '120'))
BOOT_RETRIES = 2
# net.ifnames=0: the NIC is eth0 whatever PCI slot qemu gives it (-nodefaults moves it).
KERNEL_ARGS = 'root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 net.ifnames=0'
# Machines that boot the same image with SELinux (permissive) as their LSM instead of AppArmor.
SELINUX_MACHINES = ('vm-se',)
SELINUX_ARGS = ' security=selinux selinux=1 enforcing=0'
SSH_OPTIONS = [
    '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=15',
    '-o', 'ServerAliveCountMax=8',
]


class VMError(Exception):
    pass


def log(message):
    sys.stderr.write('vm: %s\n' % message)
    sys.stderr.flush()


def build_image():
    """The image directory (built first when the recipe changed); the build's output goes to stderr."""
    proc = subprocess.run(['bash', BUILD_SCRIPT], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise VMError('the VM image build failed (scripts/vm/build-image.sh, exit %d)' % proc.returncode)
    return proc.stdout.decode().strip().splitlines()[-1]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read().split(b'\0')
    except OSError:
        return []


def _start_time(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return int(handle.read().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _die_with_parent():
    """In the child before exec: SIGTERM when the parent thread ends (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class Machine(object):
    """One VM: ``RUN_DIR/NAME`` holds its overlay, logs and sockets."""

    def __init__(self, name, run_dir=DEFAULT_RUN_DIR, image_dir=None):
        self.name = name
        self.run_dir = os.path.abspath(run_dir)
        self.dir = os.path.join(self.run_dir, name)
        self.image_dir = image_dir
        self.port = None
        self.pid = None
        self.pid_start = None
        self.process = None  # the Popen when this process booted it
        self.boot_seconds = None
        self.die_with_parent = False
        self._load()

    # -- state ---------------------------------------------------------------------------------------
    @property
    def state_file(self):
        return os.path.join(self.dir, 'vm.json')

    @property
    def overlay(self):
        return os.path.join(self.dir, 'disk.qcow2')

    @property
    def serial_log(self):
        return os.path.join(self.dir, 'serial.log')

    @property
    def key(self):
        return os.path.join(self.dir, 'id_ed25519')

    @property
    def control_path(self):
        return os.path.join(self.dir, 'ssh.sock')

    @property
    def qmp_path(self):
        return os.path.join(self.dir, 'qmp.sock')

    def _load(self):
        try:
            with open(self.state_file) as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            return
        self.port, self.pid, self.pid_start = state.get('port'), state.get('pid'), state.get('pid_start')
        self.image_dir = self.image_dir or state.get('image_dir')

    def _save(self):
        state = {'name': self.name, 'port': self.port, 'pid': self.pid, 'pid_start': self.pid_start,
                 'image_dir': self.image_dir, 'overlay': self.overlay}
        temporary = self.state_file + '.tmp'
        with open(temporary, 'w') as handle:
            json.dump(state, handle, indent=1)
        os.rename(temporary, self.state_file)
        with open(os.path.join(self.dir, 'port'), 'w') as handle:
            handle.write('%d\n' % self.port)

    def running(self):
        """Is this VM's qemu alive: the recorded pid, same start time, our overlay on its command line?"""
        if not self.pid:
            return False
        if self.process is not None and self.process.poll() is not None:
            return False
        if _start_time(self.pid) != self.pid_start:
            return False
        return self.overlay.encode() in b' '.join(_cmdline(self.pid))

    # -- boot ----------------------------------------------------------------------------------------
    def qemu_argv(self):
        return [QEMU, '-name', 'runcible-' + self.name,
                '-accel', 'tcg,thread=multi', '-cpu', 'max', '-m', str(MEMORY_MB), '-smp', str(CPUS),
                '-nodefaults', '-no-user-config', '-display', 'none', '-vga', 'none',
                '-kernel', os.path.join(self.image_dir, 'vmlinuz'),
                '-initrd', os.path.join(self.image_dir, 'initrd.img'),
                '-append', KERNEL_ARGS + (SELINUX_ARGS if self.name in SELINUX_MACHINES else ''),
                '-drive', 'file=%s,format=qcow2,if=virtio' % self.overlay,
                '-nic', 'user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:%d-:22' % self.port,
                '-serial', 'file:' + self.serial_log,
                '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path]

    def start(self, die_with_parent=False):
        """Start qemu (not waiting for the guest); -> self.

        ``die_with_parent``: qemu gets SIGTERM from the kernel when the thread that started it ends
        (PR_SET_PDEATHSIG), the last resort against a VM outliving a test run that was SIGKILLed.
        """
        if self.running():
            raise VMError('VM %s is already running (pid %d, port %d): `scripts/vm/vm.py stop %s` first'
                          % (self.name, self.pid, self.port, self.name))
        if not self.image_dir:
            raise VMError('no image directory for VM %s' % self.name)
        if shutil.which(QEMU) is None:
            raise VMError('%s not found: run make setup (Debian package qemu-system-x86)' % QEMU)
        if len(self.control_path) > 100:
            raise VMError('run directory path too long for unix sockets: %s' % self.dir)
        self.die_with_parent = die_with_parent
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        shutil.copyfile(os.path.join(self.image_dir, 'id_ed25519'), self.key)
        os.chmod(self.key, 0o600)
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b',
                        os.path.join(self.image_dir, 'image.raw'), self.overlay],
                       stdin=subprocess.DEVNULL, check=True)
        for _attempt in range(5):
            self.port = free_port()
            with open(os.path.join(self.dir, 'qemu.log'), 'wb') as qemu_log:
                # A session of its own: a Ctrl-C meant for the caller must not kill the VM uncleanly;
                # the caller's finalizers shut it down.
                self.process = subprocess.Popen(  # pylint: disable=subprocess-popen-preexec-fn
                    self.qemu_argv(), stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True, preexec_fn=_die_with_parent if die_with_parent else None)
            self.pid = self.process.pid
            self.pid_start = _start_time(self.pid)
            self._save()
            time.sleep(0.5)
            if self.process.poll() is None:
                return self
            with open(os.path.join(self.dir, 'qemu.log')) as handle:
                output = handle.read()
            if 'hostfwd' not in output and 'forwarding' not in output:
                raise VMError('qemu for VM %s exited at once: %s' % (self.name, output.strip()))
            log('%s: port %d was taken meanwhile; trying another' % (self.name, self.port))
        raise VMError('qemu for VM %s could not forward a host port' % self.name)

    def wait_ready(self, timeout=BOOT_TIMEOUT, started=None):
        """Wait until root logs in over SSH and systemd finished booting; -> seconds since ``started``."""
        started = started or time.monotonic()
        deadline = started + timeout
        console, console_changed, retries = -1, time.monotonic(), 0
        while True:
            if not self.running():
                raise VMError('VM %s: qemu exited during boot; see %s' % (self.name, self.serial_log))
            size = os.path.getsize(self.serial_log) if os.path.exists(self.serial_log) else 0
            if size != console:
                console, console_changed = size, time.monotonic()
            elif time.monotonic() - console_changed > STALL_SECONDS and retries < BOOT_RETRIES:
                retries += 1
                log('%s: no console output for %ds during boot (a hung guest); booting it again (%d of %d)'
                    % (self.name, STALL_SECONDS, retries, BOOT_RETRIES))
                self._signal(signal.SIGKILL)
                self._wait_exit(10)
                if self.process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.process.wait(timeout=10)
                self.start(die_with_parent=self.die_with_parent)
                console, console_changed = -1, time.monotonic()
                continue
            proc = self.ssh(['systemctl', 'is-system-running', '--wait'], check=False,
                            timeout=max(30, min(STALL_SECONDS, deadline - time.monotonic())))
            if proc.returncode != 255:
                console_changed = time.monotonic()  # sshd answered: alive, however quiet its console
            status = proc.stdout.decode('utf-8', 'replace').strip()
            if proc.returncode == 0 or status in ('running', 'degraded'):
                if status == 'degraded':
                    failed = self.ssh(['systemctl', '--failed', '--no-legend', '--plain'], check=False)
                    log('%s: booted degraded: %s' % (self.name, failed.stdout.decode().strip()))
                break
            if time.monotonic() > deadline:
                raise VMError('VM %s: no SSH login within %ds; see %s' % (self.name, timeout, self.serial_log))
            time.sleep(2)
        self.boot_seconds = time.monotonic() - started
        return self.boot_seconds

    # -- reaching it ---------------------------------------------------------------------------------
    def ssh_argv(self, command=None, tty=False):
        argv = ['ssh', '-i', self.key, '-p', str(self.port), '-o', 'ControlMaster=auto',
                '-o', 'ControlPath=' + self.control_path, '-o', 'ControlPersist=300'] + SSH_OPTIONS
        argv += ['-t'] if tty else []
        argv.append('root@127.0.0.1')
        if command is not None:
            argv += ['--'] + list(command)
        return argv

    def ssh(self, command, check=True, timeout=300, input_data=None):
        """Run ``command`` (argv; joined by the remote shell) on the VM; -> CompletedProcess."""
        if isinstance(command, str):
            command = [command]
        argv = self.ssh_argv(command)
        try:
            proc = subprocess.run(argv, input=input_data, stdin=subprocess.DEVNULL if input_data is None else None,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            proc = subprocess.CompletedProcess(argv, 124, exc.stdout or b'',
                                               (exc.stderr or b'') + b'\ntimed out after %ds' % timeout)
        if check and proc.returncode != 0:
            raise VMError('on %s: %s: exit %d: %s' % (self.name, ' '.join(command), proc.returncode,
                                                      proc.stderr.decode('utf-8', 'replace').strip()))
        return proc

    # -- shutdown ------------------------------------------------------------------------------------
    def _wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return True
            time.sleep(0.25)
        return not self.running()

    def _qmp_powerdown(self):
        with contextlib.suppress(OSError):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as qmp:
                qmp.settimeout(10)
                qmp.connect(self.qmp_path)
                qmp.recv(65536)
                for command in ('qmp_capabilities', 'system_powerdown'):
                    qmp.sendall(json.dumps({'execute': command}).encode() + b'\n')
                    qmp.recv(65536)
                return True
        return False

    def _signal(self, signal_number):
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal_number)

    def stop(self, timeout=180):
        """poweroff over SSH, else ACPI power-off over QMP, else SIGTERM/SIGKILL to our qemu; -> how."""
        how = None
        if self.running():
            proc = self.ssh(['systemctl', 'poweroff', '--no-block'], check=False, timeout=60)
            if proc.returncode == 0 and self._wait_exit(timeout):
                how = 'poweroff'
            elif self._qmp_powerdown() and self._wait_exit(60):
                how = 'acpi'
            else:
                self._signal(signal.SIGTERM)
                how = 'SIGTERM'
                if not self._wait_exit(15):
                    self._signal(signal.SIGKILL)
                    how = 'SIGKILL'
                    self._wait_exit(10)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with contextlib.suppress(OSError):
            subprocess.run(['ssh', '-O', 'exit', '-o', 'ControlPath=' + self.control_path, 'root@127.0.0.1'],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=10, check=False)
        if self.running():
            raise VMError('VM %s (qemu pid %d) did not exit' % (self.name, self.pid))
        for path in (self.overlay, self.control_path, self.qmp_path):
            with contextlib.suppress(OSError):
                os.unlink(path)
        return how


def boot_all(machines, die_with_parent=False):
    """Start the Machines ``machines`` and wait for all of them in parallel; -> {name: Machine}.

    On failure every one of them is stopped. ``die_with_parent``: see Machine.start().
    """
    errors = []
    started = time.monotonic()
    try:
        for machine in machines:
            machine.start(die_with_parent=die_with_parent)

        def wait(machine):
            try:
                machine.wait_ready(started=started)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                errors.append(exc)
        threads = [threading.Thread(target=wait, args=(machine,), daemon=True) for machine in machines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
    except BaseException:
        for machine in machines:
            with contextlib.suppress(Exception):
                machine.stop(timeout=30)
        raise
    return dict((machine.name, machine) for machine in machines)


def machines_in(run_dir):
    if not os.path.isdir(run_dir):
        return []
    return [Machine(name, run_dir) for name in sorted(os.listdir(run_dir))
            if os.path.isfile(os.path.join(run_dir, name, 'vm.json'))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--run-dir', default=os.environ.get('RUNCIBLE_VM_RUN_DIR') or DEFAULT_RUN_DIR)
    commands = parser.add_subparsers(dest='command', required=True)
    commands.add_parser('build')
    boot = commands.add_parser('boot')
    boot.add_argument('names', nargs='+')
    stop = commands.add_parser('stop')
    stop.add_argument('names', nargs='*')
    ssh = commands.add_parser('ssh')
    ssh.add_argument('name')
    ssh.add_argument('remote', nargs=argparse.REMAINDER)
    commands.add_parser('status')
    args = parser.parse_args(argv)
    try:
        if args.command == 'build':
            started = time.monotonic()
            print(build_image())
            log('image ready after %.0fs' % (time.monotonic() - started))
        elif args.command == 'boot':
            image_dir = build_image()
            machines = boot_all([Machine(name, args.run_dir, image_dir) for name in args.names])
            for machine in machines.values():
                log('%s: up after %.0fs: ssh -i %s -p %d root@127.0.0.1 (or scripts/vm/vm.py ssh %s)'
                    % (machine.name, machine.boot_seconds, machine.key, machine.port, machine.name))
            if os.path.abspath(args.run_dir) == DEFAULT_RUN_DIR:
                log('inventory: ansible -i tests/vm/inventory.yml %s -m runcible.oci.container_info; '
                    'stop: make vm-stop' % ' '.join(machines))
        elif args.command == 'stop':
            names = args.names or [machine.name for machine in machines_in(args.run_dir)]
            for name in names:
                machine = Machine(name, args.run_dir)
                if machine.running():
                    started = time.monotonic()
                    how = machine.stop()
                    log('%s: stopped (%s) in %.0fs' % (name, how, time.monotonic() - started))
                else:
                    machine.stop()
                    log('%s: not running' % name)
        elif args.command == 'ssh':
            machine = Machine(args.name, args.run_dir)
            if not machine.running():
                raise VMError('VM %s is not running (scripts/vm/vm.py boot %s)' % (args.name, args.name))
            argv = machine.ssh_argv(args.remote or None, tty=not args.remote)
            return subprocess.run(argv, check=False).returncode
        elif args.command == 'status':
            for machine in machines_in(args.run_dir):
                print('%s\t%s\tport %s\tpid %s' % (machine.name, 'running' if machine.running() else 'stopped',
                                                   machine.port, machine.pid))
    except VMError as exc:
        log('ERROR: %s' % exc)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
