"""Resolving `[MODEL:]OP` specs to operations and checking their flags.

Also knows how a resolved operation becomes a command: an argv list, never
a shell string, with `${flag}` interpolation.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from typing import Any

from .errors import OpError
from .flags import FlagDef, arg_value, parse_value, split_assign
from .project import OpDef, Project

_REF = re.compile(r"\$\{([^}]+)\}")
_SHELLS = {"sh", "bash", "zsh", "dash", "ksh"}


def split_opspec(spec: str) -> tuple[str | None, str]:
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

    return _REF.sub(repl, s)


_ARG_PARSERS = re.compile(
    r"^\s*(import|from)\s+(argparse|click|absl|fire|typer|docopt|optparse|hydra)\b|\bsys\.argv\b", re.M)


def flags_dest(op: OpDef, project_dir: str | None) -> str:
    """`args` (flags as --name value) or `globals` (flags set as module globals).

    As in Guild: `flags-dest` when given; otherwise `args` when the main
    module imports an argument parser or reads sys.argv, else `globals`.
    """
    dest = op.config.get("flags-dest")
    if dest in ("args", "globals"):
        return dest
    if not op.flags or not op.main or project_dir is None:
        return "args"
    module = shlex.split(op.main)[0].replace(".", "/")
    for candidate in (f"{module}.py", f"{module}/__main__.py"):
        path = os.path.join(project_dir, candidate)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return "args" if _ARG_PARSERS.search(f.read()) else "globals"
        except OSError:
            continue
    return "args"


def command_argv(op: OpDef, flags: dict[str, Any], project_dir: str | None = None) -> list[str]:
    """Build the argv list for a `main` or `exec` operation.

    Flag values are interpolated into single argv items. Where an item is the
    script of `sh -c` / `bash -c`, values are shell-quoted, so a value with
    spaces, quotes or `;` stays one literal word. A `main` module that parses
    no arguments gets its flags as globals (see `tracker.pymain`).
    """
    if op.exec is not None:
        try:
            tmpl = shlex.split(op.exec)
        except ValueError as e:
            raise OpError(f"invalid exec for {op.fullname}: {e}") from None
        if not tmpl:
            raise OpError(f"empty exec for {op.fullname}")
        argv = []
        shell = os.path.basename(tmpl[0]) in _SHELLS
        for i, item in enumerate(tmpl):
            is_script = shell and i > 0 and tmpl[i - 1].startswith("-") and "c" in tmpl[i - 1]
            argv.append(interpolate(item, flags, quote=is_script))
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        return argv
    if op.main is not None:
        try:
            parts = shlex.split(op.main)
        except ValueError as e:
            raise OpError(f"invalid main for {op.fullname}: {e}") from None
        if not parts:
            raise OpError(f"empty main for {op.fullname}")
        module, args = parts[0].replace("/", "."), [interpolate(a, flags) for a in parts[1:]]
        referenced = set(_REF.findall(op.main))
        if flags_dest(op, project_dir) == "globals":
            import json

            values = {k: v for k, v in flags.items() if k not in referenced}
            return [sys.executable, "-u", "-m", "tracker.pymain", json.dumps(values), module] + args
        argv = [sys.executable, "-u", "-m", module] + args
        for name, value in flags.items():
            if value is None or name in referenced:
                continue
            fdef = op.flags.get(name)
            arg_name = fdef.arg_name if fdef and fdef.arg_name else name
            argv += [f"--{arg_name}", arg_value(value)]
        return argv
    raise OpError(f"operation {op.fullname} defines neither main, exec nor steps")


def describe_flags(op: OpDef) -> list[tuple[str, FlagDef]]:
    return sorted(op.flags.items())
