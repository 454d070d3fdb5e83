# -*- coding: utf-8 -*-
# Copyright (c) 2026 runcible.oci contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the runtime library; modules turn them into fail_json."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


class RuncibleError(Exception):
    """A failure with a message meant for the user, and optional details."""

    def __init__(self, msg: str, **details: Any) -> None:
        super(RuncibleError, self).__init__(msg)
        self.msg = msg
        self.details = details


class ValidationError(RuncibleError):
    """Bad input: nothing was changed."""


class RuntimeCommandError(RuncibleError):
    """The OCI runtime, conmon or another tool failed; details carry its own output."""


class MissingLibraryError(RuncibleError):
    """A Python library needed for this request is not installed; modules report missing_required_lib()."""

    def __init__(self, library: str, reason: str, import_traceback: str) -> None:
        super(MissingLibraryError, self).__init__('%s is required %s' % (library, reason))
        self.library = library
        self.reason = reason
        self.import_traceback = import_traceback
