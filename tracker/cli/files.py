"""`trk ls`, `trk cat` and `trk select`: looking inside runs."""

from __future__ import annotations

import os
import sys

import click

from . import completion

from tracker.fsutil import is_inside

from .util import filter_options, run_filter, select_runs, store


def _one_run(spec, kw, deleted=False, st=None):
    return select_runs(st or store(), [spec] if spec else [], run_filter(kw), default="latest", deleted=deleted)[0]


def _inside_run(run, path, allowed):
    """The real path of `path` in `run`; a path leading out of the run (but
    through the links trk made: step links, dependency links) is refused."""
    from tracker.fsutil import PathEscape, resolve_inside

    try:
        return resolve_inside(run.dir, path, "path", f"run {run.short_id}", allowed)
    except PathEscape as e:
        e.hint = f"Paths are relative to the run directory; 'trk ls {run.short_id}' lists its files."
        raise


def _allowed(st, run):
    from tracker.execution.runlinks import run_roots

    return run_roots(st, run)


@click.command()
@click.argument("spec", required=False, metavar="[RUN]", shell_complete=completion.runs)
@click.option("-n", "--no-format", "names_only", is_flag=True, help="Print paths only, without the run directory header.")
@click.option("-a", "--all", "show_all", is_flag=True, help="Include hidden files and trk metadata (.trk).")
@click.option("-L", "--follow-links", is_flag=True, help="List the contents of linked directories.")
@click.option("-p", "--path", "sub", metavar="PATH", help="List only under PATH.")
@filter_options()
def ls(spec, names_only, show_all, follow_links, sub, **kw):
    """List the files of a run (the latest run when no RUN is given).

    Directories end in `/`. Linked directories (a pipeline's steps) are shown
    but not entered unless -L is given; -L enters only links trk made (steps,
    dependencies), and marks links out of the run and symlink loops.
    """
    st = store()
    run = _one_run(spec, kw, st=st)
    allowed = _allowed(st, run) if sub or follow_links else []
    root = run.dir
    if sub:
        _inside_run(run, sub, allowed)
        root = os.path.join(run.dir, sub)
    ancestors = {os.path.realpath(root)} if follow_links else None
    paths = list(_walk(root, "", show_all, run.dir, allowed, ancestors))
    if not names_only:
        click.echo(f"{run.dir}:")
    for p in sorted(paths):
        click.echo(p if names_only else f"  {p}")


def _walk(root, rel, show_all, run_dir, allowed, ancestors):
    """Paths under `root`/`rel`; `ancestors` (the real dirs above, when
    following links) stops symlink loops."""
    try:
        entries = sorted(os.scandir(os.path.join(root, rel)), key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        if not show_all and e.name.startswith("."):
            continue
        path = os.path.join(rel, e.name)
        try:
            is_dir = e.is_dir()
        except OSError:  # ELOOP: a link to itself, or a ring of links
            yield f"{path} -> (symlink loop)"
            continue
        if not is_dir:
            yield path
            continue
        if ancestors is None:  # not following links: a real dir cannot loop
            yield path + "/"
            if not e.is_symlink():
                yield from _walk(root, path, show_all, run_dir, allowed, None)
            continue
        real = os.path.realpath(e.path)
        if real in ancestors:
            yield f"{path}/ -> (symlink loop)"
        elif e.is_symlink() and not is_inside(run_dir, e.path, allowed):
            yield f"{path}/ -> (outside the run)"
        else:
            yield path + "/"
            yield from _walk(root, path, show_all, run_dir, allowed, ancestors | {real})


@click.command()
@click.argument("spec", required=False, metavar="[RUN]", shell_complete=completion.runs)
@click.option("-p", "--path", "path", metavar="PATH", help="File to show, relative to the run directory.")
@click.option("--output", is_flag=True, help="Show the run's output (stdout and stderr).")
@click.option("-f", "--follow", is_flag=True,
              help="Follow the output of a running run (a stepped run's: each step's) until it ends.")
@filter_options()
def cat(spec, path, output, follow, **kw):
    """Show a file of a run, or its output (the latest run when no RUN is given)."""
    if follow and path:
        raise click.UsageError("-f follows the run's output: give it without -p")
    if not path and not output and not follow:
        raise click.UsageError("give -p PATH, --output or -f")
    st = store()
    run = _one_run(spec, kw, st=st)
    if follow:
        _follow(st, run)
        return
    if output:
        target = run.output_path
    else:
        target = _inside_run(run, path, _allowed(st, run))
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
@click.argument("spec", required=False, metavar="[RUN]", shell_complete=completion.runs)
@filter_options()
def watch(spec, **kw):
    """Follow a run's output until it ends (the latest run when no RUN is given).

    The same as `trk cat -f`; a stepped run's output is its steps' in turn.
    """
    st = store()
    _follow(st, _one_run(spec, kw, st=st))


def _follow(st, run) -> None:
    """Print the run's output as it comes, then how the run ended."""
    from tracker.views.follow import follow, fresh

    try:
        for chunk in follow(run, st):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    except KeyboardInterrupt:  # stop following; the run goes on
        click.echo(f"\n(run {run.short_id} is still {fresh(run).status})", err=True)
        sys.exit(130)
    ended = fresh(run)
    status, code = ended.status, ended.get("exit_status")
    click.echo(f"run {run.short_id} {status}" + (f" (exit {code})" if code is not None else ""), err=True)


@click.command()
@click.argument("spec", required=False, metavar="[RUN]", shell_complete=completion.runs)
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
