"""The Python API: what the CLI does, as plain function calls.

    import tracker
    tracker.run("m1:hello", {"msg": "hi"}, project_dir="sample-projects/steps")
    for r in tracker.runs(): print(r.short_id, r.opspec, r.status)
"""

from __future__ import annotations

from typing import Any, Sequence

from .store import Run, RunStore


def runs(specs: Sequence[str] = (), store: RunStore | None = None, **filters: Any) -> list[Run]:
    """Runs newest first, filtered (operations=, labels=, tags=, statuses=)."""
    from .store.select import RunFilter, select_from

    store = store or RunStore()
    return select_from(store, RunFilter(**filters), list(specs))


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
    if isinstance(run, str):
        run = runs([run], store=store)[0]
    return run_scalars(run, store)


def run_info(run: Run | str, store: RunStore | None = None) -> dict[str, Any]:
    """The fields `trk runs info` shows, in display order."""
    from .views.info import run_info as info

    store = store or RunStore()
    if isinstance(run, str):
        run = runs([run], store=store)[0]
    return info(store, run)


def compare(selected: Sequence[Run] | None = None, columns: str | Sequence[str] | None = None,
            store: RunStore | None = None):
    """The compare table: (headers, rows of raw values), as `trk compare` shows it.

    `columns` is a `-cc` spec string or a list of specs (`["=prep.k",
    "prep#loss"]`); `selected` None compares every run.
    """
    from .views.compare import compare as compare_table

    return compare_table(store or RunStore(), selected, columns)


def stop(selected: Sequence[Run], timeout: float = 10.0):
    """Stop running runs: SIGTERM, SIGKILL after `timeout`; returns their outcomes."""
    from .execution.stop import stop_runs

    return stop_runs(list(selected), timeout)


def delete(selected: Sequence[Run], store: RunStore | None = None, force: bool = False,
           timeout: float = 10.0) -> list[Run]:
    """Move runs to the trash (restorable until purged).

    Running runs are refused, unless `force`: then they are stopped first
    (as `stop` does) and deleted once their outcome is recorded.
    """
    from .errors import TrkError

    store = store or RunStore()
    selected = list(selected)
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

    return diff_runs(store or RunStore(), a, b)
