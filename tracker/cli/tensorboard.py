"""`trk tensorboard`: the real TensorBoard over a logdir of selected runs."""

from __future__ import annotations

import click

from .util import filter_options, run_filter, select_runs, store


@click.command()
@click.argument("specs", nargs=-1, metavar="[RUN]...")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (127.0.0.1: this machine only).")
@click.option("--port", type=int, default=0, help="Port to listen on (default: a free port).")
@click.option("--logdir", type=click.Path(file_okay=False), help="Build the logdir here instead of a temporary dir.")
@filter_options()
def tensorboard(specs, host, port, logdir, **kw):
    """View runs in TensorBoard (all matching runs by default).

    Each run appears as `<short id> <operation> <label>`. Stop with Ctrl-C.
    """
    from tracker.views.tensorboard import serve

    st = store()
    runs = select_runs(st, specs, run_filter(kw))
    if not runs:
        raise click.UsageError("no runs to show")

    def ready(url: str) -> None:
        click.echo(f"TensorBoard {url} (Ctrl-C to stop)", err=False)

    serve(runs, host=host, port=port, logdir=logdir, on_ready=ready)
