"""Launching an operation: resolve it, make its run, then execute it.

This is what `trk run` does, as a library call: `launch(...)` returns the
run and the program's exit code. Stepped operations hand over to `steps`.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from .errors import OpError
from .execute import Sinks, finish_run, program_env, run_process
from .flags import format_assigns
from .fsutil import atomic_write, dump_attr
from .opspec import command_argv, interpolate
from .project import OpDef, Project
from .store import Run, RunLock, RunStore, now_us

log = logging.getLogger("trk")


@dataclass
class RunOptions:
    """How to run an operation, beyond its flags."""

    label: str | None = None
    tags: list[str] = field(default_factory=list)
    run_dir: str | None = None
    stage: bool = False
    force_flags: bool = False
    needed: bool = False
    explain: bool = False
    parent: Run | None = None
    step_name: str | None = None
    dep_specs: dict[str, str] = field(default_factory=dict)
    max_parallel: int | None = None
    fail_fast: bool = False
    on_created: Any = None  # called with the new Run before it starts (steps link it)
    on_start: Any = None  # called with the program's Popen (steps track processes)


@dataclass
class LaunchResult:
    run: Run | None
    exit_code: int
    reused: bool = False


def default_label(flags: dict[str, Any], resolved: list[tuple[str, str]] | None = None) -> str:
    parts = [format_assigns({k: v for k, v in flags.items() if v is not None})]
    parts += [f"{name}={run_id[:8]}" for name, run_id in resolved or []]
    return " ".join(p for p in parts if p)


def init_run(
    store: RunStore,
    project: Project,
    op: OpDef,
    flags: dict[str, Any],
    opts: RunOptions,
    cmd: list[str] | None,
    label: str,
    extra_attrs: dict[str, Any] | None = None,
    copy_sourcecode: bool = True,
) -> tuple[Run, RunLock | None]:
    """Create a run directory with its attrs and source; publish it locked."""
    from .sourcecode import copy_source

    run, build = store.new_run(opts.run_dir)
    lock = None
    if not opts.stage:
        lock = RunLock(os.path.join(build, ".trk", "lock"))
        lock.acquire()
    try:
        attrs: dict[str, Any] = {
            "id": run.id,
            "op": op.fullname,
            "flags": flags,
            "label": label,
            "tags": list(opts.tags),
            "initialized": now_us(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        if cmd is not None:
            attrs["cmd"] = cmd
        env = op.config.get("env")
        attrs["env"] = {str(k): interpolate(str(v), flags) for k, v in env.items()} if isinstance(env, dict) else {}
        if opts.parent is not None:
            attrs["parent"] = opts.parent.id
            if opts.step_name:
                attrs["step"] = opts.step_name
        if opts.stage:
            attrs["staged"] = now_us()
        if copy_sourcecode and not op.is_stepped:
            files, digest = copy_source(project.dir, build, op.config.get("sourcecode"))
            attrs["sourcecode_digest"] = digest
            attrs["sourcecode_files"] = files
        attrs.update(extra_attrs or {})
        for name, value in attrs.items():
            run.write_attr(name, value)
        atomic_write(
            os.path.join(build, ".trk", "opref"),
            dump_attr({"project": project.dir, "file": project.filename, "model": op.model, "op": op.name}),
        )
        store.publish(run, external=bool(opts.run_dir))
    except BaseException:
        if lock:
            lock.release()
        raise
    return run, lock


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
        from .steps import run_steps

        return run_steps(store, project, op, flags, opts, sinks, extra_flags or {})
    cmd = command_argv(op, flags, project.dir)
    resolved: list[tuple[str, str]] = []
    deps_plan = None
    deps_error = None
    # One listing serves dependency resolution and --needed.
    runs = store.list() if op.config.get("requires") or opts.needed else None
    if op.config.get("requires"):
        from .deps import plan_dependencies
        from .errors import DependencyError

        try:
            deps_plan = plan_dependencies(store, project, op, opts.dep_specs, runs)
            resolved = deps_plan.label_parts()
        except DependencyError as e:
            deps_error = e
    if opts.needed and deps_error is None:
        from .needed import find_reusable

        reuse = find_reusable(store, project, op, flags, deps_plan, explain=opts.explain,
                              say=lambda line: echo_line(sinks, line), runs=runs)
        if reuse is not None:
            return LaunchResult(reuse, 0, reused=True)
    label = interpolate(opts.label, flags) if opts.label is not None else default_label(flags, resolved)
    run, lock = init_run(store, project, op, flags, opts, cmd, label)
    try:
        if opts.on_created:
            opts.on_created(run)
        if deps_error is not None:
            raise deps_error
        if deps_plan is not None:
            deps_plan.apply(run, say_for(run, sinks))
        if opts.stage:
            return LaunchResult(run, 0)
        return LaunchResult(run, execute(run, op, flags, cmd, sinks, opts.on_start))
    except BaseException as e:
        record_failure(run, e)
        raise
    finally:
        if lock:
            lock.release()


def echo_line(sinks: Sinks | None, line: str) -> None:
    """Echo a trk message line to the sinks' stdout (with their prefix)."""
    if sinks is not None and sinks.stdout is not None:
        try:
            sinks.stdout.write(sinks.prefix + line.encode() + b"\n")
            sinks.stdout.flush()
        except (BrokenPipeError, ValueError):
            sinks.stdout = None  # the reader went away: the run goes on


def say_for(run: Run, sinks: Sinks | None):
    """A function that writes a trk message into the run's output and echoes it."""

    def say(line: str) -> None:
        with open(run.output_path, "ab") as f:
            f.write(line.encode() + b"\n")
        echo_line(sinks, line)

    return say


def record_failure(run: Run, e: BaseException) -> None:
    """Mark a run that trk could not start or finish: never left 'running'."""
    if "exit_status" in run.attrs:
        return
    interrupted = isinstance(e, KeyboardInterrupt)
    if not interrupted:
        run.write_attr("error", str(e) or type(e).__name__)
    finish_run(run, 1, terminated=interrupted)


def execute(run: Run, op: OpDef, flags: dict[str, Any], cmd: list[str], sinks: Sinks | None, on_start=None) -> int:
    env = program_env(run, run.get("env"))
    return run_process(run, cmd, env, sinks, op.config.get("output-scalars"), on_start=on_start)
