"""Starting staged runs and resuming stepped runs (`--start`, `--restart`)."""

from __future__ import annotations

import os

from .errors import TrkError
from .execute import Sinks, program_env, run_process
from .fsutil import load_attr
from .launch import LaunchResult, RunOptions
from .store import Run, RunLock, RunStore


def load_opref(run: Run) -> dict:
    try:
        with open(os.path.join(run.meta_dir, "opref"), encoding="utf-8") as f:
            return load_attr(f.read())
    except (OSError, ValueError) as e:
        raise TrkError(f"run {run.short_id} has no readable opref: {e}") from None


def find_run(store: RunStore, spec: str) -> Run:
    from .select import select

    return select(store.list(), [spec])[0]


def restart_run(store: RunStore, spec: str, opts: RunOptions, sinks: Sinks | None, staged_only: bool = False) -> LaunchResult:
    run = find_run(store, spec)
    status = run.status
    if staged_only and status != "staged":
        raise TrkError(f"run {run.short_id} is {status}, not staged", "Use --restart to run it again.")
    if status == "running":
        raise TrkError(f"run {run.short_id} is running")
    opref = load_opref(run)
    from . import project as projmod
    from .opspec import resolve

    project = projmod.load(opref["project"])
    op = resolve(project, f"{opref['model']}:{opref['op']}" if opref.get("model") else opref["op"])
    if op.is_stepped:
        from .steps import resume_steps

        return resume_steps(store, project, op, run, opts, sinks)
    lock = RunLock(run.lock_path)
    lock.acquire()
    try:
        run.clear_outcome()
        code = run_process(run, run.get("cmd"), program_env(run, run.get("env")), sinks, op.config.get("output-scalars"))
        return LaunchResult(run, code)
    finally:
        lock.release()
