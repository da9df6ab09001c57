"""A run as the Python API gives it: typed fields for notebooks and scripts.

The store's `Run` keeps what trk writes (times in microseconds, attrs as
read); `RunView` shows the same run with Python types: times as
timezone-aware `datetime`s, the duration in seconds, scalars read from the
scalar index on first use and keyed as compare columns name them (`loss`,
`train#loss`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..store import Run, RunStore


def to_datetime(us: Any) -> datetime | None:
    """Microseconds since the epoch as a local, timezone-aware datetime."""
    if not isinstance(us, (int, float)) or isinstance(us, bool) or not us:
        return None
    return datetime.fromtimestamp(us / 1e6).astimezone()


def to_micros(when: Any) -> int | None:
    """A datetime (naive: local time), epoch seconds or an ISO-8601 string, as microseconds."""
    if when is None:
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if isinstance(when, datetime):
        return int(when.timestamp() * 1_000_000)
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        return int(when * 1_000_000)
    raise TypeError(f"expected a datetime, epoch seconds or an ISO-8601 string, not {when!r}")


class RunView:
    """One run with typed fields; `run` is the store's Run behind it."""

    def __init__(self, run: Run, store: RunStore):
        self.run = run
        self._store = store
        self._scalars: dict | None = None

    def __repr__(self) -> str:
        return f"<RunView {self.short_id} {self.operation} {self.status}>"

    @property
    def id(self) -> str:
        """The run's id."""
        return self.run.id

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of the id."""
        return self.run.short_id

    @property
    def operation(self) -> str:
        """`model:op` (or `op`)."""
        return self.run.opspec

    @property
    def status(self) -> str:
        """running, completed, error, terminated or staged."""
        return self.run.status

    @property
    def label(self) -> str:
        """The run's label ('' when none)."""
        return self.run.label

    @property
    def tags(self) -> list[str]:
        """The run's tags."""
        return self.run.tags

    @property
    def flags(self) -> dict[str, Any]:
        """Flag values as they were typed (int, float, bool, str, list...)."""
        return dict(self.run.flags)

    @property
    def started(self) -> datetime | None:
        """When the program started (timezone-aware), or None."""
        return to_datetime(self.run.started)

    @property
    def stopped(self) -> datetime | None:
        """When the run ended (timezone-aware), or None."""
        return to_datetime(self.run.stopped)

    @property
    def duration(self) -> float | None:
        """Run time in seconds (so far, while running), or None."""
        us = self.run.duration_us
        return None if us is None else us / 1e6

    @property
    def exit_status(self) -> int | None:
        """The program's exit status, or None while it runs."""
        return self.run.get("exit_status")

    @property
    def parent(self) -> str | None:
        """The id of the pipeline or batch this run is a step or trial of."""
        return self.run.parent

    @property
    def dir(self) -> str:
        """The run directory."""
        return self.run.dir

    def get(self, name: str, default: Any = None) -> Any:
        """Any attr of the run as trk recorded it (`image`, `deps`, `cmd`...)."""
        return self.run.get(name, default)

    @property
    def scalars(self) -> dict[str, Any]:
        """{`tag` or `step#tag`: Agg (first, last, min, max, avg, count, last_step)}, read on first use."""
        if self._scalars is None:
            from .info import run_scalars

            self._scalars = {(f"{p}#{t}" if p else t): agg
                             for (p, t), agg in sorted(run_scalars(self.run, self._store).items())}
        return self._scalars

    def to_dict(self) -> dict[str, Any]:
        """The typed fields as a dict (times as ISO-8601 strings, last scalar values)."""
        started, stopped = self.started, self.stopped
        return {"id": self.id, "operation": self.operation, "status": self.status, "label": self.label,
                "tags": self.tags, "flags": self.flags,
                "started": started.isoformat() if started else None,
                "stopped": stopped.isoformat() if stopped else None,
                "duration": self.duration, "exit_status": self.exit_status, "parent": self.parent,
                "dir": self.dir, "scalars": {k: a.last for k, a in self.scalars.items()}}


TIME_ATTRS = ("started", "stopped", "initialized")


def json_record(run: Run, aggs: dict) -> dict[str, Any]:
    """A run as `trk runs --json` prints it: its attrs with times as ISO-8601
    (timezone-aware, microseconds), plus `scalars` (last value per `tag` or
    `step#tag`)."""
    d = run.to_dict()
    for name in TIME_ATTRS:
        when = to_datetime(d.get(name))
        if when is not None:
            d[name] = when.isoformat(timespec="microseconds")
    d["scalars"] = {(f"{p}#{t}" if p else t): a.last for (p, t), a in sorted(aggs.items())}
    return d
