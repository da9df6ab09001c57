"""Running a pipeline: a parent run whose steps run as child runs.

Steps run in order (Guild's behaviour) or, when any step declares `needs`,
as a DAG with independent steps in parallel. The parent run directory holds
a symbolic link per step, named after the step (`step`, `step_2`, ...).
Everything runs in this one supervising process: no `trk` per step. Steps
are launched through the `launch` function the caller passes in, so this
module does not import `launch` (which imports it).

As in Guild (`isolate-runs`, on by default), a step sees only the runs of
its own pipeline: its `operation:` dependencies and its `--needed` look at
the pipeline's step runs, never at runs made outside it (`scope.ScopedStore`).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from typing import Any, Callable

from ..errors import DependencyError, StepError, TrkError
from ..fsutil import is_inside
from ..project.loader import OpDef, Project
from ..project.resolve import run_label
from ..project.stepspec import Step, parse_steps, plan, resolve_step_flags
from ..store import Run, RunStore, now_us
from .lifecycle import LaunchResult, RunOptions, default_label, link_child, linked_child, lock, prepare, supervise
from .process import Sinks, echo_line
from .scope import ScopedStore

log = logging.getLogger("trk")

Launch = Callable[..., LaunchResult]


def run_pipeline(store: RunStore, project: Project, op: OpDef, flags: dict[str, Any], opts: RunOptions,
                 sinks: Sinks | None, extra: dict[str, Any], launch: Launch) -> LaunchResult:
    """Run a stepped operation: make the parent run, then run its steps."""
    label = run_label(op, opts.label, flags, default_label(flags))
    try:
        steps = parse_steps(project, op, flags)
        data_error = None
    except StepError as e:
        if e.exit_code == 2:
            raise  # bad input (a pipeline including itself, say): refused before any run exists
        steps, data_error = [], e  # Guild's way: the parent run is made, and fails with the error
    if data_error is None:
        resolve_step_flags(steps, op, extra, opts.force_flags)  # command-line errors: no run made
        if opts.needed:
            reuse = _reusable(store, op, flags, extra, lambda line: echo_line(sinks, line) if opts.explain else None)
            if reuse is not None:
                return LaunchResult(reuse, 0, reused=True)
    attrs = {"step_flags": extra, "force_flags": opts.force_flags}
    if opts.label is not None:
        attrs["step_label"] = label
    parent, held = prepare(store, project, op, flags, opts, None, label, extra_attrs=attrs)
    with supervise(parent, held):
        if opts.on_created:
            opts.on_created(parent)
        if data_error is not None:
            raise data_error
        if opts.stage:
            return LaunchResult(parent, 0)
        parent.start()
        return _Pipeline(store, project, parent, steps, opts, sinks, launch).run()


def _reusable(store: RunStore, op: OpDef, flags: dict[str, Any], extra: dict[str, Any],
              say: Callable[[str], None]) -> Run | None:
    """`--needed` for a pipeline: a completed run of `op` with the same flag
    values (and `STEP:FLAG` values), as Guild matches a pipeline by its flags."""
    from ..store.runindex import flags_key
    from ..store.select import RunFilter

    same = RunFilter(exact_ops=[op.fullname], statuses=["completed"], flags_key=flags_key(flags))
    for run in store.query(same):
        if flags_key(run.get("step_flags") or {}) == flags_key(extra):
            say(f"Reusing run {run.id}: same flags")
            return run
    say(f"No completed run of {op.fullname} with the same flags")
    return None


def resume_pipeline(store: RunStore, project: Project, op: OpDef, parent: Run, opts: RunOptions,
                    sinks: Sinks | None, launch: Launch, held: Any = None) -> LaunchResult:
    """Resume a stepped run: completed steps whose flags are unchanged stay, the others run again.
    `held` is the parent's lock when the caller took it already (starting a staged run)."""
    try:
        steps = plan(project, op, parent.flags, parent.get("step_flags") or {}, bool(parent.get("force_flags")))
    except BaseException:
        if held:
            held.release()
        raise
    with supervise(parent, held or lock(parent)):
        parent.clear_outcome()
        parent.record_supervisor()  # the supervisor now (pid and host): what `trk stop` signals
        parent.write_attr("restarted", now_us())
        if not parent.get("started"):
            parent.start()
        opts.label = parent.get("step_label")
        opts.tags = parent.tags
        return _Pipeline(store, project, parent, steps, opts, sinks, launch, resume=True).run()


class _Pipeline:
    """Runs the steps of one parent run, in order or as a DAG."""

    def __init__(self, store, project, parent: Run, steps: list[Step], opts: RunOptions, sinks, launch: Launch,
                 resume=False):
        self.launch = launch
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
        self.dag = any(s.needs for s in steps)
        self.reran: set[str] = set()  # steps a resume ran again: what follows them cannot be kept

    def run(self) -> LaunchResult:
        failed = self._run_dag() if self.dag else self._run_sequence()
        if failed is None:
            self.parent.finish(0)
            return LaunchResult(self.parent, 0)
        name, code, reason = failed
        if code is not None and code < 0 or reason == "terminated":
            self.parent.write_attr("error", reason)
            self.parent.terminate()
            return LaunchResult(self.parent, -2, error=reason)
        code = code if code and code > 0 else 1
        self.parent.fail(reason, code)
        return LaunchResult(self.parent, code, error=reason)

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
                            prefixed = self.sinks.prefixed(step.link) if self.sinks else None
                            running[pool.submit(self._run_step, step, prefixed)] = step
                if not running:
                    break
                try:
                    finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    self._stop(signal.SIGTERM)
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
        # Each program leads its own process group (see process.run_process):
        # signal the group, so a program's own children stop too.
        from .stop import signal_group

        self.stopping = True
        with self.lock:
            procs = list(self.procs.values())
        for proc in procs:
            signal_group(proc.pid, sig)

    def _keeps(self, step: Step, prev: Run) -> bool:
        """Whether a resume keeps a step's earlier run: completed, with the
        step's flags, its checks passing, and nothing it may use run again
        (in order: no step before it; in a DAG: none of its `needs`)."""
        if prev.status != "completed" or not _same_flags(prev, step) or _check(step, prev):
            return False
        with self.lock:
            return not (any(n in self.reran for n in step.needs) if self.dag else self.reran)

    def _run_step(self, step: Step, sinks):
        prev = linked_child(self.store, self.parent, step.link) if self.resume else None
        if prev is not None and self._keeps(step, prev):
            log.info(f"reusing {step.link}: {prev.id} (completed)")
            return None
        with self.lock:
            self.reran.add(step.link)
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
            link_child(self.parent, step.link, run)

        def started(proc) -> None:
            with self.lock:
                self.procs[step.link] = proc

        opts = RunOptions(label=label, tags=tags, needed=step.needed, parent=self.parent, step_name=step.link,
                          force_flags=self.opts.force_flags or step.force_flags, on_created=created,
                          on_start=started, max_parallel=self.opts.max_parallel, fail_fast=self.opts.fail_fast,
                          docker=self.opts.docker)
        # Guild's `isolate-runs` (default yes): the step's dependencies and
        # `--needed` see only this pipeline's runs; `no` leaves the scope the
        # pipeline itself has.
        isolated = not (isinstance(step.raw, dict) and step.raw.get("isolate-runs") in (False, "no"))
        store = ScopedStore.under(self.store, self.parent) if isolated else self.store
        try:
            result = self.launch(store, self.project, step.op, step.flags, opts, sinks, step.extra)
        except DependencyError as e:
            if isolated and "no suitable run" in e.message and not e.hint:
                e.hint = ("A step sees only the runs of its own pipeline (Guild's isolate-runs): run the upstream "
                          "operation as an earlier step, or give this step 'isolate-runs: no'.")
            raise
        finally:
            with self.lock:
                self.procs.pop(step.link, None)
        child = result.run
        if result.reused and prev is not None and child.id == prev.id:
            with self.lock:
                self.reran.discard(step.link)  # `--needed` chose the very run it had
        if result.error is not None:  # a nested pipeline failed: it already said why
            code = result.exit_code
            return (step.link, code if code > 0 else -2, f"step '{step.link}' failed: {result.error}")
        if result.reused:
            link_child(self.parent, step.link, child)
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


def _same_flags(run: Run, step: Step) -> bool:
    """Whether a step's earlier run had the flags the step has now (types
    included: 1 is not 1.0), so a resumed pipeline may keep it."""
    from ..store.runindex import flags_key

    if flags_key(run.flags) != flags_key(step.flags):
        return False
    return not (step.op is not None and step.op.is_stepped) or \
        flags_key(run.get("step_flags") or {}) == flags_key(step.extra)


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
            if not is_inside(run.dir, rel):
                return f"check path '{rel}' is outside the run directory"
            path = os.path.join(run.dir, rel)
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
