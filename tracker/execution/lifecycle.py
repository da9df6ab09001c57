"""The run lifecycle: prepare a run directory, supervise it, record how it ends, link children.

Every way trk runs something (a single operation, a pipeline and its steps,
a restart, and later batch trials, queues, Dask and Docker) makes its runs
with `prepare`, holds them with `supervise`, and links child runs with
`link_child`, so a run is created and finished in exactly one way. How a run
ends is written by `Run.finish` / `Run.fail` / `Run.terminate`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator

from ..records import field, record
from ..fsutil import create_new, dump_attr
from ..project.flags import format_assigns
from ..project.loader import OpDef, Project
from ..project.resolve import interpolate
from ..store import Run, RunLock, RunStore, now_us, this_host
from .process import Sinks, echo_line


@record
class RunOptions:
    """How to run an operation, beyond its flags."""

    label: str | None = None
    tags: list[str] = field(default_factory=list)
    run_dir: str | None = None
    force_run_dir: bool = False
    stage: bool = False
    force_flags: bool = False
    needed: bool = False
    explain: bool = False
    parent: Run | None = None
    step_name: str | None = None
    dep_specs: dict[str, str] = field(default_factory=dict)
    max_parallel: int | None = None
    fail_fast: bool = False
    on_created: Callable[[Run], None] | None = None  # called with the new Run before it starts (steps link it)
    on_start: Callable[[Any], None] | None = None  # called with the program's Popen (steps track processes)
    # Makes a `progress(done, total)` callback for long work a label names
    # (source copy, downloads); the CLI's draws a bar on a terminal.
    progress: Callable[[str], Callable[[int, Any], None]] | None = None
    # Run an operation that names an `image:` in it (execution.container); TRK_DOCKER=1 by default.
    docker: bool = field(default_factory=lambda: os.environ.get("TRK_DOCKER", "") not in ("", "0", "no", "false"))


@record
class LaunchResult:
    """What running an operation gave: the run, its exit code and, on failure, why.

    `exit_code` is the program's (negative: killed by that signal); for a
    pipeline it is the failing step's. `error` is set when trk has something
    to say about a failure (a pipeline's failed step); `reused` when
    `--needed` found a run with the same inputs and ran nothing. A batch's
    `trials` counts its trials by status as they ended (None: not a batch).
    """

    run: Run | None
    exit_code: int
    reused: bool = False
    error: str | None = None
    trials: dict[str, int] | None = None


def default_label(flags: dict[str, Any], resolved: list[tuple[str, str]] | None = None) -> str:
    """Guild's default label: the flag assignments, then `dep=RUNID` parts."""
    parts = [format_assigns({k: v for k, v in flags.items() if v is not None})]
    parts += [f"{name}={run_id[:8]}" for name, run_id in resolved or []]
    return " ".join(p for p in parts if p)


def prepare(
    store: RunStore,
    project: Project,
    op: OpDef,
    flags: dict[str, Any],
    opts: RunOptions,
    cmd: list[str] | None,
    label: str,
    extra_attrs: dict[str, Any] | None = None,
    sinks: Sinks | None = None,
) -> tuple[Run, RunLock | None]:
    """Create a run directory with its attrs and source; publish it, locked unless staged.

    The run becomes visible in listings only once complete (`RunStore.publish`).
    """
    from ..project.sourcecode import copy_op_source

    run, build = store.new_run(opts.run_dir, force=opts.force_run_dir)
    lock = None
    if not opts.stage:
        lock = RunLock(os.path.join(build, ".trk", "lock"))
        lock.acquire()
    source_warnings: list[str] = []
    try:
        attrs: dict[str, Any] = {
            "id": run.id,
            "op": op.fullname,
            "flags": flags,
            "label": label,
            "tags": list(opts.tags),
            "initialized": now_us(),
            "host": this_host(),
            "pid": os.getpid(),
        }
        if cmd is not None:
            attrs["cmd"] = cmd
        env = op.config.get("env")
        attrs["env"] = {str(k): interpolate(str(v), flags) for k, v in env.items()} if isinstance(env, dict) else {}
        from .command import flag_env

        attrs["env"].update(flag_env(op, flags))  # FLAG_NAME for every flag, as Guild sets them
        if opts.parent is not None:
            attrs["parent"] = opts.parent.id
            if opts.step_name:
                attrs["step"] = opts.step_name
        if opts.stage:
            attrs["staged"] = now_us()
        if not op.is_stepped:
            source = copy_op_source(project, op, build, warn=source_warnings.append,
                                    progress=opts.progress("Copying source files") if opts.progress else None)
            attrs["sourcecode_digest"] = source.digest
            attrs["sourcecode_files"] = source.files
            if source.dest != ".":
                attrs["sourcecode_dest"] = source.dest  # on the program's PYTHONPATH, as in Guild
        if isinstance(op.config.get("image"), str):  # `image:`: metadata, unless run with --docker
            attrs["image"] = op.config["image"]
        run_attrs = op.config.get("run-attrs")
        if isinstance(run_attrs, dict):  # Guild's extra attrs (formats record `image`, `artifacts`...); never trk's own
            attrs.update({str(k): v for k, v in run_attrs.items() if str(k) not in attrs})
        attrs.update(extra_attrs or {})
        run.init_attrs(attrs)  # (unpublished: written straight, no temp files)
        create_new(os.path.join(build, ".trk", "opref"),
                   dump_attr({"project": project.dir, "file": project.filename, "model": op.model, "op": op.name}))
        store.publish(run, external=bool(opts.run_dir))
    except BaseException:
        if lock:
            lock.release()
        raise
    for line in source_warnings:  # a default limit left files out: said in the run's output
        say_for(run, sinks)(line)
    return run, lock


@contextmanager
def supervise(run: Run, lock: RunLock | None) -> Iterator[Run]:
    """Hold `run` while trk works on it: any failure is recorded on the run
    (never left `running`), and the lock is released at the end."""
    try:
        yield run
    except BaseException as e:
        run.fail(e)
        raise
    finally:
        if lock:
            lock.release()


def lock(run: Run) -> RunLock:
    """Take the lock of an existing run, to run it again (restart, start)."""
    held = RunLock(run.lock_path)
    held.acquire()
    return held


def load_opref(run: Run) -> dict:
    """Where the run's operation came from: project dir, file, model, op."""
    from ..errors import TrkError
    from ..fsutil import load_attr

    try:
        with open(os.path.join(run.meta_dir, "opref"), encoding="utf-8") as f:
            return load_attr(f.read())
    except (OSError, ValueError) as e:
        raise TrkError(f"run {run.short_id} has no readable opref: {e}") from None


def link_child(parent: Run, name: str, child: Run) -> None:
    """Link `child` into the parent's directory as `name` (relative, so the
    store may move; replaced atomically, so the link never dangles)."""
    path = os.path.join(parent.dir, name)
    # Relative to the real directory holding the link, not to where an
    # existing link (an earlier attempt's) points: that would dangle.
    target = os.path.relpath(os.path.realpath(child.dir), os.path.realpath(os.path.dirname(path)))
    tmp = path + ".tmp-link"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, path)


def linked_child(store: RunStore, parent: Run, name: str) -> Run | None:
    """The run a parent's link `name` points at, if it still exists."""
    link = os.path.join(parent.dir, name)
    if not os.path.islink(link):
        return None
    run_id = os.path.basename(os.path.realpath(link))
    path = store.run_path(run_id)
    if not os.path.isdir(path):
        return None
    return Run(run_id, path)


def say_for(run: Run, sinks: Sinks | None) -> Callable[[str], None]:
    """A function that writes a trk message line into the run's output and echoes it."""

    def say(line: str) -> None:
        with open(run.output_path, "ab") as f:
            f.write(line.encode() + b"\n")
        echo_line(sinks, line)

    return say
