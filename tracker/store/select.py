"""Selecting runs: filters (operation, label, tag, status) and run specs.

A spec is an index into the filtered, newest-first listing (`1`; numbers of
up to 5 digits), a range (`2:5`, `:3`, `4:`), or a run id prefix (longer
digit strings are prefixes too). Several specs select their union.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from ..errors import RunSpecError
from .run import Run

_RANGE = re.compile(r"^(\d*):(\d*)$")


@dataclass
class RunFilter:
    """Which runs a command takes: by operation, label, tag, status, parent."""
    operations: Sequence[str] = ()
    labels: Sequence[str] = ()
    tags: Sequence[str] = ()
    statuses: Sequence[str] = ()
    parent: str | None = None
    top_level: bool = False

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
        return True

    def apply(self, runs: Sequence[Run]) -> list[Run]:
        """The runs that pass, in the order given."""
        return [r for r in runs if self.matches(r)]


def _op_matches(opspec: str, pattern: str) -> bool:
    if ":" in pattern:
        return opspec == pattern or opspec.endswith(pattern) or pattern in opspec
    return pattern in opspec.rpartition(":")[2] or pattern == opspec


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
        raise RunSpecError(
            f"no run at index {i}" + (f" (there {'is' if len(runs) == 1 else 'are'} {len(runs)})" if runs else " (there are no runs)"),
            "Try 'trk runs' to list runs and their indexes.",
        )
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
