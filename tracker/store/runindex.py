"""The run index: every run's attrs in SQLite, answering the questions commands ask.

The N newest runs matching a filter, how many match, runs by id prefix, a
pipeline's children, the newest completed run of an operation: each is an
indexed query, so a command's cost does not grow with the store. The index
follows the store without rescanning it:

- runs added or removed, by trk or behind its back (copied directories, a
  restored backup, another machine on a shared filesystem), change the
  mtime of `runs/` or `trash/runs/`: only then is that directory listed,
  and only the runs new to the index are read;
- runs not finished yet (and runs with bad metadata) are checked on every
  sync, by the signature of their attrs directory, since they change as
  they run; their status (running, or terminated when their supervisor
  died) is derived again from their lock;
- a finished run changes only through trk (label, tags, a restart), which
  writes through (`RunStore.touched`); the runs a command shows have their
  attr files checked on use (`attrs.FileCheck`).

`RunIndex.rebuild` (`trk check --reindex`) reads every run again. The index
is a cache: deleting it loses nothing.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any, Iterator

from ..fsutil import remove_sqlite
from .attrs import INO_MASK, SETTLE_NS, BadAttrs, metadata_error, read_attrs_dir, signatures
from .run import derive_status

SCHEMA_VERSION = 8
RUNS, TRASH = 0, 1  # a row's place: runs/ or the trash
FINAL = ("completed", "error", "terminated")

# The attrs every listing needs, as columns: a row becomes a Run without
# parsing its attrs JSON.
SUMMARY = ("op", "label", "tags", "parent", "step", "started", "initialized", "stopped", "exit_status",
           "terminated", "staged")
_ROW = "id, dir_ino, dir_ctime, file_sigs, attrs, bad, status, " + ", ".join(SUMMARY) + ", sort_key"

# Rows that may still change (running, staged, damaged, just written): the
# partial index runs_open finds them, for syncs and for filters on live statuses.
OPEN_ROWS = "exit_status IS NULL OR bad IS NOT NULL OR dir_ino IS NULL"
_SCHEMA = f"""
CREATE TABLE runs (
    id TEXT PRIMARY KEY, place INTEGER NOT NULL, dir_ino INTEGER, dir_ctime INTEGER,
    bad TEXT, status TEXT, opname TEXT, sort_key INTEGER, tag_text TEXT, flags_key TEXT,
    {", ".join(f"{c} {'TEXT' if c in ('op', 'label', 'tags', 'parent', 'step') else 'INTEGER'}" for c in SUMMARY)}
);
CREATE INDEX runs_order ON runs (place, sort_key DESC, id DESC);
CREATE INDEX runs_op ON runs (place, op, sort_key DESC);
CREATE INDEX runs_parent ON runs (parent);
CREATE INDEX runs_flags ON runs (op, flags_key);
CREATE INDEX runs_open ON runs (place) WHERE {OPEN_ROWS};
CREATE TABLE places (place INTEGER PRIMARY KEY, ino INTEGER, mtime INTEGER);
-- Apart from the rows listings scan, so a listing never reads them.
CREATE TABLE run_attrs (id TEXT PRIMARY KEY, file_sigs BLOB, attrs TEXT);
"""


def flags_key(flags: Any) -> str:
    """A key equal for equal flag values (types included: 1 is not 1.0), for `--needed`."""
    import hashlib

    text = json.dumps(flags if isinstance(flags, dict) else {}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def _serialized(method):
    """Run `method` holding the index's lock: a DAG pipeline's step threads
    share one connection, and one thread's statements must not land inside
    another's transaction."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class RunIndex:
    """The run index in one SQLite file, for the runs and trash of one store."""

    def __init__(self, path: str, bases: dict[int, str], is_locked):
        self.path = path
        self.bases = bases  # place -> directory of run dirs
        self.is_locked = is_locked
        self._db = None
        self._lock = threading.RLock()
        self.synced: set[int] = set()
        self.warnings: list[str] = []
        self.progress = None  # called with (runs read, runs to read) while reading many

    # -- database ---------------------------------------------------------

    @property
    @_serialized
    def db(self):
        """The connection, opened (and the schema made) on first use."""
        if self._db is None:
            import sqlite3

            try:
                self._db = self._connect(self.path)
            except sqlite3.OperationalError:
                # Locked past the timeout, or a read-only store: answer from
                # an index in memory, built by reading the store this once.
                self._db = self._connect(":memory:")
            except sqlite3.DatabaseError:
                remove_sqlite(self.path)  # corrupt or foreign: it is a cache, rebuild it
                self._db = self._connect(self.path)
        return self._db

    @staticmethod
    def _connect(path: str):
        import sqlite3

        if path != ":memory:":
            os.makedirs(os.path.dirname(path), exist_ok=True)
        # Shared by a DAG pipeline's step threads: a connection per thread
        # would keep a stale snapshot of the others' writes. RunIndex holds
        # its lock around every write (see `_serialized`).
        db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        try:
            if path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.execute("BEGIN IMMEDIATE")
                for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                    db.execute(f"DROP TABLE IF EXISTS {name}")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        """Close the database (reopened on next use)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- keeping up with the store ---------------------------------------

    @_serialized
    def sync(self, place: int) -> None:
        """Bring the rows of `place` up to date with the directory (once per index object)."""
        if place in self.synced:
            return
        self.synced.add(place)
        db = self.db
        base = self.bases[place]
        try:
            st = os.stat(base)
            sig = (st.st_ino & INO_MASK, st.st_mtime_ns)
        except FileNotFoundError:
            st, sig = None, (0, 0)
        known = db.execute("SELECT ino, mtime FROM places WHERE place = ?", (place,)).fetchone()
        changed: dict[str, tuple | None] = {}  # id -> new row (None: gone)
        if known is None or tuple(known) != sig:
            names = set()
            if st is not None:
                names = {n for n in os.listdir(base) if not n.startswith(".")}
            have = {r[0] for r in db.execute("SELECT id FROM runs WHERE place = ?", (place,))}
            for run_id in have - names:
                changed[run_id] = None
            new = sorted(names - have)
            if self.progress is not None and new:
                self.progress(0, len(new))  # the first call: the work's clock starts
            for k, run_id in enumerate(new):
                changed[run_id] = self._read_row(run_id, place)
                if self.progress is not None and k % 100 == 99:
                    self.progress(k + 1, len(new))
                if len(changed) >= 5000:
                    self._write(changed, place)  # a long first read keeps what it did if interrupted
                    changed = {}
            if self.progress is not None and new:
                self.progress(len(new), len(new))  # the last call: the bar ends
        # Runs still running (or with bad metadata, or written just now) change as they go.
        for run_id, ino, ctime, status, bad, *outcome in db.execute(
                "SELECT id, dir_ino, dir_ctime, status, bad, exit_status, terminated, staged, started FROM runs "
                f"WHERE place = ? AND ({OPEN_ROWS})",
                (place,)).fetchall():
            if run_id in changed:
                continue
            try:
                now = os.stat(f"{base}/{run_id}/.trk/attrs")
            except OSError:
                now = None
            if now is None or (now.st_ino & INO_MASK, now.st_ctime_ns) != (ino, ctime):
                changed[run_id] = self._read_row(run_id, place)
                continue
            # Unchanged attrs, but a supervisor may have died: the lock says.
            attrs = {k: v for k, v in zip(("exit_status", "terminated", "staged", "started"), outcome) if v is not None}
            live = derive_status(attrs, bad, lambda: self.is_locked(f"{base}/{run_id}/.trk/lock"))
            if live == "terminated" and "exit_status" not in attrs and status != live:
                changed[run_id] = self._read_row(run_id, place)  # ended just now, or died: its attrs say
                continue
            if live != status:
                db.execute("UPDATE runs SET status = ? WHERE id = ?", (live, run_id))
        self._write(changed, place)
        # A directory changed within the file system's clock tick could change
        # again unseen: remember its mtime only once it has settled.
        if st is not None and time.time_ns() - st.st_mtime_ns > SETTLE_NS:
            db.execute("INSERT OR REPLACE INTO places VALUES (?, ?, ?)", (place, *sig))

    def _read_row(self, run_id: str, place: int) -> tuple | None:
        """A run read from disk as an index row; None when it is gone."""
        path = f"{self.bases[place]}/{run_id}"
        attrs_dir = f"{path}/.trk/attrs"
        bad = None
        sig: tuple = (None, None, None)
        try:
            # Signatures first, then read: a change made while reading then
            # shows as a changed signature next time.
            dir_st, names, sigs, newest = signatures(attrs_dir)
            sig = (dir_st.st_ino & INO_MASK, dir_st.st_ctime_ns, sigs)
            if time.time_ns() - newest <= SETTLE_NS:
                sig = (None, None, None)  # changed just now: check again next time
            attrs = read_attrs_dir(attrs_dir)
        except BadAttrs as e:
            attrs, bad = e.attrs, f"{e}\0{e.path}"
        except OSError as e:
            if not os.path.lexists(path):
                return None  # moved or purged meanwhile
            attrs, bad = {}, f"{metadata_error(e)}\0{path}"
        attrs["id"] = run_id
        fresh: dict[str, Any] = {}

        def reread() -> dict[str, Any]:  # (see derive_status: the run may have ended meanwhile)
            try:
                fresh.update(read_attrs_dir(attrs_dir))
            except (BadAttrs, OSError):
                pass  # a dead supervisor's run stays terminated
            return fresh

        status = derive_status(attrs, bad, lambda: self.is_locked(f"{path}/.trk/lock"), reread)
        if "exit_status" in fresh:  # read again, and it had ended: the row holds what was read last
            attrs, sig = dict(fresh, id=run_id), (None, None, None)
        return self._row(run_id, place, sig, attrs, bad, status)

    @staticmethod
    def _row(run_id: str, place: int, sig: tuple, attrs: dict[str, Any], bad: str | None, status: str) -> tuple:
        summary = [attrs.get(c) for c in SUMMARY]
        tags = attrs.get("tags") if isinstance(attrs.get("tags"), list) else []
        summary[SUMMARY.index("tags")] = json.dumps(tags)
        op = attrs.get("op") if isinstance(attrs.get("op"), str) else None
        started, initialized = attrs.get("started"), attrs.get("initialized")
        sort_key = started or initialized or 0
        return (run_id, place, sig[0], sig[1], bad, status, (op or "").rpartition(":")[2], sort_key,
                "\n" + "\n".join(tags) + "\n", flags_key(attrs.get("flags")), *summary,
                sig[2], json.dumps(attrs))

    @_serialized
    def _write(self, changed: dict[str, tuple | None], place: int) -> None:
        if not changed:
            return
        import sqlite3

        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            for run_id, row in changed.items():
                if row is None:
                    if db.execute("DELETE FROM runs WHERE id = ? AND place = ?", (run_id, place)).rowcount:
                        db.execute("DELETE FROM run_attrs WHERE id = ?", (run_id,))
                else:
                    head = row[:-2]
                    db.execute(f"INSERT OR REPLACE INTO runs (id, place, dir_ino, dir_ctime, bad, "
                               f"status, opname, sort_key, tag_text, flags_key, {', '.join(SUMMARY)}) "
                               f"VALUES ({', '.join('?' * len(head))})", head)
                    db.execute("INSERT OR REPLACE INTO run_attrs VALUES (?, ?, ?)", (run_id, *row[-2:]))
            db.execute("COMMIT")
        except sqlite3.OperationalError:
            if db.in_transaction:
                db.execute("ROLLBACK")  # busy: the next command catches up

    @_serialized
    def published(self, run_id: str, before: tuple | None, after: tuple | None) -> None:
        """trk itself just added `run_id` to `runs/`, whose signature went from
        `before` to `after`. Add its row; and when the index was up to date
        with `before`, it is with `after` too, so the next sync need not list
        the directory (at 100,000 runs, the cost of a `trk run` after another).
        Another trk process publishing at the same moment adds its own row;
        a run copied in behind trk's back within the same clock tick would
        wait for the next change of `runs/` or `trk check`."""
        row = self._read_row(run_id, RUNS)
        if row is None:
            return
        self._write({run_id: row}, RUNS)
        if before is not None and after is not None:
            self.db.execute("UPDATE places SET ino = ?, mtime = ? WHERE place = ? AND ino = ? AND mtime = ?",
                            (*after, RUNS, *before))

    @_serialized
    def refresh(self, run_id: str, place: int) -> None:
        """Read one run again (trk changed it, or it moved)."""
        row = self._read_row(run_id, place)
        self._write({run_id: row}, place)

    @_serialized
    def forget(self, run_id: str) -> None:
        """Drop a run's row: its files changed in place (FileCheck found it)."""
        import sqlite3

        try:
            self.db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            self.db.execute("DELETE FROM run_attrs WHERE id = ?", (run_id,))
            # Re-read at the next sync: the directory listing brings it back.
            self.db.execute("DELETE FROM places")
        except sqlite3.Error:
            pass

    @_serialized
    def rebuild(self) -> int:
        """Read every run of the store again; returns how many there are."""
        self.db.execute("DELETE FROM runs")
        self.db.execute("DELETE FROM run_attrs")
        self.db.execute("DELETE FROM places")
        self.synced.clear()
        for place in self.bases:
            self.sync(place)
        return self.db.execute("SELECT count(*) FROM runs").fetchone()[0]

    # -- queries ----------------------------------------------------------

    def rows(self, place: int, where: str = "", params: tuple = (), limit: int | None = None,
             offset: int = 0, ordered: bool = True) -> list[tuple]:
        """Rows (see `_ROW`) newest first, matching an SQL condition.

        `ordered=False` (rows by id or parent, sorted by the caller) lets
        SQLite look them up by those indexes instead of walking the listing
        order past every other run.
        """
        self.sync(place)
        # `+place`: not by the place indexes, which would walk every run of the place.
        sql = f"SELECT {_ROW} FROM runs LEFT JOIN run_attrs USING (id) WHERE {'' if ordered else '+'}place = ?" + (
            f" AND ({where})" if where else "")
        if ordered:
            sql += " ORDER BY sort_key DESC, id DESC"
        if limit is not None or offset:
            sql += f" LIMIT {int(limit) if limit is not None else -1} OFFSET {int(offset)}"
        return self.db.execute(sql, (place, *params)).fetchall()

    def iter_rows(self, place: int, where: str, params: tuple, columns: str, page: int = 2000) -> Iterator[tuple]:
        """`columns` of all matching rows, newest first, a page at a time (each
        page starts where the last ended: no OFFSET scans). `columns` start
        with `id` and end with `sort_key`, and cannot include the attrs JSON."""
        self.sync(place)
        base = f"SELECT {columns} FROM runs WHERE place = ?" + (f" AND ({where})" if where else "")
        order = f" ORDER BY sort_key DESC, id DESC LIMIT {int(page)}"
        batch = self.db.execute(base + order, (place, *params)).fetchall()
        while batch:
            yield from batch
            if len(batch) < page:
                return
            last = batch[-1]
            batch = self.db.execute(base + " AND (sort_key, id) < (?, ?)" + order,
                                    (place, *params, last[-1], last[0])).fetchall()

    def records(self, place: int, run_ids: list[str], deps: bool = True) -> list[tuple]:
        """For a RunRecord: id, status, bad, dir_ino, op, label, tags, parent,
        step, started, stopped, exit_status, and the flags and (unless not
        `deps`: NULL) deps attrs as JSON text (SQLite picks them out of the
        attrs, so Python never parses a whole run's attrs)."""
        import sqlite3

        self.sync(place)
        sql = ("SELECT id, status, bad, dir_ino, op, label, tags, parent, step, started, stopped, exit_status, "
               "json_extract(attrs, '$.flags'), " + ("json_extract(attrs, '$.deps') " if deps else "NULL ") +
               f"FROM runs LEFT JOIN run_attrs USING (id) WHERE +place = ? AND id IN ({', '.join('?' * len(run_ids))})")
        try:
            return self.db.execute(sql, (place, *run_ids)).fetchall()
        except sqlite3.OperationalError:  # attrs JSON SQLite cannot read: every run the slow way (a Run)
            return [(i, None, "unreadable", *([None] * 11)) for i in run_ids]

    def dependents(self, place: int, run_id: str) -> list[str]:
        """Runs whose `deps` attr records `run_id` as an upstream run, newest first."""
        self.sync(place)
        deps = ("coalesce(CASE WHEN json_valid(attrs) THEN CASE WHEN json_type(attrs, '$.deps') = 'array' "
                "THEN json_extract(attrs, '$.deps') END END, '[]')")
        sql = ("SELECT runs.id FROM runs JOIN run_attrs USING (id) WHERE +place = ? AND instr(attrs, ?) > 0 "
               f"AND EXISTS (SELECT 1 FROM json_each({deps}) d "
               "WHERE d.type = 'object' AND json_extract(d.value, '$.run') = ?) "
               "ORDER BY sort_key DESC, runs.id DESC")
        return [r[0] for r in self.db.execute(sql, (place, run_id, run_id))]

    def flag_names(self, place: int, run_ids: list[str]) -> list[str]:
        """The distinct flag names of these runs (SQLite reads them out of the attrs JSON)."""
        self.sync(place)
        flags = ("coalesce(CASE WHEN json_valid(attrs) THEN CASE WHEN json_type(attrs, '$.flags') = 'object' "
                 "THEN json_extract(attrs, '$.flags') END END, '{}')")
        sql = (f"SELECT DISTINCT j.key FROM runs JOIN run_attrs USING (id), json_each({flags}) j "
               f"WHERE +place = ? AND runs.id IN ({', '.join('?' * len(run_ids))})")
        return [r[0] for r in self.db.execute(sql, (place, *run_ids))]

    def count(self, place: int, where: str = "", params: tuple = ()) -> int:
        """How many runs match."""
        self.sync(place)
        sql = "SELECT count(*) FROM runs WHERE place = ?" + (f" AND ({where})" if where else "")
        return self.db.execute(sql, (place, *params)).fetchone()[0]

    def position(self, place: int, row: tuple, where: str = "", params: tuple = ()) -> int:
        """The 1-based index of `row` in the newest-first listing of matching runs."""
        key = self.db.execute("SELECT sort_key FROM runs WHERE id = ?", (row[0],)).fetchone()[0]
        newer = "(sort_key > ? OR (sort_key = ? AND id > ?))"
        return self.count(place, f"{newer}" + (f" AND ({where})" if where else ""), (key, key, row[0], *params)) + 1

    def widths(self, place: int, where: str = "", params: tuple = ()) -> tuple[int, int]:
        """The longest operation and status among matching runs (for aligned streaming)."""
        self.sync(place)
        sql = ("SELECT max(length(coalesce(op, '?'))), max(length(status)) FROM runs WHERE place = ?"
               + (f" AND ({where})" if where else ""))
        op, status = self.db.execute(sql, (place, *params)).fetchone()
        return op or 1, status or 1

    def operations(self, place: int = RUNS) -> list[str]:
        """The distinct operations of the runs in `place`."""
        self.sync(place)
        return [r[0] for r in self.db.execute("SELECT DISTINCT op FROM runs WHERE place = ? AND op IS NOT NULL",
                                              (place,))]
