#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container
short_description: Create, start, stop and remove OCI containers with conmon and runc, no daemon
version_added: 0.2.0
description:
  - Manages one OCI container on the managed host by driving C(conmon) and an OCI runtime
    (C(runc) or C(crun)) directly, the way podman's libpod does, with no container daemon.
  - Idempotent. The wanted configuration is compared, as normalised typed values, with the
    configuration the container was created with (V(64m) equals V(67108864)); only the options
    given in the task are compared.
  - Resource limits (O(memory), O(memory_reservation), O(memory_swap), O(cpus), O(cpu_shares),
    O(cpuset_cpus), O(cpuset_mems), O(pids_limit), O(blkio_weight)) are compared with the values
    the container's cgroup really has, so a limit changed by hand is seen and corrected, and a change
    is applied live with the runtime's C(update); the process keeps running with the same pid.
  - A change of O(stop_timeout) only changes how the container is stopped. A change of any other
    option recreates the container.
  - The container's live status comes from conmon's exit file and a check of the conmon and
    container processes, never from a stale record; after a reboot no container is reported running.
author:
  - runcible.oci contributors (@runcible)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - runcible.oci.common
attributes:
  check_mode:
    support: full
    details: Reports what would change and writes nothing (no directory, record, mount or process).
  diff_mode:
    support: full
    details: Before and after of the options that differ, and of the status.
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the container, unique under O(root).
      - 1 to 128 characters from C([a-zA-Z0-9_.-]), starting with a letter or digit; no C(..).
    type: str
    required: true
  state:
    description:
      - V(started) creates the container if needed and makes it run (a stopped one is started
        again, with a new process and the same root filesystem changes).
      - V(stopped) stops it (stop signal, O(stop_timeout), then SIGKILL); a missing container
        is created and left stopped.
      - V(created) makes sure it exists; a new one is created with its process ready but not
        started; an existing one is neither started nor stopped.
      - V(paused) freezes it (started first if needed).
      - V(healthy) is V(started), then runs its O(healthcheck) until it passes, for up to
        O(wait_timeout) seconds (at most once a second while waiting); the task fails with the last
        check's exit code and output when it does not pass, or when C(retries) checks of O(healthcheck)
        in a row fail (then O(health_on_failure) acts). Running a check is not a change.
      - V(restarted) stops and starts it again (stop signal, O(stop_timeout), SIGKILL, then a new
        process) even when nothing changed; the standard handler after a configuration file changes.
        The container keeps its id and its root filesystem changes; only the process is new. Always
        reports a change. A stopped container is started; a missing one is created and started.
      - V(absent) stops and removes it, with its root filesystem changes, logs and state.
    type: str
    default: started
    choices: [created, started, stopped, paused, restarted, healthy, absent]
  recreate:
    description:
      - Remove and create the container again even when nothing changed.
    type: bool
    default: false
  wait_timeout:
    description:
      - With O(state=healthy), seconds to wait for the health check to pass.
    type: float
    default: 60
  keep_volumes:
    description:
      - With O(state=absent), V(false) also removes the volumes made for the image's declared
        C(Volumes) of this container (their data is lost), also when the container itself was removed
        before. Named volumes of O(mounts) are never removed with a container; remove them with
        M(runcible.oci.volume).
      - By default they are kept, so a container created again under the same name gets its data back.
    type: bool
    default: true
  wait:
    description:
      - Seconds to watch a container this task started (created, started, restarted or recreated). The
        task fails, with the exit code and the last 20 log lines, when its process ends within them (a
        crash at start is seen by the task, not later); the container is left stopped, and the next run
        starts it again. V(0) (the default) does not watch.
      - With O(state=stopped), seconds to let a running container end on its own (a job that must
        exit) before the stop signal; its exit code is in RV(container.exit_code), and
        M(runcible.oci.container_info) with O(runcible.oci.container_info#module:logs_tail) shows
        its last logs. A container that ends by itself is not a change of the task.
      - Not in check mode.
    type: float
    default: 0
  force_restart:
    description:
      - With O(state=started), restart a running container even when nothing changed, as
        O(state=restarted) does. A container that is recreated is not restarted again.
    type: bool
    default: false
  comparisons:
    description:
      - How given options are compared with the container, by option name, or V(*) for all.
      - V(strict) (the default) recreates on any difference; V(ignore) never compares the option;
        V(allow_more_present) accepts a container whose dictionary or list holds more items than
        asked (for O(env), O(labels), O(mounts)).
    type: dict
  rootfs:
    description:
      - Directory holding the container's root filesystem. Required to create a container, unless
        O(image) is given; the two are mutually exclusive.
      - With O(rootfs_mode=overlay) this directory is never modified.
    type: path
  image:
    description:
      - Run the container from an OCI image instead of O(rootfs), one of
        V(oci:/path/to/layout[:tag]), V(oci-archive:/path/to/archive.tar[:tag]),
        V(docker://[registry/]repository[:tag|@sha256:digest]) (pulled with C(skopeo)), or
        V(sha256:digest) of an image already in the local store. See M(runcible.oci.image).
      - The image's layers are unpacked once into the local image store under O(root) and shared
        read-only, as overlay lower dirs, by every container that uses them; the container's own
        writes go to its upper dir.
      - The image's config supplies defaults. Entrypoint and Cmd make the command unless
        O(entrypoint) or O(command) are given (a task that sets O(entrypoint) drops the image's
        Cmd, as docker does). Its Env is merged under O(env) (the task wins), its Labels under
        O(labels); WorkingDir, User and StopSignal are used when O(workdir), O(user) and
        O(stop_signal) are not given. ExposedPorts are only reported; nothing is published unless asked.
      - Each path of the image's C(Volumes) not covered by a mount or O(tmpfs) of the task gets a volume
        of its own, named after the container and the path (labelled C(io.runcible.container=NAME)),
        filled with what the image has there when it is made. It outlives recreating the container (a
        new image, a changed option) and is removed only with O(state=absent) and O(keep_volumes=false).
      - Compared by content, as the image's manifest digest (stored as V(reference@sha256:digest));
        a tag that now points to new content recreates the container, with the old and new digest
        in the diff; the same content under another reference does not.
    type: str
  pull:
    description:
      - When to get O(image) from its source. V(missing) only when the reference is not in the local
        image store; V(always) asks the source every time (a layout's C(index.json), or C(skopeo
        inspect)) and pulls when it points to new content; V(never) fails when it is not local.
      - In check mode nothing is pulled; the source is read to report the digest.
    type: str
    default: missing
    choices: [missing, always, never]
  tls_verify:
    description:
      - Require HTTPS and a valid certificate from the registry of a V(docker://) O(image) when it is
        pulled or asked for its digest. V(false) allows a plain HTTP registry.
    type: bool
    default: true
  auth_file:
    description:
      - Registry credentials file (the C(auth.json) format of C(skopeo login)) for a V(docker://) O(image).
    type: path
  rootfs_mode:
    description:
      - V(overlay) mounts an overlay with O(rootfs) as its lower layer and an upper directory of
        the container's own under O(root); it is mounted while the container runs.
      - V(direct) uses O(rootfs) itself; the container's writes change it. Not with O(image).
      - Defaults to V(overlay) for a new container.
    type: str
    choices: [overlay, direct]
  entrypoint:
    description:
      - Arguments put before O(command), as a list or a string split like O(command); V([]) or
        V('') for none. With O(image), replaces the image's Entrypoint (and drops its Cmd unless
        O(command) is given). Defaults to the image's Entrypoint, or none.
    type: raw
  command:
    description:
      - The process to run, as a list of arguments or a string that is split like a POSIX
        shell would split it (no shell runs). Required to create a container from O(rootfs);
        with O(image), defaults to the image's Cmd (after its Entrypoint).
    type: raw
  hostname:
    description:
      - Host name inside the container. Defaults to the container name.
    type: str
  env:
    description:
      - Environment variables of the process. C(PATH), C(HOSTNAME) and C(container) are set
        unless given here.
      - Plain configuration, shown in C(--diff), in the returned C(container.config) and by
        M(runcible.oci.container_info), as the peers' C(env) is. Put passwords and tokens in O(secrets).
    type: dict
  env_file:
    description:
      - One or more files of environment variables on the managed node (not the controller; copy
        them there first, or use O(env) with a lookup), read at each task, in the format of
        C(docker run --env-file). Each line C(NAME=value) gives the value verbatim (quotes and spaces
        kept, nothing expanded); a line C(NAME) alone takes the variable from the module's
        environment when set; blank lines and lines starting with C(#) are skipped.
      - Merged under O(env) (O(env) wins; a later file wins over an earlier one) and over the
        image's Env. Compared by the variables read, so an edited file recreates the container.
      - The values are kept in the container's record and shown in the diff like O(env); put
        passwords in O(secrets) instead.
    type: raw
  secrets:
    description:
      - Secret values for the container, each name mapped to its value, or to a dictionary with
        C(value), C(type), C(target) and C(mode). Never shown in C(--diff), results, logs or the record in clear (the option is C(no_log));
        compared by a keyed hash (HMAC-SHA256 with a random key of the store, C(secrets.key) in
        O(root)), so a changed value recreates the container.
      - V(type=file) (the default) delivers the value as a read-only file, C(target) (default
        C(/run/secrets/NAME); a relative target is under C(/run/secrets)), mode C(mode) (default
        V(0400)), owned by the container's O(user).
      - V(type=env) delivers it as the environment variable C(target) (default C(NAME)); it overrides
        O(env). Execs into the container get it too.
      - Values are kept only on the host's tmpfs (under O(run_root)), never on disk; after a reboot
        the task that starts the container again must give them again.
      - Checkpoint archives do not carry secret values (the process memory they hold may, see
        M(runcible.oci.container_checkpoint)); a container with secrets cannot be imported.
    type: dict
  workdir:
    description:
      - Absolute working directory of the process. Defaults to C(/).
    type: str
  user:
    description:
      - User of the process, V(uid[:gid]) or V(name[:group]); names are looked up in the root
        filesystem's C(/etc/passwd) and C(/etc/group). Defaults to V(0:0).
      - Compared as numeric V(uid:gid), so V(root) equals V(0:0).
    type: str
  tty:
    description:
      - Give the container's process a pseudo-terminal as its stdin, stdout and stderr (conmon holds the
        other side and logs what it writes, as stdout), for programs that need one. Execs still get
        pipes. Defaults to V(false). A change recreates the container.
    type: bool
  group_add:
    description:
      - Supplementary groups of the container's processes (and its execs), by name (looked up in the
        container's C(/etc/group)) or gid, added to the groups C(/etc/group) lists O(user) in (which
        the processes always get, as with docker).
      - A change recreates the container.
    type: list
    elements: str
  umask:
    description:
      - File mode creation mask of the container's process, octal such as V(0022) or V(0027).
        The runtime's default (V(0022)) when not given. A change recreates the container.
    type: raw
  oom_score_adj:
    description:
      - The container's process's OOM score adjustment, V(-1000) (never chosen by the OOM killer)
        to V(1000) (chosen first); its children inherit it. A change recreates the container.
    type: int
  init:
    description:
      - Run a minimal init as the container's PID 1 (the host's C(catatonit), or C(tini-static)),
        bind-mounted read-only at C(/run/runcible-init) and put before the command; it reaps
        zombie processes and forwards signals, for commands that do neither. Needs the
        C(catatonit) (or C(tini)) package on the host; the runtime role installs it.
      - A change recreates the container.
    type: bool
  systemd:
    description:
      - Run systemd as the container's PID 1, as podman's C(--systemd=always), for roles and images
        whose services are managed by systemd. Without O(command) the container runs C(/sbin/init);
        without O(stop_signal) it is stopped with C(SIGRTMIN+3) (systemd's orderly shutdown). Every
        container has C(container) in its environment, which systemd reads.
      - The container gets tmpfs on C(/run), C(/run/lock), C(/tmp) and C(/var/log/journal) (where no
        mount of O(mounts) or O(tmpfs) is), and a cgroup tree it may write. On a cgroup v2 host that is
        its own cgroup, in its cgroup namespace (O(cgroupns=private)); the host's cgroup2 must be
        mounted with C(nsdelegate), as systemd mounts it, so the container cannot raise its own
        limits. On a cgroup v1 host it is the host's C(name=systemd) hierarchy, with its
        C(release_agent) masked. Otherwise the task fails and says what to do.
      - The root filesystem or image must have systemd (Debian package C(systemd-sysv)).
      - A change recreates the container.
    type: bool
  read_only:
    description:
      - Mount the root filesystem read-only. Defaults to V(false).
    type: bool
  ulimits:
    description:
      - Resource limits of the container's processes (and its execs), by name (C(nofile), C(nproc),
        C(core), C(memlock), C(stack), C(fsize), C(cpu), C(as), C(locks), C(sigpending), C(msgqueue),
        C(nice), C(rtprio), C(rttime), C(data), C(rss); with or without C(RLIMIT_)), each
        C(SOFT:HARD), one number for both, V(unlimited), or a dictionary with C(soft) and C(hard).
      - A hard limit above the host's own hard limit is refused (the runtime could not set it).
        The given limits replace the defaults (C(nofile) and C(nproc) at up to 1048576 and
        4194304, within the host's hard limits).
      - A change recreates the container.
    type: dict
  sysctls:
    description:
      - Kernel settings of the container's own namespaces, by C(sysctl) name (dots or slashes)
        to value, for example C(net.ipv4.ping_group_range=0 2147483647) or C(kernel.shmmax).
      - Only namespaced settings are taken, the IPC ones (C(kernel.msg*), C(kernel.sem),
        C(kernel.shm*)), C(fs.mqueue.*) and C(net.*); C(net.*) needs a network of the container's
        own (not V(host)). Host-wide settings are refused, as they would change the host.
      - A change recreates the container.
    type: dict
  privileged:
    description:
      - Give up every confinement, as C(podman run --privileged) does. Defaults to V(false).
      - V(true) gives the container all capabilities of the host, no seccomp filter, no AppArmor
        profile, no SELinux label, every device of the host's C(/dev) (and access to all devices through the device
        cgroup), C(/sys) and the cgroup tree writable, and no masked or read-only paths under C(/proc).
      - Root in a privileged container is root on the host. Use it for what needs it (a nested
        container runtime, hardware access), never for an application. O(cap_drop) still applies.
      - O(seccomp_profile), O(apparmor_profile) and O(label) that confine cannot be given with it.
      - A change recreates the container.
    type: bool
  cap_add:
    description:
      - Capabilities to add to the default set (C(CHOWN), C(DAC_OVERRIDE), C(FOWNER), C(FSETID),
        C(KILL), C(NET_BIND_SERVICE), C(SETFCAP), C(SETGID), C(SETPCAP), C(SETUID), C(SYS_CHROOT),
        as podman). Names with or without C(CAP_), any case; V(ALL) for every capability of the host.
      - Compared as a set (stored sorted, with C(CAP_)). A change recreates the container.
      - Root gets the whole set (bounding, effective, permitted). A user other than root (O(user))
        gets the default set as its bounding set only, and the capabilities named here as
        effective, permitted and ambient, so C(user=1000) with C(cap_add=[NET_BIND_SERVICE]) can
        bind port 80 and nothing more.
      - Adding C(SYS_ADMIN) also lifts the seccomp rules that depend on it (namespaces, mounts);
        see C(docs/security.md) for what each capability opens.
    type: list
    elements: str
  cap_drop:
    description:
      - Capabilities to take away (same names as O(cap_add)). V(ALL) empties the set; O(cap_add) then
        adds back what it names (C(cap_drop=[ALL]) with C(cap_add=[NET_BIND_SERVICE]) leaves only
        that one). V(ALL) in both is refused.
      - Compared as a set. A change recreates the container.
    type: list
    elements: str
  no_new_privileges:
    description:
      - Set the kernel's C(no_new_privs) on the container's processes (and its execs), so setuid
        binaries and file capabilities cannot raise their privileges. Defaults to V(true) (podman's
        default is V(false); we keep the safer one).
      - V(false) lets setuid programs such as C(su) or C(ping) with file capabilities work as root
        intended. A change recreates the container.
    type: bool
  seccomp_profile:
    description:
      - The system call filter. V(default) (the default for a new container) is the host's
        container profile, the one podman uses (C(/etc/containers/seccomp.json), else
        C(/usr/share/containers/seccomp.json) from the Debian package
        C(golang-github-containers-common), which the C(runcible.oci.runtime) role installs), plus
        our rules on top (without C(CAP_SYS_ADMIN) no new
        namespaces (C(unshare), C(clone) with C(CLONE_NEW*), C(clone3)), no mounts, and for every
        container no kernel keyring, C(keyctl), C(add_key), C(request_key)), and the host's native
        system call ABI only (on x86_64 no i386 C(int 0x80) or x32; a 32-bit program is killed). For
        32-bit programs give the containers-common file itself as the profile, which keeps i386.
      - V(unconfined) runs without a filter.
      - A path to a profile file on the managed node, in the OCI C(linux.seccomp) format or the
        containers-common format (its C(archMap), C(includes) and C(excludes) of architectures,
        capabilities and kernel versions are resolved for this host and the container's
        capabilities). It is applied as written, without our rules. It is recorded with the
        SHA-256 of its content (the container's C(config.seccomp_profile) is C({path, digest})), so a
        changed file is a changed option and recreates the container; a container whose file
        changed behind it fails to start again until the task gives the option.
      - Containers made before this option existed have V(unconfined) (no filter) until recreated.
      - A change recreates the container. Ignored (no filter) with O(privileged).
    type: str
  apparmor_profile:
    description:
      - The AppArmor profile the container's processes (and its execs) run under.
      - Where the host has AppArmor enabled, a new container gets V(runcible-default), the
        collection's profile (no mounts, no writes to the kernel's settings under C(/proc/sys) and
        C(/sys), no C(/proc/kcore) or C(sysrq-trigger), signals and ptrace only among the
        container's own processes), loaded with C(apparmor_parser) when the kernel lacks it or has
        an older version. Where AppArmor is not enabled the default is V(unconfined), without a
        warning.
      - V(unconfined), V(runcible-default), or the name of a profile already loaded on the host.
        Asking for a profile on a host without AppArmor fails.
      - A change recreates the container. Ignored with O(privileged).
    type: str
  label:
    description:
      - The SELinux labels of the container's processes and files, on a host with SELinux enabled.
      - A new container gets the policy's container contexts (its C(lxc_contexts) file, as podman
        reads it; C(container_t) and C(container_file_t) in Debian's reference policy and Fedora's
        container-selinux) with an MCS level C(s0:cX,cY) no other container of the store has; the
        process label goes to the container and its execs, the mount label to its root filesystem
        (the overlay's C(context=)), its C(/dev), C(/dev/shm) and its V(Z) bind mounts. The level is
        released when the container is removed. The labels are in the container's C(config.label).
      - V(disable) runs it without labels (the label of the task that made it).
      - A dictionary of the parts to set instead of the policy's (C(user), C(role), C(type),
        C(level), C(file_type) for the mount label's type), for example C(type=spc_t) or
        C(level=s0:c100,c200) (a given level is not allocated, so two containers may share it).
      - Needs the C(selinux) Python bindings on the managed node (Debian C(python3-selinux)) when
        SELinux is enabled. On a host without SELinux the default is V(disable) and asking for
        parts fails.
      - Compared by the parts given (an allocated level is the container's own, not a difference).
        A change recreates the container. Ignored with O(privileged).
    type: raw
  devices:
    description:
      - Host devices the container gets, each C(HOST), C(HOST:CONTAINER), C(HOST:PERMISSIONS) or
        C(HOST:CONTAINER:PERMISSIONS) (for example C(/dev/fuse) or C(/dev/net/tun:/dev/net/tun:rwm)),
        or a dictionary with C(host), C(container) (default the host path) and C(permissions)
        (letters of C(rwm) for read, write, mknod; default C(rwm)).
      - The device node is made in the container with the host device's type and numbers, and the
        device cgroup allows exactly those permissions on it. The host path must be a character or
        block device.
      - A change recreates the container.
    type: list
    elements: raw
  cgroupns:
    description:
      - V(private) gives the container a cgroup namespace of its own (its C(/proc/self/cgroup) and
        C(/sys/fs/cgroup) start at its own cgroup, the host's tree is not visible); V(host) shares
        the host's.
      - Defaults to V(private) on a cgroup v2 host (as podman) and V(host) on a host with cgroup v1
        controllers (hybrid or legacy). A change recreates the container.
    type: str
    choices: [private, host]
  network:
    description:
      - V(bridge) (the default for a new container) attaches it to the default network
        C(runcible), which is created on first use on a free private /24 (C(10.89.0.0/24) unless
        a host route takes it) with the bridge C(runcible0); stored as V(runcible).
      - A network name attaches it to that network, which M(runcible.oci.network) must have
        created first.
      - On a bridge network the container gets a network namespace C(/run/netns/rc-ID) of its
        own with C(lo), and C(eth0) (one end of a veth pair whose other end is on the bridge)
        with its address and, unless the network is internal, a default route through the
        gateway; C(/etc/hosts) (its name and address, O(etc_hosts)) and C(/etc/resolv.conf) (the
        network's C(aardvark-dns) on a network with C(dns) enabled, else O(dns) or the host's name
        servers, loopback ones left out) are mounted in. Needs nftables, and pyroute2 on the host
        (Debian C(python3-pyroute2)) to make its links.
      - V(none) gives it a network namespace of its own with no interface but loopback;
        V(host) shares the host's. Neither needs nftables.
      - The one-network shorthand of O(networks), with O(ip_address) and O(aliases); a task gives
        one form or the other, never both.
      - A change recreates the container.
    type: str
  networks:
    description:
      - The bridge networks of the container, in interface order (C(eth0), C(eth1)... up to 8), each
        a dict with C(name) (a network M(runcible.oci.network) created, or V(bridge) for the default
        network), and optionally C(ip_address) (its pinned IPv4 address there), C(ipv6_address) (its
        pinned IPv6 address, on a network with C(ipv6)) and C(aliases) (more names of it on that
        network's DNS). A plain string is a name alone.
      - Each network gives the container a veth pair of its own, its addresses (IPv4, and IPv6 on a
        network with C(ipv6)), its DNS records on that network's C(aardvark-dns) (name and that
        entry's aliases, seen only by containers on that network), and a C(nameserver) line in
        C(/etc/resolv.conf) (its gateway, for each network with C(dns); at most 3). The default
        routes (IPv4, IPv6) go through the first network that is not internal (and has IPv6).
      - Published ports (O(published_ports)) forward to the container's addresses on its first network.
      - Excludes O(network), O(ip_address) and O(aliases), which are the one-network shorthand of
        the same thing; the container records both forms (O(network) as the first entry's name, and
        V([]) for O(networks) when the shorthand was given), so moving from one form to the other is
        compared as it should be.
      - A running (or paused, or created) container keeps running when networks are appended to the list
        (attached, each with a new veth pair, its addresses and DNS records), when the last ones are removed
        (detached, their DNS records and addresses released), or when aliases change; its C(/etc/hosts) and
        C(/etc/resolv.conf) are rewritten in place. RV(actions) says V(updated).
      - Any other change (the first network, the order, a network removed from the middle, a pinned
        address) recreates it; the new one comes up on the new networks and the old one's DNS records
        are removed. A stopped container's networks are recorded, and joined at its next start.
    type: list
    elements: raw
  ip_address:
    description:
      - Pin the container's IPv4 address on its bridge network; it must be a free host address
        of the network's subnet. Without it the lowest free address is allocated when the
        container first starts, and kept until it is removed (returned as RV(container.ip_address)).
      - A change recreates the container.
    type: str
  published_ports:
    description:
      - Host ports forwarded to the container, each V([hostIP:]hostPort:containerPort[/tcp|udp])
        (TCP by default); both ports may be ranges of the same length, V(8000-8005:80-85). V(hostIP)
        restricts the port to one host address, e.g. V(127.0.0.1).
      - An IPv6 host address goes in brackets, V([::]:8080:80) (every IPv6 address of the host;
        V(8080:80) alone is IPv4's) or V([fd00::1]:8080:80), and needs the container's first network to
        have C(ipv6) (the port is forwarded to its IPv6 address there).
      - V([::1]:8080:80) publishes a port for the host alone, as V(127.0.0.1:8080:80) does. The kernel
        cannot forward IPv6 loopback traffic to another interface (it has no C(route_localnet) for IPv6),
        so the host's connections to C(::1) of a port published on V([::1]) or V([::]) go through a small
        proxy process of the container, which holds those ports, connects to the container's IPv6 address
        (its IPv4 address on a network without IPv6, allowed for V([::1]) only), ends with the container's
        conmon, and runs as a uid of its own (2147483646, no account) without capabilities. A proxy killed behind the module's back is
        started again by the next task on the container (RV(actions) says V(ports repaired)). The
        container sees those connections come from its network's gateway.
      - Compared in a canonical form (expanded, sorted, consecutive ports merged into ranges),
        so V(["8000:80", "8001:81"]) equals V(["8000-8001:80-81"]).
      - Every host port is bound by the module before the container is created and the socket
        handed to conmon, which keeps it for the container's life, so no other process can take
        it meanwhile (the proxy, for the IPv6 loopback ports above); a port already taken (by another
        container, named in the message, or any process) fails the task and nothing is changed.
        Connections are forwarded with nftables DNAT, also those to C(127.0.0.1) from the host itself.
      - Needs a bridge network. A change recreates the container.
    type: list
    elements: str
  dns:
    description:
      - Name servers of the container (IPv4 or IPv6 addresses, at most 3), instead of the host's.
      - On a network with M(runcible.oci.network)'s C(dns) enabled, the container's
        C(/etc/resolv.conf) names the network's C(aardvark-dns) (its gateway) and these servers
        answer the names it forwards for this container; elsewhere they are its C(nameserver) lines.
      - Needs a bridge network. A change recreates the container.
    type: list
    elements: str
  dns_search:
    description:
      - Search domains of the container's C(/etc/resolv.conf), instead of the host's.
      - Needs a bridge network. A change recreates the container.
    type: list
    elements: str
  dns_options:
    description:
      - Resolver options of the container's C(/etc/resolv.conf) (C(options) line), instead of the
        host's, e.g. V(ndots:2), V(edns0).
      - Needs a bridge network. A change recreates the container.
    type: list
    elements: str
  etc_hosts:
    description:
      - Extra entries of the container's C(/etc/hosts), host name -> IP address, after its own
        name and address.
      - Needs a bridge network. A change recreates the container.
    type: dict
  aliases:
    description:
      - More names of the container on its network's DNS (a network with M(runcible.oci.network)'s
        C(dns) enabled); the containers of that network resolve it by its name and by these.
        Containers of other networks do not.
      - Ignored on a network without DNS. Needs a bridge network. A change is made live, to the DNS
        records of the container (RV(actions) says V(updated)).
    type: list
    elements: str
  mounts:
    description:
      - Mounts, each V(source:target[:ro|rw]) or a dictionary with C(type), C(source), C(target)
        and C(options) (a list or comma-separated string of V(ro), V(rw), V(nosuid), V(nodev),
        V(noexec), ...). Targets must be absolute.
      - C(type=bind) (the default, and a string whose source is an absolute path) binds a host path,
        which must exist.
      - C(type=volume) (and a string whose source is a name, as V(pgdata:/var/lib/postgresql/data))
        binds a named volume of the store (see M(runcible.oci.volume)); a volume that is not there is
        made, empty, when the container is first created or started (never in check mode). Removing the
        container never removes a named volume. Mounted V(nosuid) and V(nodev) unless V(suid) or V(dev)
        is given; V(z)/V(Z) relabel the volume's own directory or tmpfs and are refused for a volume
        that binds or mounts a host directory or device.
      - C(type=tmpfs) mounts an empty tmpfs at C(target) (no source), its C(options) as for O(tmpfs).
      - On a host with SELinux enabled, V(z) relabels the source (recursively) with the container
        file type at C(s0), which every container may share, and V(Z) with this container's own mount
        label (its MCS level), so no other container can use it. A source that already has the
        label is not walked again. Refused for system and home directories (C(/), C(/etc), C(/usr),
        C(/home), C(/home/USER), C(/var/lib), ...). Without SELinux both are accepted and do nothing.
      - Compared after sorting by target, so their order in the task does not matter.
    type: list
    elements: raw
  tmpfs:
    description:
      - Empty, private tmpfs mounts, by path in the container to mount options, a comma list of
        V(size) (V(64m)...; the kernel's default is half the host's memory), V(mode) (octal),
        V(uid), V(gid), V(nr_inodes), and V(ro)/V(rw), V(exec)/V(noexec), V(suid)/V(nosuid),
        V(dev)/V(nodev), V(noatime). Defaults V(rw,noexec,nosuid,nodev) as podman's and
        docker's; give V(exec) to run programs from it.
      - A tmpfs is new and empty each time the container starts; its pages count against the
        O(memory) limit. Not at C(/), C(/proc), C(/sys) or C(/dev). A change recreates the container.
    type: dict
  shm_size:
    description:
      - Size of the container's C(/dev/shm) (a tmpfs), e.g. V(256m); suffixes V(k), V(m), V(g) (powers
        of 1024), no suffix for bytes; rounded up to whole KiB. Defaults to V(64m), as podman and docker.
      - Pages in it count against the container's O(memory) limit. A change recreates the container.
    type: raw
  cgroup_manager:
    description:
      - Who makes the container's cgroups. V(cgroupfs) writes them under O(cgroup_parent) (the
        container in C(<parent>/runcible-<id>), conmon in C(<parent>/conmon)); V(systemd) makes
        C(runcible-<id>.scope) through the runtime's systemd driver and a transient
        C(runcible-conmon-<id>.scope) for conmon over D-Bus, both in the O(cgroup_parent) slice.
      - V(auto) (the default for a new container) is V(systemd) when systemd is PID 1 and reachable
        over D-Bus, else V(cgroupfs). When the task itself runs inside a systemd unit
        (C(INVOCATION_ID) is set), conmon stays in that unit's cgroup and RV(actions) says so.
    type: str
    choices: [auto, cgroupfs, systemd]
  cgroup_parent:
    description:
      - With V(cgroupfs) an absolute cgroup path (default C(/runcible)); with V(systemd) a slice name
        (default C(machine.slice)). A slice given to cgroupfs, or a path given to systemd, fails.
    type: str
  memory:
    description:
      - Memory limit, in bytes or with a unit (V(64m), V(1g), V(512k)); V(0) for no limit.
        Defaults to no limit. Updated live.
    type: raw
  memory_reservation:
    description:
      - Soft memory limit (v1 C(memory.soft_limit_in_bytes), v2 C(memory.low)); V(0) for none. Updated live.
    type: raw
  memory_swap:
    description:
      - Memory plus swap limit (at least O(memory)); V(-1) for unlimited swap. Needs swap accounting
        on cgroup v1. Updated live.
    type: raw
  cpus:
    description:
      - CPU limit as a number of CPUs (V(0.5) is half a CPU); V(0) for no limit; at least V(0.01).
        Updated live.
    type: float
  cpu_quota:
    description:
      - CPU time in microseconds the container may use per O(cpu_period) (the cgroup's CFS quota),
        at least V(1000); V(0) for no limit. Excludes O(cpus), which is the same limit per the
        default period. Updated live and read back from the cgroup.
    type: int
  cpu_period:
    description:
      - Length in microseconds of the period O(cpu_quota) is measured in, V(1000) to V(1000000);
        V(0) for the default (V(100000)). Updated live and read back from the cgroup.
    type: int
  cpu_shares:
    description:
      - Relative CPU weight, 2 to 262144 (cgroup v1 C(cpu.shares); converted to C(cpu.weight) on v2);
        V(0) for the default. Updated live.
    type: int
  cpuset_cpus:
    description:
      - CPUs the container may run on, such as V(0-1) or V(0,2); compared as a normalised list. Updated live.
    type: str
  cpuset_mems:
    description:
      - Memory nodes the container may use, such as V(0). Updated live.
    type: str
  pids_limit:
    description:
      - Maximum number of processes; V(0) for no limit. Updated live.
      - A new container gets V(2048) when this is not given (podman's default), so that a fork bomb
        in one container cannot exhaust the host's process table. Containers created before this
        default keep their limit until a task gives one.
    type: int
  blkio_weight:
    description:
      - Relative block I/O weight, 10 to 1000; needs a block I/O weight controller (C(blkio.weight),
        or C(io.weight) with BFQ); fails clearly on hosts without one. Updated live.
    type: int
  memory_swappiness:
    description:
      - How readily the kernel swaps the container's anonymous memory out, V(0) to V(100); V(-1) for the
        host's. cgroup v1 only (cgroup v2 has no such setting and it is refused there). A change recreates
        the container.
    type: int
  device_read_bps:
    description:
      - Read rate limits on block devices of the host, as C(DEVICE:RATE) (V(/dev/sda:10m), bytes per
        second with the size suffixes) or C({path, rate}). A change recreates the container (the
        runtime's C(update) does not change them).
    type: list
    elements: raw
  device_write_bps:
    description:
      - Write rate limits on block devices, as O(device_read_bps).
    type: list
    elements: raw
  device_read_iops:
    description:
      - Read operations per second limits on block devices, as C(DEVICE:COUNT).
    type: list
    elements: raw
  device_write_iops:
    description:
      - Write operations per second limits on block devices, as C(DEVICE:COUNT).
    type: list
    elements: raw
  stop_signal:
    description:
      - Signal that asks the process to stop, by name (V(SIGTERM), V(TERM)) or number.
        Defaults to V(SIGTERM).
    type: raw
  stop_timeout:
    description:
      - Seconds to wait after O(stop_signal) before SIGKILL. Defaults to V(10).
      - A change does not recreate the container.
    type: int
  restart_policy:
    description:
      - What happens when the container's process ends by itself (a crash, a kill, an exit), with no
        daemon - conmon runs the collection's exit command, which applies it and ends.
      - V(no) (the default) leaves it stopped. V(on-failure) starts it again after a non-zero exit or a
        kill, at most O(restart_retries) times in a row when that is above 0. V(always) and
        V(unless-stopped) start it again whatever the exit.
      - A crash loop backs off - the delay doubles from 0.1 s with each restart in a row, up to 30 s; a
        process that ran 10 s starts a new streak. A stop or removal by a task (and a checkpoint) is
        never undone, also when a restart was waiting in its back-off.
      - The exit command runs the collection's runtime library, installed under O(root) in
        C(lib/VERSION) (one copy per version, older ones removed when no container refers to them),
        with the Python the module ran with. What it did goes to C(restart.log) in the container's
        run directory.
      - A change is a record update (no recreate), applied at the next exit of the process. A container
        launched with V(no) has no exit command (its conmon exits with its process, as before), so a policy
        given to it while it runs applies from its next start (the task warns; O(state=restarted) does
        it now).
      - After a reboot, on systemd hosts the store's boot unit starts V(always) and V(unless-stopped)
        containers (see the runtime role's C(runcible_runtime_boot_unit)); elsewhere a task with
        O(state=started) starts it again.
    type: str
    choices: ['no', on-failure, always, unless-stopped]
  restart_retries:
    description:
      - With O(restart_policy=on-failure), restarts in a row after which the container stays stopped;
        V(0) (the default) for no limit. Refused with another policy.
    type: int
  systemd_unit:
    description:
      - Run the container by a systemd unit of its own instead of by tasks (the quadlet idea). The
        collection writes C(/etc/systemd/system/runcible-NAME.service) (NAME escaped as systemd escapes
        unit names; a unit of that name that is not this store's is refused), whose C(ExecStart) and
        C(ExecStop) run the collection's runtime library installed under O(root) (C(lib/current)) with
        the module's Python, enables it while the container should run and starts, stops and restarts
        the container with C(systemctl). After a reboot the enabled unit starts it.
      - O(restart_policy) becomes the unit's C(Restart=) (V(unless-stopped) is C(always)); no exit
        command of conmon is used. O(restart_retries) is refused (systemd counts no retries).
      - O(state) may be V(started), V(stopped), V(restarted), V(healthy) or V(absent).
        V(stopped) stops and disables the unit. V(absent) stops it, disables it and removes its files.
        A change that recreates the container rewrites the unit and restarts it; a change of
        O(restart_policy) or O(stop_timeout) rewrites the unit only.
      - Needs systemd as PID 1 and python-systemd (Debian package python3-systemd) for the unit's
        Python; without them the task fails before it changes anything. Secret values are kept on the
        tmpfs only, so a unit cannot start a container with O(secrets) after a reboot.
      - A change recreates the container. Check mode writes nothing.
    type: bool
  sdnotify:
    description:
      - With O(systemd_unit=true), when the unit counts as started (it is C(Type=notify)).
      - V(conmon) (the default) - once conmon has started the container.
      - V(container) - once the container itself sends C(READY=1). The container gets
        C(NOTIFY_SOCKET=/run/notify/notify.sock), a socket bind-mounted from its run directory and
        owned by its user; the unit's start command relays C(READY=1) (and C(STATUS=) lines until then)
        to systemd with python-systemd's C(daemon.notify). A container that exits first fails the start.
      - V(ignore) - nothing is notified; the unit is C(Type=forking) with conmon's pid file, started
        when its start command returns.
      - Refused without O(systemd_unit). A change recreates the container.
    type: str
    choices: [conmon, container, ignore]
  systemd_socket:
    description:
      - With O(systemd_unit=true), socket activation - a C(runcible-NAME.socket) unit listens on these
        TCP ports (C(PORT), C(ADDRESS:PORT) or C([IPV6]:PORT), as C(ListenStream=)) and starts the
        container's unit on the first connection. The socket unit is what is enabled and started; the
        container starts with the first connection.
      - Refused without O(systemd_unit). A change recreates the container.
    type: list
    elements: str
  healthcheck:
    description:
      - A command that says whether the container works, run inside it through the same exec path as
        M(runcible.oci.container_exec) - exit 0 is healthy. On systemd hosts a transient timer per container
        (C(runcible-health-ID.timer), made by C(systemd-run), gone with the container) runs it every C(interval)
        seconds after the last check ended; without systemd no daemon runs it on a schedule. It also runs when a task asks - O(state=healthy)
        waits for it to pass, and M(runcible.oci.container_info) with
        O(runcible.oci.container_info#module:check_health=true) runs the checks that are due.
        Results are kept in the container's record (RV(container.health)) until its process restarts.
      - Failures within C(start_period) of the start keep it V(starting); C(retries) failures in a row
        make it V(unhealthy).
      - Keys - C(test), the command (a list of arguments, or a string run by C(/bin/sh -c); docker's
        C([CMD, ...]) and C([CMD-SHELL, ...]) forms are understood); C(interval), seconds between checks
        (also V(30s), V(1m30s), V(500ms); default 30); C(timeout), seconds a check may run before it is
        killed and fails (default 30); C(retries), failures in a row that make it unhealthy (default 3);
        C(start_period), seconds after a start whose failures do not count (default 0).
      - A change is a record update (no recreate). V({}) or C(test=[NONE]) for none.
    type: raw
  health_on_failure:
    description:
      - What happens when a check makes the container unhealthy. V(none) (the default) only reports
        it, V(kill) kills it with SIGKILL (its O(restart_policy) decides what follows), V(restart)
        stops and starts it again (a new process, the same container).
    type: str
    choices: [none, kill, restart]
  labels:
    description:
      - Labels (key/value metadata) of the container.
    type: dict
  log_driver:
    description:
      - Where conmon writes the container's stdout and stderr.
      - V(k8s-file) (the default for a new container) writes conmon's k8s-file format to the
        file returned as RV(container.log_path); M(runcible.oci.container_info) reads it back
        with its C(logs_tail) and C(logs_since) options.
      - V(journald) sends each line to the systemd journal, tagged with the container name
        (C(CONTAINER_NAME), C(CONTAINER_ID_FULL)); reading it back needs python-systemd.
      - V(none) discards the output.
      - A change recreates the container.
    type: str
    choices: [k8s-file, journald, none]
  log_size_max:
    description:
      - Maximum size of the V(k8s-file) log, in bytes or with a unit (V(10m)); when a write
        would make the file larger, conmon empties it and goes on writing (older lines are lost).
        V(0) for no limit, the default for a new container.
      - A change recreates the container.
    type: raw
notes:
  - The module must run as root on the managed host.
  - Containers keep running after the task; conmon supervises them, writes their logs and
    their exit code.
  - Bridge networks and published ports need nftables on the managed host (Debian
    C(nftables)); with O(network=none) or O(network=host) it is not needed. Plugging a container into
    a bridge network needs the Python library pyroute2 on the managed host (Debian C(python3-pyroute2));
    it is imported only by a task that makes links, never by O(network=none) or O(network=host) nor by a
    task that changes nothing.
  - Published ports and outbound NAT are nftables rules in a table of the collection's own,
    C(ip runcible), rewritten whole in one transaction from the network registry; every rule
    carries a comment naming its container or network. See M(runcible.oci.network) for why
    nftables and not iptables.
  - A container killed behind the module's back (its conmon gone) keeps its namespace and
    firewall rules until the next task on it, which removes them (and starts it again when
    asked); its host ports are free as soon as its conmon is gone.
seealso:
  - module: runcible.oci.network
  - name: conmon
    description: The OCI container runtime monitor.
    link: https://github.com/containers/conmon
'''

EXAMPLES = r'''
- name: Run a busybox web server from a prepared root filesystem
  runcible.oci.container:
    name: web
    rootfs: /srv/rootfs/busybox
    command: httpd -f -p 8080 -h /srv
    network: host
    memory: 64m
    env:
      MODE: production
    mounts:
      - /srv/www:/srv:ro

- name: A database with its password as a file and an API token as a variable
  runcible.oci.container:
    name: db
    rootfs: /srv/rootfs/busybox
    command: sh -c 'test -s /run/secrets/db_password && exec sleep infinity'
    secrets:
      db_password: "{{ vault_db_password }}"
      api_token:
        value: "{{ vault_api_token }}"
        type: env
        target: API_TOKEN

- name: Stop it (SIGTERM, then SIGKILL after 5 seconds)
  runcible.oci.container:
    name: web
    state: stopped
    stop_timeout: 5

- name: Tolerate extra environment variables in the running container
  runcible.oci.container:
    name: web
    env:
      MODE: production
    comparisons:
      env: allow_more_present

- name: Remove it with its logs and root filesystem changes
  runcible.oci.container:
    name: web
    state: absent

- name: Run a container from an image in a registry; recreate it when the tag moves
  runcible.oci.container:
    name: app
    image: docker://registry.example.com/team/app:stable
    pull: always
    env:
      LOG_LEVEL: debug

- name: A web server on the default bridge network, reachable on host port 8080 (and 127.0.0.1:8443)
  runcible.oci.container:
    name: web2
    rootfs: /srv/rootfs/busybox
    command: httpd -f -p 80 -h /srv
    published_ports:
      - "8080:80"
      - "127.0.0.1:8443:443"
    mounts:
      - /srv/www:/srv:ro

- name: A database on a named network, at a fixed address
  runcible.oci.container:
    name: backend-db
    rootfs: /srv/rootfs/db
    command: /usr/sbin/dbd --foreground
    network: backend
    ip_address: 10.89.5.10

- name: Run a service by a systemd unit of its own, active once the service says READY=1 (systemd hosts)
  runcible.oci.container:
    name: api
    rootfs: /srv/rootfs/busybox
    command: /usr/local/bin/api --notify
    systemd_unit: true
    sdnotify: container
    restart_policy: always
  when: ansible_facts['service_mgr'] | default('') == 'systemd'

- name: Start it on the first connection to 127.0.0.1:8081 (socket activation; systemd hosts)
  runcible.oci.container:
    name: api-on-demand
    rootfs: /srv/rootfs/busybox
    command: /usr/local/bin/api --listen-fds
    systemd_unit: true
    systemd_socket: ['127.0.0.1:8081']
  when: ansible_facts['service_mgr'] | default('') == 'systemd'
'''

RETURN = r'''
actions:
  description: What was done, in order (V(created), V(started), V(stopped), V(paused), V(unpaused),
    V(updated), V(recreated), V(restarted), V(removed), V(volumes removed), V(ports repaired)); empty when nothing
    changed. V(updated) with resource limits means they were applied live. V(ports repaired) means the proxy of its IPv6
    loopback ports (O(published_ports)) was gone and is running again. A note follows when conmon was left in the cgroup of the
    systemd unit running the task.
  returned: always
  type: list
  elements: str
  sample: [created, started]
removed_volumes:
  description: The image volumes removed with the container (O(state=absent) and O(keep_volumes=false));
    in check mode, those that would be.
  returned: when any
  type: list
  elements: str
  sample: [web-3f1c0e6b2a9d4e51]
container:
  description: The container after the task; empty when it is absent.
  returned: always
  type: dict
  contains:
    id:
      description: Container id (64 hex digits), also the runtime's id. V(null) in check mode for a new container.
      type: str
    name:
      description: Container name.
      type: str
    status:
      description: V(created), V(running), V(paused) or V(stopped), read live.
      type: str
    pid:
      description: Host pid of the container's process; 0 when it does not run.
      type: int
    conmon_pid:
      description: Host pid of its conmon; 0 when none runs.
      type: int
    restart_count:
      description: How many times its O(restart_policy) started it again.
      type: int
    health:
      description:
        - Its health (V(null) without O(healthcheck)) since its process started - C(status) (V(starting),
          V(healthy) or V(unhealthy)), C(failing_streak), and C(log), the last five checks with their
          C(start), C(end), C(exit_code) and C(output).
      type: dict
    exit_code:
      description: Exit code of the last process when stopped (null when unknown, e.g. killed with its conmon).
      type: int
    created_at:
      description: When the container was created (UTC, ISO 8601).
      type: str
    started_at:
      description: When its process was last started.
      type: str
    finished_at:
      description: When its process last ended.
      type: str
    bundle:
      description: Path of its OCI bundle (C(config.json)).
      type: str
    rootfs:
      description: Path of the root filesystem the container sees.
      type: str
    log_path:
      description: conmon's log file (k8s-file format).
      type: str
    runtime:
      description: Name of its OCI runtime.
      type: str
    ip_address:
      description: Its IPv4 address on its bridge network, allocated when it first started and kept until it is
        removed; V(null) with O(network=none), O(network=host), or before it first started. On several
        networks, its address on the first.
      type: str
      sample: 10.89.0.2
    networks:
      description: Its bridge networks as its last start attached them, in interface order, each with C(name),
        C(interface) (V(eth0), V(eth1)...), C(ip_address) and C(ipv6_address) (V(null) on a network without IPv6);
        empty with O(network=none), O(network=host), or before it first started.
      type: list
      elements: dict
      sample:
        - {name: backend, interface: eth0, ip_address: 10.89.5.2, ipv6_address: null}
    config:
      description: The normalised configuration it was created with (sizes in bytes, signals as numbers, user as uid:gid).
      type: dict
  sample:
    id: 2f1c0e6f0c4f4b6fa0f5f2d8c6a1b7e93c1d2e4f5a6b7c8d9e0f1a2b3c4d5e6f
    name: web
    status: running
    pid: 4242
    conmon_pid: 4230
    exit_code: null
'''

from ansible_collections.runcible.oci.plugins.module_utils._bytecode import enable_cache

enable_cache()  # before the imports below: compiled module_utils are kept on the node (see _bytecode.py)

from ansible_collections.runcible.oci.plugins.module_utils import _container
from ansible_collections.runcible.oci.plugins.module_utils._task import run_task


def main():
    run_task(_container.Task, _container.argument_spec())


if __name__ == '__main__':
    main()
