"""What a pipeline's step may see of the run store (Guild's `isolate-runs`).

Guild runs each step with `GUILD_RUNS_PARENT` set to its pipeline, so the
step's `operation:` dependencies and `--needed` look only at the runs the
pipeline's directory links to. `ScopedStore` is that view of a `RunStore`:
the pipeline's own step runs (earlier attempts of a restarted pipeline
too) and any run linked from its directory (a `--needed` step may link a
run of another pipeline). A pipeline has a few runs: they are read at once
and filtered here.
"""

from __future__ import annotations

import os
from typing import Any

from ..store import Run, RunStore


class ScopedStore:
    """A run store whose run queries see only the runs of one pipeline.

    Making runs and reading one by id are the store's own (`__getattr__`).
    """

    def __init__(self, store: RunStore, parent: Run):
        self._store = store
        self.parent = parent

    @classmethod
    def under(cls, store: "RunStore | ScopedStore", parent: Run) -> "ScopedStore":
        """`store` limited to the runs of pipeline `parent` (a nested pipeline's scope replaces its parent's)."""
        return cls(store._store if isinstance(store, ScopedStore) else store, parent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _runs(self, filt: Any, deleted: bool) -> list[Run]:
        """The pipeline's runs matching `filt`, newest first (none in the trash)."""
        if deleted:
            return []
        from ..store.select import RunFilter

        runs = {r.id: r for r in self._store.query(RunFilter(parent=self.parent.id))}
        try:
            names = os.listdir(self.parent.dir)
        except OSError:
            names = []
        linked = {os.path.basename(os.path.realpath(os.path.join(self.parent.dir, n))) for n in names
                  if os.path.islink(os.path.join(self.parent.dir, n))}
        for r in self._store.by_ids(linked - set(runs)):
            runs[r.id] = r
        chosen = [r for r in runs.values() if filt is None or filt.matches(r)]
        return sorted(chosen, key=lambda r: (r.sort_key, r.id), reverse=True)

    def query(self, filt: Any = None, deleted: bool = False, limit: int | None = None, offset: int = 0) -> list[Run]:
        """The pipeline's runs matching `filt`, newest first, a page at a time."""
        runs = self._runs(filt, deleted)
        return runs[offset:None if limit is None else offset + limit]

    def count(self, filt: Any = None, deleted: bool = False) -> int:
        """How many of the pipeline's runs match `filt`."""
        return len(self._runs(filt, deleted))

    def position(self, run: Run, filt: Any = None, deleted: bool = False) -> int:
        """The 1-based index of `run` among the pipeline's runs matching `filt`."""
        ids = [r.id for r in self._runs(filt, deleted)]
        return ids.index(run.id) + 1 if run.id in ids else 0

    def by_prefix(self, prefix: str, filt: Any = None, deleted: bool = False, limit: int = 6) -> list[Run]:
        """The pipeline's runs whose id starts with `prefix`."""
        return [r for r in self._runs(filt, deleted) if r.id.startswith(prefix.lower())][:limit]

    def newest(self, ops: Any, status: str = "completed", limit: int = 1) -> list[Run]:
        """The pipeline's newest runs of any of `ops` (exact names) with `status`."""
        from ..store.select import RunFilter

        ops = list(ops)
        return self.query(RunFilter(exact_ops=ops, statuses=[status]), limit=limit) if ops else []
