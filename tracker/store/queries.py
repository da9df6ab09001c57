"""Asking the run store about its runs: each question one or a few run-index queries.

`RunQueries` is the reading half of `RunStore`: runs newest first matching a
filter (a page at a time), counts, positions, id prefixes, children, the
newest completed run of an operation, and `trk check`.
"""

from __future__ import annotations

import json
import os
import re

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any, Iterable, Iterator

from .attrs import FileCheck
from .moves import clean_leftovers
from .lock import is_locked
from .record import RunRecord
from .run import Run, index_stamp
from .runindex import FINAL, RUNS, SUMMARY, TRASH, RunIndex

# The first runs of a result have their attr files checked as they are used
# (a file edited in place is noticed); past those, a command over thousands
# of runs trusts the index (`trk check --reindex` reads everything again).
CHECKED_RUNS = 500
_FULL_ID = re.compile(r"[0-9a-f]{32}")


class RunQueries:
    """Run-index queries for a store (`runs_dir`, `trash_dir`, `index_dir`, `_warn`)."""

    runs_dir: str
    staging_dir: str
    trash_dir: str
    index_dir: str
    _index: RunIndex | None
    _open: set[str]  # runs whose index row is re-checked on every sync (see touched)

    # -- the index ------------------------------------------------------

    @property
    def index(self) -> RunIndex:
        """The run index of this store (`index/runs.sqlite`)."""
        if self._index is None:
            self._index = RunIndex(os.path.join(self.index_dir, "runs.sqlite"),
                                   {RUNS: self.runs_dir, TRASH: self.trash_dir}, is_locked)
        return self._index

    def rescan(self) -> None:
        """Have the next query look at runs/ and the trash again (a long-lived
        view, such as `trk tensorboard`, asks again for what came or went)."""
        self._changed()

    def _changed(self) -> None:
        """Runs were added or moved: the next query looks at the directories again."""
        if self._index is not None:
            self._index.synced.clear()

    def touched(self, run: Run) -> None:
        """A run trk holds changed an attr: bring its index row up to date.

        Once the row says the run has not finished (a restart cleared its
        outcome), every sync re-checks it anyway: later writes (the program's
        start) need no write-through. Its end does: this process syncs once,
        and a DAG step may ask for the finished run before anything else
        makes it sync again.
        """
        if self._index is None or not run.dir.startswith(self.runs_dir + "/"):
            return
        finished = "exit_status" in run.attrs
        if run.id in self._open and not finished:
            return
        self._index.refresh(run.id, RUNS)
        if finished:
            self._open.discard(run.id)
        else:
            self._open.add(run.id)

    @staticmethod
    def _where(filt: Any, deleted: bool) -> tuple[int, str, tuple]:
        """The place, and `filt` (a select.RunFilter, or None) as SQL."""
        where, params = filt.sql() if filt is not None else ("", ())
        return (TRASH if deleted else RUNS), where, params

    def _bad(self, run_id: str, bad: str, path: str) -> str:
        """Warn of a run the index read as damaged (`bad`: reason NUL file); returns the reason."""
        reason, _, where = bad.partition("\0")
        self._warn(f"run {run_id[:8]}: {reason} in {where or path}; listed as error")
        return reason

    def _run(self, row: tuple, place: int, check: bool = True) -> Run:
        run_id, attrs_json, bad = row[0], row[4], row[5]
        base = self.trash_dir if place == TRASH else self.runs_dir
        path = f"{base}/{run_id}"
        if bad is not None:
            reason = self._bad(run_id, bad, path)
            try:
                attrs = json.loads(attrs_json)
            except (TypeError, ValueError):
                attrs = {}
            return Run(run_id, path, {**attrs, "id": run_id}, error=reason)
        summary = {k: v for k, v in zip(SUMMARY, row[7:]) if v is not None}
        summary["tags"] = _tags(summary.get("tags"))
        summary["id"] = run_id
        file_check = None
        if check and row[1] is not None and row[3] is not None:
            file_check = FileCheck(self.index, run_id, f"{path}/.trk/attrs", attrs_json, row[3])
        run = Run(run_id, path, check=file_check, summary=summary, attrs_json=attrs_json,
                  on_write=self.touched if place == RUNS else None, on_error=self._damaged)
        if row[6] in FINAL and row[1] is not None:
            run._status = row[6]  # final: the index's status is the run's
        return run

    def _damaged(self, run: Run, where: str) -> None:
        if not os.path.lexists(run.dir):
            return  # moved or purged by another process since the index was asked: not damage
        self._warn(f"run {run.short_id}: {run.error} in {where}; listed as error")

    def query(self, filt: Any = None, deleted: bool = False, limit: int | None = None,
              offset: int = 0) -> list[Run]:
        """Runs newest first matching `filt` (a select.RunFilter), a page at a time.

        Corrupt runs are listed as error runs, with a warning each.
        """
        place, where, params = self._where(filt, deleted)
        rows = self.index.rows(place, where, params, limit, offset)
        return [self._run(r, place, k < CHECKED_RUNS) for k, r in enumerate(rows)]

    def listing(self, filt: Any = None, deleted: bool = False) -> Iterator[tuple]:
        """What a listing line shows of every matching run, newest first, read
        a page at a time without making Run objects (`trk runs -a` at 100,000
        runs): (id, operation, sort key, status, label, tags)."""
        place, where, params = self._where(filt, deleted)
        base = self.trash_dir if deleted else self.runs_dir
        for run_id, op, status, label, tags, bad, key in self.index.iter_rows(
                place, where, params, columns="id, op, status, label, tags, bad, sort_key"):
            if bad is not None:
                self._bad(run_id, bad, f"{base}/{run_id}")
            yield (run_id, op or "?", key, status, label if isinstance(label, str) else "", _tags(tags))

    def scan(self, filt: Any = None, deleted: bool = False,
             limit: int | None = None) -> Iterator[tuple[str, str | None, str | None]]:
        """(id, parent, scalar-index stamp) of every matching run, newest first,
        streamed from the index a page at a time (what a table over 100,000
        runs starts from)."""
        place, where, params = self._where(filt, deleted)
        rows = self.index.iter_rows(place, where, params, columns="id, parent, status, stopped, sort_key")
        for k, (run_id, parent, status, stopped, _) in enumerate(rows):
            if limit is not None and k >= limit:
                return
            yield run_id, parent if isinstance(parent, str) and parent else None, index_stamp(status, stopped)

    def versions(self, filt: Any = None, limit: int | None = None) -> Iterator[tuple[str, str | None]]:
        """(id, version) of every matching run, newest first, streamed from the
        index: the version (`record_version`, made by SQLite) changes whenever
        the run's operation, times, status, exit status, label or flags
        change; None for a run that may still change (running, staged,
        damaged). What a cache of rows rendered from those (`trk compare` at
        100,000 runs) is keyed by."""
        place, where, params = self._where(filt, False)
        version = ("CASE WHEN bad IS NULL AND status IN ('completed', 'error', 'terminated') THEN printf('"
                   + "\x1f".join(["%s"] * 7) + "', coalesce(op, '?'), started, stopped, status, "
                   "CASE WHEN typeof(label) = 'text' THEN label ELSE '' END, exit_status, flags_key) END")
        rows = self.index.iter_rows(place, where, params, columns=f"id, {version}, sort_key")
        for k, (run_id, v, _) in enumerate(rows):
            if limit is not None and k >= limit:
                return
            yield run_id, v

    def records(self, run_ids: Iterable[str], deleted: bool = False, checked: bool = False,
                deps: bool = True) -> dict[str, RunRecord]:
        """RunRecords of the runs with these ids that exist (500 ids a query).

        A finished run with sound metadata is read from its index row alone;
        others (running, damaged), and all of them when `checked`, go through
        a Run object, which checks its attr files and lock as listings do.
        Without `deps`, index rows leave `deps` empty (a table that reaches
        no upstream run is spared decoding 100,000 of them).
        """
        place = TRASH if deleted else RUNS
        base = self.trash_dir if deleted else self.runs_dir
        values = list(dict.fromkeys(run_ids))
        out: dict[str, RunRecord] = {}
        for k in range(0, len(values), 500):
            chunk = values[k:k + 500]
            slow = []
            for row in self.index.records(place, chunk, deps):
                run_id, status, bad, ino, op, label, tags, parent, step, started, stopped, exit_status, flags, deps = row
                if checked or bad is not None or ino is None or status not in FINAL:
                    slow.append(run_id)
                    continue
                out[run_id] = RunRecord(run_id, op or "?", status, label if isinstance(label, str) else "",
                                        _tags(tags), parent or None, step or None, started, stopped, exit_status,
                                        _json(flags, dict), _json(deps, list), f"{base}/{run_id}")
            for run in self._with(place, "id", slow):
                out[run.id] = RunRecord.of(run)
        return out

    def dependents(self, run_ids: Iterable[str]) -> dict[str, list[str]]:
        """{upstream id: ids of the runs (in runs/, newest first) whose `deps` name it}."""
        out: dict[str, list[str]] = {}
        for upstream in run_ids:
            found = self.index.dependents(RUNS, upstream)
            if found:
                out[upstream] = found
        return out

    def flag_names(self, run_ids: Iterable[str], deleted: bool = False) -> set[str]:
        """The names of the flags any of these runs has (no attrs parsed in Python)."""
        values = list(run_ids)
        return {name for k in range(0, len(values), 500)
                for name in self.index.flag_names(TRASH if deleted else RUNS, values[k:k + 500])}

    def count(self, filt: Any = None, deleted: bool = False) -> int:
        """How many runs match `filt`."""
        return self.index.count(*self._where(filt, deleted))

    def position(self, run: Run, filt: Any = None, deleted: bool = False) -> int:
        """The 1-based index of `run` among the runs matching `filt`."""
        place, where, params = self._where(filt, deleted)
        return self.index.position(place, (run.id,), where, params)

    def widths(self, filt: Any = None, deleted: bool = False) -> tuple[int, int]:
        """The longest operation name and status among runs matching `filt`."""
        return self.index.widths(*self._where(filt, deleted))

    def by_prefix(self, prefix: str, filt: Any = None, deleted: bool = False, limit: int = 6) -> list[Run]:
        """Runs whose id starts with `prefix` (at most `limit`)."""
        place, where, params = self._where(filt, deleted)
        cond = "id >= ? AND id < ?" + (f" AND ({where})" if where else "")
        low = prefix.lower()
        high = low + "g"  # ids are hex: every id with this prefix sorts below prefix + "g"
        return [self._run(r, place) for r in self.index.rows(place, cond, (low, high, *params), limit)]

    def on_disk(self, run_id: str) -> Run | None:
        """The run with this whole id, read from its directory without syncing
        the index (a worker starting run after run of a fresh batch would
        otherwise re-read every other staged run first); None when there is none."""
        path = f"{self.runs_dir}/{run_id}"
        return Run(run_id, path, on_write=self.touched) if _FULL_ID.fullmatch(run_id) and os.path.isdir(path) else None

    def by_ids(self, run_ids: Iterable[str], deleted: bool = False) -> list[Run]:
        """The runs with these ids that exist, newest first."""
        return self._with(TRASH if deleted else RUNS, "id", run_ids)

    def children(self, parent_ids: Iterable[str]) -> list[Run]:
        """Runs whose `parent` is one of `parent_ids` (steps, trials), newest first."""
        return self._with(RUNS, "parent", parent_ids)

    def _with(self, place: int, column: str, values: Iterable[str]) -> list[Run]:
        """Runs whose `column` is one of `values`, newest first (500 values a query)."""
        values = list(dict.fromkeys(values))
        runs: list[Run] = []
        for k in range(0, len(values), 500):
            chunk = values[k:k + 500]
            runs += [self._run(r, place) for r in self.index.rows(
                place, f"{column} IN ({', '.join('?' * len(chunk))})", tuple(chunk), ordered=False)]
        runs.sort(key=lambda r: (r.sort_key, r.id), reverse=True)
        return runs

    def operations(self) -> list[str]:
        """The distinct operations of the store's runs."""
        return self.index.operations(RUNS)

    def newest(self, ops: Iterable[str], status: str = "completed", limit: int = 1) -> list[Run]:
        """The newest runs of any of `ops` (exact names) with `status`."""
        ops = list(ops)
        if not ops:
            return []
        cond = f"op IN ({', '.join('?' * len(ops))}) AND status = ?"
        return [self._run(r, RUNS) for r in self.index.rows(RUNS, cond, (*ops, status), limit)]

    def check(self, reindex: bool = False, progress=None) -> dict[str, Any]:
        """Look the store over (`trk check`): remove half-made runs a killed
        process left, bring the run index up to date (`reindex`: read every
        run again), and count runs and runs with bad metadata."""
        clean_leftovers(self.staging_dir, ".tmp")
        clean_leftovers(self.runs_dir, ".tmp")
        clean_leftovers(self.trash_dir, ".purge")
        index = self.index
        index.progress = progress
        try:
            if reindex:
                index.rebuild()
            bad = [self._run(r, RUNS) for r in index.rows(RUNS, "bad IS NOT NULL")]
            return {"runs": index.count(RUNS), "deleted": index.count(TRASH), "bad": bad}
        finally:
            index.progress = None

    def list(self, deleted: bool = False) -> list[Run]:
        """All runs, newest first (prefer `query`, `count` and friends: they read only what they need)."""
        return self.query(deleted=deleted)


def _json(text: str | None, kind: type) -> Any:
    """An attr the index extracted as JSON text, or an empty `kind` when absent or of another type."""
    if text is None:
        return kind()
    try:
        value = json.loads(text)
    except ValueError:
        return kind()
    return value if isinstance(value, kind) else kind()


def _tags(text: str | None) -> list[str]:
    """An index row's tags (JSON; most runs have none, so no parse for those)."""
    return [] if text is None or text == "[]" else json.loads(text)
