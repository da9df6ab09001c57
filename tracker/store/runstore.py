"""The run store: the layout under `$TRK_HOME` and moving runs within it.

Only `RunStore` knows where things live: `runs/<32-hex id>/`, `trash/runs/`
(deleted, restorable until purged), `index/` (the attrs and scalar indexes,
cached project files) and `cache/urls/` (downloaded URL dependencies).
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any, Iterable

from ..errors import TrkError
from ..fsutil import load_attr
from .run import Run, default_home, read_attrs_dir


class RunStore:
    """Creates, lists, deletes, restores and purges runs under one TRK_HOME."""

    def __init__(self, home: str | None = None):
        self.home = os.path.abspath(home) if home else default_home()
        self.runs_dir = os.path.join(self.home, "runs")
        self.trash_dir = os.path.join(self.home, "trash", "runs")
        self.index_dir = os.path.join(self.home, "index")
        self.url_cache_dir = os.path.join(self.home, "cache", "urls")
        self.warnings: list[str] = []

    # -- layout -----------------------------------------------------------

    @property
    def scalar_index_path(self) -> str:
        return os.path.join(self.index_dir, "scalars.sqlite")

    @property
    def project_cache_dir(self) -> str:
        """Where parsed project files are cached (see `project.load`)."""
        return self.index_dir

    def scalar_index(self):
        """The scalar index of this store (a `metrics.index.ScalarIndex`)."""
        from ..metrics.index import ScalarIndex

        return ScalarIndex(self.scalar_index_path)

    # -- creating ---------------------------------------------------------

    def new_run(self, run_dir: str | None = None, force: bool = False) -> tuple[Run, str]:
        """Make a run in a hidden temp dir; `publish` moves it into place.

        The run appears in listings only once its lock and first attrs exist,
        so a lister never sees a half-made run. A `run_dir` outside the store
        must be empty (the user's files are not trk's to adopt) unless `force`.
        """
        os.makedirs(self.runs_dir, exist_ok=True)
        run_id = uuid.uuid4().hex
        if run_dir:
            build = os.path.abspath(run_dir)
            if os.path.exists(os.path.join(build, ".trk", "attrs")):
                raise TrkError(f"{build} already holds a run", "Choose an empty directory for --run-dir.")
            if os.path.isdir(build) and os.listdir(build) and not force:
                raise TrkError(f"run directory {build} is not empty",
                               "Choose an empty or new directory, or use --force-run-dir to run in it anyway.",
                               exit_code=2)
            os.makedirs(build, exist_ok=True)
        else:
            build = os.path.join(self.runs_dir, f".{run_id}.tmp")
            os.makedirs(build)
        os.makedirs(os.path.join(build, ".trk", "attrs"))
        return Run(run_id, build, {}), build

    def publish(self, run: Run, external: bool = False) -> None:
        """Move a run made by `new_run` into `runs/` (external: link it there)."""
        final = os.path.join(self.runs_dir, run.id)
        if external:
            os.symlink(run.dir, final)
        else:
            os.rename(run.dir, final)
            run.dir = final

    # -- reading ----------------------------------------------------------

    def run_path(self, run_id: str) -> str:
        """Where the run with this id lives (whether or not it exists)."""
        return os.path.join(self.runs_dir, run_id)

    def get(self, run_id: str) -> Run:
        """The run with this id (its attrs are read on first use)."""
        return Run(run_id, self.run_path(run_id))

    def list(self, deleted: bool = False) -> list[Run]:
        """All runs, newest first. Corrupt runs are listed with an error."""
        base = self.trash_dir if deleted else self.runs_dir
        try:
            names = [n for n in os.listdir(base) if not n.startswith(".")]
        except FileNotFoundError:
            return []
        entries = [(n, os.path.join(base, n, ".trk", "attrs")) for n in names]
        if deleted:
            loaded: dict[str, Any] = {}
            for n, d in entries:
                try:
                    loaded[n] = read_attrs_dir(d)
                except Exception as e:
                    loaded[n] = e
        else:
            from .attrindex import RunIndex

            loaded = RunIndex(os.path.join(self.index_dir, "runs.sqlite")).load(entries, read_attrs_dir)
        runs = []
        for name in names:
            value = loaded[name]
            path = os.path.join(base, name)
            if isinstance(value, Exception):
                reason = "missing metadata" if isinstance(value, FileNotFoundError) else str(value)
                self.warnings.append(f"run {name}: {reason} in {path}; listed as error")
                runs.append(Run(name, path, {"id": name}, error=reason))
            else:
                runs.append(Run(name, path, value))
        runs.sort(key=lambda r: (r.sort_key, r.id), reverse=True)
        return runs

    # -- deleting ---------------------------------------------------------

    def delete(self, runs: Iterable[Run], force: bool = False) -> list[Run]:
        """Move runs to the trash; refuse running runs unless `force`."""
        runs = list(runs)
        if not force:
            running = [r for r in runs if r.refresh_status() == "running"]
            if running:
                ids = ", ".join(r.short_id for r in running)
                raise TrkError(
                    f"cannot delete running run{'s' if len(running) > 1 else ''} {ids}",
                    "Stop them first, or use --force.",
                )
        os.makedirs(self.trash_dir, exist_ok=True)
        done = []
        for run in runs:
            dest = os.path.join(self.trash_dir, run.id)
            if os.path.lexists(dest):
                _remove_tree(dest)
            os.rename(run.dir, dest)
            run.dir = dest
            done.append(run)
        return done

    def restore(self, runs: Iterable[Run]) -> list[Run]:
        """Move deleted runs back from the trash."""
        os.makedirs(self.runs_dir, exist_ok=True)
        done = []
        for run in runs:
            dest = os.path.join(self.runs_dir, run.id)
            if os.path.lexists(dest):
                raise TrkError(f"cannot restore {run.short_id}: a run with that id exists")
            os.rename(run.dir, dest)
            run.dir = dest
            done.append(run)
        return done

    def purge(self, runs: Iterable[Run]) -> list[Run]:
        """Remove deleted runs for good, and their scalar index rows."""
        done = []
        for run in runs:
            if not os.path.realpath(run.dir).startswith(self.home + os.sep) or os.path.islink(run.dir):
                target = os.path.realpath(run.dir)
                # An external run (--run-dir): the directory is the user's;
                # remove only what trk wrote there, and only when it is the
                # run it claims to be.
                id_file = os.path.join(target, ".trk", "attrs", "id")
                try:
                    with open(id_file, encoding="utf-8") as f:
                        ok = load_attr(f.read()) == run.id
                except (OSError, ValueError):
                    ok = False
                if os.path.islink(run.dir):
                    os.unlink(run.dir)
                if ok:
                    _remove_tree(os.path.join(target, ".trk"))
            else:
                _remove_tree(run.dir)
            done.append(run)
        self._forget_scalars([r.id for r in done])
        return done

    def _forget_scalars(self, run_ids: list[str]) -> None:
        # Deleted runs keep their rows (restorable); purged ones go.
        if run_ids and os.path.exists(self.scalar_index_path):
            index = self.scalar_index()
            try:
                index.forget(run_ids)
            finally:
                index.close()


def _remove_tree(path: str) -> None:
    if os.path.islink(path):
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)
