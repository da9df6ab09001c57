"""The scalar index: per run and tag, first/last/min/max/count/avg/steps.

One SQLite database caches aggregates per event file, with how far each
file was read. A finished run already indexed since it stopped is never
walked again; an unchanged file is never read again; a grown file is read
from where the last read stopped. Symlinks are followed, so a pipeline run
rolls up its steps' scalars under the step names (`train#loss`).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Iterable

from ..fsutil import remove_sqlite

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, stamp TEXT);
CREATE TABLE files (run_id TEXT, path TEXT, prefix TEXT, size INTEGER, mtime INTEGER, offset INTEGER,
                    PRIMARY KEY (run_id, path));
CREATE TABLE aggs (run_id TEXT, path TEXT, tag TEXT, first REAL, last REAL, min REAL, max REAL,
                   count INTEGER, sum REAL, first_step INTEGER, last_step INTEGER,
                   PRIMARY KEY (run_id, path, tag));
"""


@dataclass
class Agg:
    first: float
    last: float
    min: float
    max: float
    count: int
    sum: float
    first_step: int
    last_step: int

    @property
    def avg(self) -> float:
        return self.sum / self.count if self.count else float("nan")

    def merge(self, other: "Agg") -> "Agg":
        first, first_step = (self.first, self.first_step) if self.first_step <= other.first_step else (other.first, other.first_step)
        last, last_step = (other.last, other.last_step) if other.last_step >= self.last_step else (self.last, self.last_step)
        return Agg(first, last, min(self.min, other.min), max(self.max, other.max), self.count + other.count,
                   self.sum + other.sum, first_step, last_step)


def prefix_of(relpath: str) -> str:
    """Prefix of an event file: its directory, without a trailing `.trk`."""
    parts = os.path.dirname(relpath).split(os.sep) if os.path.dirname(relpath) else []
    if parts and parts[-1] in (".trk", ".guild"):
        parts = parts[:-1]
    return "/".join(parts)


def find_event_files(run_dir: str) -> list[tuple[str, str]]:
    """(relative path, absolute path) of event files under run_dir, following links."""
    from .events import is_event_file

    from collections import deque

    found = []
    seen = set()
    queue = deque([""])  # breadth first: a directory reached twice keeps its shortest path
    while queue:
        rel = queue.popleft()
        full = os.path.join(run_dir, rel) if rel else run_dir
        try:
            real = os.path.realpath(full)
            if real in seen:
                continue
            seen.add(real)
            entries = sorted(os.scandir(full), key=lambda e: e.name)
        except OSError:
            continue
        for e in entries:
            child = os.path.join(rel, e.name) if rel else e.name
            try:
                if e.is_dir():  # follows symlinks
                    queue.append(child)
                elif is_event_file(e.name):
                    found.append((child, e.path))
            except OSError:
                continue
    return found


class ScalarIndex:
    def __init__(self, db_path: str):
        self.db_path = db_path
        self.warnings: list[str] = []
        self._db: sqlite3.Connection | None = None

    # -- database ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.db_path) or ".", exist_ok=True)
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            for t in ("runs", "files", "aggs"):
                db.execute(f"DROP TABLE IF EXISTS {t}")
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        db.execute("SELECT count(*) FROM runs").fetchone()
        return db

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = self._connect()
            except sqlite3.DatabaseError:
                # Deleted, corrupt or foreign: the index is a cache, rebuild it.
                remove_sqlite(self.db_path)
                self._db = self._connect()
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- refreshing -------------------------------------------------------

    def refresh(self, runs: Iterable[tuple[str, str, str | None]]) -> None:
        """Bring the index up to date for `(run_id, run_dir, stamp)` runs.

        `stamp` is set only for finished runs; a run indexed with the same
        stamp is skipped without touching its directory.
        """
        runs = list(runs)
        stamps = self._stamps([r[0] for r in runs])
        todo = [r for r in runs if r[2] is None or stamps.get(r[0]) != r[2]]
        if not todo:
            return
        from filelock import FileLock

        with FileLock(self.db_path + ".lock", timeout=120):
            stamps = self._stamps([r[0] for r in todo])
            for run_id, run_dir, stamp in todo:
                if stamp is not None and stamps.get(run_id) == stamp:
                    continue  # another process did it while we waited
                self._refresh_run(run_id, run_dir, stamp)

    def _stamps(self, run_ids: list[str]) -> dict[str, str]:
        try:
            rows = self.db.execute("SELECT run_id, stamp FROM runs").fetchall()
        except sqlite3.DatabaseError:
            self.close()
            rows = self.db.execute("SELECT run_id, stamp FROM runs").fetchall()
        wanted = set(run_ids)
        return {r: s for r, s in rows if r in wanted}

    def _refresh_run(self, run_id: str, run_dir: str, stamp: str | None) -> None:
        from .events import read_scalars

        db = self.db
        known = {p: (size, mtime, offset) for p, size, mtime, offset in
                 db.execute("SELECT path, size, mtime, offset FROM files WHERE run_id = ?", (run_id,))}
        files = find_event_files(run_dir)
        updates = []  # (path, prefix, size, mtime, offset, new aggs dict or None, replace?)
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
            aggs: dict[str, Agg] = {}
            for tag, step, value in res.scalars:
                a = aggs.get(tag)
                if a is None:
                    aggs[tag] = Agg(value, value, value, value, 1, value, step, step)
                else:
                    if step >= a.last_step:
                        a.last, a.last_step = value, step
                    if step < a.first_step:
                        a.first, a.first_step = value, step
                    if value < a.min:
                        a.min = value
                    if value > a.max:
                        a.max = value
                    a.count += 1
                    a.sum += value
            updates.append((rel, prefix_of(rel), st.st_size, st.st_mtime_ns, res.end_offset, aggs, not grown))
        gone = [p for p in known if p not in {rel for rel, _ in files}]
        db.execute("BEGIN IMMEDIATE")
        try:
            for path in gone:
                db.execute("DELETE FROM files WHERE run_id = ? AND path = ?", (run_id, path))
                db.execute("DELETE FROM aggs WHERE run_id = ? AND path = ?", (run_id, path))
            for rel, prefix, size, mtime, offset, aggs, replace in updates:
                if replace:
                    db.execute("DELETE FROM aggs WHERE run_id = ? AND path = ?", (run_id, rel))
                    old = {}
                else:
                    old = {row[0]: Agg(*row[1:]) for row in db.execute(
                        "SELECT tag, first, last, min, max, count, sum, first_step, last_step FROM aggs "
                        "WHERE run_id = ? AND path = ?", (run_id, rel))}
                for tag, a in aggs.items():
                    if tag in old:
                        a = old[tag].merge(a)
                    db.execute("INSERT OR REPLACE INTO aggs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (run_id, rel, tag, a.first, a.last, a.min, a.max, a.count, a.sum,
                                a.first_step, a.last_step))
                db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                           (run_id, rel, prefix, size, mtime, offset))
            db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?)", (run_id, stamp))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def forget(self, run_ids: Iterable[str]) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        for run_id in run_ids:
            for t in ("runs", "files", "aggs"):
                db.execute(f"DELETE FROM {t} WHERE run_id = ?", (run_id,))
        db.execute("COMMIT")

    # -- reading ----------------------------------------------------------

    def get(self, run_ids: Iterable[str]) -> dict[str, dict[tuple[str, str], Agg]]:
        """{run_id: {(prefix, tag): Agg}} for the given runs."""
        wanted = set(run_ids)
        out: dict[str, dict[tuple[str, str], Agg]] = {}
        sql = ("SELECT a.run_id, f.prefix, a.tag, a.first, a.last, a.min, a.max, a.count, a.sum, a.first_step, "
               "a.last_step FROM aggs a JOIN files f ON a.run_id = f.run_id AND a.path = f.path")
        if len(wanted) <= 500:  # a few runs: let SQLite pick them; many: one scan
            rows = [row for chunk in [sorted(wanted)] if chunk for row in self.db.execute(
                sql + f" WHERE a.run_id IN ({','.join('?' * len(chunk))})", chunk)]
        else:
            rows = self.db.execute(sql)
        for run_id, prefix, tag, *vals in rows:
            if run_id not in wanted:
                continue
            key = (prefix, tag)
            aggs = out.setdefault(run_id, {})
            a = Agg(*vals)
            aggs[key] = aggs[key].merge(a) if key in aggs else a
        return out
