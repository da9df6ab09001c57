"""`--restart RUN NAME=VALUE`: a finished run's new flags, label and command.

As in Guild, flags given with `--restart` replace the run's own values (the
others keep theirs), and the run's command, `FLAG_*` environment and default
label follow them; a label the user wrote stays unless `--label` replaces it.
The run's source code and resolved dependencies stay as they were (Guild
skips dependencies already resolved). A pipeline gets its new flags here;
`pipeline.resume_pipeline` then keeps only the steps whose flags are unchanged.
"""

from __future__ import annotations

from typing import Any

from ..errors import OpError
from ..project.flags import format_assigns
from ..project.loader import OpDef, Project
from ..project.resolve import interpolate, parse_assigns, resolve_flags, run_label
from ..store import Run
from .lifecycle import default_label


def apply_restart_changes(run: Run, project: Project, op: OpDef, assigns: list[str], label: str | None,
                          force_flags: bool = False) -> None:
    """Give `run` the flags in `assigns` (`NAME=VALUE`) and, with `label`, a new
    label template; checked like a new run's flags before anything is written."""
    old = dict(run.flags)
    old_extra = dict(run.get("step_flags") or {})
    flags, extra = old, dict(old_extra)
    if assigns:
        assigned = parse_assigns(assigns, op)
        if op.config.get("requires"):
            from .deps_spec import take_dep_specs

            named = take_dep_specs(op, assigned)
            if named:
                raise OpError(f"cannot choose dependency {', '.join(sorted(named))} of run {run.short_id} on restart: "
                              "its dependencies stay as they were resolved",
                              f"Run {op.fullname} again to resolve them anew.")
        force = force_flags or bool(run.get("force_flags"))
        kept = {k: v for k, v in old.items() if k in op.flags}
        flags, new_extra = resolve_flags(op, {**kept, **assigned}, force_flags=force, help_cmd=op.fullname)
        for name, value in old.items():  # values --force-flags let through when the run was made
            if name not in op.flags and name not in assigned:
                flags.setdefault(name, value)
        extra.update(new_extra)
    new_label = _label(op, run, old, flags, label)
    if op.is_stepped and (extra != old_extra or type_changed(old_extra, extra)):
        run.write_attr("step_flags", extra)
    if flags != old or type_changed(old, flags):
        run.write_attr("flags", flags)
        if not op.is_stepped:
            from .command import command_argv, flag_env

            run.write_attr("cmd", command_argv(op, flags, project.dir))
            env = op.config.get("env")
            values = {str(k): interpolate(str(v), flags) for k, v in env.items()} if isinstance(env, dict) else {}
            values.update(flag_env(op, flags))
            run.write_attr("env", values)
    if new_label != run.label:
        run.set_label(new_label)
    if op.is_stepped and label is not None:
        run.write_attr("step_label", new_label)  # the label its steps get, as on a new run


def type_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a value changed type only (1 and 1.0 compare equal)."""
    return any(type(old.get(k)) is not type(new.get(k)) for k in set(old) | set(new))


def _label(op: OpDef, run: Run, old: dict[str, Any], new: dict[str, Any], label: str | None) -> str:
    """The restarted run's label: `label` rendered; else, when the run had
    the label trk gave it (the flags, then `dep=RUN` parts, or the
    operation's `label:` template), the same with the new flags; else its own."""
    current = run.label
    if label is not None:
        return run_label(op, label, new, default_label(new))
    if op.label is not None:
        return run_label(op, None, new, default_label(new)) if current == run_label(
            op, None, old, default_label(old)) else current
    before = format_assigns({k: v for k, v in old.items() if v is not None})
    if current == before or (before and current.startswith(before + " ")):
        return default_label(new) + current[len(before):]  # keeps the `dep=RUN` parts
    return current
