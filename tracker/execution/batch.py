"""Batch runs: a parent run whose children are its trials, like a pipeline's steps.

`plan_batch` turns `trk run OP` assignments with lists, ranges and batch
files into trials, each with its flags resolved and checked (a bad value
stops the batch before any run is made); `run_batch` makes the batch run
(`OP+`, or `OP+random`, as Guild names it), then launches each trial through
`launch` with the batch as its parent and links it into the batch's
directory by run id. Trials run in order, or N at a time (`jobs`); with
`stage_trials` they are staged for `trk queue run`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import TrkError
from ..project.loader import OpDef, Project
from ..store import Run, RunStore
from .lifecycle import LaunchResult, RunOptions

log = logging.getLogger("trk")
STAGE_JOBS = 4  # trials staged at once


@dataclass
class BatchOptions:
    """How to run a batch, beyond its trials' own options (Guild's batch options)."""

    optimizer: str | None = None
    max_trials: int | None = None
    random_seed: int | None = None
    stage_trials: bool = False
    fail_on_trial_error: bool = False
    jobs: int = 1
    launch: Callable[..., LaunchResult] | None = None  # runs one trial: `launch` unless Dask submits it
    label: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class Trial:
    """One trial: the values that make it one (`assigns`) and its resolved flags."""

    assigns: dict[str, Any]
    flags: dict[str, Any]
    extra: dict[str, Any]


@dataclass
class BatchPlan:
    """The trials of a batch, and how they were made."""

    op: OpDef
    optimizer: str
    seed: int
    spec: str  # the batch values as given, the batch run's default label
    trials: list[Trial]

    def describe(self) -> str:
        """`as a batch (4 trials)` / `with random search (20 trials)`, as Guild says it."""
        n = len(self.trials)
        how = "as a batch" if self.optimizer == "grid" else "with random search"
        return f"{how} ({n} trial{'s' if n != 1 else ''})"


def plan_batch(op: OpDef, assigned: dict[str, Any], files: list[str], bopts: BatchOptions,
               force_flags: bool = False, help_cmd: str | None = None) -> BatchPlan | None:
    """The trials `assigned` (parsed with batch values) and batch `files` make;
    None when they make no batch (one plain run)."""
    from ..project.flags import format_value
    from ..project.resolve import resolve_flags
    from ..project.trials import expand, read_batch_file, split_batch

    _, batch = split_batch(assigned)
    if not batch and not files and bopts.optimizer is None:
        return None
    if bopts.max_trials is not None and bopts.max_trials < 1:
        raise TrkError(f"--max-trials must be at least 1, not {bopts.max_trials}", exit_code=2)
    file_trials = [t for path in files for t in read_batch_file(path)]
    seed = bopts.random_seed if bopts.random_seed is not None else random.randrange(1 << 31)
    optimizer, expanded = expand(assigned, file_trials, bopts.optimizer, bopts.max_trials, seed)
    trials = []
    for values in expanded:
        flags, extra = resolve_flags(op, values, force_flags=force_flags, help_cmd=help_cmd)
        trials.append(Trial({k: v for k, v in values.items()}, flags, extra))
    words = [f"{k}={v if isinstance(v, str) else format_value(v)}" for k, v in sorted(batch.items())]
    spec = " ".join(words + [f"@{p}" for p in files])
    return BatchPlan(op, optimizer, seed, spec, trials)


def preview(plan: BatchPlan) -> list[list[str]]:
    """Rows of the trials table (`#` then each flag a trial sets), as Guild's --print-trials."""
    from ..project.flags import format_value

    names = sorted({n for t in plan.trials for n in t.flags})
    rows = [["#"] + names]
    for i, trial in enumerate(plan.trials, 1):
        rows.append([str(i)] + [format_value(trial.flags[n]) if n in trial.flags else "" for n in names])
    return rows


def run_batch(store: RunStore, project: Project, plan: BatchPlan, opts: RunOptions, bopts: BatchOptions,
              sinks: Any = None, on_progress: Callable[[Any], None] | None = None) -> LaunchResult:
    """Make the batch run, then launch (or stage) its trials under it."""
    from .lifecycle import prepare, supervise

    op = plan.op
    batch_op = OpDef(op.model, f"{op.name}+{'' if plan.optimizer == 'grid' else plan.optimizer}",
                     {"sourcecode": False}, {})  # the batch itself runs no program: nothing to snapshot
    label = bopts.label if bopts.label is not None else plan.spec
    attrs = {"batch": {"proto": op.fullname, "optimizer": plan.optimizer, "trials": len(plan.trials),
                       "max_trials": bopts.max_trials, "random_seed": plan.seed,
                       "stage_trials": bopts.stage_trials, "fail_on_trial_error": bopts.fail_on_trial_error}}
    parent, held = prepare(store, project, batch_op, {}, RunOptions(label=label, tags=list(bopts.tags)), None,
                           label, extra_attrs=attrs)
    with supervise(parent, held):
        if opts.on_created:
            opts.on_created(parent)
        parent.start()
        return _Trials(store, project, parent, plan, opts, bopts, sinks).run(on_progress)


class _Trials:
    """Launches the trials of one batch run, in order or N at a time."""

    def __init__(self, store, project, parent: Run, plan: BatchPlan, opts: RunOptions, bopts: BatchOptions, sinks):
        self.store, self.project, self.parent, self.plan = store, project, parent, plan
        self.opts, self.bopts, self.sinks = opts, bopts, sinks
        self.first_error: tuple[int, str] | None = None
        self.ended: list[str] = []  # each trial's status as it ended (list.append: one at a time)

    def run(self, on_progress) -> LaunchResult:
        from .queue import run_pool

        tasks = [lambda t=t, i=i: self._one(i, t) for i, t in enumerate(self.plan.trials, 1)]
        jobs = self.bopts.jobs
        if self.bopts.stage_trials and len(tasks) > 20:
            # Staging is file writes, no program: a few at a time hide the file system's latency.
            jobs = max(jobs, STAGE_JOBS)
        progress = run_pool(tasks, jobs, on_progress if self.bopts.jobs > 1 else None,
                            stop_after_failure=self.bopts.fail_on_trial_error)
        finished = progress.done + progress.failed + progress.skipped
        counts: dict[str, int] = {}
        for status in self.ended:
            counts[status] = counts.get(status, 0) + 1
        if finished < progress.total and not (self.bopts.fail_on_trial_error and self.first_error):
            self.parent.write_attr("error", "terminated")
            self.parent.terminate()
            return LaunchResult(self.parent, -2, error="batch terminated", trials=counts)
        if self.bopts.fail_on_trial_error and self.first_error:
            code, reason = self.first_error
            self.parent.fail(reason, code)
            return LaunchResult(self.parent, code, error=f"stopping batch because a trial failed: {reason}",
                                trials=counts)
        self.parent.finish(0)  # as in Guild, a batch completes though trials failed (see its trials)
        return LaunchResult(self.parent, 0, trials=counts)

    def _one(self, index: int, trial: Trial) -> str:
        from .launch import launch
        from .lifecycle import link_child
        from .process import Sinks
        from .queue import COMPLETED, FAILED, STOPPED

        quiet = self.bopts.jobs > 1  # parallel trials: each keeps its output in its run; a progress line shows
        staging_log = self.bopts.stage_trials and len(self.plan.trials) <= 20  # 1,000 "Staging" lines help nobody
        verb = "Staging" if self.bopts.stage_trials else "Running"

        made: list[Run] = []

        def created(run: Run) -> None:
            made.append(run)
            link_child(self.parent, run.id, run)  # Guild links a trial by its run id
            if not quiet and (staging_log or not self.bopts.stage_trials):
                log.info(f"{verb} trial {index}/{len(self.plan.trials)} {run.short_id}: {self.plan.op.fullname} "
                         f"({_describe(trial.flags)})")

        o = self.opts
        topts = RunOptions(label=o.label, tags=list(o.tags), stage=self.bopts.stage_trials, force_flags=o.force_flags,
                           needed=o.needed, explain=o.explain, parent=self.parent, dep_specs=dict(o.dep_specs),
                           max_parallel=o.max_parallel, fail_fast=o.fail_fast, on_created=created, docker=o.docker)
        try:
            result = (self.bopts.launch or launch)(self.store, self.project, self.plan.op, trial.flags, topts,
                                                   Sinks() if quiet else self.sinks, trial.extra)
        except TrkError as e:
            if made:  # made, then failed (an unmet dependency): its run says how
                self.ended.append(made[0].refresh_status())
            self._failed(1, f"trial {index}: {e.message}")
            return FAILED
        if not result.reused and result.run is not None and result.run.parent == self.parent.id:
            self.ended.append(result.run.refresh_status())
        if result.reused:
            link_child(self.parent, result.run.id, result.run)
            return COMPLETED
        if result.exit_code < 0:
            return STOPPED
        if result.exit_code != 0:
            why = result.error or f"exit status {result.exit_code}"
            self._failed(result.exit_code, f"trial {index} ({result.run.short_id}) failed: {why}")
            return FAILED
        return COMPLETED

    def _failed(self, code: int, reason: str) -> None:
        if not self.bopts.jobs > 1:
            log.error(reason)
        if self.first_error is None:
            self.first_error = (code if code > 0 else 1, reason)


def _describe(flags: dict[str, Any]) -> str:
    from ..project.flags import format_assigns

    return format_assigns({k: v for k, v in flags.items() if v is not None})
