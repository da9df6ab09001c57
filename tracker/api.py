"""The Python API: what the CLI does, as plain function calls.

    import tracker
    tracker.run("m1:hello", {"msg": "hi"}, project_dir="sample-projects/steps")
    for r in tracker.runs(): print(r.short_id, r.opspec, r.status)
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from .store import Run, RunStore


def runs(specs: Sequence[str] = (), store: RunStore | None = None, **filters: Any) -> list[Run]:
    """Runs newest first, filtered (operations=, labels=, tags=, statuses=)."""
    from .select import RunFilter, select

    store = store or RunStore()
    listed = RunFilter(**filters).apply(store.list())
    return select(listed, list(specs))


def run(
    opspec: str,
    flags: dict[str, Any] | None = None,
    project_dir: str = ".",
    store: RunStore | None = None,
    echo: bool = False,
    **options: Any,
):
    """Run an operation; returns a LaunchResult (run, exit_code, reused)."""
    from .execute import Sinks
    from .launch import RunOptions, launch
    from .opspec import resolve, resolve_flags
    from .project import load

    store = store or RunStore()
    project = load(project_dir)
    op = resolve(project, opspec)
    resolved, extra = resolve_flags(op, dict(flags or {}), force_flags=options.get("force_flags", False))
    return launch(store, project, op, resolved, RunOptions(**options), Sinks.console() if echo else None, extra)


def scalars(run: Run | str, store: RunStore | None = None) -> dict:
    """A run's scalars: {(prefix, tag): Agg(first, last, min, max, ...)}."""
    from .metrics.index import ScalarIndex

    store = store or RunStore()
    if isinstance(run, str):
        run = runs([run], store=store)[0]
    index = ScalarIndex(os.path.join(store.index_dir, "scalars.sqlite"))
    index.refresh([(run.id, run.dir, run.index_stamp)])
    return index.get([run.id]).get(run.id, {})


def run_info(store: RunStore, run: Run) -> dict[str, Any]:
    """The fields `trk runs info` shows, in display order."""
    from .cli.util import format_duration, format_time  # pure formatting helpers

    a = run.attrs
    info: dict[str, Any] = {
        "id": run.id,
        "operation": run.opspec,
        "status": run.status,
        "started": format_time(a.get("started")),
        "stopped": format_time(a.get("stopped")),
        "time": format_duration(run.duration_us),
        "label": run.label,
        "tags": run.tags,
        "exit_status": a.get("exit_status"),
        "run_dir": run.dir,
        "command": " ".join(a.get("cmd") or []),
        "sourcecode_digest": a.get("sourcecode_digest"),
        "host": a.get("host"),
        "pid": a.get("pid"),
    }
    if run.error:
        info["error"] = run.error
    if a.get("error"):
        info["error"] = a["error"]
    if a.get("parent"):
        info["parent"] = a["parent"]
    from .flags import format_value

    info["flags"] = {k: format_value(v) for k, v in sorted(run.flags.items())}
    if a.get("deps"):
        info["dependencies"] = {
            d.get("name", "?"): " ".join(str(x) for x in (d.get("run"), d.get("sha256")) if x)
            for d in a["deps"]
        }
    children = [r for r in store.list() if r.parent == run.id]
    if children:
        info["steps"] = [f"{r.get('step') or r.opspec}: {r.short_id} {r.opspec} {r.status}" for r in reversed(children)]
    try:
        sc = scalars(run, store)
    except Exception as e:  # scalars are extra information here, never fatal
        sc = {}
        info["scalars_error"] = str(e)
    if sc:
        from .compare import format_cell

        info["scalars"] = {
            (f"{p}#{t}" if p else t): f"{format_cell(agg.last, 'scalar')} (step {agg.last_step})"
            for (p, t), agg in sorted(sc.items())
        }
    return info
