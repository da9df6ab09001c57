"""`trk tensorboard`: the real TensorBoard over a logdir of selected runs."""

from __future__ import annotations

import click

from .util import filter_options, run_filter, select_runs, store


@click.command()
@click.argument("specs", nargs=-1, metavar="[RUN]...")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (127.0.0.1: this machine only).")
@click.option("--port", type=int, default=0, help="Port to listen on (default: a free port).")
@click.option("--logdir", type=click.Path(file_okay=False), help="Build the logdir here instead of a temporary dir.")
@click.option("--refresh", type=click.FloatRange(min=0.5), default=5, show_default=True, metavar="SECONDS",
              help="How often runs started, finished or deleted since are brought into view.")
@click.option("--no-open", is_flag=True, help="Do not open a web browser (one opens only on a desktop).")
@filter_options()
def tensorboard(specs, host, port, logdir, refresh, no_open, **kw):
    """View runs in TensorBoard (all matching runs by default).

    Each run appears as `<short id> <operation> <label>`. Without RUN
    arguments the view stays current: runs started or deleted after it
    launched appear and disappear within --refresh seconds. Stop with Ctrl-C.
    """
    from tracker.views.tensorboard import serve

    st = store()
    filt = run_filter(kw)
    if specs:
        runs = select_runs(st, specs, filt)
        if not runs:
            raise click.UsageError("no runs to show")
    else:
        def runs():
            st.rescan()  # runs may have come or gone since
            return st.query(filt)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"trk: warning: TensorBoard listens on {host}: other machines can see these runs", err=True)

    def ready(url: str) -> None:
        click.echo(f"TensorBoard {url} (Ctrl-C to stop)", err=False)
        if not no_open and _desktop():
            import webbrowser

            webbrowser.open(url)

    serve(runs, host=host, port=port, logdir=logdir, on_ready=ready, refresh=refresh)


def _desktop() -> bool:
    """Whether a browser can be shown here (a display, or macOS)."""
    import os
    import sys

    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
