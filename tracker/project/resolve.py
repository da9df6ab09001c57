"""Resolving `[MODEL:]OP` specs to operations, and checking their flags.

Also `${flag}` interpolation, which commands, labels and steps share.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from ..errors import OpError
from .flags import NUL_FIX, arg_value, has_nul, parse_value, split_assign
from .loader import OpDef, Project

FLAG_REF = re.compile(r"\$\{([^}]+)\}")  # `${name}` in commands, labels and steps


def split_opspec(spec: str) -> tuple[str | None, str]:
    """`model:op` -> (model, op); a bare `op` -> (None, op)."""
    model, sep, op = spec.rpartition(":")
    return (model if sep else None), op


def resolve(project: Project, spec: str, context_model: str | None = None) -> OpDef:
    """Find the operation `spec` names; `context_model` is tried first."""
    model, opname = split_opspec(spec.strip())
    if not opname:
        raise OpError(f"invalid operation '{spec}'")
    if model is not None:
        m = project.models.get(model)
        if m is None:
            raise OpError(
                f"there is no model '{model}' in {project.filename}",
                "Try 'trk models' for a list of available models.",
            )
        op = m.operations.get(opname)
        if op is None:
            raise OpError(
                f"operation '{opname}' is not defined for model '{model}'",
                f"Try 'trk operations {model}' for a list of available operations.",
            )
        return op
    if context_model is not None and context_model in project.models:
        op = project.models[context_model].operations.get(opname)
        if op is not None:
            return op
        if context_model:
            raise OpError(
                f"operation '{opname}' is not defined for model '{context_model}'",
                f"Try 'trk operations {context_model}' for a list of available operations.",
            )
    if "" in project.models and opname in project.models[""].operations:
        return project.models[""].operations[opname]
    found = [m.operations[opname] for m in project.models.values() if opname in m.operations]
    if len(found) == 1:
        return found[0]
    if not found:
        raise OpError(
            f"cannot find operation '{opname}' in {project.filename}",
            "Try 'trk operations' for a list of available operations.",
        )
    names = ", ".join(op.fullname for op in found)
    raise OpError(f"operation '{opname}' is ambiguous: it is defined by {names}", "Name the model: MODEL:OP.")


def parse_assigns(args: list[str]) -> dict[str, Any]:
    """Parse `NAME=VALUE` command-line arguments into typed values."""
    flags: dict[str, Any] = {}
    for arg in args:
        name, value = split_assign(arg)
        flags[name] = parse_value(value)
    return flags


def resolve_flags(
    op: OpDef,
    assigned: dict[str, Any],
    force_flags: bool = False,
    help_cmd: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge defaults with assigned values; check names, types and choices.

    Returns (flags, extra): `extra` holds values for undefined flags that
    --force-flags lets through (for a stepped op, the steps pick them up).
    """
    flags: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in assigned.items():
        if has_nul(name) or has_nul(value):
            raise OpError(f"flag {name!r} of {op.fullname} has a NUL byte in {value!r}: {NUL_FIX}", exit_code=2)
        if name not in op.flags:
            if op.is_stepped and ":" in name:
                extra[name] = value  # STEP:FLAG, checked by the steps module
                continue
            if not force_flags:
                spec = help_cmd or op.fullname
                raise OpError(
                    f"unsupported flag '{name}'",
                    f"Try 'trk run {spec} --help-op' for a list of flags or use\n"
                    "--force-flags to skip this check.",
                )
            if op.is_stepped or ":" in name:
                extra[name] = value
            else:
                flags[name] = value
    for name, fdef in op.flags.items():
        if name in assigned:
            value = assigned[name]
            flags[name] = value if force_flags else fdef.coerce(value, op.fullname)
        else:
            flags[name] = fdef.default
    missing = [n for n, d in op.flags.items() if d.required and flags.get(n) is None]
    if missing:
        raise OpError(
            f"missing required flag{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{m}'" for m in missing)
            + f" for {op.fullname}",
            f"Set {'them' if len(missing) > 1 else 'it'} with NAME=VALUE, or see 'trk run {op.fullname} --help-op'.",
        )
    return flags, extra


def interpolate(s: str, flags: dict[str, Any], quote: bool = False) -> str:
    """Replace `${name}` with flag values; unknown refs stay as they are."""

    def repl(m: re.Match) -> str:
        name = m.group(1)
        if name not in flags:
            return m.group(0)
        v = arg_value(flags[name])
        return shlex.quote(v) if quote else v

    return FLAG_REF.sub(repl, s)


def check_label(label: str, what: str = "--label") -> str:
    """Return `label`; raise OpError (exit 2) unless it is one line of text,
    as every listing shows a label on its run's line."""
    if "\0" in label:
        raise OpError(f"{what} must not contain a NUL byte, as {label!r} does: remove it", exit_code=2)
    if "\n" in label or "\r" in label:
        raise OpError(f"{what} must be one line of text, not {label!r}: use spaces instead of line breaks",
                      exit_code=2)
    return label
