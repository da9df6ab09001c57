"""The scalar index's tables, and converting an index of an older version
in place (no event file is read again)."""

from __future__ import annotations

import sqlite3

from .aggs import shortest

# Version 2: files and aggs are WITHOUT ROWID tables (rows stored in their
# key's order: reading a page of runs' scalars is one b-tree walk per run,
# 3x faster at 100,000 runs). Version 3: first/last/min/max are float32
# values at their shortest (0.1, not 0.10000000149011612). Older indexes are
# converted in place, without reading event files again.
SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, stamp TEXT);
CREATE TABLE files (run_id TEXT, path TEXT, prefix TEXT, size INTEGER, mtime INTEGER, offset INTEGER,
                    PRIMARY KEY (run_id, path)) WITHOUT ROWID;
CREATE TABLE aggs (run_id TEXT, path TEXT, tag TEXT, first REAL, last REAL, min REAL, max REAL,
                   count INTEGER, sum REAL, first_step INTEGER, last_step INTEGER,
                   PRIMARY KEY (run_id, path, tag)) WITHOUT ROWID;
"""
TABLES = {stmt.split()[2]: " ".join(stmt.split()) for stmt in SCHEMA.split(";") if stmt.strip()}


def convert(db: sqlite3.Connection, version: int) -> None:
    """Bring an index of `version` (1 or 2) to SCHEMA_VERSION, inside the caller's transaction."""
    if version == 1:
        _convert_v1(db)
    _convert_v2(db)


def _convert_v2(db: sqlite3.Connection) -> None:
    """Store the float32 aggregates of a version 2 index at their shortest."""
    rows = db.execute("SELECT run_id, path, tag, first, last, min, max FROM aggs").fetchall()
    changed = []
    for run_id, path, tag, *values in rows:
        short = [shortest(v) if isinstance(v, float) else v for v in values]
        if short != values:
            changed.append((*short, run_id, path, tag))
    db.executemany("UPDATE aggs SET first = ?, last = ?, min = ?, max = ? WHERE run_id = ? AND path = ? AND tag = ?",
                   changed)


def _convert_v1(db: sqlite3.Connection) -> None:
    """Carry a version 1 index over (same columns, WITHOUT ROWID tables): no
    event file is read again."""
    for table in ("files", "aggs"):
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
        db.execute(TABLES[table])
        db.execute(f"INSERT INTO {table} SELECT * FROM {table}_v1")
        db.execute(f"DROP TABLE {table}_v1")
