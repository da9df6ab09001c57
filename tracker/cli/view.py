"""`trk view`: a local web page of runs, comparisons and scalar plots."""

from __future__ import annotations

import os
import sys

import click

from .util import filter_options, run_filter, select_runs, store


def _desktop() -> bool:
    """True when a browser can be shown (a display, or macOS/Windows)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@click.command()
@click.argument("specs", nargs=-1, metavar="[RUN]...")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Another than 127.0.0.1 lets other machines see your runs.")
@click.option("--port", type=int, default=0, help="Port to listen on (default: a free port).")
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
@click.option("--write", is_flag=True,
              help="Allow labelling, tagging and deleting runs from the page (needs the URL's session token).")
@filter_options()
def view(specs, host, port, no_open, write, **kw):
    """Show runs in a local web page: the runs table, run pages with files and
    output, `trk compare`'s table and scalar plots. Stop with Ctrl-C.

    With RUNs (or filters), the page shows those runs only; otherwise every
    run, new runs as they appear. The page is read-only unless --write.
    The JSON API the page uses (/api/runs, /api/runs/ID, /api/compare,
    /api/scalars/ID) answers scripts too.
    """
    try:
        from tracker.web.app import ViewConfig
        from tracker.web.server import is_loopback, new_token, serve
    except ImportError as e:
        from tracker.errors import TrkError

        raise TrkError(f"trk view needs a web server library that is not installed ({e.name})",
                       "Install it with: pip install 'trk[view]'") from None

    st = store()
    filt = run_filter(kw)
    only = None
    if specs or any((filt.operations, filt.labels, filt.tags, filt.statuses)):
        only = [r.id for r in select_runs(st, specs, filt)]
        if not only:
            raise click.UsageError("no runs match")
    if not is_loopback(host):
        click.echo(f"trk: warning: serving on {host}: anyone who can reach this address can read these runs"
                   + (" and, with the URL's token, change them" if write else ""), err=True)
    cfg = ViewConfig(st.home, only, write, new_token() if write else None)

    def ready(url: str) -> None:
        click.echo(f"trk view at {url} (Ctrl-C to stop)")
        sys.stdout.flush()
        if not no_open and _desktop():
            import webbrowser

            webbrowser.open(url)

    serve(cfg, host=host, port=port, on_ready=ready)
