"""`trk queue`: start staged runs N at a time (`run`), or list them (`list`);
and the live progress line batches and queues print."""

from __future__ import annotations

import sys

import click

from .util import run_lines, store


class ProgressLine:
    """Prints a pool's progress to stderr: one line redrawn in place on a
    terminal, else a line each time a run finishes."""

    def __init__(self, what: str = "runs"):
        self.what = what
        self.tty = sys.stderr.isatty()
        self.last_finished = -1
        self.drawn = False

    def __call__(self, p) -> None:
        """Show `p` (a queue.Progress)."""
        from tracker.display import format_duration

        finished = p.done + p.failed + p.skipped
        if not self.tty and finished == self.last_finished:
            return
        self.last_finished = finished
        eta = "?" if p.eta is None else format_duration(int(p.eta * 1e6))
        line = (f"{finished}/{p.total} {self.what}: {p.done} done, {p.running} running, {p.failed} failed"
                + (f", {p.skipped} skipped" if p.skipped else "")
                + f", elapsed {format_duration(int(p.elapsed * 1e6))}, ETA {eta}")
        if self.tty:
            click.echo("\r\033[K" + line, nl=False, err=True)
            self.drawn = True
        else:
            click.echo(line, err=True)

    def end(self) -> None:
        """End the redrawn line (on a terminal)."""
        if self.drawn:
            click.echo("", err=True)


@click.group()
def queue():
    """Start staged runs (`trk run OP --stage`, `--stage-trials`) N at a time."""


@queue.command("run")
@click.option("-j", "--jobs", type=int, help="Runs started at once (default: the CPU count).")
def run_cmd(jobs):
    """Start every staged run, oldest first, N at a time.

    Each run keeps its output in its own run directory (`trk cat --output
    RUN`); a progress line shows what is done, running and failed. Runs
    another queue starts first are skipped, so two queues never start a run
    twice.
    """
    from tracker.execution.queue import run_queue
    from tracker.execution.stop import stop_on_signals

    st = store()
    line = ProgressLine("staged runs")
    with stop_on_signals() as stop:
        progress = run_queue(st, jobs, line)
    line.end()
    if not progress.total:
        click.echo("There are no staged runs.")
        return
    click.echo(f"Started {progress.total - progress.skipped} staged run(s): {progress.done} completed, "
               f"{progress.failed} failed" + (f", {progress.skipped} skipped (started elsewhere)"
                                              if progress.skipped else ""))
    if stop.stopping:
        sys.exit(128 + stop.signum)
    if progress.failed:
        sys.exit(1)


@queue.command("list")
def list_cmd():
    """List staged runs in the order `trk queue run` starts them."""
    from tracker.execution.queue import staged_runs

    runs = staged_runs(store())
    for line in run_lines(runs, lambda r: r.short_id):
        click.echo(line)
