"""Comparing runs: Guild's column specs, resolved against runs and scalars.

A column spec is a comma-separated list of `.attr` (operation, status,
label, started, time, ...), `=flag` (or `=step.flag` for a pipeline step's
flag), and `[last|first|min|max|avg|count|step] [prefix#]tag [as NAME]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from ..display import format_duration, format_time
from ..errors import TrkError
from ..store import Run, RunStore

ATTRS = ("run", "id", "operation", "started", "stopped", "time", "status", "label", "tags", "exit_status",
         "step", "parent")
_SCALAR = re.compile(r"^(?:(last|first|min|max|avg|count|step)\s+)?(\S+?)(?:\s+as\s+(.+))?$")


@dataclass
class Column:
    """One column of a comparison: an attr, a flag or a scalar, with its header."""
    kind: str  # "attr", "flag" or "scalar"
    key: str  # attr name, flag name, or scalar key (`tag` or `prefix#tag`)
    header: str
    qualifier: str = "last"


def parse_columns(spec: str) -> list[Column]:
    """Parse `-cc` column specs; raise TrkError naming a bad item."""
    cols = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name = None
        m_as = re.match(r"^(.*?)\s+as\s+(.+)$", item)
        if m_as:
            item, name = m_as.group(1).strip(), m_as.group(2).strip()
        if item.startswith("."):
            attr = item[1:]
            if attr not in ATTRS:
                raise TrkError(f"unknown column '{item}'", "Attribute columns: " + ", ".join("." + a for a in ATTRS))
            cols.append(Column("attr", "run" if attr == "id" else attr, name or attr))
        elif item.startswith("="):
            flag = item[1:]
            if not flag:
                raise TrkError(f"invalid column '{item}': expected =FLAG")
            cols.append(Column("flag", flag, name or flag))
        else:
            m = _SCALAR.match(item)
            if not m:
                raise TrkError(f"invalid column '{item}'")
            qual, key, _ = m.groups()
            tag = key[1:] if key.startswith("#") else key
            header = name or (tag if not qual or qual == "last" else f"{qual} {tag}")
            cols.append(Column("scalar", tag, header, qual or "last"))
    return cols


class Comparison:
    """Runs to compare, with their scalars and pipeline relations."""

    def __init__(self, store: RunStore, runs: Sequence[Run], all_runs: Sequence[Run] | None = None):
        """`all_runs`, when given, holds the runs' pipelines and steps; else the store is asked for them."""
        self.store = store
        self.runs = list(runs)
        all_runs = list(all_runs) if all_runs is not None else self._related(store, self.runs)
        self.by_id = {r.id: r for r in all_runs}
        self.steps: dict[str, dict[str, Run]] = {}
        for r in all_runs:
            parent, step = _parent_of(r), r.get("step")
            if parent and isinstance(step, str) and step:  # hand-edited attrs may hold anything
                self.steps.setdefault(parent, {}).setdefault(step, r)
        wanted = {r.id: r for r in self.runs}
        for r in self.runs:  # a step row may show its pipeline's scalars
            p = self.by_id.get(_parent_of(r))
            if p is not None:
                wanted.setdefault(p.id, p)
        self.index = store.scalar_index()
        self.index.refresh([(r.id, r.dir, r.index_stamp) for r in wanted.values()])
        self.scalars = self.index.get(list(wanted))
        self.warnings = list(getattr(self.index, "warnings", []) or [])

    @staticmethod
    def _related(store: RunStore, runs: list[Run]) -> list[Run]:
        """The runs, their pipelines, and the steps of both: what step columns
        (`=fit.lr`, `fit#loss`) may reach, read from the index, not the store."""
        known = {r.id: r for r in runs}
        parents = {p for p in map(_parent_of, runs) if p and p not in known}
        for r in store.by_ids(parents):
            known.setdefault(r.id, r)
        for r in store.children(list(known)):
            known.setdefault(r.id, r)
        return list(known.values())

    def default_columns(self) -> list[Column]:
        """Columns when none are given: attrs, every flag, every scalar tag."""
        cols = [Column("attr", a, a) for a in ("operation", "started", "time", "status", "label")]
        flags = sorted({f for r in self.runs for f in r.flags})
        cols += [Column("flag", f, f) for f in flags]
        tags = sorted({t for r in self.runs for (_, t) in self.scalars.get(r.id, {})})
        cols += [Column("scalar", t, t) for t in tags]
        return cols

    def table(self, columns: list[Column] | None = None) -> tuple[list[str], list[list[Any]]]:
        """Headers and rows (raw values); `run` is always the first column."""
        cols = columns if columns is not None else self.default_columns()
        headers = ["run"] + [c.header for c in cols if not (c.kind == "attr" and c.key == "run")]
        cols = [c for c in cols if not (c.kind == "attr" and c.key == "run")]
        rows = [[r.short_id] + [self.value(r, c) for c in cols] for r in self.runs]
        return headers, rows

    def value(self, run: Run, col: Column) -> Any:
        """The raw value of `col` for `run` (None when it has none)."""
        if col.kind == "attr":
            return self._attr(run, col.key)
        if col.kind == "flag":
            return self._flag(run, col.key)
        return self._scalar(run, col.key, col.qualifier)

    def _attr(self, run: Run, name: str) -> Any:
        if name == "operation":
            return run.opspec
        if name == "started":
            return format_time(run.started)
        if name == "stopped":
            return format_time(run.stopped)
        if name == "time":
            return format_duration(run.duration_us)
        if name == "status":
            return run.status
        if name == "label":
            return run.label
        if name == "tags":
            return " ".join(str(t) for t in run.tags)
        return run.get(name)

    def _pipeline_of(self, run: Run) -> Run | None:
        if run.id in self.steps:
            return run
        return self.by_id.get(_parent_of(run))

    def _flag(self, run: Run, name: str) -> Any:
        if name in run.flags:
            return run.flags[name]
        step, dot, flag = name.partition(".")
        if dot:
            pipeline = self._pipeline_of(run)
            child = self.steps.get(pipeline.id, {}).get(step) if pipeline else None
            if child is not None:
                return child.flags.get(flag)
        return None

    def _scalar(self, run: Run, key: str, qualifier: str) -> Any:
        agg = lookup(self.scalars.get(run.id, {}), key)
        parent = _parent_of(run)
        if agg is None and "#" in key and parent:
            # `fit#loss` on a step row: the sibling step's scalar, found under
            # the pipeline run, which rolls up every step.
            agg = lookup(self.scalars.get(parent, {}), key)
        if agg is None:
            return None
        if qualifier == "step":
            return agg.last_step
        return getattr(agg, qualifier)


def _parent_of(run: Run) -> str | None:
    """The run's parent id, or None when there is none or it is not an id."""
    parent = run.parent
    return parent if isinstance(parent, str) and parent else None


def lookup(aggs: dict, key: str):
    """Find `tag` or `prefix#tag`: a bare tag prefers the run's own scalars."""
    prefix, sep, tag = key.rpartition("#")
    if sep:
        hit = aggs.get((prefix, tag))
        if hit is not None:
            return hit
        for (p, t), agg in sorted(aggs.items()):
            if t == tag and (p.endswith("/" + prefix)):
                return agg
        return None
    hit = aggs.get(("", tag))
    if hit is not None:
        return hit
    for (p, t), agg in sorted(aggs.items()):
        if t == tag:
            return agg
    return None


def sort_rows(headers: list[str], rows: list[list[Any]], min_col: str | None, max_col: str | None) -> list[list[Any]]:
    """Rows sorted by a column (numbers first, NaN last); others keep their order."""
    col = min_col or max_col
    if not col:
        return rows
    if col not in headers:
        raise TrkError(f"cannot sort by '{col}': no such column", "Columns: " + ", ".join(headers))
    i = headers.index(col)
    present, others = [], []
    for r in rows:
        v = r[i]
        number = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # NaN would scramble the sort
        (present if number else others).append(r)
    present.sort(key=lambda r: r[i], reverse=bool(max_col))
    return present + others


def skip_unchanged(headers: list[str], kinds: list[str], rows: list[list[Any]]):
    """Drop the columns (but `run`) whose value is the same in every row."""
    keep = [0] + [i for i in range(1, len(headers)) if len({repr(r[i]) for r in rows}) > 1]
    return [headers[i] for i in keep], [kinds[i] for i in keep], [[r[i] for i in keep] for r in rows]
