"""Numbers in a DVC stage's metrics and plots files, as scalars.

A metrics file (JSON, YAML or TOML) gives one scalar per numeric leaf,
named by its dotted key (`train.loss`). A plots file (CSV, TSV, JSON or
YAML rows) gives a series per numeric column, one step per row, as DVC
plots them against the row index.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # annotations only: on `trk run dvc:STAGE`'s path
if TYPE_CHECKING:
    from typing import Any


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def read_metrics(path: str) -> dict[str, float]:
    """Numeric leaves of a metrics file by dotted key ({} when unreadable)."""
    from ..errors import TrkError
    from ..project.formats.dvc_params import flatten, read_params_file

    try:
        data = read_params_file(path)
    except TrkError:
        return {}
    out = {}
    for key, value in flatten(data).items():
        number = _number(value)
        if number is not None:
            out[key] = number
    return out


def read_plots(path: str) -> list[tuple[str, float, int]]:
    """(column, value, row) for numeric cells of a plots file's rows."""
    rows = _rows(path)
    scalars = []
    for step, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        for key, value in row.items():
            number = _number(value)
            if number is None and isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    number = None
            if number is not None:
                scalars.append((str(key), number, step))
    return scalars


def _rows(path: str) -> list:
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext in (".csv", ".tsv"):
            import csv

            with open(path, newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f, delimiter="\t" if ext == ".tsv" else ","))
        from ..project.formats.dvc_params import read_params_file

        if ext in (".json", ".yaml", ".yml"):
            if ext == ".json":
                import json

                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
            else:
                data = read_params_file(path)
            if isinstance(data, dict):  # {"train": [rows]}: DVC plots the first list it finds
                data = next((v for v in data.values() if isinstance(v, list)), [])
            return data if isinstance(data, list) else []
    except Exception:  # a plots file trk cannot read gives no scalars; the run still succeeds
        return []
    return []
