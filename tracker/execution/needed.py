"""`--needed`: reuse a completed run whose inputs are the same.

Inputs are the flag values, the source-code digest and each dependency's
digest, where an operation dependency counts by the upstream run it
resolved to and that run's content. Guild compares flags only.
"""

from __future__ import annotations

from typing import Any, Callable

from ..project.flags import format_value
from ..project.loader import OpDef, Project
from ..store import Run, RunStore


def input_differences(run: Run, flags: dict[str, Any], source_digest: str, deps: dict[str, dict]) -> list[str]:
    """Why `run` does not have these inputs (empty: it does)."""
    diffs = []
    old_flags = run.flags
    for name in sorted(set(old_flags) | set(flags)):
        if old_flags.get(name) != flags.get(name) or type(old_flags.get(name)) is not type(flags.get(name)):
            diffs.append(f"flag {name}: {format_value(old_flags.get(name))} -> {format_value(flags.get(name))}")
    if run.get("sourcecode_digest") != source_digest:
        diffs.append("source code changed")
    old_deps = {d.get("name"): d for d in run.get("deps") or []}
    for name in sorted(set(old_deps) | set(deps)):
        old, new = old_deps.get(name), deps.get(name)
        if old is None or new is None:
            diffs.append(f"dependency {name} {'added' if old is None else 'removed'}")
        elif old.get("run") != new.get("run"):
            diffs.append(f"dependency {name} resolved to a different run: {(old.get('run') or '')[:8]} -> "
                         f"{(new.get('run') or '')[:8]}")
        elif old.get("sha256") != new.get("sha256"):
            diffs.append(f"dependency {name} changed")
    return diffs


def find_reusable(store: RunStore, project: Project, op: OpDef, flags: dict[str, Any], deps_plan,
                  explain: bool = False, say: Callable[[str], None] | None = None) -> Run | None:
    """A completed run of `op` with the same flags, source and dependencies, or None.

    The run index gives the completed runs of `op` with the same flag values;
    only those are compared further. `explain` also looks for the closest
    run among the newest 1,000 others, to say what differs.
    """
    from ..project.sourcecode import copy_op_source
    from ..store.runindex import flags_key
    from ..store.select import RunFilter

    say = say or (lambda line: None)
    source_digest = copy_op_source(project, op, None).digest
    deps = deps_plan.digests() if deps_plan is not None else {}
    same_op = RunFilter(exact_ops=[op.fullname], statuses=["completed"])
    same_flags = RunFilter(exact_ops=[op.fullname], statuses=["completed"], flags_key=flags_key(flags))
    closest: tuple[Run, list[str]] | None = None
    for run in store.query(same_flags):
        diffs = input_differences(run, flags, source_digest, deps)
        if not diffs:
            if explain:
                say(f"Reusing run {run.id}: same flags, source code and dependencies")
            return run
        if closest is None or len(diffs) < len(closest[1]):
            closest = (run, diffs)
    for run in store.query(same_op, limit=1000) if explain else ():
        diffs = input_differences(run, flags, source_digest, deps)
        if closest is None or len(diffs) < len(closest[1]):
            closest = (run, diffs)
    if explain:
        if closest is None:
            say(f"No completed run of {op.fullname} to reuse")
        else:
            run, diffs = closest
            say(f"Not reusing run {run.id} (the closest): " + "; ".join(diffs))
    return None
