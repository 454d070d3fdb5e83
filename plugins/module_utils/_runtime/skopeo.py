# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry client: skopeo, run for ``docker://`` images (``inspect --raw``, read-only, and ``copy``
into a ``dir:`` layout). It moves bytes only: image_sources.py reads and checks what it returns.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import TYPE_CHECKING

from .errors import RuntimeCommandError, ValidationError
from .host import find_program

if TYPE_CHECKING:
    from .image_refs import Reference

SKOPEO_INSPECT_TIMEOUT = 120
SKOPEO_HINT = 'skopeo not found: pulling docker:// images needs skopeo; install the Debian package "skopeo"'


class SkopeoClient(object):
    """docker:// references through skopeo: inspect (read-only) and copy into a ``dir:`` layout."""

    def __init__(self, tls_verify: bool = True, auth_file: str | None = None, tmp_dir: str | None = None) -> None:
        self.tls_verify = tls_verify
        self.auth_file = auth_file
        self.tmp_dir = tmp_dir

    @staticmethod
    def skopeo() -> str:
        path = find_program('skopeo')
        if not path:
            raise ValidationError(SKOPEO_HINT)
        return path

    def _run(self, args: list[str], timeout: float | None) -> bytes:
        env = dict(os.environ)
        if self.tmp_dir:
            env['TMPDIR'] = self.tmp_dir
        argv = [self.skopeo()] + args
        try:
            # stdlib-only runtime library (docs/architecture.md): a process of our own, not run_command
            # pylint: disable-next=ansible-bad-function
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeCommandError('skopeo %s timed out after %ss' % (args[0], timeout), argv=argv)
        if proc.returncode != 0:
            err = proc.stderr.decode('utf-8', 'replace').strip()
            found = re.findall(r'msg="((?:[^"\\]|\\.)*)"', err)
            message = found[-1].replace('\\"', '"') if found else err
            raise RuntimeCommandError('skopeo %s failed: %s' % (args[0], message[-2000:]), argv=argv,
                                      stderr=err[-4000:], rc=proc.returncode)
        return proc.stdout

    def _auth(self, prefix: str = '') -> list[str]:
        args = []
        if not self.tls_verify:
            args.append('--%stls-verify=false' % prefix)
        if self.auth_file:
            args += ['--%sauthfile' % prefix, self.auth_file]
        return args

    def inspect_raw(self, name: str, config: bool = False) -> bytes:
        args = ['inspect', '--raw'] + (['--config'] if config else []) + self._auth() + [name]
        return self._run(args, SKOPEO_INSPECT_TIMEOUT)

    def copy(self, reference: Reference, digest: str, destination: str) -> None:
        """skopeo copy of exactly ``digest`` into a ``dir:`` layout, which keeps the manifest as served."""
        self._run(['copy', '--quiet'] + self._auth('src-') + [reference.docker_source(digest), 'dir:' + destination],
                  None)
