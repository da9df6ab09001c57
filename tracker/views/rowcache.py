"""The default compare table, from a cache of each finished run's rendered row.

`trk compare` with its default columns shows, for each run, the run's own
attributes, flags and last scalar values, each formatted on its own: a
finished run's row never changes until the run does. `RowCache` keeps each
finished run's cells (as shown, with the names of its flag and scalar
columns) under the run's `RunRecord.version`, in `index/compare-rows.sqlite`.
A table of 100,000 runs is then one listing of the index and one lookup per
page of runs, instead of reading and formatting two million values again.

A row is used only while the run's version is the one it was rendered
from; running and damaged runs (no version) are rendered every time. The
first runs of the table (`queries.CHECKED_RUNS`) are checked against their
attr files, as every listing checks them. The cache is only a cache: when
it cannot be read or written (damaged, locked by another process past a
second), the rows are rendered as if it were empty, and a damaged file is
replaced.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from operator import itemgetter
from typing import Any, Iterator

from ..display import cell_formatter, format_scalar
from ..metrics.indexschema import SCHEMA_VERSION as SCALARS_VERSION
from ..store import RunStore
from ..store.queries import CHECKED_RUNS
from ..store.record import RunRecord
from .columns import Column, unique_headers
from .compare import attr_column, own_last

# Bump when a cell's rendering changes (display.format_*), so old rows are not shown.
VERSION = 1
ATTRS = ("operation", "started", "time", "status", "label")
SEP = "\x1f"  # between cells; a row with the character in a cell is not cached
PAGE = 500
STREAM_FROM = 5000  # runs from which reading the whole cache beats looking them up
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS shapes (shape INTEGER PRIMARY KEY, columns TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS rows (id TEXT PRIMARY KEY, version TEXT, shape INTEGER, cells TEXT) WITHOUT ROWID;
"""


def _generation() -> str:
    """What every cached row depends on beyond its run: the rendering, the
    scalar index's values (its schema), and the time zone times show in."""
    return f"{VERSION}/{SCALARS_VERSION}/{time.tzname}/{time.timezone}/{time.altzone}/{os.environ.get('TZ', '')}"


class RowCache:
    """The cached rows of finished runs: {id: (version, shape, cells)}."""

    def __init__(self, path: str):
        """Open (creating or replacing) the cache at `path`; a cache that cannot be opened stays empty."""
        self.path = path
        self.db: sqlite3.Connection | None = None
        self.shapes: dict[int, tuple[str, ...]] = {}
        for attempt in (1, 2):
            try:
                self._open()
                return
            except sqlite3.DatabaseError:
                self.close()
                if attempt == 1 and os.path.exists(path):
                    try:  # damaged: it only held what can be rendered again
                        for name in (path, path + "-wal", path + "-shm"):
                            if os.path.exists(name):
                                os.remove(name)
                    except OSError:
                        return

    def _open(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        db = self.db = sqlite3.connect(self.path, timeout=1.0, isolation_level=None)
        # A cache: a write that a crash loses is rendered again (WAL, no sync per page of rows written).
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        generation = _generation()
        found = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        if found is None or found[0] != generation:
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("DELETE FROM rows")
                db.execute("DELETE FROM shapes")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (generation,))
        self._load_shapes()

    def _load_shapes(self) -> None:
        self.shapes = {k: tuple(v.split(SEP)) if v else () for k, v in self.db.execute("SELECT shape, columns FROM shapes")}

    def close(self) -> None:
        """Close the database."""
        if self.db is not None:
            self.db.close()
            self.db = None

    def rows(self, run_ids: list[str]) -> Iterator[tuple[str, str, int, str]]:
        """(id, version, shape, cells) of the cached rows of `run_ids`, and
        maybe of others: for many runs, the whole cache is read in its own
        order (one pass, 4x faster than looking each up)."""
        if self.db is None:
            return
        try:
            if len(run_ids) > STREAM_FROM:
                yield from self.db.execute("SELECT id, version, shape, cells FROM rows")
                return
            for k in range(0, len(run_ids), PAGE):
                chunk = run_ids[k:k + PAGE]
                yield from self.db.execute(
                    f"SELECT id, version, shape, cells FROM rows WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        except sqlite3.Error:
            return

    def put(self, rows: list[tuple[str, str, tuple[str, ...], list[str]]]) -> None:
        """Cache `(id, version, shape columns, cells)` rows; skipped when the
        cache is busy past a second or cannot be written."""
        if self.db is None or not rows:
            return
        db = self.db
        try:
            with db:
                db.execute("BEGIN IMMEDIATE")
                known = {v: k for k, v in self.shapes.items()}
                out = []
                for run_id, version, shape, cells in rows:
                    number = known.get(shape)
                    if number is None:
                        number = db.execute("INSERT INTO shapes (columns) VALUES (?)", (SEP.join(shape),)).lastrowid
                        known[shape] = number
                        self.shapes[number] = shape
                    out.append((run_id, version, number, SEP.join(cells)))
                db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?)", out)
        except sqlite3.Error:
            self.shapes = {}  # (a failed transaction may have taken its new shapes with it)
            try:
                self._load_shapes()
            except sqlite3.Error:
                pass

    def prune(self, keep: list[str]) -> None:
        """Drop the rows of runs not in `keep` (every run of the store: rows of
        purged or deleted runs go), when there are any (best effort)."""
        if self.db is None:
            return
        try:
            if self.db.execute("SELECT count(*) FROM rows").fetchone()[0] <= len(keep):
                return
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute("CREATE TEMP TABLE keep (id TEXT PRIMARY KEY)")
                self.db.executemany("INSERT OR IGNORE INTO keep VALUES (?)", [(i,) for i in keep])
                self.db.execute("DELETE FROM rows WHERE id NOT IN (SELECT id FROM keep)")
                self.db.execute("DROP TABLE keep")
        except sqlite3.Error:
            pass


class CachedTable:
    """The default compare table of the runs matching a filter, newest first:
    `headers`, `kinds` and `columns` (the formatted cells, column by column)."""

    def __init__(self, store: RunStore, filt: Any = None, limit: int | None = None, progress: Any = None):
        """Read the table; `progress(done, total)` hears how indexing the scalars of new runs goes."""
        self.store = store
        self.warnings: list[str] = []
        self.rendered = 0  # rows rendered, not read from the cache (for tests and benchmarks)
        self.filt, self.limit = filt, limit
        cache = RowCache(os.path.join(store.index_dir, "compare-rows.sqlite"))
        try:
            listing = list(store.versions(filt, limit=limit))
            rows = self._rows(listing, cache, progress)
            if limit is None and (filt is None or filt.passes_all()):  # the whole store: forget runs that left it
                cache.prune([run_id for run_id, _ in listing])
        finally:
            cache.close()
        self._assemble(rows, cache.shapes)

    def _rows(self, listing: list[tuple[str, str | None]], cache: RowCache,
              progress: Any) -> list[tuple[Any, list[str] | str]]:
        """Each run's (shape, cells), in listing order: read from the cache
        (cells as its text) where the run's version matches, else rendered
        (cells as a list)."""
        checked = self.store.records([i for i, _ in listing[:CHECKED_RUNS]], checked=True, deps=False)
        for k, (run_id, _) in enumerate(listing[:CHECKED_RUNS]):
            rec = checked.get(run_id)
            listing[k] = (run_id, rec.version if rec is not None else None)  # as the attr files say
        wanted = {run_id: (k, version) for k, (run_id, version) in enumerate(listing) if version is not None}
        out: list[Any] = [None] * len(listing)
        shapes = cache.shapes
        for run_id, version, shape, cells in cache.rows(list(wanted)):
            want = wanted.get(run_id)
            if want is not None and want[1] == version and shape in shapes:
                out[want[0]] = (shape, cells)  # split as the table is read: 100,000 rows' cells need not be held
        todo = {run_id: k for k, (run_id, _) in enumerate(listing) if out[k] is None}
        versions = dict(listing)
        for page in self._render(list(todo), checked, progress):  # cached as they are made: memory for a page
            cache.put([(run_id, versions[run_id], shape, cells) for run_id, shape, cells in page
                       if versions.get(run_id) is not None and not any(SEP in c for c in cells)])
            for run_id, shape, cells in page:
                out[todo[run_id]] = (shape, cells)
            self.rendered += len(page)
        return [row for row in out if row is not None]  # (a run removed meanwhile has no row)

    def _render(self, run_ids: list[str], checked: dict[str, RunRecord],
                progress: Any) -> Iterator[list[tuple[str, tuple[str, ...], list[str]]]]:
        """Pages of (id, shape, cells) rendered from the indexes: the short id,
        the attrs, then a cell per flag the run has and per scalar tag it has
        a last value for (`shape` names those: `=flag`, `#tag`)."""
        if not run_ids:
            return
        index = self.store.scalar_index()
        flag, attr = cell_formatter("flag"), cell_formatter("attr")
        if len(run_ids) > PAGE:  # many (a cold index): brought up to date at once, under one bar
            todo = set(run_ids)
            index.progress = progress
            index.refresh([(i, f"{self.store.runs_dir}/{i}", stamp)
                           for i, _, stamp in self.store.scan(self.filt, limit=self.limit) if i in todo])
            index.progress = None
        for k in range(0, len(run_ids), PAGE):
            chunk = run_ids[k:k + PAGE]
            records = {i: checked[i] for i in chunk if i in checked}
            records.update(self.store.records([i for i in chunk if i not in checked], deps=False))
            recs = [records[i] for i in chunk if i in records]
            index.progress = progress if len(run_ids) <= PAGE else None
            index.refresh([(r.id, r.dir, r.index_stamp) for r in recs])  # (done above, but for runs changed since)
            index.progress = None
            lasts = index.lasts([r.id for r in recs])
            attrs = [attr_column(recs, a) for a in ATTRS]
            out = []
            for j, rec in enumerate(recs):
                names = sorted(rec.flags)
                own = lasts.get(rec.id, {})
                tags = sorted({t for _, t in own})
                shape = tuple(["=" + n for n in names] + ["#" + t for t in tags])
                cells = [rec.id[:8], *(attr(col[j]) for col in attrs), *(flag(rec.flags[n]) for n in names),
                         *(format_scalar(own_last(own, t)) for t in tags)]
                out.append((rec.id, shape, cells))
            yield out
        self.warnings += list(getattr(index, "warnings", []) or [])

    def _assemble(self, rows: list[tuple[Any, list[str] | str]], shapes: dict[int, tuple[str, ...]]) -> None:
        """Lay the rows out in the table's columns: attrs, every flag, every
        scalar tag (one column per header, the flag's, as `Comparison`)."""
        used: dict[Any, tuple[str, ...]] = {}
        for shape, _ in rows:
            if shape not in used:
                used[shape] = shapes[shape] if isinstance(shape, int) else shape
        names = {n for cols in used.values() for n in cols}
        cols = [Column("attr", a, a) for a in ATTRS]
        cols += [Column("flag", n[1:], n[1:]) for n in sorted(n for n in names if n[0] == "=")]
        cols += [Column("scalar", n[1:], n[1:]) for n in sorted(n for n in names if n[0] == "#")]
        cols = unique_headers(cols)
        extra = [("=" if c.kind == "flag" else "#") + c.key for c in cols[len(ATTRS):]]
        width = 1 + len(ATTRS)
        getters = {}
        for shape, names_ in used.items():
            at = {n: width + i for i, n in enumerate(names_)}
            # A cell the run has none of reads the empty cell after its last.
            getters[shape] = itemgetter(*range(width), *(at.get(n, -1) for n in extra))
        self._getters = getters
        self._rows = rows
        self.headers = ["run"] + [c.header for c in cols]
        self.kinds = ["attr"] + [c.kind for c in cols]

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self, keep: list[int] | None = None) -> Iterator[tuple[str, ...]]:
        """Each row's cells in the table's column order (only the columns at
        `keep`, when given), made as they are read."""
        getters = self._getters
        if keep is not None:
            pick = itemgetter(*keep) if len(keep) > 1 else (lambda row, i=keep[0]: (row[i],))
            getters = {shape: (lambda cells, g=g: pick(g(cells))) for shape, g in getters.items()}
        for shape, cells in self._rows:
            yield getters[shape]((cells + SEP).split(SEP) if isinstance(cells, str) else cells + [""])

    def pages(self, keep: list[int] | None = None) -> Iterator[list[tuple[str, ...]]]:
        """`rows`, PAGE rows at a time."""
        page = []
        for row in self.rows(keep):
            page.append(row)
            if len(page) == PAGE:
                yield page
                page = []
        if page:
            yield page

    def changing(self) -> list[int]:
        """Indexes of the columns whose cells differ between rows, and `run` (for -u)."""
        seen: list[set[str]] = [set() for _ in self.headers]
        for page in self.pages():
            for values, column in zip(seen, zip(*page)):
                if len(values) < 2:
                    values.update(column)
        return [0] + [i for i in range(1, len(self.headers)) if len(seen[i]) > 1]

    def widths(self, keep: list[int] | None = None) -> list[int] | None:
        """The longest cell of each column, or None when a cell is not ASCII
        (then a character is not a column: lay the table out from `columns`)."""
        n = len(keep) if keep is not None else len(self.headers)
        widths = [0] * n
        for page in self.pages(keep):
            for i, column in enumerate(zip(*page)):
                if not "".join(column).isascii():
                    return None
                widths[i] = max(widths[i], max(map(len, column)))
        return widths

    def columns(self, keep: list[int] | None = None) -> list[list[str]]:
        """The cells column by column (every cell held: for tables laid out as a whole)."""
        n = len(keep) if keep is not None else len(self.headers)
        columns: list[list[str]] = [[] for _ in range(n)]
        intern = sys.intern  # cells repeat (operations, statuses, flag values): one string each
        for page in self.pages(keep):
            for column, cells in zip(columns, zip(*page)):
                column += map(intern, cells)
        return columns
