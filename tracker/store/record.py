"""What a table of many runs needs of one run (`RunRecord`), and the version
string that tells whether a finished run changed."""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from .run import Run, index_stamp, now_us


class RunRecord(namedtuple("RunRecord", "id op status label tags parent step started stopped exit_status flags "
                                      "deps dir")):
    """What a table of many runs needs of one run (`trk compare` at 100,000
    runs), read from the run index without a Run object or its whole attrs.

    Fields: id, op, status, label (str), tags (list), parent, step (str or
    None), started, stopped (µs or None), exit_status, flags (dict), deps
    (list of dicts), dir. (A `collections` namedtuple: `typing.NamedTuple`
    would cost every `trk run` the import of `typing`.)
    """

    __slots__ = ()

    @classmethod
    def of(cls, run: Run) -> "RunRecord":
        """The record of a run trk already holds."""
        parent, step, deps = run.parent, run.get("step"), run.get("deps")
        return cls(run.id, run.opspec, run.status, run.label, run.tags,
                   parent if isinstance(parent, str) and parent else None,
                   step if isinstance(step, str) and step else None, _int(run.started), _int(run.stopped),
                   run.get("exit_status"), run.flags if isinstance(run.flags, dict) else {},
                   [d for d in deps if isinstance(d, dict)] if isinstance(deps, list) else [], run.dir)

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of the id."""
        return self.id[:8]

    @property
    def duration_us(self) -> int | None:
        """Run time in microseconds (so far, while running), or None."""
        if not self.started:
            return None
        if self.stopped is None:
            return now_us() - self.started if self.status == "running" else None
        return self.stopped - self.started

    @property
    def index_stamp(self) -> str | None:
        """The scalar index's stamp of this run, as `Run.index_stamp`."""
        return index_stamp(self.status, self.stopped)

    @property
    def version(self) -> str | None:
        """`record_version` of this run: None unless it finished."""
        if self.status not in ("completed", "error", "terminated"):
            return None
        from .runindex import flags_key

        return record_version(self.op, self.started, self.stopped, self.status, self.label, self.exit_status,
                              flags_key(self.flags))


def record_version(op: str, started: Any, stopped: Any, status: str, label: Any, exit_status: Any,
                   flags_key: str) -> str:
    """A string that differs when any of a finished run's operation, times,
    status, label, exit status or flags (by `runindex.flags_key`) differ; the
    same string `RunQueries.versions` has SQLite make from an index row."""
    return "\x1f".join("" if v is None else str(v) for v in (
        op, started, stopped, status, label if isinstance(label, str) else "", exit_status, flags_key))


def _int(v: Any) -> int | None:
    return v if type(v) is int else None
