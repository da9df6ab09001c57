"""Comparing runs: each row's attributes, flags and scalars, a page at a time.

`Comparison` reads the runs to compare from the run index 500 at a time
(records, not Run objects; the scalars of that page only), so comparing
100,000 runs holds one page in memory, not the store. Columns reach past a
run's own values: `=fit.lr` / `fit#loss` to a pipeline's step, and
`=prep.k` / `prep#loss` to an upstream run through `requires:` (see
`lineage`).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from ..display import format_duration, format_time
from ..store import Run, RunStore
from ..store.record import RunRecord
from .columns import Column, lookup, parse_columns, unique_headers
from .lineage import Lineage

PAGE = 500  # the first page is read with its attr files checked (as listings check their first 500 runs)


class Comparison:
    """The runs to compare: given Run objects, or every run matching a filter."""

    def __init__(self, store: RunStore, runs: Sequence[Run] | None = None, filt: Any = None,
                 limit: int | None = None, progress: Any = None):
        """`runs` in the order to show them; else the runs matching `filt`
        (a select.RunFilter, None: all), newest first, at most `limit`;
        `progress(done, total)` hears how indexing their scalars goes."""
        self.store = store
        self.lineage = Lineage(store)
        self._given: dict[str, RunRecord] = {}
        stamps: list[tuple[str, str, str | None]] = []
        if runs is not None:
            for r in runs:
                self._given.setdefault(r.id, RunRecord.of(r))
            self.ids = list(self._given)
            stamps = [(rec.id, rec.dir, rec.index_stamp) for rec in self._given.values()]
            parents = {rec.parent for rec in self._given.values()} - set(self._given)
        else:
            self.ids, parents = [], set()
            for run_id, parent, stamp in store.scan(filt, limit=limit):
                self.ids.append(run_id)
                stamps.append((run_id, f"{store.runs_dir}/{run_id}", stamp))
                parents.add(parent)
            parents -= set(self.ids)
        parents.discard(None)
        self.index = store.scalar_index()
        self.index.progress = progress
        # Step rows may show their pipeline's scalars: index those pipelines too.
        self.index.refresh(stamps + [(r.id, r.dir, r.index_stamp) for r in store.records(parents).values()])
        self.index.progress = None  # a page's few upstream runs need no bar

    @property
    def warnings(self) -> list[str]:
        """What went wrong with the scalar index so far (a damaged index moved aside...)."""
        return list(getattr(self.index, "warnings", []) or [])

    @property
    def runs(self) -> list[str]:
        """Ids of the compared runs, in row order."""
        return self.ids

    # -- columns --------------------------------------------------------

    def default_columns(self) -> list[Column]:
        """Columns when none are given: attrs, every flag, every scalar tag."""
        cols = [Column("attr", a, a) for a in ("operation", "started", "time", "status", "label")]
        if self._given:
            flags = {f for rec in self._given.values() for f in rec.flags}
        else:
            flags = self.store.flag_names(self.ids)
        cols += [Column("flag", f, f) for f in sorted(flags)]
        tags = sorted({t for _, t in self.index.tags(self.ids)})
        return unique_headers(cols + [Column("scalar", t, t) for t in tags])

    def table(self, columns: list[Column] | None = None) -> tuple[list[str], list[list[Any]]]:
        """Headers and rows (raw values); `run` is always the first column."""
        cols = columns if columns is not None else self.default_columns()
        return self.headers(cols), [row for page in self.pages(cols) for row in page]

    @staticmethod
    def headers(columns: list[Column]) -> list[str]:
        """The table's headers: `run`, then each column's."""
        return ["run"] + [c.header for c in columns if not (c.kind == "attr" and c.key == "run")]

    def pages(self, columns: list[Column]) -> Iterator[list[list[Any]]]:
        """The rows (raw values, `run` first), a page of runs at a time."""
        for ids, values in self.column_pages(columns):
            yield [list(row) for row in zip(ids, *values)]

    def column_pages(self, columns: list[Column]) -> Iterator[tuple[list[str], list[list[Any]]]]:
        """A page of runs at a time: their short ids, and each column's values
        for them (column by column: a table of 100,000 runs is 2 million cells)."""
        cols = [c for c in columns if not (c.kind == "attr" and c.key == "run")]
        reach = any((c.kind == "flag" and "." in c.key) or (c.kind == "scalar" and "#" in c.key) for c in cols)
        for k in range(0, len(self.ids), PAGE):
            page_ids = self.ids[k:k + PAGE]
            page = _Page(self, self._records(page_ids, k == 0, reach), reach, cols)
            recs = [r for r in map(page.records.get, page_ids) if r is not None]
            yield [r.id[:8] for r in recs], [page.column(recs, c) for c in cols]

    def _records(self, run_ids: list[str], checked: bool, deps: bool = True) -> dict[str, RunRecord]:
        """Records of these runs (a run removed meanwhile has none); `deps`:
        with their upstream runs (for columns that reach them)."""
        if self._given:
            return {i: self._given[i] for i in run_ids if i in self._given}
        return self.store.records(run_ids, checked=checked, deps=deps)


class _Page:
    """One page of rows: its records, and the steps, upstream runs and
    scalars its columns reach."""

    def __init__(self, cmp: Comparison, records: dict[str, RunRecord], reach: bool, cols: list[Column]):
        self.cmp = cmp
        self.records = records
        self.lineage = cmp.lineage
        self.parents: dict[str, RunRecord] = {}
        self.steps: dict[str, dict[str, RunRecord]] = {}
        parent_ids = {r.parent for r in records.values() if r.parent}
        if reach:
            self.parents = cmp.store.records([p for p in parent_ids if p not in records])
            pipelines = [*records, *self.parents]
            for child in cmp.store.children(pipelines):  # newest first: a repeated step shows its newest run
                step = child.get("step")
                if isinstance(step, str) and step:
                    self.steps.setdefault(child.parent, {}).setdefault(step, RunRecord.of(child))
        # Columns of the rows' own last values (the default table) need no
        # aggregates, nor the pipelines' (`fit#loss` looks there).
        self.lasts: dict | None = None
        if all(c.kind != "scalar" or ("#" not in c.key and c.qualifier == "last") for c in cols):
            self.lasts = cmp.index.lasts(records)
            self.scalars: dict = {}
            return
        wanted = set(records) | parent_ids
        upstream = self._upstream_for(cols) if reach else set()
        if upstream:
            cmp.index.refresh([(r.id, r.dir, r.index_stamp) for r in upstream])
            wanted |= {r.id for r in upstream}
        self.scalars = cmp.index.get(wanted)

    def _upstream_for(self, cols: list[Column]) -> list[RunRecord]:
        """Upstream runs that `NAME#tag` columns of this page's rows name."""
        names = {c.key.rpartition("#")[0] for c in cols if c.kind == "scalar" and "#" in c.key}
        out: dict[str, RunRecord] = {}
        for rec in self.records.values():
            if not rec.deps:
                continue
            for name in names:
                up = self.lineage.find(rec, name)
                if up is not None and up.record is not None:
                    out[up.run_id] = up.record
        return list(out.values())

    def column(self, recs: list[RunRecord], col: Column) -> list[Any]:
        """The raw values of `col` for `recs` (None where a run has none)."""
        if col.kind == "attr":
            return attr_column(recs, col.key)
        if col.kind == "flag":
            name = col.key
            if "." not in name:
                return [r.flags.get(name) for r in recs]
            return [r.flags[name] if name in r.flags else self._flag(r, name) for r in recs]
        key, qualifier, scalars = col.key, col.qualifier, self.scalars
        if self.lasts is not None:
            lasts = self.lasts
            return [own_last(lasts.get(r.id, _NONE), key) for r in recs]
        if "#" not in key and qualifier == "last":
            tag = ("", key)  # the common case: a run's own last value
            return [agg.last if (agg := scalars.get(r.id, _NONE).get(tag)) is not None
                    else self._scalar(r, key, qualifier) for r in recs]
        return [self._scalar(r, key, qualifier) for r in recs]

    def value(self, rec: RunRecord, col: Column) -> Any:
        """The raw value of `col` for `rec` (None when it has none)."""
        return self.column([rec], col)[0]

    def _pipeline_of(self, rec: RunRecord) -> str | None:
        if rec.id in self.steps:
            return rec.id
        return rec.parent

    def _flag(self, rec: RunRecord, name: str) -> Any:
        if name in rec.flags:
            return rec.flags[name]
        step, dot, flag = name.partition(".")
        if not dot:
            return None
        pipeline = self._pipeline_of(rec)
        child = self.steps.get(pipeline, {}).get(step) if pipeline else None
        if child is not None:
            return child.flags.get(flag)
        if rec.deps:
            up = self.lineage.find(rec, step)
            if up is not None and up.record is not None:
                return up.record.flags.get(flag)
        return None

    def _scalar(self, rec: RunRecord, key: str, qualifier: str) -> Any:
        agg = lookup(self.scalars.get(rec.id, {}), key)
        if agg is None and "#" in key:
            if rec.parent:
                # `fit#loss` on a step row: the sibling step's scalar, found under
                # the pipeline run, which rolls up every step.
                agg = lookup(self.scalars.get(rec.parent, {}), key)
            if agg is None and rec.deps:
                name, _, tag = key.rpartition("#")
                up = self.lineage.find(rec, name)
                if up is not None:
                    agg = lookup(self.scalars.get(up.run_id, {}), tag)
        if agg is None:
            return None
        if qualifier == "step":
            return agg.last_step
        return getattr(agg, qualifier)


_NONE: dict = {}


def own_last(lasts: dict, tag: str) -> Any:
    """A run's last value of `tag` from its `ScalarIndex.lasts`: its own
    (no prefix) if it has one, else the first prefix's (None: none)."""
    v = lasts.get(("", tag))
    return v if v is not None else lookup(lasts, tag)


def attr_column(recs: list[RunRecord], name: str) -> list[Any]:
    """The raw values of the attr column `name` for `recs` (times formatted)."""
    if name == "operation":
        return [r.op for r in recs]
    if name == "status":
        return [r.status for r in recs]
    if name == "label":
        return [r.label for r in recs]
    if name == "started":
        return [format_time(r.started) for r in recs]
    if name == "stopped":
        return [format_time(r.stopped) for r in recs]
    if name == "time":
        return [format_duration(r.duration_us) for r in recs]
    if name == "tags":
        return [" ".join(str(t) for t in r.tags) for r in recs]
    return [getattr(r, name, None) for r in recs]


def compare(store: RunStore, runs: Sequence[Run] | None = None, columns: str | list[str] | None = None,
            filt: Any = None) -> tuple[list[str], list[list[Any]]]:
    """The compare table of `runs` (None: all runs matching `filt`): headers and rows of raw values."""
    if isinstance(columns, (list, tuple)):
        columns = ",".join(columns)
    cmp = Comparison(store, runs, filt)
    return cmp.table(parse_columns(columns) if columns else None)
