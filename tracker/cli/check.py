"""`trk check`: look the run store over, and rebuild its index."""

from __future__ import annotations

import click

from .util import progress_bar, store, warn_store


@click.command()
@click.option("--reindex", is_flag=True, help="Read every run again into the run index.")
def check(reindex):
    """Check the run store.

    Removes half-made runs that a killed trk process left, brings the run
    index up to date (with --reindex: reads every run again, for a store
    changed in ways trk cannot see, such as attrs edited in place), and
    reports runs whose metadata is damaged. On a terminal, reading many runs
    shows a progress bar.
    """
    st = store()
    report = st.check(reindex=reindex, progress=progress_bar("Reading runs"))
    warn_store(st)
    click.echo(f"{report['runs']} run(s), {report['deleted']} deleted")
    if report["bad"]:
        click.echo(f"{len(report['bad'])} run(s) with damaged metadata (listed as error):")
        for run in report["bad"]:
            click.echo(f"  {run.short_id}  {run.error}")
    else:
        click.echo("No damaged runs.")
