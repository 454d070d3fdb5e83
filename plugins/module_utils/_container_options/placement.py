# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of how the runtime layer launches the container: the OCI runtime and the cgroup placement."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._runtime import cgroups
from .._runtime.oci_cli import select_runtime

if TYPE_CHECKING:
    from .base import Context


def runtime(value: str, context: Context) -> str:
    """``auto``, ``runc``, ``crun`` or an absolute path -> the path of a runtime that works on this host."""
    _name, path, _warnings = select_runtime(value)
    return path


def cgroup_manager(value: str, context: Context) -> str:
    return cgroups.resolve_manager(value)


def default_cgroup_manager(context: Context) -> str:
    return cgroups.resolve_manager('auto')


def cgroup_parent(value: str, context: Context) -> str:
    """Kept as given here; the group check ``placement`` validates it for the container's manager."""
    return str(value)
