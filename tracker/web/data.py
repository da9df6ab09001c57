"""The runs table and the compare table as JSON-ready data, from the library.

Default order (newest first) is a page of the run index, as `trk runs`
reads it; another order sorts every matching run by that one column, read
column by column through `views.compare.Comparison`. Scalar cells come from
the scalar index, looked up as `trk compare` looks them up.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any, Sequence

from ..display import cell_formatter, format_duration, format_time
from ..errors import TrkError
from ..store import RunStore
from ..store.record import RunRecord
from ..store.run import index_stamp
from ..store.select import RunFilter
from ..views.columns import Column, lookup, parse_columns
from ..views.compare import Comparison

STATUSES = ("running", "completed", "error", "terminated", "staged")
MAX_PAGE = 1000
DEFAULT_SCALARS = 4  # scalar columns the table shows when none are chosen


class BadRequest(TrkError):
    """A query the API cannot answer as asked (HTTP 400)."""


def number(v: Any) -> Any:
    """A value JSON can carry: NaN and infinities become None (JSON has no NaN)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_filter(q: str = "", status: str = "", op: str = "", tag: str = "", parent: str = "") -> RunFilter:
    """The filter of the runs table: label text, status, operation, tag; a parent's children."""
    if status and status not in STATUSES:
        raise BadRequest(f"unknown status '{status}'", "Statuses: " + ", ".join(STATUSES))
    return RunFilter(labels=[q] if q else (), statuses=[status] if status else (), operations=[op] if op else (),
                     tags=[tag] if tag else (), parent=parent or None, top_level=not parent)


def sort_column(sort: str) -> Column:
    """The column a `sort` parameter names: an attr, `flag:NAME` or `scalar:KEY`."""
    attrs = {"operation": "op", "status": "status", "label": "label", "time": "duration_us", "tags": "tags",
             "started": "started", "id": "id"}
    kind, _, name = sort.partition(":")
    if sort in attrs:
        return Column("attr", attrs[sort], sort)
    if kind in ("flag", "scalar") and name:
        return Column(kind, name, sort)
    raise BadRequest(f"cannot sort by '{sort}'", "Sort by operation, status, label, started, time, tags, "
                                                 "flag:NAME or scalar:TAG.")


def _sort_key(v: Any):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v, "")
    return (1, 0, str(v))


def page_ids(store: RunStore, filt: RunFilter, sort: str, desc: bool, offset: int, limit: int,
             only: Sequence[str] | None = None) -> tuple[list[str], int]:
    """Ids of one page of the table in the order asked, and how many runs match."""
    if only is not None:  # `trk view RUN...`: those runs only
        runs = filt.apply(store.by_ids(only))
        ids = [r.id for r in runs]
        if sort != "started" or not desc:
            ids = _sorted(Comparison(store, runs), sort, desc)
        return ids[offset:offset + limit], len(ids)
    total = store.count(filt)
    if sort == "started":
        if desc:
            return [r.id for r in store.query(filt, limit=limit, offset=offset)], total
        # oldest first: the index's newest-first page counted from the end
        start = max(0, total - offset - limit)
        n = max(0, min(limit, total - offset))
        return [r.id for r in reversed(store.query(filt, limit=n, offset=start))] if n else [], total
    ids = _sorted(Comparison(store, filt=filt), sort, desc)
    return ids[offset:offset + limit], total


def _sorted(cmp: Comparison, sort: str, desc: bool) -> list[str]:
    """Every compared run's id, sorted by one column (runs without a value last)."""
    col = sort_column(sort)
    ids: list[str] = []
    values: list[Any] = []
    for _, (full_ids, column) in cmp.column_pages([Column("attr", "id", "_id"), col]):
        ids += full_ids
        values += column
    present = [(v, i) for i, v in zip(ids, values) if v is not None and v == v and v != ""]
    missing = [i for i, v in zip(ids, values) if not (v is not None and v == v and v != "")]
    present.sort(key=lambda p: _sort_key(p[0]), reverse=desc)
    return [i for _, i in present] + missing


def runs_table(store: RunStore, filt: RunFilter, sort: str = "started", desc: bool = True, offset: int = 0,
               limit: int = 100, scalars: Sequence[str] | None = None,
               only: Sequence[str] | None = None) -> dict[str, Any]:
    """One page of the runs table: rows (status, operation, started, time,
    label, tags, flags, chosen scalars, children), the total, the tags offered."""
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    sort_column(sort)  # an unknown column is an error before any work
    ids, total = page_ids(store, filt, sort, desc, offset, limit, only)
    records = store.records(ids, checked=True)
    recs = [records[i] for i in ids if i in records]
    index = store.scalar_index()
    try:
        index.refresh([(r.id, r.dir, index_stamp(r.status, r.stopped)) for r in recs])
        aggs = index.get([r.id for r in recs])
        tags = sorted({(f"{p}#{t}" if p else t) for p, t in index.tags([r.id for r in recs])})
    finally:
        index.close()
    shown = list(scalars) if scalars is not None else tags[:DEFAULT_SCALARS]
    flag = cell_formatter("flag")
    rows = []
    for r in recs:
        children = store.count(RunFilter(parent=r.id))
        row = record_row(r, flag)
        row["scalars"] = {k: number(a.last) if (a := lookup(aggs.get(r.id, {}), k)) is not None else None
                          for k in shown}
        row["children"] = children
        rows.append(row)
    return {"total": total, "offset": offset, "limit": limit, "sort": sort, "desc": desc, "rows": rows,
            "scalars": shown, "scalar_tags": tags, "warnings": list(store.warnings)}


def record_row(r: RunRecord, flag=None) -> dict[str, Any]:
    """What the table shows of one run (strings as stored: the page escapes them)."""
    flag = flag or cell_formatter("flag")
    return {"id": r.id, "short_id": r.short_id, "operation": r.op, "status": r.status,
            "started": format_time(r.started), "started_us": r.started, "time": format_duration(r.duration_us),
            "label": r.label, "tags": list(r.tags), "parent": r.parent, "step": r.step,
            "flags": {k: flag(v) for k, v in sorted(r.flags.items())}}


def compare_table(store: RunStore, ids: Sequence[str] | None, columns: str = "",
                  limit: int | None = None) -> dict[str, Any]:
    """The compare table of `trk compare` (same column specs): headers, each
    column's kind, and rows of formatted cells (raw numbers in `values`)."""
    if ids:
        runs = store.by_ids(ids)
        order = {i: k for k, i in enumerate(ids)}
        runs.sort(key=lambda r: order.get(r.id, 0))
        cmp = Comparison(store, runs)
    else:
        cmp = Comparison(store, filt=None, limit=limit)
    cols = parse_columns(columns) if columns else cmp.default_columns()
    headers = cmp.headers(cols)
    kinds = ["attr"] + [c.kind for c in cols if not (c.kind == "attr" and c.key == "run")]
    formats = [cell_formatter(k) for k in kinds]
    rows, values = [], []
    for page in cmp.pages(cols):
        for raw in page:
            rows.append([f(v) for f, v in zip(formats, raw)])
            values.append([number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                           for v in raw])
    full = {i[:8]: i for i in cmp.runs}
    return {"headers": headers, "kinds": kinds, "rows": rows, "values": values,
            "ids": [full.get(r[0], r[0]) for r in rows], "warnings": cmp.warnings + list(store.warnings)}


def compare_csv(table: dict[str, Any]) -> str:
    """The compare table as CSV (`trk compare --csv`'s cells)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(table["headers"])
    w.writerows(table["rows"])
    return out.getvalue()
