"""Lineage across `requires: operation`: the upstream runs a run was made from.

A run records each dependency it used in its `deps` attr (name, upstream run
id, files). `Lineage` follows those records, recursively and a level at a
time, so `trk compare`, `trk runs info` and `trk diff` can show which
upstream setting produced a result. An upstream run that was deleted is
still found in the trash (and marked deleted); a purged one is `missing`.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

from ..errors import TrkError
from ..store import RunStore
from ..store.record import RunRecord


class Upstream(NamedTuple):
    """One dependency of a run on another run."""

    name: str  # the dependency's name as the run recorded it (`operation:prep`)
    alias: str  # its `name:` in requires, when it has one
    run_id: str
    record: RunRecord | None  # None: purged (or never existed)
    deleted: bool  # the upstream run is in the trash

    @property
    def state(self) -> str:
        """The upstream run's status, `deleted` when in the trash, `missing` when gone."""
        if self.record is None:
            return "missing"
        return "deleted" if self.deleted else self.record.status


def dep_names(name: str, alias: str = "") -> set[str]:
    """The names a dependency recorded as `name` answers to: its `name:`
    (alias), its own name and, for `operation:[MODEL:]OP`, the operation with
    and without its model."""
    names = {name, alias} - {""}
    kind, sep, spec = name.partition(":")
    if sep and kind == "operation" and spec:
        names.add(spec)
        names.add(spec.rpartition(":")[2])
    return names


class Lineage:
    """Upstream runs of runs, read from the run index and cached."""

    MAX_DEPTH = 32  # deeper chains than this are a cycle of hand-edited attrs, not lineage

    def __init__(self, store: RunStore):
        self.store = store
        self._records: dict[str, tuple[RunRecord | None, bool]] = {}

    def load(self, run_ids: Iterable[str]) -> None:
        """Read the records of these runs (one query per 500), from runs/ or the trash."""
        todo = [i for i in dict.fromkeys(run_ids) if i not in self._records]
        if not todo:
            return
        found = self.store.records(todo)
        gone = [i for i in todo if i not in found]
        trashed = self.store.records(gone, deleted=True) if gone else {}
        for i in todo:
            if i in found:
                self._records[i] = (found[i], False)
            else:
                self._records[i] = (trashed.get(i), i in trashed)

    def upstream(self, rec: RunRecord) -> list[Upstream]:
        """The run's operation dependencies, in the order it recorded them."""
        deps = [(str(d.get("name") or ""), str(d.get("alias") or ""), d["run"]) for d in rec.deps
                if isinstance(d, dict) and isinstance(d.get("run"), str) and d.get("run")]
        self.load(run_id for *_, run_id in deps)
        return [Upstream(name, alias, run_id, *self._records[run_id]) for name, alias, run_id in deps]

    def find(self, rec: RunRecord, name: str) -> Upstream | None:
        """The upstream run called `name`, nearest first (`evaluate` -> `train`
        -> `prep` finds `prep` from `evaluate`). Two different runs of that
        name at the same distance are ambiguous: a TrkError naming both."""
        level, seen = [rec], {rec.id}
        for _ in range(self.MAX_DEPTH):
            self.load(d["run"] for r in level for d in r.deps if isinstance(d, dict) and isinstance(d.get("run"), str))
            hits: dict[str, tuple[RunRecord, Upstream]] = {}
            following = []
            for r in level:
                for up in self.upstream(r):
                    if name in dep_names(up.name, up.alias):
                        hits.setdefault(up.run_id, (r, up))
                    if up.record is not None and up.run_id not in seen:
                        seen.add(up.run_id)
                        following.append(up.record)
            if len(hits) > 1:
                (r1, a), (r2, b) = list(hits.values())[:2]
                raise TrkError(f"'{name}' is ambiguous for run {rec.short_id}: dependency '{a.name}' of run "
                               f"{r1.short_id} uses run {a.run_id[:8]}, dependency '{b.name}' of run "
                               f"{r2.short_id} uses run {b.run_id[:8]}",
                               "Name each dependency ('name:' in requires) so a column can tell them apart.")
            if hits:
                return next(iter(hits.values()))[1]
            if not following:
                return None
            level = following
        return None

    def tree(self, rec: RunRecord, depth: int = 0) -> list[tuple[int, Upstream]]:
        """Every upstream run, depth first: (depth, upstream) pairs."""
        out: list[tuple[int, Upstream]] = []

        def walk(r: RunRecord, d: int, path: frozenset) -> None:
            for up in self.upstream(r):
                out.append((d, up))
                if up.record is not None and up.run_id not in path and d < self.MAX_DEPTH:
                    walk(up.record, d + 1, path | {up.run_id})

        walk(rec, depth, frozenset({rec.id}))
        return out
