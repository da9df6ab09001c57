"""The run store: run directories under `$TRK_HOME/runs`, their attrs and status.

A run is `runs/<32-hex id>/` with metadata in `.trk/` (`attrs/`, `output`,
`opref`, `lock`). Status is derived from attrs and the run's lock, never
trusted blindly. Deleted runs move to `trash/` until purged.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import time
import uuid
from typing import Any, Iterable

from .errors import TrkError
from .fsutil import atomic_write, dump_attr, load_attr

STATUSES = ("running", "completed", "error", "terminated", "staged")


def default_home() -> str:
    return os.path.abspath(os.path.expanduser(os.environ.get("TRK_HOME") or "~/.trk"))


def now_us() -> int:
    return time.time_ns() // 1000


def read_attrs_dir(attrs_dir: str) -> dict[str, Any]:
    """Read every attr file in a run's `.trk/attrs`; raise on a corrupt one."""
    attrs: dict[str, Any] = {}
    for name in os.listdir(attrs_dir):
        if name.startswith("."):
            continue
        path = os.path.join(attrs_dir, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            attrs[name] = load_attr(text)
        except Exception as e:
            raise ValueError(f"corrupt attrs file '{name}': {str(e).splitlines()[0]}") from None
    if "id" not in attrs:
        raise ValueError("attrs file 'id' is missing")
    return attrs


class Run:
    """One run: its directory and attributes. Status is derived on demand."""

    def __init__(self, id: str, dir: str, attrs: dict[str, Any] | None = None, error: str | None = None):
        self.id = id
        self.dir = dir
        self._attrs = attrs
        self.error = error  # set when the run's metadata is corrupt or missing
        self._status: str | None = None

    def __repr__(self) -> str:
        return f"<Run {self.short_id} {self.opspec}>"

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def meta_dir(self) -> str:
        return os.path.join(self.dir, ".trk")

    @property
    def attrs_dir(self) -> str:
        return os.path.join(self.dir, ".trk", "attrs")

    @property
    def output_path(self) -> str:
        return os.path.join(self.dir, ".trk", "output")

    @property
    def lock_path(self) -> str:
        return os.path.join(self.dir, ".trk", "lock")

    @property
    def attrs(self) -> dict[str, Any]:
        if self._attrs is None:
            try:
                self._attrs = read_attrs_dir(self.attrs_dir)
            except (OSError, ValueError) as e:
                self._attrs = {}
                self.error = str(e)
        return self._attrs

    def get(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def write_attr(self, name: str, value: Any) -> None:
        atomic_write(os.path.join(self.attrs_dir, name), dump_attr(value))
        self.attrs[name] = value
        self._status = None

    def del_attr(self, name: str) -> None:
        try:
            os.unlink(os.path.join(self.attrs_dir, name))
        except FileNotFoundError:
            pass
        self.attrs.pop(name, None)
        self._status = None

    @property
    def opspec(self) -> str:
        return self.attrs.get("op") or "?"

    @property
    def flags(self) -> dict[str, Any]:
        return self.attrs.get("flags") or {}

    @property
    def label(self) -> str:
        return self.attrs.get("label") or ""

    @property
    def tags(self) -> list[str]:
        return list(self.attrs.get("tags") or [])

    @property
    def started(self) -> int | None:
        return self.attrs.get("started")

    @property
    def stopped(self) -> int | None:
        return self.attrs.get("stopped")

    @property
    def sort_key(self) -> int:
        return self.attrs.get("started") or self.attrs.get("initialized") or 0

    @property
    def parent(self) -> str | None:
        return self.attrs.get("parent")

    @property
    def status(self) -> str:
        if self._status is None:
            self._status = self._derive_status()
        return self._status

    def refresh_status(self) -> str:
        self._status = None
        return self.status

    def _derive_status(self) -> str:
        attrs = self.attrs
        if self.error:
            return "error"
        if "exit_status" in attrs:
            if attrs.get("terminated"):
                return "terminated"
            code = attrs["exit_status"]
            if code == 0:
                return "completed"
            return "terminated" if isinstance(code, int) and code < 0 else "error"
        if is_locked(self.lock_path):
            return "running"
        if attrs.get("staged") and not attrs.get("started"):
            return "staged"
        # Started but nobody holds the lock and no exit status was written:
        # the supervising process died (kill -9, power loss).
        return "terminated"

    @property
    def index_stamp(self) -> str | None:
        """For the scalar index: set once the run is finished, so an indexed
        finished run is never scanned again; None while it may change."""
        if self.status in ("completed", "error", "terminated") and self.stopped:
            return str(self.stopped)
        return None

    def clear_outcome(self) -> None:
        """Forget how a previous attempt ended, before running it again."""
        for name in ("exit_status", "stopped", "terminated", "error", "staged"):
            self.del_attr(name)

    @property
    def duration_us(self) -> int | None:
        start = self.started
        if not start:
            return None
        stop = self.stopped
        if stop is None:
            return now_us() - start if self.status == "running" else None
        return stop - start

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.attrs)
        d.update(id=self.id, dir=self.dir, status=self.status, short_id=self.short_id)
        if self.error:
            d["error"] = self.error
        return d


def is_locked(path: str) -> bool:
    """True when another open file description holds an flock on `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class RunLock:
    """The lock a supervising process holds while its run is running."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class RunStore:
    """Creates, lists, deletes, restores and purges runs under one TRK_HOME."""

    def __init__(self, home: str | None = None):
        self.home = os.path.abspath(home) if home else default_home()
        self.runs_dir = os.path.join(self.home, "runs")
        self.trash_dir = os.path.join(self.home, "trash", "runs")
        self.index_dir = os.path.join(self.home, "index")
        self.warnings: list[str] = []

    # -- creating ---------------------------------------------------------

    def new_run(self, run_dir: str | None = None) -> tuple[Run, str]:
        """Make a run in a hidden temp dir; `publish` moves it into place.

        The run appears in listings only once its lock and first attrs exist,
        so a lister never sees a half-made run.
        """
        os.makedirs(self.runs_dir, exist_ok=True)
        run_id = uuid.uuid4().hex
        if run_dir:
            build = os.path.abspath(run_dir)
            os.makedirs(build, exist_ok=True)
            if os.path.exists(os.path.join(build, ".trk", "attrs")):
                raise TrkError(f"{build} already holds a run", "Choose an empty directory for --run-dir.")
        else:
            build = os.path.join(self.runs_dir, f".{run_id}.tmp")
            os.makedirs(build)
        os.makedirs(os.path.join(build, ".trk", "attrs"))
        return Run(run_id, build, {}), build

    def publish(self, run: Run, external: bool = False) -> None:
        final = os.path.join(self.runs_dir, run.id)
        if external:
            os.symlink(run.dir, final)
        else:
            os.rename(run.dir, final)
            run.dir = final

    # -- reading ----------------------------------------------------------

    def run_path(self, run_id: str) -> str:
        return os.path.join(self.runs_dir, run_id)

    def get(self, run_id: str) -> Run:
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
            from .runindex import RunIndex

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
        done = []
        for run in runs:
            if not os.path.realpath(run.dir).startswith(self.home + os.sep) or os.path.islink(run.dir):
                target = os.path.realpath(run.dir)
                # An external run (--run-dir): remove the target only when it
                # is the run it claims to be.
                id_file = os.path.join(target, ".trk", "attrs", "id")
                try:
                    ok = load_attr(open(id_file).read()) == run.id
                except OSError:
                    ok = False
                os.unlink(run.dir) if os.path.islink(run.dir) else None
                if ok:
                    _remove_tree(target)
            else:
                _remove_tree(run.dir)
            done.append(run)
        return done


def _remove_tree(path: str) -> None:
    if os.path.islink(path):
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)
