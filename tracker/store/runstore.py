"""The run store: the layout under `$TRK_HOME` and moving runs within it.

Only `RunStore` knows where things live: `runs/<32-hex id>/`, `trash/runs/`
(deleted, restorable until purged), `locks/` (held while a run is moved),
`index/` (the attrs and scalar indexes, cached project files, when
leftovers were last looked for) and `cache/urls/` (downloaded URL
dependencies).

Moving a run between `runs/` and the trash takes the run's move lock, and
the rename never replaces anything: a run is always in exactly one place,
and one process's delete can never remove what another moved.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any, Iterable

from ..errors import TrkError
from ..fsutil import is_inside, load_attr
from .moves import MoveLock, clean_leftovers, remove_tree, rename_noreplace
from .lock import is_locked
from .run import Run, default_home
from .queries import RunQueries
from .runindex import RunIndex


class MoveError(TrkError):
    """Some runs could not be moved; `done` holds those that were."""

    def __init__(self, message: str, hint: str | None, done: list[Run]):
        super().__init__(message, hint)
        self.done = done


def store_runs(runs: Iterable[Any]) -> list[Run]:
    """The store's Runs of `runs`, which may be the Python API's RunViews (their `.run`)."""
    return [r if isinstance(r, Run) else r.run for r in runs]


def new_run_id() -> str:
    """A new run id: a random (version 4) UUID as 32 hex digits, as Guild's.

    Made here rather than by `uuid.uuid4()`: the `uuid` module imports
    `platform`, 2 ms of every `trk run`.
    """
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return b.hex()


class RunStore(RunQueries):
    """Creates, lists, deletes, restores and purges runs under one TRK_HOME.

    Asking about runs (`query`, `count`, `children`...) is `RunQueries`'s part.
    """

    def __init__(self, home: str | None = None):
        self.home = os.path.abspath(home) if home else default_home()
        self.runs_dir = os.path.join(self.home, "runs")
        self.trash_dir = os.path.join(self.home, "trash", "runs")
        self.locks_dir = os.path.join(self.home, "locks")
        self.index_dir = os.path.join(self.home, "index")
        self.url_cache_dir = os.path.join(self.home, "cache", "urls")
        self.staging_dir = os.path.join(self.home, "staging")  # runs being made
        self.warnings: list[str] = []
        self._index: RunIndex | None = None
        self._open: set[str] = set()

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    # -- layout -----------------------------------------------------------

    @property
    def scalar_index_path(self) -> str:
        """The scalar index database (`index/scalars.sqlite`)."""
        return os.path.join(self.index_dir, "scalars.sqlite")

    @property
    def datasets_dir(self) -> str:
        """Where versioned datasets live (`datasets/NAME/VERSION/`: Gradient's inputs and outputs)."""
        return os.path.join(self.home, "datasets")

    @property
    def project_cache_dir(self) -> str:
        """Where parsed project files are cached (see `project.load`)."""
        return self.index_dir

    def scalar_index(self):
        """The scalar index of this store (a `metrics.index.ScalarIndex`)."""
        from ..metrics.index import ScalarIndex

        return ScalarIndex(self.scalar_index_path)

    def move_lock(self, run_id: str) -> MoveLock:
        """The lock a process holds while it moves or purges this run."""
        return MoveLock(os.path.join(self.locks_dir, f"{_checked_id(run_id)}.lock"))

    # -- creating ---------------------------------------------------------

    def new_run(self, run_dir: str | None = None, force: bool = False) -> tuple[Run, str]:
        """Make a run in a hidden temp dir; `publish` moves it into place.

        The run appears in listings only once its lock and first attrs exist,
        so a lister never sees a half-made run. A `run_dir` outside the store
        must be empty (the user's files are not trk's to adopt) unless `force`.
        """
        os.makedirs(self.runs_dir, exist_ok=True)
        os.makedirs(self.staging_dir, exist_ok=True)
        stamp = os.path.join(self.index_dir, "leftovers-checked")
        if clean_leftovers(self.staging_dir, ".tmp", stamp=stamp):
            clean_leftovers(self.runs_dir, ".tmp", min_age=600)  # where earlier versions made runs
        run_id = new_run_id()
        if run_dir:
            build = os.path.abspath(run_dir)
            _check_run_dir(self.home, build, force)
            try:
                os.makedirs(os.path.join(build, ".trk"), exist_ok=True)
                # mkdir, not makedirs: of two runs started into one directory, one fails.
                os.mkdir(os.path.join(build, ".trk", "attrs"))
            except FileExistsError:
                raise TrkError(f"{build} already holds a run", "Choose an empty directory for --run-dir.",
                               exit_code=2) from None
            except OSError as e:
                raise TrkError(f"cannot create run directory {build}: {e.strerror}", exit_code=2) from None
        else:
            # Made beside `runs/`, not in it: `runs/` changes only when the run
            # is published, which the run index then learns of (see publish).
            build = os.path.join(self.staging_dir, f".{run_id}.tmp")
            os.makedirs(os.path.join(build, ".trk", "attrs"))
        return Run(run_id, build, {}), build

    def publish(self, run: Run, external: bool = False) -> None:
        """Move a run made by `new_run` into `runs/` (external: link it there)."""
        final = os.path.join(self.runs_dir, run.id)
        # With a run index in place, it learns of this run now, so the next
        # command need not list `runs/` again to find it (see RunIndex.published).
        before = _dir_sig(self.runs_dir) if os.path.exists(os.path.join(self.index_dir, "runs.sqlite")) else None
        if external:
            os.symlink(run.dir, final)
        else:
            # A plain rename: `final` is a fresh random id, and a rename onto
            # a non-empty directory fails, so nothing can be replaced.
            os.rename(run.dir, final)
            run.dir = final
            # Its end is written through to the index (see `touched`): a DAG
            # step may look for it as a finished upstream run in this process.
            run._on_write = self.touched
        self._changed()
        if before is not None:
            import sqlite3

            try:
                self.index.published(run.id, before, _dir_sig(self.runs_dir))
            except (sqlite3.Error, OSError):
                pass  # the index finds the run by itself, listing `runs/`

    # -- reading ----------------------------------------------------------

    def run_path(self, run_id: str) -> str:
        """Where the run with this id lives (whether or not it exists)."""
        return os.path.join(self.runs_dir, run_id)

    def get(self, run_id: str) -> Run:
        """The run with this id (its attrs are read on first use)."""
        return Run(run_id, self.run_path(run_id))

    # -- deleting ---------------------------------------------------------

    def delete(self, runs: Iterable[Run], force: bool = False) -> list[Run]:
        """Move runs to the trash; refuse running runs unless `force`.

        Runs another process is moving, or has moved, are skipped with a
        warning; a run whose id is already in the trash is refused.
        """
        runs = store_runs(runs)
        if not force:
            running = [r for r in runs if r.refresh_status() == "running"]
            if running:
                ids = ", ".join(r.short_id for r in running)
                raise TrkError(
                    f"cannot delete running run{'s' if len(running) > 1 else ''} {ids}",
                    "Stop them first, or use --force.",
                )
        done = self._move(runs, self.runs_dir, self.trash_dir, "delete", check_running=not force)
        for upstream, downstream in self.dependents([r.id for r in done]).items():
            n = len(downstream)
            self._warn(f"run {upstream[:8]} is required by {n} run{'s' if n > 1 else ''} "
                       f"({', '.join(d[:8] for d in downstream[:3])}{', ...' if n > 3 else ''}); "
                       f"they keep their copies/links, and show it as deleted until it is restored or purged")
        return done

    def restore(self, runs: Iterable[Run]) -> list[Run]:
        """Move deleted runs back from the trash (skipping as `delete` does)."""
        return self._move(store_runs(runs), self.trash_dir, self.runs_dir, "restore", check_running=False)

    def _move(self, runs: list[Run], src_base: str, dst_base: str, verb: str, check_running: bool) -> list[Run]:
        for run in runs:
            _checked_id(run.id)
        # A run in both places is the user's to sort out; refuse before moving anything.
        clashes = [r for r in runs if self._in_both(r.id, src_base, dst_base)]
        if clashes:
            raise TrkError(_clash(verb, clashes, dst_base), _clash_hint(verb))
        os.makedirs(dst_base, exist_ok=True)
        done: list[Run] = []
        failed: list[str] = []
        clashed = False
        for run in runs:
            src, dst = os.path.join(src_base, run.id), os.path.join(dst_base, run.id)
            lock = self.move_lock(run.id)
            if not lock.acquire():
                self._warn(f"run {run.short_id} is being moved by another process; skipped")
                continue
            try:
                if check_running and is_locked(os.path.join(src, ".trk", "lock")):
                    self._warn(f"run {run.short_id} started running meanwhile; not deleted (use --force)")
                    continue
                rename_noreplace(src, dst)
            except FileNotFoundError:
                self._warn(f"run {run.short_id} was already moved by another process; skipped")
                continue
            except FileExistsError:
                failed.append(_clash(verb, [run], dst_base))
                clashed = True
                continue
            except OSError as e:
                failed.append(f"cannot {verb} run {run.short_id}: {e.strerror or e} ({src})")
                continue
            finally:
                lock.release()
            run.dir = dst
            done.append(run)
        self._changed()
        if failed:
            raise MoveError(_failures(failed), _clash_hint(verb) if clashed else None, done)
        return done

    def _in_both(self, run_id: str, base_a: str, base_b: str) -> bool:
        a, b = os.path.join(base_a, run_id), os.path.join(base_b, run_id)
        if not (os.path.lexists(a) and os.path.lexists(b)):
            return False
        # Two checks are not atomic: another process may have moved the run
        # between them. Under the move lock, nobody moves it.
        lock = self.move_lock(run_id)
        if not lock.acquire():
            return False  # being moved: not a clash, skipped later
        try:
            return os.path.lexists(a) and os.path.lexists(b)
        finally:
            lock.release()

    def purge(self, runs: Iterable[Run]) -> list[Run]:
        """Remove deleted runs for good, and their scalar index rows.

        A run made with --run-dir lives outside the store: only its `.trk`
        metadata is removed; the user's files stay.
        """
        runs = store_runs(runs)
        # A live purge removes its own `.purge` entry; any other is left by a killed one.
        clean_leftovers(self.trash_dir, ".purge", min_age=0)
        done: list[Run] = []
        failed: list[str] = []
        for run in runs:
            src = os.path.join(self.trash_dir, _checked_id(run.id))
            lock = self.move_lock(run.id)
            if not lock.acquire():
                self._warn(f"run {run.short_id} is being moved by another process; skipped")
                continue
            try:
                target = os.path.realpath(src) if os.path.islink(src) else None
                # Out of the trash first, atomically: a restore racing this
                # purge finds the run either in the trash or gone.
                doomed = os.path.join(self.trash_dir, f".{run.id}.{os.urandom(4).hex()}.purge")
                os.rename(src, doomed)
            except FileNotFoundError:
                self._warn(f"run {run.short_id} was already restored or purged by another process; skipped")
                continue
            except OSError as e:
                failed.append(f"cannot purge run {run.short_id}: {e.strerror or e} ({src})")
                continue
            finally:
                lock.release()
            if target is None:
                remove_tree(doomed)
            else:
                _remove_external_metadata(self.home, target, run.id)
                try:
                    os.unlink(doomed)
                except FileNotFoundError:
                    pass  # another purge cleaned it up
            done.append(run)
        self._forget_scalars([r.id for r in done])
        self._changed()
        if failed:
            raise MoveError(_failures(failed), None, done)
        return done

    def _forget_scalars(self, run_ids: list[str]) -> None:
        # Deleted runs keep their rows (restorable); purged ones go.
        if run_ids and os.path.exists(self.scalar_index_path):
            import sqlite3

            from ..errors import TrkError

            index = self.scalar_index()
            try:
                index.forget(run_ids)
            except (sqlite3.Error, TrkError) as e:
                # Rows of purged runs are never shown; they only take space.
                self._warn(f"could not drop the scalars of purged runs from the index ({e})")
            finally:
                index.close()
                for w in index.warnings:  # e.g. a damaged index moved aside
                    self._warn(w)


def _checked_id(run_id: str) -> str:
    # An id becomes a path component under runs/, trash/ and locks/.
    if not run_id or run_id.startswith(".") or "/" in run_id or "\0" in run_id:
        raise TrkError(f"invalid run id '{run_id}'")
    return run_id


def _clash(verb: str, runs: list[Run], dst_base: str) -> str:
    ids = ", ".join(r.short_id for r in runs)
    place = "the trash already holds" if verb == "delete" else "the store already holds"
    many = len(runs) > 1
    return (f"cannot {verb} run{'s' if many else ''} {ids}: {place} "
            f"{'runs with those ids' if many else 'a run with that id'} (in {dst_base})")


def _failures(failed: list[str]) -> str:
    return failed[0] + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")


def _clash_hint(verb: str) -> str:
    if verb == "delete":
        return "Purge or restore the deleted copy first ('trk runs purge ID' or 'trk runs restore ID')."
    return "Delete or move away the run in the store first ('trk runs rm ID'), then restore."


def _check_run_dir(home: str, build: str, force: bool) -> None:
    """Refuse a --run-dir that trk must not write into."""
    if is_inside(home, build) or is_inside(build, home):
        raise TrkError(f"run directory {build} overlaps the run store {home}",
                       "Choose a directory outside $TRK_HOME for --run-dir.", exit_code=2)
    if os.path.lexists(build) and not os.path.isdir(build):
        raise TrkError(f"run directory {build} is not a directory", "Choose a directory for --run-dir.",
                       exit_code=2)
    if os.path.lexists(os.path.join(build, ".trk", "attrs")):
        raise TrkError(f"{build} already holds a run", "Choose an empty directory for --run-dir.", exit_code=2)
    if os.path.isdir(build) and os.listdir(build) and not force:
        raise TrkError(f"run directory {build} is not empty",
                       "Choose an empty or new directory, or use --force-run-dir to run in it anyway.",
                       exit_code=2)


def _remove_external_metadata(home: str, target: str, run_id: str) -> None:
    """Remove what trk wrote into a --run-dir: its `.trk`, and only when it
    is the run it claims to be. The directory and its files are the user's."""
    if is_inside(home, target) or is_inside(target, home):
        return  # not an external run dir, or its `.trk` may hold the store itself
    try:
        with open(os.path.join(target, ".trk", "attrs", "id"), encoding="utf-8") as f:
            ok = load_attr(f.read()) == run_id
    except (OSError, ValueError):
        ok = False
    if ok:
        remove_tree(os.path.join(target, ".trk"))


def _dir_sig(path: str) -> tuple[int, int] | None:
    """What the run index remembers of a directory of runs: inode and mtime."""
    from .attrs import INO_MASK

    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino & INO_MASK, st.st_mtime_ns)
