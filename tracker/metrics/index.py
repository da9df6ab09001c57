"""The scalar index: per run and tag, first/last/min/max/count/avg/steps.

One SQLite database caches aggregates per event file, with how far each
file was read: a finished run indexed since it stopped is not walked again,
an unchanged file is not read again, a grown one is read from where the
last read stopped. A pipeline rolls up its steps' scalars (`train#loss`);
no other symlink is followed (`events.find_event_files`, imported only when
there is something to read, so an up-to-date `trk compare` stays light).

Being a cache, a database SQLite finds damaged (confirmed by `PRAGMA
quick_check`, or a schema not ours) is moved aside as `<db>.corrupt-<time>`
and rebuilt from the event files, with one entry in `warnings`. Writers hold
`<db>.lock` ($TRK_INDEX_TIMEOUT seconds at most, default 120), their PID in
`<db>.lock.pid` so that a process giving up can name the holder.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager, suppress
from typing import Callable, Iterable, Iterator, TypeVar

from ..errors import TrkError
from ..fsutil import atomic_write
from .aggs import Agg, stored_agg
from .indexschema import SCHEMA_VERSION, TABLES as _TABLES, convert

DEFAULT_TIMEOUT = 120.0
T = TypeVar("T")


def lock_timeout() -> float:
    """Seconds to wait for the index lock: $TRK_INDEX_TIMEOUT, else 120."""
    try:
        t = float(os.environ.get("TRK_INDEX_TIMEOUT", ""))
    except ValueError:
        return DEFAULT_TIMEOUT
    return t if t >= 0 else DEFAULT_TIMEOUT  # NaN fails the test too


class IndexBusy(TrkError):
    """Another process holds the scalar index longer than the timeout."""


class _Damaged(sqlite3.DatabaseError):
    """The database is readable but is not a trk scalar index (stale schema)."""


def _error_kind(e: sqlite3.DatabaseError) -> str:
    """'busy', 'damaged' or 'other' for an sqlite3 error."""
    if isinstance(e, _Damaged):
        return "damaged"
    code = getattr(e, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        code &= 0xFF  # the primary result code of an extended one
        return "busy" if code in (5, 6) else "damaged" if code in (11, 26) else "other"
    msg = str(e).lower()
    if "locked" in msg or "busy" in msg:
        return "busy"
    return "damaged" if "malformed" in msg or "not a database" in msg or "corrupt" in msg else "other"


def _check_schema(db: sqlite3.Connection) -> None:
    found = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    for name, sql in _TABLES.items():
        if " ".join((found.get(name) or "").split()) != sql:
            raise _Damaged(f"table '{name}' is missing or not the index's" if name not in found
                           else f"stale schema of table '{name}'")


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the transaction is gone already (or the database with it)
        raise


class ScalarIndex:
    """The scalar index in one SQLite file; `warnings` collects what a user should hear."""

    def __init__(self, db_path: str, timeout: float | None = None):
        self.db_path = db_path
        self.timeout = lock_timeout() if timeout is None else float(timeout)
        self.warnings: list[str] = []
        self._db: sqlite3.Connection | None = None
        self._lock_depth = 0
        self._refreshed: dict[str, tuple[str, str, str | None]] = {}  # rebuilt after a recovery
        self._recovered = False
        self.progress = None  # called with (runs read, runs to read) while indexing runs

    # -- database ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.db_path) or ".", exist_ok=True)
        db = sqlite3.connect(self.db_path, timeout=min(self.timeout, 1e6), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                _check_schema(db)
            else:  # new, or of another version: start afresh
                with self.locked():
                    version = db.execute("PRAGMA user_version").fetchone()[0]
                    if version != SCHEMA_VERSION:
                        with _transaction(db):
                            if version in (1, 2):
                                convert(db, version)
                            else:
                                for t in _TABLES:
                                    db.execute(f"DROP TABLE IF EXISTS {t}")
                                for sql in _TABLES.values():
                                    db.execute(sql)
                            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (errors reach `_guard`, which recovers)."""
        if self._db is None:
            self._db = self._connect()
        return self._db

    def close(self) -> None:
        """Close the connection; the index opens again on next use."""
        db, self._db = self._db, None
        if db is not None:
            db.close()

    # -- locking and recovery ----------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the index's write lock (reentrant); IndexBusy after `timeout` seconds."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        from filelock import FileLock, Timeout

        lock = FileLock(self.db_path + ".lock")
        try:
            os.makedirs(os.path.dirname(self.db_path) or ".", exist_ok=True)
            lock.acquire(timeout=self.timeout)
        except Timeout:
            raise self._busy() from None
        except OSError as e:  # e.g. a read-only TRK_HOME
            raise TrkError(f"cannot lock the scalar index {self.db_path}: {e.strerror or e}") from None
        pid_file = self.db_path + ".lock.pid"
        try:
            with suppress(OSError):  # without it only a waiter's message lacks the PID
                atomic_write(pid_file, f"{os.getpid()}\n")
            self._lock_depth = 1
            yield
        finally:
            self._lock_depth = 0
            with suppress(OSError):
                os.unlink(pid_file)  # before release: a new holder writes its own
            lock.release()

    def _busy(self) -> IndexBusy:
        try:
            with open(self.db_path + ".lock.pid", encoding="utf-8") as f:
                who = f"locked by PID {int(f.read().strip())}"
        except (OSError, ValueError):
            who = "locked by another process"
        return IndexBusy(f"the scalar index is busy ({who}); try again",
                         f"Another trk command is updating {self.db_path}. "
                         f"TRK_INDEX_TIMEOUT sets how long to wait (now {self.timeout:g} s).")

    def _unusable(self, e: BaseException) -> TrkError:
        return TrkError(f"cannot use the scalar index {self.db_path}: {e}",
                        "It only caches the runs' event files: remove it (with its -wal and -shm files) "
                        "and trk rebuilds it.")

    def _guard(self, op: Callable[[], T]) -> T:
        """Run `op`; on a damaged database recover once and run it again."""
        try:
            return op()
        except sqlite3.DatabaseError as e:
            self._recover(e)
        try:
            if self._refreshed:  # what this process indexed went with the damaged file
                self._refresh(list(self._refreshed.values()))
            return op()
        except sqlite3.DatabaseError as e:
            self.close()
            raise (self._busy() if _error_kind(e) == "busy" else self._unusable(e)) from None

    def _recover(self, e: sqlite3.DatabaseError) -> None:
        kind = _error_kind(e)
        self.close()
        if kind == "busy":
            raise self._busy() from None
        if self._recovered:  # damaged again right after a rebuild: not a cache problem
            raise self._unusable(e) from None
        self._recovered = True
        with self.locked():  # no other trk process writes while we look
            if self._damaged():
                aside = self._move_aside(e)
                self.warnings.append(f"the scalar index was damaged ({e}); moved it to {aside}, "
                                     "rebuilding it from the event files")
            elif kind == "other":
                raise self._unusable(e) from None
            # else: another process moved it aside already

    def _damaged(self) -> bool:
        """Whether the database file is damaged: `PRAGMA quick_check` or our schema check fails."""
        if not os.path.exists(self.db_path):
            return False
        try:
            db = sqlite3.connect(self.db_path, timeout=min(self.timeout, 1e6), isolation_level=None)
            try:
                if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                    _check_schema(db)
                return db.execute("PRAGMA quick_check").fetchall() != [("ok",)]
            finally:
                db.close()
        except sqlite3.DatabaseError as e:
            kind = _error_kind(e)
            if kind == "busy":
                raise self._busy() from None
            return kind == "damaged"

    def _move_aside(self, e: BaseException) -> str:
        aside = base = f"{self.db_path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        n = 1
        while os.path.lexists(aside):
            aside, n = f"{base}-{n}", n + 1
        for suffix in ("", "-wal", "-shm", "-journal"):  # a stale WAL must not meet a new database
            try:
                os.rename(self.db_path + suffix, aside + suffix)
            except FileNotFoundError:
                pass
            except OSError as err:
                raise TrkError(f"the scalar index {self.db_path} is damaged ({e}) and cannot be moved aside: "
                               f"{err.strerror or err}", "Remove it; trk rebuilds it from the event files.") from None
        return aside

    # -- refreshing -------------------------------------------------------

    def refresh(self, runs: Iterable[tuple[str, str, str | None]]) -> None:
        """Bring the index up to date for `(run_id, run_dir, stamp)` runs.

        `stamp` is set only for finished runs; a run indexed with the same
        stamp is skipped without touching its directory.
        """
        runs = list(runs)
        for r in runs:
            self._refreshed[r[0]] = r
        self._guard(lambda: self._refresh(runs))

    def _refresh(self, runs: list[tuple[str, str, str | None]]) -> None:
        stamps = self._stamps([r[0] for r in runs])
        todo = [r for r in runs if r[2] is None or stamps.get(r[0]) != r[2]]
        if not todo:
            return
        with self.locked():
            stamps = self._stamps([r[0] for r in todo])
            progress = self.progress
            if progress is not None:
                progress(0, len(todo))
            for k, (run_id, run_dir, stamp) in enumerate(todo):
                if progress is not None and k % 50 == 49:
                    progress(k + 1, len(todo))
                if stamp is not None and stamps.get(run_id) == stamp:
                    continue  # another process did it while we waited
                self._refresh_run(run_id, run_dir, stamp)
            if progress is not None:
                progress(len(todo), len(todo))

    def _stamps(self, run_ids: list[str]) -> dict[str, str]:
        wanted = set(run_ids)
        if len(wanted) <= 5000:  # a page of runs: looked up, not the whole table read (100,000 rows)
            return dict(self._by_ids("SELECT run_id, stamp FROM runs WHERE run_id", wanted))
        rows = self.db.execute("SELECT run_id, stamp FROM runs").fetchall()
        return {r: s for r, s in rows if r in wanted}

    def _refresh_run(self, run_id: str, run_dir: str, stamp: str | None) -> None:
        from .events import aggregate, find_event_files, prefix_of, read_scalars  # only when there is work

        db = self.db
        known = {p: (size, mtime, offset) for p, size, mtime, offset in
                 db.execute("SELECT path, size, mtime, offset FROM files WHERE run_id = ?", (run_id,))}
        files = find_event_files(run_dir)
        updates = []  # (path, prefix, size, mtime, offset, {tag: aggregate values}, replace?)
        for rel, full in files:
            try:
                st = os.stat(full)
            except OSError:
                continue
            prev = known.get(rel)
            if prev is not None and prev[0] == st.st_size and prev[1] == st.st_mtime_ns:
                continue
            grown = prev is not None and st.st_size > prev[0] and prev[2] <= st.st_size
            start = prev[2] if grown else 0
            res = read_scalars(full, start)
            if res.warning:
                self.warnings.append(res.warning)
            elif res.truncated and stamp is not None:
                self.warnings.append(f"{full}: ends inside a record at byte {res.end_offset} (truncated file)")
            updates.append((rel, prefix_of(rel), st.st_size, st.st_mtime_ns, res.end_offset,
                            aggregate(res.scalars), not grown))
        gone = [p for p in known if p not in {rel for rel, _ in files}]
        with _transaction(db):
            for path in gone:
                db.execute("DELETE FROM files WHERE run_id = ? AND path = ?", (run_id, path))
                db.execute("DELETE FROM aggs WHERE run_id = ? AND path = ?", (run_id, path))
            for rel, prefix, size, mtime, offset, aggs, replace in updates:
                if replace:
                    db.execute("DELETE FROM aggs WHERE run_id = ? AND path = ?", (run_id, rel))
                    old = {}
                else:
                    old = {row[0]: stored_agg(row[1:]) for row in db.execute(
                        "SELECT tag, first, last, min, max, count, sum, first_step, last_step FROM aggs "
                        "WHERE run_id = ? AND path = ?", (run_id, rel))}
                for tag, values in aggs.items():
                    a = Agg(*values)
                    if tag in old:
                        a = old[tag].merge(a)
                    db.execute("INSERT OR REPLACE INTO aggs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (run_id, rel, tag, a.first, a.last, a.min, a.max, a.count, a.sum,
                                a.first_step, a.last_step))
                db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                           (run_id, rel, prefix, size, mtime, offset))
            db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?)", (run_id, stamp))

    def forget(self, run_ids: Iterable[str]) -> None:
        """Drop the rows of these runs (purged runs)."""
        run_ids = list(run_ids)
        for run_id in run_ids:
            self._refreshed.pop(run_id, None)
        self._guard(lambda: self._forget(run_ids))

    def _forget(self, run_ids: list[str]) -> None:
        db = self.db
        with self.locked(), _transaction(db):
            for run_id in run_ids:
                for t in _TABLES:
                    db.execute(f"DELETE FROM {t} WHERE run_id = ?", (run_id,))

    # -- reading ----------------------------------------------------------

    def _rows(self, columns: str, run_ids: Iterable[str]) -> Iterator[tuple]:
        """`SELECT columns` over the aggregates (`a`) and their files (`f`) of
        these runs, looked up by the primary key: callers over many runs
        (compare at 100,000) ask a page at a time."""
        return self._by_ids(f"SELECT {columns} FROM aggs a JOIN files f ON a.run_id = f.run_id AND a.path = f.path "
                            "WHERE a.run_id", run_ids)

    def _by_ids(self, sql: str, run_ids: Iterable[str]) -> Iterator[tuple]:
        """The rows of `sql` (ending in the run id column) `IN` these ids, 500 ids a query."""
        ids = sorted(set(run_ids))
        for k in range(0, len(ids), 500):
            chunk = ids[k:k + 500]
            yield from self.db.execute(f"{sql} IN ({','.join('?' * len(chunk))})", chunk)

    def tags(self, run_ids: Iterable[str]) -> set[tuple[str, str]]:
        """The distinct (prefix, tag) pairs the given runs have scalars for."""
        ids = set(run_ids)  # (read twice when the database is recovered on the way)
        return self._guard(lambda: {tuple(row) for row in self._rows("DISTINCT f.prefix, a.tag", ids)})

    def get(self, run_ids: Iterable[str]) -> dict[str, dict[tuple[str, str], Agg]]:
        """{run_id: {(prefix, tag): Agg}} for the given runs."""
        ids = set(run_ids)
        return self._guard(lambda: self._get(ids))

    def lasts(self, run_ids: Iterable[str]) -> dict[str, dict[tuple[str, str], float]]:
        """{run_id: {(prefix, tag): last value}} for the given runs: all that a
        table of last values needs, without an `Agg` per row (`trk compare`
        over 100,000 runs reads a third of a million of them)."""
        ids = set(run_ids)
        return self._guard(lambda: self._lasts(ids))

    def _lasts(self, run_ids: Iterable[str]) -> dict[str, dict[tuple[str, str], float]]:
        out: dict[str, dict[tuple[str, str], float]] = {}
        steps: dict[tuple[str, str, str], int] = {}
        nan = float("nan")
        for run_id, prefix, tag, last, step in self._rows("a.run_id, f.prefix, a.tag, a.last, a.last_step", run_ids):
            aggs = out.get(run_id)
            if aggs is None:
                aggs = out[run_id] = {}
            key = (prefix, tag)
            step = step or 0
            if key in aggs:  # the tag in two event files: the later step's value, as Agg.merge keeps
                if step < steps.get((run_id, prefix, tag), 0):
                    continue
                steps[(run_id, prefix, tag)] = step
            elif step:  # (only kept in case the tag comes again: most never do)
                steps[(run_id, prefix, tag)] = step
            aggs[key] = nan if last is None else last
        return out

    def _get(self, run_ids: Iterable[str]) -> dict[str, dict[tuple[str, str], Agg]]:
        out: dict[str, dict[tuple[str, str], Agg]] = {}
        rows = self._rows("a.run_id, f.prefix, a.tag, a.first, a.last, a.min, a.max, a.count, a.sum, a.first_step, "
                          "a.last_step", run_ids)
        for run_id, prefix, tag, *vals in rows:
            key = (prefix, tag)
            aggs = out.setdefault(run_id, {})
            a = Agg(*vals) if None not in vals else stored_agg(vals)
            aggs[key] = aggs[key].merge(a) if key in aggs else a
        return out
