"""`trk ls`, `trk cat` and `trk select`: looking inside runs."""

from __future__ import annotations

import os
import sys

import click

from .util import filter_options, run_filter, select_runs, store


def _one_run(spec, kw, deleted=False):
    return select_runs(store(), [spec] if spec else [], run_filter(kw), default="latest", deleted=deleted)[0]


@click.command()
@click.argument("spec", required=False, metavar="[RUN]")
@click.option("-n", "--no-format", "names_only", is_flag=True, help="Print paths only, without the run directory header.")
@click.option("-a", "--all", "show_all", is_flag=True, help="Include hidden files and trk metadata (.trk).")
@click.option("-L", "--follow-links", is_flag=True, help="List the contents of linked directories.")
@click.option("-p", "--path", "sub", metavar="PATH", help="List only under PATH.")
@filter_options()
def ls(spec, names_only, show_all, follow_links, sub, **kw):
    """List the files of a run (the latest run when no RUN is given).

    Directories end in `/`. Linked directories (a pipeline's steps) are shown
    but not entered unless -L is given.
    """
    run = _one_run(spec, kw)
    root = run.dir
    if sub:
        root = os.path.join(run.dir, sub)
        if not os.path.realpath(root).startswith(os.path.realpath(run.dir)):
            raise click.UsageError(f"{sub} is outside the run directory")
    paths = list(_walk(root, show_all, follow_links))
    if not names_only:
        click.echo(f"{run.dir}:")
    for p in sorted(paths):
        click.echo(p if names_only else f"  {p}")


def _walk(root, show_all, follow_links, rel=""):
    try:
        entries = sorted(os.scandir(os.path.join(root, rel)), key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        if not show_all and e.name.startswith("."):
            continue
        path = os.path.join(rel, e.name)
        if e.is_dir():
            yield path + "/"
            if follow_links or not e.is_symlink():
                yield from _walk(root, show_all, follow_links, path)
        else:
            yield path


@click.command()
@click.argument("spec", required=False, metavar="[RUN]")
@click.option("-p", "--path", "path", metavar="PATH", help="File to show, relative to the run directory.")
@click.option("--output", is_flag=True, help="Show the run's output (stdout and stderr).")
@filter_options()
def cat(spec, path, output, **kw):
    """Show a file of a run, or its output (the latest run when no RUN is given)."""
    if not path and not output:
        raise click.UsageError("give -p PATH or --output")
    run = _one_run(spec, kw)
    if output:
        target = run.output_path
    else:
        target = os.path.realpath(os.path.join(run.dir, path))
        if not (target + os.sep).startswith(os.path.realpath(run.dir) + os.sep) and not os.path.islink(os.path.join(run.dir, path)):
            raise click.UsageError(f"{path} is outside the run directory")
    try:
        with open(target, "rb") as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                sys.stdout.buffer.write(chunk)
    except FileNotFoundError:
        from tracker.errors import TrkError

        raise TrkError(f"{'run has no output' if output else path + ' does not exist'} in run {run.short_id}",
                       f"Try 'trk ls {run.short_id}' to list its files.") from None
    except IsADirectoryError:
        raise click.UsageError(f"{path} is a directory: try 'trk ls {run.short_id} -p {path}'") from None
    sys.stdout.buffer.flush()


@click.command()
@click.argument("spec", required=False, metavar="[RUN]")
@click.option("--path", "show_path", is_flag=True, help="Print the run directory.")
@click.option("--short-id", is_flag=True, help="Print the short run id.")
@click.option("--deleted", is_flag=True, help="Select among deleted runs.")
@filter_options()
def select(spec, show_path, short_id, deleted, **kw):
    """Print the id of a run (the latest run when no RUN is given)."""
    run = _one_run(spec, kw, deleted=deleted)
    if show_path:
        click.echo(os.path.realpath(run.dir))
    elif short_id:
        click.echo(run.short_id)
    else:
        click.echo(run.id)
