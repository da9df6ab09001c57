"""The Python API: what the CLI does, as plain function calls.

    import tracker
    tracker.run("m1:hello", {"msg": "hi"}, project_dir="sample-projects/steps")
    for r in tracker.runs(): print(r.short_id, r.opspec, r.status)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .store import Run, RunStore
from .store.runstore import store_runs

if TYPE_CHECKING:
    from .views.runview import RunView


def runs(*specs: str, store: RunStore | None = None, operation: str | Sequence[str] | None = None,
         label: str | Sequence[str] | None = None, tag: str | Sequence[str] | None = None,
         status: str | Sequence[str] | None = None, started_after: Any = None, started_before: Any = None,
         parent: str | None = None, top_level: bool = False, deleted: bool = False, limit: int | None = None,
         **filters: Any) -> list[RunView]:
    """Runs newest first, as `trk runs` filters them, with typed fields.

    `specs` select as on the command line (`"1"`, `"2:5"`, an id prefix).
    Filters take the CLI's names: `operation=`, `label=`, `tag=` (all must
    match), `status=`, `started_after=`/`started_before=` (a datetime,
    epoch seconds or an ISO-8601 string), `parent=`, `top_level=`; each of
    the first four takes one value or a list. RunFilter's own names
    (`operations=`, `statuses=`...) work too.
    """
    from .store.select import RunFilter, select_from
    from .views.runview import RunView, to_micros

    if len(specs) == 1 and not isinstance(specs[0], str):  # runs(["1", "2"]), the older form
        specs = tuple(specs[0])
    store = store or RunStore()
    as_list = lambda v: [] if v is None else [v] if isinstance(v, str) else list(v)  # noqa: E731
    filt = RunFilter(operations=as_list(operation) + list(filters.pop("operations", [])),
                     labels=as_list(label) + list(filters.pop("labels", [])),
                     tags=as_list(tag) + list(filters.pop("tags", [])),
                     statuses=as_list(status) + list(filters.pop("statuses", [])),
                     parent=parent, top_level=top_level,
                     started_after=to_micros(started_after), started_before=to_micros(started_before), **filters)
    chosen = select_from(store, filt, list(specs), deleted=deleted)
    return [RunView(r, store) for r in (chosen if limit is None else chosen[:limit])]


def history(run: Any, tag: str | None = None, store: RunStore | None = None) -> list[tuple[str, int, float, float]]:
    """Every logged value of a run's scalars (or of one `tag`, `step#tag` for
    a pipeline step's): `[(tag, step, wall_time, value), ...]` by tag and step."""
    from .metrics.aggs import shortest
    from .metrics.series import run_series

    run = _one(run, store)
    series, _ = run_series(run.dir, None if tag is None else [tag], max_points=0)
    return [(key, step, wall, shortest(value)) for key in sorted(series) for step, wall, value in series[key]]


def compare_frame(runs: Any = None, columns: str | Sequence[str] | None = None, store: RunStore | None = None):
    """The compare table as a pandas DataFrame (needs pandas: `pip install trk[pandas]`)."""
    pandas = _pandas()
    headers, rows = compare(runs, columns, store)
    return pandas.DataFrame(rows, columns=headers)


def history_frame(runs: Any, tag: str | None = None, store: RunStore | None = None):
    """`history` of one or more runs as a pandas DataFrame: run, tag, step, wall_time, value."""
    pandas = _pandas()
    chosen = [runs] if isinstance(runs, (str, Run)) or hasattr(runs, "run") else list(runs)
    rows = [(_one(r, store).id, *point) for r in chosen for point in history(r, tag, store)]
    return pandas.DataFrame(rows, columns=["run", "tag", "step", "wall_time", "value"])


def _pandas():
    try:
        import pandas
    except ImportError:
        from .errors import TrkError

        raise TrkError("pandas is not installed", "pip install 'trk[pandas]'") from None
    return pandas


def _one(run: Any, store: RunStore | None) -> Run:
    """The store's Run of a Run, a RunView or a run spec (`"1"`, an id prefix)."""
    if isinstance(run, Run):
        return run
    if isinstance(run, str):
        from .store.select import select_from

        return select_from(store or RunStore(), None, [run])[0]
    return run.run


def _many(runs: Any) -> list[Run] | None:
    return None if runs is None else store_runs(runs)


def run(
    opspec: str,
    flags: dict[str, Any] | None = None,
    project_dir: str = ".",
    store: RunStore | None = None,
    echo: bool = False,
    **options: Any,
):
    """Run an operation; returns a LaunchResult (run, exit_code, reused, error).

    `flags` may name an upstream run for a dependency (`{"prepare": "1a2b"}`),
    as `NAME=RUN` does on the command line.
    """
    from .execution.deps_spec import take_dep_specs
    from .execution.launch import RunOptions, launch
    from .execution.process import Sinks
    from .project.loader import load
    from .project.resolve import resolve, resolve_flags

    store = store or RunStore()
    project = load(project_dir)
    op = resolve(project, opspec)
    assigned = dict(flags or {})
    options.setdefault("dep_specs", take_dep_specs(op, assigned))
    resolved, extra = resolve_flags(op, assigned, force_flags=options.get("force_flags", False))
    return launch(store, project, op, resolved, RunOptions(**options), Sinks.console() if echo else None, extra)


def restart(run: Run | str, store: RunStore | None = None, echo: bool = False, **options: Any):
    """Start a staged run, or resume a run (a pipeline keeps its completed steps)."""
    from .execution.launch import RunOptions, relaunch
    from .execution.process import Sinks

    store = store or RunStore()
    return relaunch(store, run, RunOptions(**options), Sinks.console() if echo else None)


def scalars(run: Run | str, store: RunStore | None = None) -> dict:
    """A run's scalars: {(prefix, tag): Agg(first, last, min, max, ...)}."""
    from .views.info import run_scalars

    store = store or RunStore()
    return run_scalars(_one(run, store), store)


def run_info(run: Run | str, store: RunStore | None = None) -> dict[str, Any]:
    """The fields `trk runs info` shows, in display order."""
    from .views.info import run_info as info

    store = store or RunStore()
    return info(store, _one(run, store))


def compare(runs: Any = None, columns: str | Sequence[str] | None = None, store: RunStore | None = None,
            selected: Any = None):
    """The compare table: (headers, rows of Python values), as `trk compare` shows it.

    `runs`: Runs or RunViews (None: every run). `columns`: a `-cc` spec
    string or a list of specs (`["=prep.k", "prep#loss"]`).
    """
    from .views.compare import compare as compare_table

    return compare_table(store or RunStore(), _many(runs if runs is not None else selected), columns)


def stop(selected: Sequence[Run], timeout: float = 10.0):
    """Stop running runs: SIGTERM, SIGKILL after `timeout`; returns their outcomes."""
    from .execution.stop import stop_runs

    return stop_runs(store_runs(selected), timeout)


def delete(selected: Sequence[Run], store: RunStore | None = None, force: bool = False,
           timeout: float = 10.0) -> list[Run]:
    """Move runs to the trash (restorable until purged).

    Running runs are refused, unless `force`: then they are stopped first
    (as `stop` does) and deleted once their outcome is recorded.
    """
    from .errors import TrkError

    store = store or RunStore()
    selected = store_runs(selected)
    running = [r for r in selected if r.refresh_status() == "running"]
    if running and force:
        still = [o.run.short_id for o in stop(running, timeout) if o.status == "running"]
        if still:
            raise TrkError(f"could not stop run{'s' if len(still) > 1 else ''} {', '.join(still)}; nothing deleted",
                           "Try 'trk stop' with a longer --timeout.")
        for r in selected:
            r.refresh_status()
    return store.delete(selected, force=force)


def restore(selected: Sequence[Run], store: RunStore | None = None) -> list[Run]:
    """Bring deleted runs back from the trash."""
    return (store or RunStore()).restore(selected)


def purge(selected: Sequence[Run], store: RunStore | None = None) -> list[Run]:
    """Remove deleted runs for good (and their scalar index rows)."""
    return (store or RunStore()).purge(selected)


def diff(a: Run, b: Run, store: RunStore | None = None) -> list[str]:
    """Lines saying how run `b` differs from run `a` (flags, source, deps, scalars)."""
    from .views.diff import diff_runs

    return diff_runs(store or RunStore(), _one(a, store), _one(b, store))
