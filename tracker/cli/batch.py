"""`trk run` of a batch: preview the trials, confirm, run or stage them, and summarise."""

from __future__ import annotations

import sys

import click


def run_batch_cmd(st, project, op, assigned, files, opts, bopts, sinks, opspec, yes, preview, background, child):
    """Plan the batch `assigned` and `files` make, then preview, run or stage it."""
    from tracker.execution.batch import plan_batch, run_batch
    from tracker.execution.batch import preview as trial_rows

    from .queue import ProgressLine
    from .quickrun import setup_logging, stoppable
    from .run import _exit, _report, _start_in_background

    plan = plan_batch(op, assigned, files, bopts, opts.force_flags, opspec)
    if preview:
        from tabulate import tabulate

        rows = trial_rows(plan)
        click.echo(tabulate(rows[1:], headers=rows[0], tablefmt="plain", disable_numparse=True))
        return
    if not yes:
        verb = "stage trials for" if bopts.stage_trials else "run"
        click.echo(f"You are about to {verb} {op.fullname} {plan.describe()}")
        click.echo(f"  {plan.spec}")
        if not click.confirm("Continue?", default=True):
            sys.exit(1)
    if background:
        _start_in_background()
    setup_logging(sinks.stdout is None)  # `INFO: [trk] Running trial ...`, as Guild logs them
    created = []
    opts.on_created = (lambda r: (created.append(r), _report(r))) if child else created.append
    line = ProgressLine("trials")
    result = stoppable(lambda: run_batch(st, project, plan, opts, bopts, sinks, line),
                        lambda: created[0] if created else None)
    line.end()
    batch = result.run
    from .util import describe_progress, trial_counts

    # How the trials ended, as the batch saw each end (a listing of the index
    # would read every new trial again); asked of the index when it could not.
    counts = result.trials if result.trials is not None else trial_counts(st, batch.id)
    if bopts.stage_trials:
        click.echo(f"{op.fullname}+ staged {counts.get('staged', 0)} trial(s) as batch {batch.short_id}")
        click.echo("To start them, use 'trk queue run'")
    else:
        click.echo(f"Batch {batch.short_id}: {describe_progress(counts, len(plan.trials))}")
    _exit(result)
