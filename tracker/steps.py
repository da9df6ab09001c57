"""Stepped operations: a parent run whose steps run as child runs.

Steps run in order (Guild's behaviour) or, when any step declares `needs`,
as a DAG with independent steps in parallel. The parent run directory holds
a symbolic link per step, named after the step (`step`, `step_2`, ...).
Everything runs in this one supervising process: no `trk` per step.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import OpError, StepError, TrkError
from .execute import Sinks, finish_run
from .flags import format_assigns, parse_value
from .launch import LaunchResult, RunOptions, default_label, echo_line, init_run, launch, record_failure
from .opspec import interpolate, resolve, resolve_flags
from .project import OpDef, Project
from .store import Run, RunStore, now_us

log = logging.getLogger("trk")

# Run options a step may carry that trk honours, and those it ignores (with a
# warning), as Guild does. Values: does the option take an argument?
_IGNORED = {
    "--run-dir": True, "--remote": True, "--gpus": True, "--opt-flag": True, "--optimizer": True,
    "--max-trials": True, "--random-seed": True, "--stage": False, "--no-gpus": False,
    "--restart": True, "--start": True, "--background": False, "--pidfile": True,
    "--stage-trials": False, "--quiet": False, "--print-cmd": False, "--save-trials": True,
}


@dataclass
class Step:
    """One step of a pipeline, parsed and resolved against the project."""

    raw: Any
    run_spec: str
    name: str
    opspec: str
    args_flags: dict[str, Any] = field(default_factory=dict)
    needed: bool = False
    force_flags: bool = False
    label: str | None = None
    tags: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    op: OpDef | None = None
    op_error: TrkError | None = None
    flags: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    explicit: list[str] = field(default_factory=list)
    link: str = ""
    qualified_opspec: str = ""

    def describe(self, label: str | None, tags: list[str]) -> str:
        """The step as a command line, for the `running NAME: ...` log line."""
        parts = [self.op.fullname if self.op else self.qualified_opspec]
        if self.needed:
            parts.append("--needed")
        if label:
            parts.append(f"--label {label}")
        parts += [f"--tag {t}" for t in tags]
        explicit = {k: self.flags.get(k, self.extra.get(k)) for k in self.explicit}
        if explicit:
            parts.append(format_assigns(explicit))
        return " ".join(parts)


# -- parsing ---------------------------------------------------------------


def parse_steps(project: Project, op: OpDef, flags: dict[str, Any]) -> list[Step]:
    """Parse an operation's `steps:`; raise StepError on invalid step data."""
    data = op.steps
    if not isinstance(data, list):
        raise StepError(f"invalid steps for {op.fullname}: {data!r} (expected a list of steps)")
    steps = [_parse_step(item, op, flags) for item in data]
    counts: dict[str, int] = {}
    for step in steps:
        n = counts[step.name] = counts.get(step.name, 0) + 1
        step.link = step.name if n == 1 else f"{step.name}_{n}"
    _check_needs(steps, op)
    for step in steps:
        step.qualified_opspec = step.opspec if ":" in step.opspec or not op.model else f"{op.model}:{step.opspec}"
        try:
            step.op = resolve(project, step.opspec, context_model=op.model)
        except OpError as e:
            step.op_error = e
    return steps


def _parse_step(item: Any, parent: OpDef, flags: dict[str, Any]) -> Step:
    if isinstance(item, str):
        data: dict[str, Any] = {"run": item}
    elif isinstance(item, dict):
        data = item
    else:
        raise StepError(f"invalid step data: {item!r}")
    run_spec = data.get("run")
    if not isinstance(run_spec, str) or not run_spec.strip():
        raise StepError(f"invalid step {item!r}: must define run")
    try:
        words = shlex.split(run_spec)
    except ValueError as e:
        raise StepError(f"invalid step {item!r}: {e}") from None
    step = Step(raw=item, run_spec=run_spec, name="", opspec=words[0])
    i = 1
    while i < len(words):
        w = words[i]
        opt, eq, val = w.partition("=") if w.startswith("--") else (w, "", "")
        takes_value = not eq

        def value() -> str:
            nonlocal i
            if eq:
                return val
            if i + 1 >= len(words):
                raise StepError(f"invalid step {item!r}: {w} needs a value")
            i += 1
            return words[i]

        if opt == "--needed":
            step.needed = True
        elif opt == "--force-flags":
            step.force_flags = True
        elif opt in ("--label", "-l"):
            step.label = interpolate(value(), flags)
        elif opt in ("--tag", "-t"):
            step.tags.append(value())
        elif opt in _IGNORED:
            if _IGNORED[opt] and takes_value:
                i += 1
            step.ignored.append(opt[2:].replace("-", "_"))
        elif w.startswith("-"):
            raise StepError(f"invalid step {item!r}: unknown option {w}")
        elif "=" in w:
            name, _, raw = w.partition("=")
            step.args_flags[name] = parse_value(interpolate(raw, flags)) if raw else ""
        else:
            raise StepError(f"invalid step {item!r}: unexpected argument {w!r} (expected NAME=VALUE)")
        i += 1
    step_flags = data.get("flags") or {}
    if not isinstance(step_flags, dict):
        raise StepError(f"invalid step {item!r}: flags must be a mapping")
    for name, raw in step_flags.items():
        step.args_flags[str(name)] = parse_value(interpolate(raw, flags)) if isinstance(raw, str) else raw
    name = data.get("name")
    step.name = str(name) if name else step.opspec
    needs = data.get("needs") or []
    step.needs = [needs] if isinstance(needs, str) else [str(n) for n in needs]
    checks = data.get("checks") or data.get("expect") or []
    step.checks = checks if isinstance(checks, list) else [checks]
    return step


def _check_needs(steps: list[Step], op: OpDef) -> None:
    names = {s.link for s in steps}
    for s in steps:
        for n in s.needs:
            if n not in names:
                raise StepError(
                    f"step '{s.link}' of {op.fullname} needs unknown step '{n}'",
                    "Steps: " + ", ".join(x.link for x in steps),
                )
    graph = {s.link: s.needs for s in steps}
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                cycle = path[path.index(m):] + [m] if m in path else [n, m]
                raise StepError(f"steps of {op.fullname} have a cycle: {' -> '.join(cycle)}")
            if m not in state:
                visit(m, path + [m])
        state[n] = 2

    for s in steps:
        if s.link not in state:
            visit(s.link, [s.link])


def split_step_flags(assigned: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `STEP:FLAG=VALUE` assignments from the operation's own flags."""
    own = {k: v for k, v in assigned.items() if ":" not in k}
    qualified = {k: v for k, v in assigned.items() if ":" in k}
    return own, qualified


def resolve_step_flags(steps: list[Step], op: OpDef, extra: dict[str, Any], force_flags: bool) -> None:
    """Give every step its flags: step args < forced < `step:flag` < `model:op:flag`.

    `STEP:FLAG` names a step by its name or operation; without --force-flags
    it is checked against that step's own flags.
    """
    targeted: dict[int, list[tuple[int, str, Any]]] = {}
    for key, value in extra.items():
        prefix, _, flag = key.rpartition(":")
        if not prefix:
            continue
        hits = []
        for i, s in enumerate(steps):
            rank = 0
            if s.op is not None and prefix == s.op.fullname:
                rank = 3
            elif prefix == s.link or prefix == s.name:
                rank = 2
            elif s.op is not None and prefix == s.op.name:
                rank = 1
            if rank:
                hits.append((i, rank))
        if not hits:
            raise OpError(
                f"unknown step '{prefix}' in flag '{key}'",
                f"Steps of {op.fullname}: " + ", ".join(s.link for s in steps),
            )
        for i, rank in hits:
            targeted.setdefault(i, []).append((rank, flag, value))
    forced = {k: v for k, v in extra.items() if ":" not in k} if force_flags else {}
    for i, s in enumerate(steps):
        if s.op is None:
            continue
        assigned = dict(s.args_flags)
        explicit = list(s.args_flags)
        for k, v in forced.items():
            if k in s.op.flags or s.op.is_stepped:
                assigned[k] = v
                explicit.append(k)
        for rank, flag, value in sorted(targeted.get(i, []), key=lambda t: t[0]):
            if not (force_flags or s.op.is_stepped or flag in s.op.flags):
                raise OpError(
                    f"unsupported flag '{flag}' for step '{s.link}' ({s.op.fullname})",
                    f"Flags of {s.op.fullname}: {', '.join(sorted(s.op.flags)) or '(none)'}; "
                    "use --force-flags to skip this check.",
                )
            assigned[flag] = value
            explicit.append(flag)
        own, nested = split_step_flags(assigned)
        s.flags, s.extra = resolve_flags(s.op, own, force_flags=force_flags or s.force_flags,
                                         help_cmd=s.op.fullname)
        s.extra.update(nested)
        s.explicit = sorted(set(explicit))


def plan(project: Project, op: OpDef, flags: dict[str, Any], extra: dict[str, Any], force_flags: bool) -> list[Step]:
    steps = parse_steps(project, op, flags)
    resolve_step_flags(steps, op, extra, force_flags)
    return steps


def preview_steps(project: Project, op: OpDef, flags: dict[str, Any], extra: dict[str, Any],
                  force_flags: bool, depth: int = 0) -> str:
    """The expanded step tree of a pipeline, as text; runs nothing."""
    lines = []
    if depth == 0:
        lines.append(f"{op.fullname} {format_assigns(flags)}".rstrip())
    pad = "  " * (depth + 1)
    for s in plan(project, op, flags, extra, force_flags):
        if s.op is None:
            lines.append(f"{pad}{s.link}: {s.opspec}  (error: {s.op_error})")
            continue
        text = f"{pad}{s.link}: {s.op.fullname} {format_assigns(s.flags)}".rstrip()
        notes = []
        if s.needs:
            notes.append("needs " + ", ".join(s.needs))
        if s.needed:
            notes.append("--needed")
        if notes:
            text += "  (" + "; ".join(notes) + ")"
        lines.append(text)
        if s.op.is_stepped:
            lines.append(preview_steps(project, s.op, s.flags, s.extra, force_flags, depth + 1))
    return "\n".join(lines)


# -- running ---------------------------------------------------------------


def run_steps(store: RunStore, project: Project, op: OpDef, flags: dict[str, Any], opts: RunOptions,
              sinks: Sinks | None, extra: dict[str, Any]) -> LaunchResult:
    """Run a stepped operation: make the parent run, then run its steps."""
    try:
        steps = parse_steps(project, op, flags)
        data_error = None
    except StepError as e:
        steps, data_error = [], e
    if data_error is None:
        resolve_step_flags(steps, op, extra, opts.force_flags)  # command-line errors: no run made
    label = interpolate(opts.label, flags) if opts.label is not None else default_label(flags)
    attrs = {"step_flags": extra, "force_flags": opts.force_flags}
    if opts.label is not None:
        attrs["step_label"] = label
    parent, lock = init_run(store, project, op, flags, opts, None, label, extra_attrs=attrs)
    try:
        if opts.on_created:
            opts.on_created(parent)
        if data_error is not None:
            raise data_error
        if opts.stage:
            return LaunchResult(parent, 0)
        parent.write_attr("started", now_us())
        code = _Pipeline(store, project, parent, steps, opts, sinks).run()
        return LaunchResult(parent, code)
    except BaseException as e:
        record_failure(parent, e)
        raise
    finally:
        if lock:
            lock.release()


def resume_steps(store: RunStore, project: Project, op: OpDef, parent: Run, opts: RunOptions,
                 sinks: Sinks | None) -> LaunchResult:
    """Resume a stepped run: completed steps stay, the others run again."""
    from .store import RunLock

    steps = plan(project, op, parent.flags, parent.get("step_flags") or {}, bool(parent.get("force_flags")))
    lock = RunLock(parent.lock_path)
    lock.acquire()
    try:
        parent.clear_outcome()
        parent.write_attr("restarted", now_us())
        if not parent.get("started"):
            parent.write_attr("started", now_us())
        opts.label = parent.get("step_label")
        opts.tags = parent.tags
        code = _Pipeline(store, project, parent, steps, opts, sinks, resume=True).run()
        return LaunchResult(parent, code)
    except BaseException as e:
        record_failure(parent, e)
        raise
    finally:
        lock.release()


class _Pipeline:
    """Runs the steps of one parent run, in order or as a DAG."""

    def __init__(self, store, project, parent: Run, steps: list[Step], opts: RunOptions, sinks, resume=False):
        self.store = store
        self.project = project
        self.parent = parent
        self.steps = steps
        self.opts = opts
        self.sinks = sinks
        self.resume = resume
        self.procs: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.stopping = False

    def run(self) -> int:
        dag = any(s.needs for s in self.steps)
        failed = self._run_dag() if dag else self._run_sequence()
        if failed is None:
            finish_run(self.parent, 0)
            return 0
        name, code, reason = failed
        terminated = code is not None and code < 0 or reason == "terminated"
        self.parent.write_attr("error", reason)
        finish_run(self.parent, -2 if terminated else (code if code else 1), terminated)
        raise StepError(reason, exit_code=130 if terminated else (code if code and code > 0 else 1))

    # A step outcome: None when it completed, else (name, exit code, reason).

    def _run_sequence(self):
        for step in self.steps:
            outcome = self._run_step(step, self.sinks)
            if outcome is not None:
                return outcome
        return None

    def _run_dag(self):
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        limit = self.opts.max_parallel or os.cpu_count() or 1
        if limit < 1:
            raise StepError("--max-parallel must be at least 1")
        done: set[str] = set()
        pending = list(self.steps)
        running: dict[Any, Step] = {}
        failed = None
        pool = ThreadPoolExecutor(max_workers=limit)
        try:
            while pending or running:
                if failed is None and not self.stopping:
                    for step in list(pending):
                        if len(running) >= limit:
                            break
                        if all(n in done for n in step.needs):
                            pending.remove(step)
                            prefixed = _prefixed(self.sinks, step.link)
                            running[pool.submit(self._run_step, step, prefixed)] = step
                if not running:
                    break
                try:
                    finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    self._stop(signal.SIGINT)
                    failed = failed or (None, -2, "terminated")
                    continue
                for fut in finished:
                    step = running.pop(fut)
                    try:
                        outcome = fut.result()
                    except TrkError as e:
                        outcome = (step.link, 1, f"step '{step.link}' failed: {e.message}")
                    if outcome is None:
                        done.add(step.link)
                    elif failed is None:
                        failed = outcome
                        if self.opts.fail_fast:
                            self._stop(signal.SIGTERM)
        finally:
            pool.shutdown(wait=True)
        return failed

    def _stop(self, sig) -> None:
        self.stopping = True
        with self.lock:
            procs = list(self.procs.values())
        for proc in procs:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def _run_step(self, step: Step, sinks):
        link = os.path.join(self.parent.dir, step.link)
        if self.resume and os.path.islink(link):
            prev = _linked_run(self.store, link)
            if prev is not None and prev.status == "completed" and not _check(step, prev):
                log.info(f"reusing {step.link}: {prev.id} (completed)")
                return None
        for param in step.ignored:
            log.warning(f"run parameter {param} used in '{step.run_spec}' ignored")
        label = self.opts.label if self.opts.label is not None else step.label
        tags = list(self.opts.tags) + [t for t in step.tags if t not in self.opts.tags]
        log.info(f"running {step.name}: {step.describe(label, tags)}")
        if step.op is None:
            raise step.op_error
        if self.stopping:
            return (step.link, -2, "terminated")

        def created(run: Run) -> None:
            _link(link, run)

        def started(proc) -> None:
            with self.lock:
                self.procs[step.link] = proc

        opts = RunOptions(label=label, tags=tags, needed=step.needed, parent=self.parent, step_name=step.link,
                          force_flags=self.opts.force_flags or step.force_flags, on_created=created,
                          on_start=started, max_parallel=self.opts.max_parallel, fail_fast=self.opts.fail_fast)
        try:
            result = launch(self.store, self.project, step.op, step.flags, opts, sinks, step.extra)
        except StepError as e:  # a nested pipeline failed: it already said why
            return (step.link, e.exit_code, f"step '{step.link}' failed: {e.message}")
        finally:
            with self.lock:
                self.procs.pop(step.link, None)
        child = result.run
        if result.reused:
            _link(link, child)
            echo_line(sinks, f"Skipping run because a completed run with the same inputs exists: {child.id}")
            return None
        child.refresh_status()
        if child.get("terminated") or result.exit_code < 0:
            return (step.link, -2, "terminated")
        if result.exit_code != 0:
            return (step.link, result.exit_code, f"step '{step.link}' failed with exit status {result.exit_code}")
        problem = _check(step, child)
        if problem:
            log.error(f"check failed for step {step.link}: {problem}")
            return (step.link, 1, f"step '{step.link}' failed a check: {problem}")
        return None


def _prefixed(sinks: Sinks | None, name: str) -> Sinks | None:
    if sinks is None:
        return None
    return Sinks(sinks.stdout, sinks.stderr, f"[{name}] ".encode())


def _link(path: str, run: Run) -> None:
    """Point the step link at the child run (relative, so TRK_HOME may move)."""
    target = os.path.relpath(os.path.realpath(run.dir), os.path.dirname(os.path.realpath(path)))
    tmp = path + ".tmp-link"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, path)


def _linked_run(store: RunStore, link: str) -> Run | None:
    run_id = os.path.basename(os.path.realpath(link))
    path = store.run_path(run_id)
    if not os.path.isdir(path):
        return None
    return Run(run_id, path)


def _check(step: Step, run: Run) -> str | None:
    """Evaluate a step's `checks:`; return the first problem, or None.

    Each check is `{file: PATH}` (must exist), optionally with `contains:
    TEXT` or `matches: REGEX`, or `{output: REGEX}` (the run's output must
    match).
    """
    for check in step.checks:
        if isinstance(check, str):
            check = {"file": check}
        if not isinstance(check, dict):
            return f"invalid check {check!r}"
        if "file" in check:
            rel = str(check["file"])
            path = os.path.realpath(os.path.join(run.dir, rel))
            if not (path + os.sep).startswith(os.path.realpath(run.dir) + os.sep):
                return f"check path '{rel}' is outside the run directory"
            if not os.path.exists(path):
                return f"file '{rel}' does not exist"
            if "contains" in check or "matches" in check:
                try:
                    text = open(path, encoding="utf-8", errors="replace").read()
                except OSError as e:
                    return f"cannot read '{rel}': {e}"
                if "contains" in check and str(check["contains"]) not in text:
                    return f"file '{rel}' does not contain {check['contains']!r}"
                if "matches" in check and not re.search(str(check["matches"]), text, re.M):
                    return f"file '{rel}' does not match {check['matches']!r}"
        elif "output" in check:
            try:
                text = open(run.output_path, encoding="utf-8", errors="replace").read()
            except OSError:
                text = ""
            if not re.search(str(check["output"]), text, re.M):
                return f"output does not match {check['output']!r}"
        else:
            return f"invalid check {check!r}: use 'file:' or 'output:'"
    return None
