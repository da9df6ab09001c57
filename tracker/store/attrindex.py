"""An on-disk cache of run attributes, so listing 10,000 runs reads no YAML.

Each run's attrs are cached in SQLite with the mtime of its `.trk/attrs`
directory (every attr write is a rename into it, which changes that mtime).
Only runs whose directory changed are read again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Callable

from ..fsutil import remove_sqlite

SCHEMA_VERSION = 1
# An attrs dir modified this recently is not cached: file-system timestamps
# are coarse, and a write within the same tick would go unnoticed.
_SETTLE_NS = 2_000_000_000


class RunIndex:
    def __init__(self, path: str):
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                db.execute("DROP TABLE IF EXISTS runs")
                db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, sig INTEGER, attrs TEXT)")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _open(self) -> sqlite3.Connection | None:
        try:
            return self._connect()
        except sqlite3.DatabaseError:
            # Corrupt or foreign file: it is only a cache, rebuild it.
            remove_sqlite(self.path)
            try:
                return self._connect()
            except sqlite3.Error:
                return None

    def load(
        self,
        entries: list[tuple[str, str]],
        read_attrs: Callable[[str], dict],
    ) -> dict[str, dict | Exception]:
        """Return attrs for each `(run_id, attrs_dir)`, reading only changed runs.

        A run whose attrs cannot be read maps to the exception; it is never
        cached, so it is examined again next time.
        """
        db = self._open()
        cached: dict[str, tuple[int, str]] = {}
        if db is not None:
            try:
                cached = {row[0]: (row[1], row[2]) for row in db.execute("SELECT id, sig, attrs FROM runs")}
            except sqlite3.Error:
                cached = {}
        result: dict[str, dict | Exception] = {}
        updates: list[tuple[str, int, str]] = []
        now = time.time_ns()
        for run_id, attrs_dir in entries:
            try:
                sig = os.stat(attrs_dir).st_mtime_ns
            except OSError as e:
                result[run_id] = e
                continue
            hit = cached.get(run_id)
            if hit is not None and hit[0] == sig:
                try:
                    result[run_id] = json.loads(hit[1])
                    continue
                except ValueError:
                    pass
            try:
                attrs = read_attrs(attrs_dir)
            except Exception as e:  # reported by the caller, run by run
                result[run_id] = e
                continue
            result[run_id] = attrs
            if now - sig > _SETTLE_NS:
                updates.append((run_id, sig, json.dumps(attrs)))
        if db is not None:
            gone = [(i,) for i in cached if i not in result]
            if updates or gone:
                try:
                    db.execute("BEGIN IMMEDIATE")
                    db.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", updates)
                    db.executemany("DELETE FROM runs WHERE id = ?", gone)
                    db.execute("COMMIT")
                except sqlite3.Error:
                    pass  # another process holds it; the cache is an optimisation
            db.close()
        return result
