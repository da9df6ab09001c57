"""Compare columns: Guild's column specs, and sorting and trimming a table.

A column spec is a comma-separated list of `.attr` (operation, status,
label, started, time, ...), `=flag` (or `=NAME.flag` for the flag of a
pipeline step or an upstream run NAME), and
`[last|first|min|max|avg|count|step] [NAME#]tag [as NAME]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import TrkError

ATTRS = ("run", "id", "operation", "started", "stopped", "time", "status", "label", "tags", "exit_status",
         "step", "parent")
_SCALAR = re.compile(r"^(?:(last|first|min|max|avg|count|step)\s+)?(\S+?)(?:\s+as\s+(.+))?$")


@dataclass
class Column:
    """One column of a comparison: an attr, a flag or a scalar, with its header."""
    kind: str  # "attr", "flag" or "scalar"
    key: str  # attr name, flag name, or scalar key (`tag` or `prefix#tag`)
    header: str
    qualifier: str = "last"


def parse_columns(spec: str) -> list[Column]:
    """Parse `-cc` column specs; raise TrkError naming a bad item."""
    cols = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name = None
        m_as = re.match(r"^(.*?)\s+as\s+(.+)$", item)
        if m_as:
            item, name = m_as.group(1).strip(), m_as.group(2).strip()
        if item.startswith("."):
            attr = item[1:]
            if attr not in ATTRS:
                raise TrkError(f"unknown column '{item}'", "Attribute columns: " + ", ".join("." + a for a in ATTRS))
            cols.append(Column("attr", "run" if attr == "id" else attr, name or attr))
        elif item.startswith("="):
            flag = item[1:]
            if not flag:
                raise TrkError(f"invalid column '{item}': expected =FLAG")
            cols.append(Column("flag", flag, name or flag))
        else:
            m = _SCALAR.match(item)
            if not m:
                raise TrkError(f"invalid column '{item}'")
            qual, key, _ = m.groups()
            tag = key[1:] if key.startswith("#") else key
            header = name or (tag if not qual or qual == "last" else f"{qual} {tag}")
            cols.append(Column("scalar", tag, header, qual or "last"))
    return unique_headers(cols)


def unique_headers(cols: list[Column]) -> list[Column]:
    """One column per header, the first given (Guild's compare shows flag
    `lr` and scalar `lr` as one column `lr`, the flag's). `run` is the
    first column of every table already."""
    seen = {"run"}
    out = []
    for c in cols:
        if c.header not in seen:
            seen.add(c.header)
            out.append(c)
    return out


def lookup(aggs: dict, key: str):
    """Find `tag` or `prefix#tag`: a bare tag prefers the run's own scalars."""
    prefix, sep, tag = key.rpartition("#")
    if sep:
        hit = aggs.get((prefix, tag))
        if hit is not None:
            return hit
        for (p, t), agg in sorted(aggs.items()):
            if t == tag and (p.endswith("/" + prefix)):
                return agg
        return None
    hit = aggs.get(("", tag))
    if hit is not None:
        return hit
    for (p, t), agg in sorted(aggs.items()):
        if t == tag:
            return agg
    return None


def sort_column(headers: list[str], col: str) -> str:
    """The header `col` names: as written, or as a column spec (`#acc`,
    `=lr`, `.status`, Guild's way); TrkError listing the columns if none."""
    if col in headers:
        return col
    bare = col[1:] if col[:1] in "#=." else col
    if bare in headers:
        return bare
    raise TrkError(f"cannot sort by '{col}': no such column", "Columns: " + ", ".join(headers))


def sort_rows(headers: list[str], rows: list[list[Any]], min_col: str | None, max_col: str | None) -> list[list[Any]]:
    """Rows sorted by a column (numbers first, NaN last); others keep their order."""
    col = min_col or max_col
    if not col:
        return rows
    col = sort_column(headers, col)
    i = headers.index(col)
    present, others = [], []
    for r in rows:
        v = r[i]
        number = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # NaN would scramble the sort
        (present if number else others).append(r)
    present.sort(key=lambda r: r[i], reverse=bool(max_col))
    return present + others


def skip_unchanged(headers: list[str], kinds: list[str], rows: list[list[Any]]):
    """Drop the columns (but `run`) whose value is the same in every row."""
    keep = [0] + [i for i in range(1, len(headers)) if len({repr(r[i]) for r in rows}) > 1]
    return [headers[i] for i in keep], [kinds[i] for i in keep], [[r[i] for i in keep] for r in rows]
