"""One run as JSON-ready data: its details, files, output and scalar series.

Details come from `views.info` and `views.lineage` (upstream runs, with their
ids for links), steps from the store's `children`, scalars from the scalar
index, series from `metrics.series`. Every file path goes through
`fsutil.resolve_inside` with the run's own link roots, as `trk cat` does.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import RunSpecError
from ..fsutil import resolve_inside
from ..project.flags import format_value
from ..store import Run, RunStore
from ..store.record import RunRecord
from .data import BadRequest, number, record_row

OUTPUT_CHUNK = 256 * 1024  # the most output one poll returns
TEXT_LIMIT = 1024 * 1024  # files larger than this are offered for download only
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".svg": "image/svg+xml", ".bmp": "image/bmp"}


def find_run(store: RunStore, run_id: str) -> Run:
    """The run whose id is or starts with `run_id` (hex); RunSpecError when none or several."""
    if not run_id or len(run_id) > 32 or any(c not in "0123456789abcdef" for c in run_id.lower()):
        raise RunSpecError(f"'{run_id}' is not a run id")
    found = store.by_prefix(run_id, limit=2)
    if not found:
        raise RunSpecError(f"no run with id '{run_id}'")
    if len(found) > 1 and found[0].id != run_id.lower():
        raise RunSpecError(f"'{run_id}' matches more than one run", "Give more of the id.")
    return found[0]


def run_detail(store: RunStore, run: Run) -> dict[str, Any]:
    """The run page: `trk runs info`'s fields, the upstream runs and steps
    with their ids, the run's scalars."""
    from ..views.info import run_info, run_scalars
    from ..views.lineage import Lineage

    info = run_info(store, run)
    row = record_row(RunRecord.of(run))
    upstream = [{"depth": depth, "name": up.alias or up.name, "dependency": up.name, "id": up.run_id,
                 "short_id": up.run_id[:8], "state": up.state, "deleted": up.deleted,
                 "operation": up.record.op if up.record else None,
                 "flags": {k: format_value(v) for k, v in sorted(up.record.flags.items())} if up.record else {}}
                for depth, up in Lineage(store).tree(RunRecord.of(run))]
    steps = [{"id": c.id, "short_id": c.short_id, "step": c.get("step") or c.opspec, "operation": c.opspec,
              "status": c.status} for c in reversed(store.children([run.id]))]
    deps = [{"name": str(d.get("name") or "?"), "run": d.get("run") if isinstance(d.get("run"), str) else None,
             "sha256": d.get("sha256")} for d in (run.get("deps") or []) if isinstance(d, dict)]
    try:
        aggs = run_scalars(run, store)
    except Exception as e:  # scalars are extra information here, never fatal (as in `trk runs info`)
        aggs, info["scalars_error"] = {}, str(e)
    scalars = [{"key": f"{p}#{t}" if p else t, "last": number(a.last), "min": number(a.min),
                "max": number(a.max), "first": number(a.first), "count": a.count, "last_step": a.last_step}
               for (p, t), a in sorted(aggs.items())]
    attrs = {k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
             for k, v in info.items() if k not in ("flags", "dependencies", "upstream", "steps", "scalars", "tags")}
    return {**row, "attrs": attrs, "upstream": upstream, "dependencies": deps, "steps": steps,
            "scalars": scalars, "has_output": os.path.exists(run.output_path)}


def _roots(store: RunStore, run: Run) -> list[str]:
    from ..execution.runlinks import run_roots

    return run_roots(store, run)


def inside(store: RunStore, run: Run, path: str) -> str:
    """The real path of `path` in the run; PathEscape when it leads out (but
    through links trk made: steps, linked dependencies)."""
    return resolve_inside(run.dir, path or ".", "path", f"run {run.short_id}", _roots(store, run))


def list_files(store: RunStore, run: Run, sub: str = "", hidden: bool = False) -> dict[str, Any]:
    """The entries of one directory of the run: name, path, kind, size."""
    target = inside(store, run, sub)
    if not os.path.isdir(target):
        raise BadRequest(f"'{sub}' is not a directory of run {run.short_id}")
    entries = []
    with os.scandir(target) as it:
        for e in sorted(it, key=lambda e: e.name):
            if e.name.startswith(".") and not hidden:
                continue
            rel = os.path.join(sub, e.name) if sub else e.name
            try:
                is_dir = e.is_dir()
                size = None if is_dir else e.stat().st_size
            except OSError:  # a broken link or a loop
                is_dir, size = False, None
            entries.append({"name": e.name, "path": rel, "dir": is_dir, "size": size, "link": e.is_symlink(),
                            "image": os.path.splitext(e.name)[1].lower() in IMAGE_TYPES})
    return {"run": run.id, "path": sub, "entries": entries}


def file_target(store: RunStore, run: Run, path: str) -> tuple[str, str]:
    """The real path of a run file and the content type to serve it with
    (images as images, everything else as plain text)."""
    if not path:
        raise BadRequest("give the file's path (?path=)")
    target = inside(store, run, path)
    if not os.path.isfile(target):
        raise BadRequest(f"'{path}' is not a file of run {run.short_id}")
    kind = IMAGE_TYPES.get(os.path.splitext(path)[1].lower(), "text/plain; charset=utf-8")
    return target, kind


def read_output(run: Run, offset: int = 0) -> dict[str, Any]:
    """The run's output from byte `offset` (at most 256 KiB), where the next
    read continues, and whether more may come (the run is still running)."""
    offset = max(0, int(offset))
    data = b""
    try:
        with open(run.output_path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset > size:
                offset = 0  # the output was replaced (a restart): read it again
            f.seek(offset)
            data = f.read(OUTPUT_CHUNK)
    except FileNotFoundError:
        size = 0
    # Never split a UTF-8 character between two reads.
    cut = len(data)
    if cut == OUTPUT_CHUNK:
        while cut > 0 and (data[cut - 1] & 0xC0) == 0x80:
            cut -= 1
        if cut > 0 and data[cut - 1] >= 0xC0:
            cut -= 1
    data = data[:cut] if cut else data
    status = run.refresh_status()
    return {"offset": offset, "next": offset + len(data), "size": size, "text": data.decode("utf-8", "replace"),
            "status": status, "more": status == "running" or offset + len(data) < size}


def run_series(run: Run, tag: str | None = None, max_points: int = 2000) -> dict[str, Any]:
    """A run's scalar series (one tag, or all): {key: {step, time, value}}."""
    from ..metrics.series import run_series as series

    found, warnings = series(run.dir, [tag] if tag else None, max_points)
    out = {key: {"step": [p[0] for p in points], "time": [p[1] for p in points],
                 "value": [number(p[2]) for p in points]}
           for key, points in sorted(found.items())}
    return {"run": run.id, "short_id": run.short_id, "operation": run.opspec, "label": run.label,
            "status": run.status, "series": out, "warnings": warnings}
