"""One run: its directory, its attrs and how it ended (its lock: `lock`).

A run is a directory with metadata in `.trk/` (`attrs/`, `output`, `opref`,
`lock`). Status is derived from attrs and the run's lock, never trusted
blindly: a run whose supervisor died shows as `terminated`, not `running`.
"""

from __future__ import annotations

import json
import os
import time

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..fsutil import atomic_write, create_new, dump_attr
from .attrs import BadAttrs, FileCheck, metadata_error, read_attrs_dir
from .lock import is_locked


# The attrs a run from the index has without parsing its JSON (runindex.SUMMARY).
_SUMMARY = frozenset(("id", "op", "label", "tags", "parent", "step", "started", "initialized", "stopped",
                      "exit_status", "terminated", "staged"))


def default_home() -> str:
    """`$TRK_HOME`, or `~/.trk`, as an absolute path."""
    return os.path.abspath(os.path.expanduser(os.environ.get("TRK_HOME") or "~/.trk"))


def this_host() -> str:
    """This machine's name as runs record it (`host`, which `trk stop`
    compares): the kernel's node name, `gethostname()` without importing socket."""
    return os.uname().nodename


def now_us() -> int:
    """The time now in microseconds since the epoch (the unit of run times)."""
    return time.time_ns() // 1000


def derive_status(attrs: dict[str, Any], bad: str | None, locked, reread=None) -> str:
    """A run's status from its attrs; `locked()` is asked only for a run
    that has not finished (is its supervisor alive?).

    A supervisor records how its run ended and then lets go of the lock, so
    attrs read before it ended and a lock asked after say `terminated` for a
    run that completed: `reread()`, when given, reads the attrs again once
    the lock is found free, and their exit status decides.
    """
    if bad:
        return "error"
    if "exit_status" in attrs:
        code = attrs["exit_status"]
        if attrs.get("terminated"):
            return "terminated"
        if code == 0:
            return "completed"
        return "terminated" if isinstance(code, int) and code < 0 else "error"
    if locked():
        return "running"
    if attrs.get("staged") and not attrs.get("started"):
        return "staged"
    if reread is not None:
        fresh = reread()
        if "exit_status" in fresh:
            return derive_status(fresh, None, locked)
    # Started, but nobody holds the lock and no exit status was written:
    # the supervising process died (kill -9, power loss).
    return "terminated"


class Run:
    """One run: its directory and attributes. Status is derived on demand."""

    def __init__(self, id: str, dir: str, attrs: dict[str, Any] | None = None, error: str | None = None,
                 check: FileCheck | None = None, summary: dict[str, Any] | None = None,
                 attrs_json: str | None = None, on_write: Any = None, on_error: Any = None):
        self.id = id
        self.dir = dir
        self._attrs = attrs
        self.error = error  # set when the run's metadata is corrupt or missing
        self._status: str | None = None
        self._check = check  # set when `attrs` came from the run index
        # From the run index: the attrs every listing needs (`summary`, the
        # names of runindex.SUMMARY), and the rest as JSON, parsed on use.
        self._summary = summary
        self._json = attrs_json
        self._on_write = on_write  # the store's index, told of every attr trk writes
        self._on_error = on_error  # the store, told when reading finds the attrs damaged

    def __repr__(self) -> str:
        return f"<Run {self.short_id} {self.opspec}>"

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of the id."""
        return self.id[:8]

    @property
    def meta_dir(self) -> str:
        """The run's `.trk` metadata directory."""
        return os.path.join(self.dir, ".trk")

    @property
    def attrs_dir(self) -> str:
        """The directory of attr files (`.trk/attrs`)."""
        return os.path.join(self.dir, ".trk", "attrs")

    @property
    def output_path(self) -> str:
        """The saved output of the run's program (`.trk/output`)."""
        return os.path.join(self.dir, ".trk", "output")

    @property
    def lock_path(self) -> str:
        """The lock file its supervisor holds while the run runs."""
        return os.path.join(self.dir, ".trk", "lock")

    @property
    def attrs(self) -> dict[str, Any]:
        """All attrs, read on first use."""
        return self._read(None)

    def _read(self, names: tuple[str, ...] | None) -> dict[str, Any]:
        """The attrs, with the files of `names` (None: all) known to match
        what the attrs cache gave; a changed file means reading them again.

        Properties name the files they use, so listing 10,000 cached runs
        stats a few files per run, not all of them.
        """
        check = self._check
        if check is not None:
            if names is None:
                self._check = None
            if check.changed(names):
                self._check, self._attrs, self._status = None, None, None
                self._summary = self._json = None
        if self._attrs is None and self._summary is not None:
            if names is not None and _SUMMARY.issuperset(names):
                return self._summary
            try:
                self._attrs = json.loads(self._json)
            except (TypeError, ValueError):
                self._attrs = None
            self._summary = self._json = None
        if self._attrs is None:
            try:
                self._attrs = read_attrs_dir(self.attrs_dir)
            except BadAttrs as e:
                self._attrs, self.error = e.attrs, str(e)
                if self._on_error is not None:
                    self._on_error(self, e.path)
            except OSError as e:
                self._attrs = {}
                self.error = metadata_error(e)
                if self._on_error is not None:
                    self._on_error(self, self.attrs_dir)
        return self._attrs

    def get(self, name: str, default: Any = None) -> Any:
        """One attr of the run, or `default`."""
        return self._read((name,)).get(name, default)

    def write_attr(self, name: str, value: Any) -> None:
        """Write one attr atomically (temp file + rename)."""
        atomic_write(os.path.join(self.attrs_dir, name), dump_attr(value))
        self._cached()[name] = value
        self._status = None
        if self._on_write is not None:
            self._on_write(self)

    def _cached(self) -> dict[str, Any]:
        """The attrs read so far, to change as trk writes them: all of them
        when any were read (or given), else an empty dict to throw away, not
        a read of every file (the next use reads them, the new one too)."""
        if self._attrs is None and self._summary is None and self._json is None:
            return {}
        return self.attrs

    def init_attrs(self, attrs: dict[str, Any]) -> None:
        """Write the first attrs of a run still being built in a directory no
        listing reads yet (`RunStore.new_run`, before `publish`): each file is
        written straight, with no temp file and rename, as nothing can see it
        half-written; an attr already there is an error (FileExistsError)."""
        for name, value in attrs.items():
            create_new(os.path.join(self.attrs_dir, name), dump_attr(value))
        self._cached().update(attrs)
        self._status = None
        if self._on_write is not None:
            self._on_write(self)

    def del_attr(self, name: str) -> None:
        """Remove one attr, if present."""
        try:
            os.unlink(os.path.join(self.attrs_dir, name))
        except FileNotFoundError:
            pass
        self._cached().pop(name, None)
        self._status = None
        if self._on_write is not None:
            self._on_write(self)

    @property
    def opspec(self) -> str:
        """The operation, `model:op` (`?` when unknown)."""
        return self._read(("op",)).get("op") or "?"

    @property
    def flags(self) -> dict[str, Any]:
        """Flag values the run ran with."""
        return self._read(("flags",)).get("flags") or {}

    @property
    def label(self) -> str:
        """The run's label ('' when none)."""
        return self._read(("label",)).get("label") or ""

    @property
    def tags(self) -> list[str]:
        """The run's tags."""
        return list(self._read(("tags",)).get("tags") or [])

    @property
    def started(self) -> int | None:
        """When the program started (microseconds), or None."""
        return self._read(("started",)).get("started")

    @property
    def stopped(self) -> int | None:
        """When the run ended (microseconds), or None."""
        return self._read(("stopped",)).get("stopped")

    @property
    def sort_key(self) -> int:
        # `initialized` only matters (and is only checked) when not started.
        """What listings sort by: start time, else creation time."""
        return self.started or self._read(("initialized",)).get("initialized") or 0

    @property
    def parent(self) -> str | None:
        """The id of the pipeline (or batch) run this run is a step of, or None."""
        return self._read(("parent",)).get("parent")

    @property
    def status(self) -> str:
        """running, completed, error, terminated or staged, derived from attrs and the lock."""
        if self._status is None:
            self._status = self._derive_status()
        return self._status

    def forget(self) -> None:
        """Forget the attrs read so far: the next use reads the files again."""
        self._check = self._attrs = self._status = self._summary = self._json = None
        self.error = None

    def refresh_status(self) -> str:
        """Derive the status again (the run may have ended meanwhile)."""
        self._status = None
        return self.status

    def _derive_status(self) -> str:
        names = ("exit_status", "terminated", "staged", "started")
        attrs = self._read(names)

        def reread() -> dict[str, Any]:
            self.forget()
            return self._read(names)

        return derive_status(attrs, self.error, lambda: is_locked(self.lock_path), reread)

    @property
    def index_stamp(self) -> str | None:
        """For the scalar index: set once the run is finished, so an indexed
        finished run is never scanned again; None while it may change."""
        return index_stamp(self.status, self.stopped)

    # -- how a run ends: one place writes it ------------------------------

    def start(self) -> None:
        """Record that the run's program (or its first step) starts now."""
        self.write_attr("started", now_us())

    def record_supervisor(self) -> None:
        """Record this process as the one supervising the run: its `host`
        and `pid`, where they changed (a run staged on one machine and
        started on another, a restart). `trk stop` signals only runs whose
        host is its own."""
        host = this_host()
        if self.get("host") != host:
            self.write_attr("host", host)
        if self.get("pid") != os.getpid():
            self.write_attr("pid", os.getpid())

    def finish(self, exit_code: int, terminated: bool = False) -> None:
        """Record how the run ended: stopped, terminated, then exit_status.

        `exit_status` is written last: its presence marks the run finished,
        so a reader never sees a finished run without its stop time.
        """
        self.write_attr("stopped", now_us())
        if terminated:
            self.write_attr("terminated", True)
        self.write_attr("exit_status", exit_code)

    def fail(self, error: BaseException | str, exit_code: int = 1) -> None:
        """Record an error that trk hit starting or supervising the run.

        A KeyboardInterrupt records the run as terminated instead. Does
        nothing when the run already has an outcome.
        """
        if "exit_status" in self.attrs:
            return
        if isinstance(error, KeyboardInterrupt):
            self.terminate()
            return
        self.write_attr("error", (str(error) or type(error).__name__) if isinstance(error, BaseException) else error)
        self.finish(exit_code)

    def terminate(self, exit_code: int = -2) -> None:
        """Record that the run was stopped by a signal or by the user."""
        if "exit_status" not in self.attrs:
            self.finish(exit_code, terminated=True)

    def set_label(self, label: str) -> None:
        """Replace the run's label."""
        self.write_attr("label", label)

    def set_tags(self, add: "list[str] | tuple[str, ...]" = (), remove: "list[str] | tuple[str, ...]" = (),
                 clear: bool = False) -> list[str]:
        """Remove, then add tags (keeping their order); returns the new tags."""
        tags = [] if clear else self.tags
        tags = [t for t in tags if t not in remove]
        tags += [t for t in add if t not in tags]
        self.write_attr("tags", tags)
        return tags

    def clear_outcome(self) -> None:
        """Forget how a previous attempt ended, before running it again."""
        for name in ("exit_status", "stopped", "terminated", "error", "staged"):
            self.del_attr(name)

    @property
    def duration_us(self) -> int | None:
        """Run time in microseconds (so far, while running), or None."""
        start = self.started
        if not start:
            return None
        stop = self.stopped
        if stop is None:
            return now_us() - start if self.status == "running" else None
        return stop - start

    def to_dict(self) -> dict[str, Any]:
        """The run's attrs plus id, dir, status and short id."""
        d = dict(self.attrs)
        d.update(id=self.id, dir=self.dir, status=self.status, short_id=self.short_id)
        if self.error:
            d["error"] = self.error
        return d


def index_stamp(status: str, stopped: Any) -> str | None:
    """The scalar index's stamp of a run: its stop time once it finished, so
    an indexed finished run is never scanned again; None while it may change."""
    if status in ("completed", "error", "terminated") and stopped:
        return str(stopped)
    return None
