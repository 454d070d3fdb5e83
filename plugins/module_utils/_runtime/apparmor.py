# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AppArmor: is it enabled here, which profiles are loaded, and our default profile ``runcible-default``.

The default profile is rendered from :data:`TEMPLATE` (self-contained: it includes nothing from
/etc/apparmor.d, so it loads the same on every distribution) and loaded with ``apparmor_parser``
when a launch needs it and the kernel lacks it or has an older version: the SHA-256 of the text we
loaded is kept in ``run_root/apparmor/`` (a tmpfs, emptied by a reboot as the kernel's policy is).
Nothing is written to /etc/apparmor.d.

What it confines (on top of capabilities and seccomp): no mount or unmount of any kind, no write to
the kernel's knobs under /proc (except the namespaced ``/proc/sys/net``) and /sys (except the cgroup
tree), no access to ``/proc/kcore``, ``/proc/kmsg``, ``/proc/sysrq-trigger``, firmware, debugfs or
securityfs; signals and ptrace only among processes of the same profile (the host, unconfined, and
confined runtimes may still signal them).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess

from .errors import RuntimeCommandError, ValidationError
from .files import atomic_write
from .host import find_program

DEFAULT_PROFILE = 'runcible-default'
PROFILE_VERSION = 2  # bump with every change of TEMPLATE (the stamp is the text's digest; this says it in the text)
ENABLED_FILE = '/sys/module/apparmor/parameters/enabled'
SECURITYFS = '/sys/kernel/security/apparmor'
NAME_MAX = 255

TEMPLATE = """\
# runcible.oci's default AppArmor profile for containers, version {version}.
# Rendered and loaded by the collection (apparmor_parser -r); not read from /etc/apparmor.d.
@{{RC_PROC}}=/proc/

profile {name} flags=(attach_disconnected,mediate_deleted) {{
  # What a container may do, as far as this profile goes: capabilities and seccomp confine the rest.
  network,
  capability,
  file,
  pivot_root,

  # Signals and ptrace stay among the container's processes; the host may signal them, and so may the
  # runtimes where AppArmor 4 confines them in profiles of their own.
  signal (receive) peer=unconfined,
  signal (receive) peer={{runc,crun}},
  signal (send, receive) peer={name},
  ptrace (trace, read, tracedby, readby) peer={name},

  # No new mounts (of any file system, bind or remount), and no unmounting what hides /proc's secrets.
  deny mount,
  deny umount,

  # The kernel's knobs: read-only, but the namespaced network sysctls.
  deny @{{RC_PROC}}/sys/[^n]** wklx,
  deny @{{RC_PROC}}/sys/n[^e]** wklx,
  deny @{{RC_PROC}}/sysrq-trigger rwklx,
  deny @{{RC_PROC}}/kcore rwklx,
  deny @{{RC_PROC}}/kmsg rwklx,
  deny @{{RC_PROC}}/[0-9]*/attr/** w,
  deny /sys/[^f]** wklx,
  deny /sys/f[^s]** wklx,
  deny /sys/fs/[^c]** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/kernel/debug/** rwklx,
  deny /sys/kernel/security/** rwklx,
}}
"""


def enabled(enabled_file: str | None = None, securityfs: str | None = None) -> bool:
    """AppArmor is the host's (or one of its) LSM and its policy interface is mounted."""
    try:
        with open(enabled_file or ENABLED_FILE) as handle:
            if handle.read().strip() != 'Y':
                return False
    except OSError:
        return False
    return os.path.isdir(securityfs or SECURITYFS)


def loaded_profiles(securityfs: str | None = None) -> dict[str, str]:
    """{profile name: mode} of the kernel's loaded policy (``name (enforce)`` lines)."""
    profiles: dict[str, str] = {}
    try:
        with open(os.path.join(securityfs or SECURITYFS, 'profiles')) as handle:
            for line in handle:
                name, _sep, mode = line.rstrip('\n').rpartition(' (')
                if name:
                    profiles[name] = mode.rstrip(')')
    except OSError:
        pass
    return profiles


def render(name: str = DEFAULT_PROFILE) -> str:
    return TEMPLATE.format(name=name, version=PROFILE_VERSION)


def check_profile_name(value: str) -> str:
    """``unconfined`` or a profile name the kernel could have; never a path or a list of words."""
    if not value or len(value) > NAME_MAX or value.startswith('-') \
            or any(char.isspace() or ord(char) < 32 for char in value):
        raise ValidationError('apparmor_profile: %r is not an AppArmor profile name: give the name of a loaded '
                              'profile, %s, or unconfined' % (value, DEFAULT_PROFILE))
    return value


def require(value: str) -> None:
    """A profile other than ``unconfined`` needs AppArmor here, and a loaded profile (ours is loaded on launch)."""
    if value == 'unconfined':
        return
    if not enabled():
        raise ValidationError('apparmor_profile: %s asked for, but AppArmor is not enabled on this host (%s is not Y or '
                              'securityfs is not mounted): leave apparmor_profile out or give unconfined'
                              % (value, ENABLED_FILE))
    if value == DEFAULT_PROFILE:
        if DEFAULT_PROFILE not in loaded_profiles() and find_program('apparmor_parser') is None:
            raise ValidationError('apparmor_profile: %s needs apparmor_parser to load it: install the apparmor package'
                                  % DEFAULT_PROFILE)
        return
    if value not in loaded_profiles():
        raise ValidationError('apparmor_profile: profile %s is not loaded on this host: load it first (apparmor_parser '
                              '-r FILE), or give %s or unconfined' % (value, DEFAULT_PROFILE))


def ensure_default(run_root: str) -> bool:
    """Load ``runcible-default`` when the kernel lacks it or has another version; True when it loaded it."""
    text = render()
    digest = hashlib.sha256(text.encode('utf-8')).hexdigest()
    stamp_dir = os.path.join(run_root, 'apparmor')
    stamp = os.path.join(stamp_dir, DEFAULT_PROFILE + '.sha256')
    if DEFAULT_PROFILE in loaded_profiles():
        with contextlib.suppress(OSError):
            with open(stamp) as handle:
                if handle.read().strip() == digest:
                    return False
    parser = find_program('apparmor_parser')
    if parser is None:
        raise RuntimeCommandError('AppArmor is enabled and the container runs under %s, but apparmor_parser is '
                                  'missing: install the apparmor package' % DEFAULT_PROFILE)
    # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
    # pylint: disable-next=ansible-bad-function
    process = subprocess.run([parser, '--replace', '--skip-cache'], input=text.encode('utf-8'), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=None, check=False)
    if process.returncode != 0:
        raise RuntimeCommandError('apparmor_parser could not load %s: %s'
                                  % (DEFAULT_PROFILE, process.stderr.decode('utf-8', 'replace').strip()))
    os.makedirs(stamp_dir, mode=0o700, exist_ok=True)
    atomic_write(stamp, digest + '\n', mode=0o600)
    return True


__all__ = ['DEFAULT_PROFILE', 'enabled', 'loaded_profiles', 'render', 'require', 'ensure_default', 'check_profile_name']
