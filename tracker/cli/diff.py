"""`trk diff`: what differs between two runs."""

from __future__ import annotations

import click

from . import completion

from .util import filter_options, run_filter, select_runs, store


@click.command()
@click.argument("first", required=False, metavar="[RUN1]", shell_complete=completion.runs)
@click.argument("second", required=False, metavar="[RUN2]", shell_complete=completion.runs)
@filter_options()
def diff(first, second, **kw):
    """Show how RUN2 differs from RUN1: flags, source files (unified diff),
    dependencies and scalars. Without runs: the two latest runs."""
    from tracker.views.diff import diff_runs

    st = store()
    filt = run_filter(kw)
    if first and second:
        a = select_runs(st, [first], filt)[0]
        b = select_runs(st, [second], filt)[0]
    elif first or second:
        raise click.UsageError("give two runs, or none for the two latest")
    else:
        runs = select_runs(st, ["1:2"], filt)
        if len(runs) < 2:
            raise click.UsageError("there are fewer than two runs to compare")
        b, a = runs[0], runs[1]
    for line in diff_runs(st, a, b):
        click.echo(line)
