"""A run's scalar series (every step, value and wall time of a tag), for plots.

The scalar index keeps aggregates only; a plot needs the points, so they are
read from the run's event files, found as the index finds them (a pipeline's
steps count under their step name: `train#loss`). Long series are thinned to
at most `max_points` points, the first and last always kept; values read
back as logged, as the scalar index shows them (`aggs.shortest`).
"""

from __future__ import annotations

from typing import Iterable

from .aggs import shortest
from .events import find_event_files, prefix_of, read_scalars


def scalar_key(prefix: str, tag: str) -> str:
    """A scalar's name as compare columns spell it: `tag`, or `prefix#tag` for a step's."""
    return f"{prefix}#{tag}" if prefix else tag


def run_series(run_dir: str, keys: Iterable[str] | None = None,
               max_points: int = 2000) -> tuple[dict[str, list[tuple[int, float, float]]], list[str]]:
    """({key: [(step, wall_time, value), ...] by step}, warnings) of a run's
    scalars; only the `keys` given (None: every scalar)."""
    wanted = set(keys) if keys is not None else None
    series: dict[str, list[tuple[int, float, float]]] = {}
    warnings: list[str] = []
    for rel, path in find_event_files(run_dir):
        prefix = prefix_of(rel)
        res = read_scalars(path, wall_time=True)
        if res.warning:
            warnings.append(res.warning)
        for tag, step, value, wall in res.scalars:
            key = scalar_key(prefix, tag)
            if wanted is None or key in wanted:
                series.setdefault(key, []).append((step, wall, value))
    for key, points in series.items():
        points.sort(key=lambda p: (p[0], p[1]))
        # Values read back as logged (float32 0.1 is 0.1), as the scalar index shows them.
        series[key] = [(step, wall, shortest(value)) for step, wall, value in thin(points, max_points)]
    return series, warnings


def thin(points: list, max_points: int) -> list:
    """Every k-th point so that at most `max_points` remain, the last point kept."""
    if max_points <= 0 or len(points) <= max_points:
        return points
    stride = -(-len(points) // max_points)
    out = points[::stride]
    if out[-1] is not points[-1]:
        out[-1] = points[-1]
    return out
