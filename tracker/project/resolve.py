"""Resolving `[MODEL:]OP` specs to operations, and checking their flags.

Also `${flag}` interpolation, which commands and steps share, and run
labels rendered from templates as Guild renders them.
"""

from __future__ import annotations

import re
import shlex

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..errors import OpError
from .flags import (NUL_FIX, arg_value, batch_error, format_value, has_nul, is_batch, normalize_aliases,
                    parse_value, settle, split_assign)
from .loader import OpDef, Project

FLAG_REF = re.compile(r"\$\{([^}]+)\}")  # `${name}` in commands, labels and steps


def split_opspec(spec: str) -> tuple[str | None, str]:
    """`model:op` -> (model, op); a bare `op` -> (None, op)."""
    model, sep, op = spec.rpartition(":")
    return (model if sep else None), op


def resolve(project: Project, spec: str | None, context_model: str | None = None) -> OpDef:
    """Find the operation `spec` names; `context_model` is tried first, then
    the default model. An empty spec is the default model's default operation.
    Its flags are complete: those `flags-import` takes from its script are in."""
    op = _find(project, spec, context_model)
    if not op.is_stepped and not op.main and not str(op.config.get("flags-dest") or "").startswith("config:"):
        # No script to import flags from (most `exec:` operations): skip
        # importing flagsimport (and logging, shlex...) on `trk run`'s path.
        for fdef in op.flags.values():
            fdef.base_dir = project.dir
        return op
    from .flagsimport import prepare

    return prepare(project, op)


def _find(project: Project, spec: str | None, context_model: str | None = None) -> OpDef:
    if not (spec or "").strip():
        return default_operation(project)
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
                f"operation '{opname}' is not defined for model '{model}'{_nearest(opname, m.operations)}",
                f"Try 'trk operations {model}' for a list of available operations.",
            )
        return op
    if context_model is not None and context_model in project.models:
        op = project.models[context_model].operations.get(opname)
        if op is not None:
            return op
        if context_model:
            ops = project.models[context_model].operations
            raise OpError(
                f"operation '{opname}' is not defined for model '{context_model}'{_nearest(opname, ops)}",
                f"Try 'trk operations {context_model}' for a list of available operations.",
            )
    default = project.default_model
    if default is not None and opname in default.operations:
        return default.operations[opname]  # as Guild: a bare OP is the default model's
    if "" in project.models and opname in project.models[""].operations:
        return project.models[""].operations[opname]
    found = [m.operations[opname] for m in project.models.values() if opname in m.operations]
    if len(found) == 1:
        return found[0]
    if not found:
        every = {op.fullname for m in project.models.values() for op in m.operations.values()}
        every |= {op.name for m in project.models.values() for op in m.operations.values()}
        raise OpError(
            f"cannot find operation '{opname}' in {project.filename}{_nearest(opname, every)}",
            "Try 'trk operations' for a list of available operations.",
        )
    names = ", ".join(op.fullname for op in found)
    raise OpError(f"operation '{opname}' is ambiguous: it is defined by {names}", "Name the model: MODEL:OP.")


def default_operation(project: Project) -> OpDef:
    """What `trk run` with no operation runs: the default model's (else the
    anonymous model's) `default: yes` operation, or its only one, as in Guild."""
    model = project.default_model or project.models.get("")
    if model is None:
        raise OpError("cannot find a default operation: no model is the default",
                      f"Name the operation (see 'trk operations'), or mark a model 'default: yes' in "
                      f"{project.filename}.")
    op = model.default_operation
    if op is None:
        whose = f"model '{model.name}'" if model.name else "this project"
        raise OpError(f"a default operation is not defined for {whose}",
                      f"Name the operation (see 'trk operations'), or mark one 'default: yes' in "
                      f"{project.filename}.")
    return op


def parse_assigns(args: list[str], op: OpDef | None = None, batch: bool = False,
                  texts: dict[str, str] | None = None) -> dict[str, Any]:
    """Parse `NAME=VALUE` command-line arguments into typed values, as Guild
    does: by the flag's type when `op` defines it (a `string` keeps its text).
    A list or `range[...]` value (a batch in Guild) is kept with `batch`, else
    an error. `texts`, when given, gets each VALUE as typed (a run id prefix
    such as `01590858` for a dependency is text, not the number 1590858)."""
    flags: dict[str, Any] = {}
    for arg in args:
        name, value = split_assign(arg)
        if texts is not None:
            texts[name] = value
        fdef = None
        if op is not None:
            fdef = op.flags.get(name) or next((f for f in op.flags.values() if f.alias == name), None)
        parsed = parse_value(value, fdef.type if fdef else None)
        if is_batch(parsed) and not batch:
            raise batch_error(name, value)
        flags[name] = parsed
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
    assigned = normalize_aliases(op.flags, assigned, force_flags)
    for name, value in assigned.items():
        if has_nul(name) or has_nul(value):
            raise OpError(f"flag {name!r} of {op.fullname} has a NUL byte in {value!r}: {NUL_FIX}", exit_code=2)
        if is_batch(value):
            raise batch_error(name, value if isinstance(value, str) else format_value(value))
        if name not in op.flags:
            if op.is_stepped and ":" in name:
                extra[name] = value  # STEP:FLAG, checked by the steps module
                continue
            if not force_flags:
                spec = help_cmd or op.fullname
                raise OpError(  # Guild's words (the steps transcript shows them), and the nearest flag
                    f"unsupported flag '{name}'{_nearest(name, op.flags)}",
                    f"Try 'trk run {spec} --help-op' for a list of flags or use\n"
                    "--force-flags to skip this check.",
                )
            if op.is_stepped or ":" in name:
                extra[name] = value
            else:
                flags[name] = value
    flags.update(settle(op.flags, assigned, force_flags, op.fullname))  # defaults, types, checks, choices
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


_LABEL_REF = re.compile(r"\$\{(.+?)\}")


def run_label(op: OpDef, label: str | None, flags: dict[str, Any], default: str) -> str:
    """The label of a run of `op`: the `--label` template, else the operation's
    `label:` template, rendered with the flag values; else `default`."""
    if label is not None:
        return check_label(render_label(label, flags, default))
    if op.label is not None:
        return check_label(render_label(op.label, flags, default), f"the label: of {op.fullname}")
    return default


def render_label(template: str, flags: dict[str, Any], default: str) -> str:
    """A label template rendered as Guild renders it: `${flag}` is the flag's
    value (empty when it has none), `${default_label}` is `default`, and the
    filters `|default:TEXT`, `|%FORMAT`, `|basename` and `|unquote` apply in turn."""

    def repl(m: re.Match) -> str:
        name, *filters = m.group(1).split("|")
        value = default if name == "default_label" else flags.get(name)
        if not filters:
            return "" if value is None else value if name == "default_label" else _label_value(value)
        for f in filters:
            value = _label_filter(f, value)
        return "" if value is None else value if isinstance(value, str) else _label_value(value)

    return _LABEL_REF.sub(repl, template)


def _label_value(value: Any) -> str:
    """A flag value in a label: as trk shows it, floats cut to 5 decimals as Guild cuts them."""
    from .flags import format_value

    text = format_value(value)
    if isinstance(value, float):
        text = re.sub(r"(\.[0-9]{5})[0-9]+", r"\1", text)
    return text


def _label_filter(spec: str, value: Any) -> Any:
    name, _, arg = spec.partition(":")
    if name.startswith("%"):
        try:
            return name % value
        except (TypeError, ValueError):
            return value  # Guild leaves a value its format does not fit as it is
    if name == "default":
        return arg if value is None else value
    if name == "basename":
        import os

        return os.path.basename(str(value).rstrip("/")) if value else ""
    if name == "unquote":
        if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'":
            return value[1:-1]
        return value
    raise OpError(f"unsupported label filter '{name}' in '${{...|{spec}}}'",
                  "Use one of default:TEXT, %FORMAT, basename or unquote.", exit_code=2)


def check_label(label: str, what: str = "--label") -> str:
    """Return `label`; raise OpError (exit 2) unless it is one line of text,
    as every listing shows a label on its run's line."""
    if "\0" in label:
        raise OpError(f"{what} must not contain a NUL byte, as {label!r} does: remove it", exit_code=2)
    if "\n" in label or "\r" in label:
        raise OpError(f"{what} must be one line of text, not {label!r}: use spaces instead of line breaks",
                      exit_code=2)
    return label


def _nearest(name: str, names) -> str:
    """`: did you mean 'x'?` for the nearest of `names`, or ''."""
    import difflib

    close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.6)
    return f": did you mean '{close[0]}'?" if close else ""
