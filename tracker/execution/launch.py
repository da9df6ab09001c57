"""Launching an operation: resolve its inputs, make its run, execute it.

This is what `trk run` does, as a library call: `launch(...)` returns a
`LaunchResult` (the run, its exit code and, for a failed pipeline, why).
`relaunch` starts a staged run or resumes a finished one (`--start`,
`--restart`). Stepped operations run through `pipeline`, which launches
each step back through `launch`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..errors import TrkError
from ..project.loader import OpDef, Project
from ..project.resolve import run_label
from ..store import Run, RunLock, RunStore
from .command import command_argv
from .lifecycle import (
    LaunchResult,
    RunOptions,
    default_label,
    load_opref,
    lock,
    prepare,
    say_for,
    supervise,
)
from .process import Sinks, echo_line, program_env, run_process

__all__ = ["LaunchResult", "RunOptions", "launch", "relaunch"]


def launch(
    store: RunStore,
    project: Project,
    op: OpDef,
    flags: dict[str, Any],
    opts: RunOptions | None = None,
    sinks: Sinks | None = None,
    extra_flags: dict[str, Any] | None = None,
) -> LaunchResult:
    """Run `op` with resolved `flags`; return its run and exit code."""
    opts = opts or RunOptions()
    if op.is_stepped:
        from .pipeline import run_pipeline

        return run_pipeline(store, project, op, flags, opts, sinks, extra_flags or {}, launch)
    cmd = command_argv(op, flags, project.dir)
    resolved: list[tuple[str, str]] = []
    deps_plan = None
    deps_error = None
    if op.config.get("requires"):
        from ..errors import DependencyError
        from .deps import plan_dependencies

        try:
            deps_plan = plan_dependencies(store, project, op, opts.dep_specs, flags, opts.progress)
            resolved = deps_plan.label_parts()
        except DependencyError as e:
            deps_error = e
    if opts.needed and deps_error is None:
        from .needed import find_reusable

        reuse = find_reusable(store, project, op, flags, deps_plan, explain=opts.explain,
                              say=lambda line: echo_line(sinks, line))
        if reuse is not None:
            return LaunchResult(reuse, 0, reused=True)
    engine = None if opts.stage else _engine(opts, _op_image(op))  # before any run is made
    label = run_label(op, opts.label, flags, default_label(flags, resolved))
    run, held = prepare(store, project, op, flags, opts, cmd, label, sinks=sinks)
    with supervise(run, held):
        if opts.on_created:
            opts.on_created(run)
        if deps_error is not None:
            raise deps_error
        if deps_plan is not None:
            deps_plan.apply(run, say_for(run, sinks))
        if opts.stage:
            return LaunchResult(run, 0)
        return LaunchResult(run, _execute(run, op, cmd, sinks, opts.on_start, engine, project))


# Guild's no-op main (`guild.pass`), for operations that only group steps or
# dependencies: trk records the run without starting a program.
NOOP_MAIN = "guild.pass"


def is_noop(op: OpDef) -> bool:
    """Whether `op` runs Guild's no-op main, `main: guild.pass`."""
    return op.exec is None and isinstance(op.main, str) and op.main.split()[:1] == [NOOP_MAIN]


def _op_image(op: OpDef) -> str | None:
    """The image an operation names: its `image:` key, or the `image` a format records (run-attrs)."""
    if op.is_stepped:  # its steps name their images
        return None
    image = op.config.get("image")
    if not image and isinstance(op.config.get("run-attrs"), dict):
        image = op.config["run-attrs"].get("image")
    return image if isinstance(image, str) and image else None


def _engine(opts: RunOptions, image: Any):
    """The Docker engine to run in, when `--docker` is on and the operation names an image."""
    if not (opts.docker and isinstance(image, str) and image):
        return None
    from .container import connect

    return connect(image)


def _execute(run: Run, op: OpDef, cmd: list[str], sinks: Sinks | None, on_start=None, engine=None,
             project: Project | None = None) -> int:
    if is_noop(op):
        run.start()
        run.finish(0)
        return 0
    env = program_env(run, run.get("env"))
    if engine is not None:  # `--docker`: the same argv in the run's image (execution.container)
        from .container import container_env, run_container

        return run_container(engine, run, run.get("image"), cmd, container_env(env, run.get("env")), sinks,
                             op.config.get("output-scalars"))
    runtime = op.config.get("runtime")
    if runtime in RUNTIMES:  # a format's program, run by this process around the user's command
        from importlib import import_module

        code = import_module(runtime).execute(run, project, op, cmd, env, sinks, on_start)
        if code is not None:
            return code
    return run_process(run, cmd, env, sinks, op.config.get("output-scalars"), on_start=on_start)


# The modules a format's operation may name as its `runtime`: each has
# `execute(run, project, op, cmd, env, sinks, on_start) -> int | None` that does what
# its `python -m MODULE` program (the run's recorded `cmd`) does, without a
# second Python, and returns the exit code, or None to run `cmd` after all.
RUNTIMES = ("tracker.execution.dvc_stage", "tracker.execution.gradient_job")


def relaunch(store: RunStore, run: Run | str, opts: RunOptions | None = None, sinks: Sinks | None = None,
             staged_only: bool = False, assigns: list[str] | None = None) -> LaunchResult:
    """Start a staged run, or run a finished one again in its own directory.

    A pipeline resumes: completed steps whose flags are unchanged are kept,
    the others run again. `run` is a Run or a run spec (index, range or id
    prefix); `assigns` (`NAME=VALUE`) and `opts.label` change its flags and
    label first, as Guild's `run --restart RUN NAME=VALUE` does.
    """
    opts = opts or RunOptions()
    if isinstance(run, str):
        from ..store.select import select_from

        run = select_from(store, None, [run])[0]
    held = claim_staged(run) if staged_only else None  # (reads it once, under its lock)
    try:
        if not staged_only and run.status == "running":
            raise TrkError(f"run {run.short_id} is running")
        if run.get("batch"):
            raise TrkError(f"run {run.short_id} is a batch: its trials are the runs to start or restart",
                           f"Try 'trk runs --batch {run.short_id}' for its trials.")
        opref = load_opref(run)
        from ..project.loader import load
        from ..project.resolve import resolve

        project = load(opref["project"], cache_dir=store.project_cache_dir)
        op = resolve(project, f"{opref.get('model') or ''}:{opref['op']}")  # ':op' is the anonymous model's
        if assigns or opts.label is not None:
            from .restart import apply_restart_changes

            apply_restart_changes(run, project, op, list(assigns or []), opts.label, opts.force_flags)
        engine = None if op.is_stepped else _engine(opts, run.get("image"))
        if opts.on_created:  # the run is known good to go (`--background` returns now)
            opts.on_created(run)
    except BaseException:
        if held:
            held.release()
        raise
    if op.is_stepped:
        from .pipeline import resume_pipeline

        return resume_pipeline(store, project, op, run, opts, sinks, launch, held=held)
    with supervise(run, held or lock(run)):
        run.clear_outcome()
        return LaunchResult(run, _execute(run, op, run.get("cmd"), sinks, engine=engine, project=project))


class RunClaimed(TrkError):
    """A staged run another process has started (or is starting): not this one's to run."""


def claim_staged(run: Run) -> RunLock:
    """Take a staged run's lock without waiting, and check it is still staged
    once held: of two processes starting the same run, exactly one gets it."""
    held = RunLock(run.lock_path)
    if not held.try_acquire():
        run.forget()
        if run.get("started"):
            raise RunClaimed(f"run {run.short_id} is running")
        raise RunClaimed(f"run {run.short_id} is being started by another process")
    run.forget()  # read under the lock: another process may have started or finished it meanwhile
    attrs = run.attrs
    if run.error or not attrs.get("staged") or attrs.get("started") or "exit_status" in attrs:
        held.release()
        raise RunClaimed(f"run {run.short_id} is {run.status}, not staged", "Use --restart to run it again.")
    return held
