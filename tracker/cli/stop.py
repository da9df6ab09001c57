"""`trk stop`: stop running runs."""

from __future__ import annotations

import sys

import click

from .util import confirm, filter_options, run_filter, run_lines, select_runs, store


@click.command()
@click.argument("specs", nargs=-1, metavar="[RUN]...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--timeout", type=click.FloatRange(min=0), default=10.0, show_default=True, metavar="SECONDS",
              help="How long a program has to end after SIGTERM before it gets SIGKILL.")
@filter_options()
def stop(specs, yes, timeout, **kw):
    """Stop running runs (all running runs when no RUN is given).

    A run's program gets SIGTERM, and SIGKILL if it has not ended after
    --timeout seconds; the run is recorded as terminated. A pipeline stops
    with its running steps (they share one supervising trk process, so
    stopping a step stops its pipeline too).
    """
    from tracker.execution.stop import stop_runs

    st = store()
    filt = run_filter(kw)
    if not specs and not filt.statuses:
        filt.statuses = ["running"]  # ask the index for running runs, not every run
    chosen = select_runs(st, specs, filt)
    running = [r for r in chosen if r.status == "running"]
    for r in chosen:
        if specs and r.status != "running":
            click.echo(f"trk: run {r.short_id} is not running ({r.status})", err=True)
    if not running:
        click.echo("Nothing to stop.")
        return
    if not yes:
        click.echo("You are about to stop the following runs:")
        for line in run_lines(running, lambda r: "-"):
            click.echo(f"  {line}")
        if not confirm(f"Stop {len(running)} run(s)?", yes):
            return
    failed = False
    for outcome in stop_runs(running, timeout):
        short = outcome.run.short_id
        if outcome.elsewhere is not None:
            failed = True
            click.echo(f"trk: run {short} is running on {outcome.elsewhere}, not here: "
                       f"stop it there (trk stop {short} on that machine)", err=True)
        elif outcome.status == "running":
            failed = True
            click.echo(f"trk: run {short} is still running after SIGKILL of its programs", err=True)
        elif outcome.killed:
            click.echo(f"Killed run {short} (still running {timeout:g} s after SIGTERM): {outcome.status}")
        else:
            click.echo(f"Stopped run {short}: {outcome.status}")
    if failed:
        sys.exit(1)
