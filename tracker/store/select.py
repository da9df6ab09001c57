"""Selecting runs: filters (operation, label, tag, status) and run specs.

A spec is an index into the filtered, newest-first listing (`1`; numbers of
up to 5 digits), a range (`2:5`, `:3`, `4:`), or a run id prefix (longer
digit strings are prefixes too). Several specs select their union.
"""

from __future__ import annotations

import re
TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run --start` 3 ms
if TYPE_CHECKING:
    from typing import Sequence

from ..errors import RunSpecError
from ..records import record
from .run import Run
from .runindex import OPEN_ROWS

_RANGE = re.compile(r"^(\d*):(\d*)$")


@record
class RunFilter:
    """Which runs a command takes: by operation, label, tag, status, parent."""
    operations: Sequence[str] = ()
    labels: Sequence[str] = ()
    tags: Sequence[str] = ()
    statuses: Sequence[str] = ()
    parent: str | None = None
    top_level: bool = False
    exact_ops: Sequence[str] | None = None  # operations by full name (None: any)
    flags_key: str | None = None  # runs with exactly these flag values (runindex.flags_key)
    started_after: int | None = None  # microseconds since the epoch (the listing's sort key)
    started_before: int | None = None

    def passes_all(self) -> bool:
        """True when no filter is given: every run passes."""
        return not (self.operations or self.labels or self.tags or self.statuses or self.top_level) and (
            self.parent, self.exact_ops, self.flags_key, self.started_after, self.started_before) == (None,) * 5

    def matches(self, run: Run) -> bool:
        """True when `run` passes every filter given."""
        if self.operations and not any(_op_matches(run.opspec, o) for o in self.operations):
            return False
        if self.labels and not any(l in run.label for l in self.labels):
            return False
        if self.tags and not all(t in run.tags for t in self.tags):
            return False
        if self.statuses and run.status not in self.statuses:
            return False
        if self.parent is not None and run.parent != self.parent:
            return False
        if self.top_level and run.parent:
            return False
        if self.exact_ops is not None and run.opspec not in self.exact_ops:
            return False
        if self.flags_key is not None:
            from .runindex import flags_key

            if flags_key(run.flags) != self.flags_key:
                return False
        if self.started_after is not None and run.sort_key <= self.started_after:
            return False
        if self.started_before is not None and run.sort_key >= self.started_before:
            return False
        return True

    def apply(self, runs: Sequence[Run]) -> list[Run]:
        """The runs that pass, in the order given."""
        return [r for r in runs if self.matches(r)]

    def sql(self) -> tuple[str, tuple]:
        """The filter as an SQL condition over the run index (see `matches`)."""
        conds: list[str] = []
        params: list = []
        if self.operations:
            ors = []
            for o in self.operations:
                if ":" in o:
                    ors.append("instr(coalesce(op, ''), ?) > 0")  # equal or ending in it: contains it
                    params.append(o)
                else:
                    ors.append("(instr(opname, ?) > 0 OR op = ?)")
                    params += [o, o]
            conds.append(" OR ".join(ors))
        if self.labels:
            conds.append(" OR ".join("instr(coalesce(label, ''), ?) > 0" for _ in self.labels))
            params += list(self.labels)
        for t in self.tags:
            conds.append("instr(tag_text, ?) > 0")
            params.append(f"\n{t}\n")
        if self.statuses:
            conds.append(f"status IN ({', '.join('?' * len(self.statuses))})")
            params += list(self.statuses)
            if set(self.statuses) <= {"running", "staged"}:  # runs not finished: found by the index runs_open
                conds.append(OPEN_ROWS)  # (verbatim: SQLite uses a partial index only for its own condition)
        if self.parent is not None:
            conds.append("parent = ?")
            params.append(self.parent)
        if self.top_level:
            conds.append("parent IS NULL")
        if self.exact_ops is not None:
            conds.append(f"op IN ({', '.join('?' * len(self.exact_ops))})" if self.exact_ops else "0")
            params += list(self.exact_ops)
        if self.flags_key is not None:
            conds.append("flags_key = ?")
            params.append(self.flags_key)
        if self.started_after is not None:
            conds.append("sort_key > ?")
            params.append(int(self.started_after))
        if self.started_before is not None:
            conds.append("sort_key < ?")
            params.append(int(self.started_before))
        return " AND ".join(f"({c})" for c in conds), tuple(params)


def _op_matches(opspec: str, pattern: str) -> bool:
    if ":" in pattern:
        return opspec == pattern or opspec.endswith(pattern) or pattern in opspec
    return pattern in opspec.rpartition(":")[2] or pattern == opspec


def select_from(store, filt: RunFilter | None, specs: Sequence[str], deleted: bool = False) -> list[Run]:
    """Resolve specs against the store's runs matching `filt`, newest first,
    with index queries: only the runs the specs name are read."""
    if not specs:
        return store.query(filt, deleted=deleted)
    return [run for _, run in select_positions(store, filt, specs, deleted)]


def select_positions(store, filt: RunFilter | None, specs: Sequence[str],
                     deleted: bool = False) -> list[tuple[int, Run]]:
    """(index, run) for each run the specs name, in listing order."""
    chosen: dict[int, Run] = {}
    for spec in (str(s).strip() for s in specs):
        if spec.isdigit() and len(spec) < 6:
            i = int(spec)
            got = store.query(filt, deleted=deleted, limit=1, offset=i - 1) if i >= 1 else []
            if not got:
                n = store.count(filt, deleted=deleted)
                raise RunSpecError(_no_index(i, n), "Try 'trk runs' to list runs and their indexes.")
            chosen[i] = got[0]
            continue
        m = _RANGE.match(spec)
        if m:
            start = int(m.group(1)) if m.group(1) else 1
            end = int(m.group(2)) if m.group(2) else None
            if start < 1 or (end is not None and end < start):
                raise RunSpecError(f"invalid run range '{spec}'", "A range is START:END with 1 <= START <= END.")
            got = store.query(filt, deleted=deleted, limit=None if end is None else end - start + 1,
                              offset=start - 1)
            chosen.update((start + k, r) for k, r in enumerate(got))
            continue
        hits = store.by_prefix(spec, filt, deleted=deleted)
        if not hits:
            raise RunSpecError(f"could not find run matching '{spec}'", "Try 'trk runs' for a list of runs.")
        if len(hits) > 1:
            ids = ", ".join(r.short_id for r in hits[:5])
            raise RunSpecError(f"'{spec}' matches {'more than 5' if len(hits) > 5 else len(hits)} runs "
                               f"({ids}{', ...' if len(hits) > 5 else ''})", "Use a longer id prefix.")
        chosen[store.position(hits[0], filt, deleted=deleted)] = hits[0]
    return sorted(chosen.items(), key=lambda item: item[0])


def _no_index(i: int, n: int) -> str:
    if not n:
        return f"no run at index {i} (there are no runs)"
    return f"no run at index {i} (there {'is' if n == 1 else 'are'} {n})"


def select(runs: Sequence[Run], specs: Sequence[str]) -> list[Run]:
    """Resolve specs against `runs` (already filtered, newest first)."""
    if not specs:
        return list(runs)
    chosen: set[int] = set()
    for spec in specs:
        chosen.update(_resolve_one(runs, str(spec).strip()))
    return [runs[i] for i in sorted(chosen)]


def _resolve_one(runs: Sequence[Run], spec: str) -> list[int]:
    if spec.isdigit() and len(spec) < 6:
        # Short numbers are indexes, always: an index past the end is an
        # error, never a silent match on an id that starts with those digits.
        i = int(spec)
        if 1 <= i <= len(runs):
            return [i - 1]
        raise RunSpecError(_no_index(i, len(runs)), "Try 'trk runs' to list runs and their indexes.")
    m = _RANGE.match(spec)
    if m:
        start = int(m.group(1)) if m.group(1) else 1
        end = int(m.group(2)) if m.group(2) else len(runs)
        if start < 1 or end < start:
            raise RunSpecError(f"invalid run range '{spec}'", "A range is START:END with 1 <= START <= END.")
        return list(range(start - 1, min(end, len(runs))))
    hits = _by_prefix(runs, spec)
    if not hits:
        raise RunSpecError(f"could not find run matching '{spec}'", "Try 'trk runs' for a list of runs.")
    if len(hits) > 1:
        ids = ", ".join(runs[i].short_id for i in hits[:5])
        raise RunSpecError(
            f"'{spec}' matches {len(hits)} runs ({ids}{', ...' if len(hits) > 5 else ''})",
            "Use a longer id prefix.",
        )
    return hits


def _by_prefix(runs: Sequence[Run], prefix: str) -> list[int]:
    prefix = prefix.lower()
    return [i for i, r in enumerate(runs) if r.id.startswith(prefix)]
