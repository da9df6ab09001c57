"""Step specs: the `steps:` of a stepped operation, parsed and checked.

Each step names an operation with options and flags (`run: op --needed
x=${x}`), an optional name, `needs:` (DAG edges) and `checks:`. Parsing
resolves every step's operation and flags; nothing runs here (see
`tracker.execution.pipeline`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import OpError, StepError, TrkError
from .flags import NUL_FIX, format_assigns, has_nul, parse_value
from .loader import OpDef, Project
from .resolve import check_label, interpolate, resolve, resolve_flags

# Run options a step may carry that trk honours, and those it ignores (with a
# warning), as Guild does. Values: does the option take an argument?
_IGNORED = {
    "--run-dir": True, "--remote": True, "--gpus": True, "--opt-flag": True, "--optimizer": True,
    "--max-trials": True, "--random-seed": True, "--stage": False, "--no-gpus": False,
    "--restart": True, "--start": True, "--background": False, "--pidfile": True,
    "--stage-trials": False, "--quiet": False, "--print-cmd": False, "--save-trials": True,
}
# Guild's short spellings of the ignored options.
_SHORT = {"-b": "--background", "--bg": "--background", "-q": "--quiet", "-r": "--remote", "-d": "--run-dir"}


@dataclass
class Step:
    """One step of a pipeline, parsed and resolved against the project."""

    raw: Any
    run_spec: str
    name: str
    opspec: str
    args_flags: dict[str, Any] = field(default_factory=dict)
    needed: bool = False
    force_flags: bool = False
    label: str | None = None
    tags: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    op: OpDef | None = None
    op_error: TrkError | None = None
    flags: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    explicit: list[str] = field(default_factory=list)
    link: str = ""
    qualified_opspec: str = ""

    def describe(self, label: str | None, tags: list[str]) -> str:
        """The step as a command line, for the `running NAME: ...` log line."""
        parts = [self.op.fullname if self.op else self.qualified_opspec]
        if self.needed:
            parts.append("--needed")
        if label:
            parts.append(f"--label {label}")
        parts += [f"--tag {t}" for t in tags]
        explicit = {k: self.flags.get(k, self.extra.get(k)) for k in self.explicit}
        if explicit:
            parts.append(format_assigns(explicit))
        return " ".join(parts)


# -- parsing ---------------------------------------------------------------


def parse_steps(project: Project, op: OpDef, flags: dict[str, Any]) -> list[Step]:
    """Parse an operation's `steps:`; raise StepError on invalid step data.

    Errors with exit code 2 (bad input: a pipeline that includes itself, a
    `needs` that is no step name, a label of several lines, a NUL byte) name
    the file and line; callers raise them before making any run.
    """
    check_self_include(project, op)
    data = op.steps
    if not isinstance(data, list):
        raise StepError(f"invalid steps for {op.fullname}: {data!r} (expected a list of steps)")
    steps = [_parse_step(item, op, flags, _locator(project, op, i)) for i, item in enumerate(data)]
    counts: dict[str, int] = {}
    for step in steps:
        n = counts[step.name] = counts.get(step.name, 0) + 1
        step.link = step.name if n == 1 else f"{step.name}_{n}"
    _check_needs(steps, op)
    for step in steps:
        step.qualified_opspec = step.opspec if ":" in step.opspec or not op.model else f"{op.model}:{step.opspec}"
        try:
            step.op = resolve(project, step.opspec, context_model=op.model)
        except OpError as e:
            step.op_error = e
    return steps


def _locator(project: Project, op: OpDef, index: int) -> Callable[[tuple], str]:
    """`FILE, line N` of a key of step `index` of `op`, for messages."""
    return lambda keys=(): project.where(op.keypath + ("steps", index) + keys)


def check_self_include(project: Project, op: OpDef) -> None:
    """Refuse (StepError, exit 2) a pipeline whose steps run it again, directly
    or through other pipelines, which would start runs without end."""
    done: set[str] = set()

    def visit(cur: OpDef, chain: list[str]) -> None:
        for i, item in enumerate(cur.steps if isinstance(cur.steps, list) else []):
            sub = _step_op(project, cur, item)
            if sub is None or not sub.is_stepped or sub.fullname in done:
                continue
            if sub.fullname in chain:
                loop = chain[chain.index(sub.fullname):] + [sub.fullname]
                raise StepError(
                    f"{_locator(project, cur, i)()}: pipeline {sub.fullname} includes itself: "
                    + " → ".join(loop) + "; remove this step or run another operation",
                    exit_code=2,
                )
            visit(sub, chain + [sub.fullname])
        done.add(cur.fullname)

    visit(op, [op.fullname])


def _step_op(project: Project, parent: OpDef, item: Any) -> OpDef | None:
    """The operation a raw step runs, or None when it names none (its
    errors are reported when the step is parsed)."""
    run_spec = item if isinstance(item, str) else item.get("run") if isinstance(item, dict) else None
    try:
        words = shlex.split(run_spec) if isinstance(run_spec, str) else []
        return resolve(project, words[0], context_model=parent.model) if words else None
    except (ValueError, OpError):
        return None


def _parse_step(item: Any, parent: OpDef, flags: dict[str, Any], at: Callable[[tuple], str]) -> Step:
    if isinstance(item, str):
        data: dict[str, Any] = {"run": item}
    elif isinstance(item, dict):
        data = item
    else:
        raise StepError(f"invalid step data: {item!r}")
    run_spec = data.get("run")
    if not isinstance(run_spec, str) or not run_spec.strip():
        raise StepError(f"invalid step {item!r}: must define run")
    try:
        words = shlex.split(run_spec)
    except ValueError as e:
        raise StepError(f"invalid step {item!r}: {e}") from None
    step = Step(raw=item, run_spec=run_spec, name="", opspec=words[0])
    i = 1
    while i < len(words):
        w = words[i]
        opt, eq, val = w.partition("=") if w.startswith("--") else (w, "", "")
        opt = _SHORT.get(opt, opt)
        takes_value = not eq

        def value() -> str:
            nonlocal i
            if eq:
                return val
            if i + 1 >= len(words):
                raise StepError(f"invalid step {item!r}: {w} needs a value")
            i += 1
            return words[i]

        if opt == "--needed":
            step.needed = True
        elif opt == "--force-flags":
            step.force_flags = True
        elif opt in ("--label", "-l"):
            step.label = check_label(interpolate(value(), flags), f"{at(('run',))}: the label of step '{step.opspec}'")
        elif opt in ("--tag", "-t"):
            step.tags.append(value())
        elif opt in _IGNORED:
            if _IGNORED[opt] and takes_value:
                i += 1
            step.ignored.append(opt[2:].replace("-", "_"))
        elif w.startswith("-"):
            raise StepError(f"invalid step {item!r}: unknown option {w}")
        elif "=" in w:
            name, _, raw = w.partition("=")
            step.args_flags[name] = parse_value(interpolate(raw, flags)) if raw else ""
        else:
            raise StepError(f"invalid step {item!r}: unexpected argument {w!r} (expected NAME=VALUE)")
        i += 1
    step_flags = data.get("flags") or {}
    if not isinstance(step_flags, dict):
        raise StepError(f"invalid step {item!r}: flags must be a mapping")
    for name, raw in step_flags.items():
        step.args_flags[str(name)] = parse_value(interpolate(raw, flags)) if isinstance(raw, str) else raw
    name = data.get("name")
    step.name = str(name) if name else step.opspec
    for fname, fvalue in step.args_flags.items():
        if has_nul(fvalue):
            keys = ("flags", fname) if fname in step_flags else ("run",)
            raise StepError(f"{at(keys)}: flag '{fname}' of step '{step.name}' has a NUL byte in {fvalue!r}: "
                            + NUL_FIX, exit_code=2)
    step.needs = _needs(data.get("needs"), at)
    checks = data.get("checks") or data.get("expect") or []
    step.checks = checks if isinstance(checks, list) else [checks]
    return step


def _needs(needs: Any, at: Callable[[tuple], str]) -> list[str]:
    """A step's `needs:` as a list of step names; StepError (exit 2) naming
    the line when it is anything else (a number, a mapping, a list of lists)."""
    if needs is None or needs == "":
        return []
    if isinstance(needs, str):
        return [needs]
    if isinstance(needs, list) and all(isinstance(n, str) for n in needs):
        return list(needs)
    raise StepError(f"{at(('needs',))}: needs must be a step name or a list of step names, not {needs!r}",
                    exit_code=2)


def _check_needs(steps: list[Step], op: OpDef) -> None:
    names = {s.link for s in steps}
    for s in steps:
        for n in s.needs:
            if n not in names:
                raise StepError(
                    f"step '{s.link}' of {op.fullname} needs unknown step '{n}'",
                    "Steps: " + ", ".join(x.link for x in steps),
                )
    graph = {s.link: s.needs for s in steps}
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                cycle = path[path.index(m):] + [m] if m in path else [n, m]
                raise StepError(f"steps of {op.fullname} have a cycle: {' -> '.join(cycle)}")
            if m not in state:
                visit(m, path + [m])
        state[n] = 2

    for s in steps:
        if s.link not in state:
            visit(s.link, [s.link])


def split_step_flags(assigned: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `STEP:FLAG=VALUE` assignments from the operation's own flags."""
    own = {k: v for k, v in assigned.items() if ":" not in k}
    qualified = {k: v for k, v in assigned.items() if ":" in k}
    return own, qualified


def resolve_step_flags(steps: list[Step], op: OpDef, extra: dict[str, Any], force_flags: bool) -> None:
    """Give every step its flags: step args < forced < `step:flag` < `model:op:flag`.

    `STEP:FLAG` names a step by its name or operation; without --force-flags
    it is checked against that step's own flags.
    """
    targeted: dict[int, list[tuple[int, str, Any]]] = {}
    for key, value in extra.items():
        prefix, _, flag = key.rpartition(":")
        if not prefix:
            continue
        hits = []
        for i, s in enumerate(steps):
            rank = 0
            if s.op is not None and prefix == s.op.fullname:
                rank = 3
            elif prefix == s.link or prefix == s.name:
                rank = 2
            elif s.op is not None and prefix == s.op.name:
                rank = 1
            if rank:
                hits.append((i, rank))
        if not hits:
            raise OpError(
                f"unknown step '{prefix}' in flag '{key}'",
                f"Steps of {op.fullname}: " + ", ".join(s.link for s in steps),
            )
        for i, rank in hits:
            targeted.setdefault(i, []).append((rank, flag, value))
    forced = {k: v for k, v in extra.items() if ":" not in k} if force_flags else {}
    for i, s in enumerate(steps):
        if s.op is None:
            continue
        assigned = dict(s.args_flags)
        explicit = list(s.args_flags)
        for k, v in forced.items():
            if k in s.op.flags or s.op.is_stepped:
                assigned[k] = v
                explicit.append(k)
        for rank, flag, value in sorted(targeted.get(i, []), key=lambda t: t[0]):
            if not (force_flags or s.op.is_stepped or flag in s.op.flags):
                raise OpError(
                    f"unsupported flag '{flag}' for step '{s.link}' ({s.op.fullname})",
                    f"Flags of {s.op.fullname}: {', '.join(sorted(s.op.flags)) or '(none)'}; "
                    "use --force-flags to skip this check.",
                )
            assigned[flag] = value
            explicit.append(flag)
        own, nested = split_step_flags(assigned)
        s.flags, s.extra = resolve_flags(s.op, own, force_flags=force_flags or s.force_flags,
                                         help_cmd=s.op.fullname)
        s.extra.update(nested)
        s.explicit = sorted(set(explicit))


def plan(project: Project, op: OpDef, flags: dict[str, Any], extra: dict[str, Any], force_flags: bool) -> list[Step]:
    """Parse a pipeline's steps and give each its flags."""
    steps = parse_steps(project, op, flags)
    resolve_step_flags(steps, op, extra, force_flags)
    return steps


def preview_steps(project: Project, op: OpDef, flags: dict[str, Any], extra: dict[str, Any],
                  force_flags: bool, depth: int = 0) -> str:
    """The expanded step tree of a pipeline, as text; runs nothing."""
    lines = []
    if depth == 0:
        lines.append(f"{op.fullname} {format_assigns(flags)}".rstrip())
    pad = "  " * (depth + 1)
    for s in plan(project, op, flags, extra, force_flags):
        if s.op is None:
            lines.append(f"{pad}{s.link}: {s.opspec}  (error: {s.op_error})")
            continue
        text = f"{pad}{s.link}: {s.op.fullname} {format_assigns(s.flags)}".rstrip()
        notes = []
        if s.needs:
            notes.append("needs " + ", ".join(s.needs))
        if s.needed:
            notes.append("--needed")
        if notes:
            text += "  (" + "; ".join(notes) + ")"
        lines.append(text)
        if s.op.is_stepped:
            lines.append(preview_steps(project, s.op, s.flags, s.extra, force_flags, depth + 1))
    return "\n".join(lines)
