"""Formatting values for people: times, durations, flag values and scalars.

One place for how trk shows a value, used by the CLI, the API's report
functions and the views, so a number looks the same everywhere.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable


def format_time(us: int | None) -> str:
    """A run time (microseconds since the epoch) as local `YYYY-MM-DD HH:MM:SS`."""
    if not us:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us / 1e6))


def format_duration(us: int | None) -> str:
    """A duration in microseconds as `H:MM:SS`."""
    if us is None:
        return ""
    s = int(us // 1_000_000)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_scalar(v: Any) -> str:
    """A scalar value: six significant digits, floats always with a point."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        s = f"{v:.6g}"
        if "e" not in s and "." not in s:
            s += ".0"
        return s
    return str(v)


def format_cell(value: Any, kind: str) -> str:
    """A table cell of kind `attr`, `flag` or `scalar` (None: empty)."""
    from .project.flagvalues import format_value

    if value is None:
        return ""
    if kind == "scalar":
        return format_scalar(value)
    if kind == "flag":
        return format_value(value) if not isinstance(value, str) else value
    return str(value)


def cell_formatter(kind: str) -> Callable[[Any], str]:
    """`format_cell` for one kind of cell, for formatting many (a table of
    100,000 runs): no per-cell dispatch, and repeated values formatted once."""
    if kind == "scalar":
        return format_scalar
    if kind == "flag":
        from .project.flagvalues import format_value

        cache: dict[Any, str] = {}

        def flag(v: Any) -> str:
            if v is None:
                return ""
            if type(v) is str:
                return v
            try:
                hit = cache.get((type(v), v))
            except TypeError:  # a list or mapping value
                return format_value(v)
            if hit is None:
                hit = cache[(type(v), v)] = format_value(v)
            return hit

        return flag
    return lambda v: "" if v is None else v if type(v) is str else str(v)
