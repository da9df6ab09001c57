"""Typed errors raised by the trk library.

The library never prints or exits; the CLI turns these into `trk: ...`
messages, hint lines and exit codes.
"""

from __future__ import annotations


class TrkError(Exception):
    """An error a user can act on: a message and optional hint lines."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ProjectError(TrkError):
    """A project file (trk.yml / guild.yml) is missing or malformed."""


class OpError(TrkError):
    """An operation cannot be resolved or its flags are invalid."""


class RunSpecError(TrkError):
    """A run spec (index, range, id prefix) selects nothing or is ambiguous."""


class DependencyError(TrkError):
    """A run dependency could not be resolved."""


class StepError(TrkError):
    """A step of a stepped operation is invalid."""
