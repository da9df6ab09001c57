"""A run's details (`trk runs info`) and its scalars."""

from __future__ import annotations

from typing import Any

from ..display import format_cell, format_duration, format_time
from ..project.flags import format_value
from ..store import Run, RunStore


def run_scalars(run: Run, store: RunStore) -> dict:
    """A run's scalars, brought up to date: {(prefix, tag): Agg(first, last, min, max, ...)}."""
    return scalars_of(store, [run]).get(run.id, {})


def scalars_of(store: RunStore, runs: list[Run]) -> dict[str, dict]:
    """Many runs' scalars at once, brought up to date: {run id: {(prefix, tag): Agg}}."""
    index = store.scalar_index()
    try:
        index.refresh([(r.id, r.dir, r.index_stamp) for r in runs])
        return index.get([r.id for r in runs])
    finally:
        index.close()


def run_info(store: RunStore, run: Run) -> dict[str, Any]:
    """The fields `trk runs info` shows, in display order."""
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
    if a.get("image"):  # a Docker image the operation names (run in it with --docker)
        info["image"] = a["image"]
        if a.get("container"):
            info["container"] = a["container"][:12]
    if run.error:
        info["error"] = run.error
    if a.get("error"):
        info["error"] = a["error"]
    if a.get("parent"):
        info["parent"] = a["parent"]
    info["flags"] = {k: format_value(v) for k, v in sorted(run.flags.items())}
    if a.get("deps"):
        info["dependencies"] = {
            d.get("name", "?"): " ".join(str(x) for x in (d.get("run"), d.get("sha256")) if x)
            for d in a["deps"]
        }
    upstream = upstream_lines(store, run)
    if upstream:
        info["upstream"] = upstream
    children = store.children([run.id])
    if children:
        info["steps"] = [f"{r.get('step') or r.opspec}: {r.short_id} {r.opspec} {r.status}" for r in reversed(children)]
    try:
        sc = run_scalars(run, store)
    except Exception as e:  # scalars are extra information here, never fatal
        sc = {}
        info["scalars_error"] = str(e)
    if sc:
        info["scalars"] = {
            (f"{p}#{t}" if p else t): f"{format_cell(agg.last, 'scalar')} (step {agg.last_step})"
            for (p, t), agg in sorted(sc.items())
        }
    return info


def upstream_lines(store: RunStore, run: Run) -> list[str]:
    """The run's upstream tree, one line per dependency on another run
    (nested by depth): name, run id, operation, status, flags."""
    from ..store.record import RunRecord
    from .lineage import Lineage

    lines = []
    for depth, up in Lineage(store).tree(RunRecord.of(run)):
        rec = up.record
        indent = "  " * (depth - 1) + "└ " if depth else ""
        what = f"{indent}{up.alias or up.name}: {up.run_id[:8]}"
        if rec is None:
            lines.append(f"{what} (missing: purged)")
            continue
        state = "deleted (restore with 'trk runs restore " + up.run_id[:8] + "')" if up.deleted else rec.status
        flags = " ".join(f"{k}={format_value(v)}" for k, v in sorted(rec.flags.items()))
        lines.append(f"{what} {rec.op} {state}" + (f" {flags}" if flags else ""))
    return lines
