"""The local queue: start staged runs N at a time, and the worker pool batches share.

A staged run is complete before it starts (flags, source, dependencies,
command); `trk queue run` starts every staged run, oldest staging first,
through `launch.relaunch` (the one lifecycle), N at a time in this process.
Two queues over the same runs never start one run twice: each start takes
the run's lock without waiting and checks it is still staged
(`launch.claim_staged`), so the other queue skips it. A queue killed with
SIGKILL leaves the runs it started `terminated` (their supervisor died) and
the rest `staged`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import TrkError
from ..store import Run, RunStore

COMPLETED, FAILED, SKIPPED, STOPPED = "completed", "failed", "skipped", "stopped"


@dataclass
class Progress:
    """Where a pool of runs stands: done, running, failed, skipped, elapsed and ETA."""

    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    skipped: int = 0
    started_at: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        """Seconds since the pool started."""
        return time.monotonic() - self.started_at

    @property
    def eta(self) -> float | None:
        """Seconds left at the pace so far (None before anything finished)."""
        finished = self.done + self.failed
        left = self.total - finished - self.skipped
        if not finished:
            return None
        return self.elapsed / finished * max(left, 0)


def default_jobs() -> int:
    """How many runs start at once by default: the CPU count."""
    return os.cpu_count() or 1


Task = Callable[[], str]  # runs one item; returns COMPLETED, FAILED, SKIPPED or STOPPED


def run_pool(tasks: list[Task], jobs: int, on_progress: Callable[[Progress], None] | None = None,
             stop_after_failure: bool = False) -> Progress:
    """Run `tasks` in order, `jobs` at a time, reporting progress as each starts
    and ends; Ctrl-C (or a failure, with `stop_after_failure`) starts no more."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from .stop import stop_on_signals

    if jobs < 1:
        raise TrkError(f"-j must be at least 1, not {jobs}", exit_code=2)
    progress = Progress(len(tasks))
    report = on_progress or (lambda p: None)
    lock = threading.Lock()
    pending = list(tasks)
    running: set = set()

    def one(task: Task) -> str:
        with lock:  # reported under the lock: lines come in the order the counts change
            progress.running += 1
            report(progress)
        try:
            outcome = task()
        except TrkError:
            outcome = FAILED
        with lock:
            progress.running -= 1
            if outcome == COMPLETED:
                progress.done += 1
            elif outcome == SKIPPED:
                progress.skipped += 1
            else:
                progress.failed += 1
            report(progress)
        return outcome

    halt = False
    if jobs == 1:  # in this thread: a Ctrl-C between programs lands here, where it can stop the loop
        with stop_on_signals() as interruption:
            for task in tasks:
                if interruption.stopping:
                    break
                try:
                    outcome = one(task)
                except KeyboardInterrupt:
                    break
                if outcome == STOPPED or (outcome == FAILED and stop_after_failure):
                    break
        return progress
    with stop_on_signals() as interruption, ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            halt = halt or interruption.stopping
            while pending and not halt and len(running) < jobs:
                running.add(pool.submit(one, pending.pop(0)))
            if not running:
                break
            try:
                finished, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:  # between programs: start nothing more
                halt = True
                continue
            for fut in finished:
                running.discard(fut)
                outcome = fut.result()
                if outcome == STOPPED or (outcome == FAILED and stop_after_failure):
                    halt = True
            if not finished:
                with lock:
                    report(progress)  # a tick: elapsed time moves on
    return progress


def staged_runs(store: RunStore) -> list[Run]:
    """Every staged run, oldest staging first (the order a queue starts them)."""
    from ..store.select import RunFilter

    runs = store.query(RunFilter(statuses=["staged"]))
    return sorted(runs, key=lambda r: (r.get("staged") or 0, r.id))


def run_queue(store: RunStore, jobs: int | None = None,
              on_progress: Callable[[Progress], None] | None = None) -> Progress:
    """Start every staged run, `jobs` at a time (default: CPUs), each with its
    own output in its run; runs another queue claims first are skipped."""
    from .launch import RunClaimed, RunOptions, relaunch
    from .process import Sinks

    def task_for(run: Run) -> Task:
        def start() -> str:
            if run.refresh_status() != "staged":
                return SKIPPED  # started meanwhile by `trk run --start` or another queue
            try:
                result = relaunch(store, run, RunOptions(), Sinks(), staged_only=True)
            except RunClaimed:
                return SKIPPED
            except TrkError as e:
                if "not staged" in e.message or "is running" in e.message:
                    return SKIPPED  # started meanwhile by `trk run --start` or another queue
                raise
            run.refresh_status()
            if result.exit_code < 0 or run.status == "terminated":
                return STOPPED
            return COMPLETED if result.exit_code == 0 else FAILED
        return start

    return run_pool([task_for(r) for r in staged_runs(store)], jobs or default_jobs(), on_progress)
