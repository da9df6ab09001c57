"""Aggregates of one scalar tag (first, last, min, max, count, sum, steps),
as the scalar index stores them and merges them across event files."""

from __future__ import annotations

import math
import struct

_F32 = struct.Struct("<f")


def _nanmin(a: float, b: float) -> float:
    return b if b < a or a != a else a  # NaN only when both are


def _nanmax(a: float, b: float) -> float:
    return b if b > a or a != a else a


class Agg:
    """Aggregates of one tag: min and max skip NaN values; sum and avg do not.

    A plain slotted class, not a dataclass: the index makes one per stored
    row, and `dataclasses` (with `inspect`) would cost every `trk run` that
    parses output scalars 8 ms to import."""

    __slots__ = ("first", "last", "min", "max", "count", "sum", "first_step", "last_step")

    def __init__(self, first: float, last: float, min: float, max: float, count: int,  # noqa: A002
                 sum: float, first_step: int, last_step: int):  # noqa: A002
        self.first, self.last, self.min, self.max = first, last, min, max
        self.count, self.sum, self.first_step, self.last_step = count, sum, first_step, last_step

    def __repr__(self) -> str:
        return "Agg(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Agg:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # mutable, compared by value

    @property
    def avg(self) -> float:
        """The mean of the values seen."""
        return self.sum / self.count if self.count else float("nan")

    def merge(self, other: "Agg") -> "Agg":
        """The aggregates of both value series together."""
        first, first_step = (self.first, self.first_step) if self.first_step <= other.first_step else (other.first, other.first_step)
        last, last_step = (other.last, other.last_step) if other.last_step >= self.last_step else (self.last, self.last_step)
        return Agg(first, last, _nanmin(self.min, other.min), _nanmax(self.max, other.max), self.count + other.count,
                   self.sum + other.sum, first_step, last_step)


def stored_agg(row) -> Agg:
    """An Agg from stored values, where NULL stands for NaN (as SQLite stores it)."""
    if None in row:
        row = [math.nan if v is None else v for v in row]
    return Agg(*row)


def shortest(x: float) -> float:
    """A float32 value as the shortest decimal that is the same float32
    (0.10000000149011612 -> 0.1): event files hold scalars as float32, and a
    logged 0.1 should read back as 0.1. Values that are not float32 (a
    float64 tensor's 0.1 has no float32 twin) are returned unchanged."""
    if x != x or x in (math.inf, -math.inf) or x == 0:
        return x
    try:
        packed = _F32.pack(x)
    except OverflowError:
        return x
    if _F32.unpack(packed)[0] != x:
        return x  # not a float32 value
    for digits in range(1, 10):  # 9 significant digits always round-trip a float32
        y = float(f"{x:.{digits}g}")
        if _F32.pack(y) == packed:
            return y
    return x
