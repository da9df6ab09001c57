"""`trk runs`: list runs, and its subcommands rm, deleted, restore, purge,
info, label and tag."""

from __future__ import annotations

import json
import re

import click

from . import completion

from .util import (RUNNING_WIDTH, batch_filter, batch_label, batch_option, colour_status, colour_wanted, confirm,
                   elapsed_seconds, filter_options, fmt_option, is_batch_op, join_cells, line_cells, run_filter,
                   run_lines, select_runs, store, warn_store)


# What a word may be to be taken as a run spec: an index, a range, an id prefix (hex).
RUN_SPEC = re.compile(r"^(\d*:\d*|[0-9a-fA-F]+)$")

# Guild's names for `trk runs` subcommands, and Guild's `runs` commands that
# are trk's top-level ones.
ALIASES = {"delete": "rm"}
ELSEWHERE = {"diff": ("tracker.cli.diff", "diff"), "stop": ("tracker.cli.stop", "stop")}


class DefaultListGroup(click.Group):
    """`trk runs ARGS` means `trk runs list ARGS` unless ARGS names a
    subcommand; a word that can be no run spec is an unknown command."""

    def parse_args(self, ctx, args):
        """Treat run specs and options that name no subcommand as arguments of `list`."""
        word = args[0] if args else None
        if word is not None and not self._known(word) and not word.startswith("-") and not RUN_SPEC.match(word):
            from .main import GUILD_ONLY, unknown_command

            guild_runs = ("comment", "export", "import", "mark", "merge", "publish", "pull", "push")
            raise unknown_command(ctx, word, list(self.commands) + list(ALIASES) + list(ELSEWHERE),
                                  {k: GUILD_ONLY[k] for k in guild_runs})
        if word is None or not self._known(word) and word not in ("-h", "--help"):
            args = ["list"] + list(args)
        return super().parse_args(ctx, args)

    def _known(self, name: str) -> bool:
        return name in self.commands or name in ALIASES or name in ELSEWHERE

    def get_command(self, ctx, name):
        """A subcommand, by trk's name or Guild's (`delete`, `diff`, `stop`)."""
        if name in ELSEWHERE:
            import importlib

            module, attr = ELSEWHERE[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, ALIASES.get(name, name))

    def format_commands(self, ctx, formatter):
        """List subcommands, Guild's names beside trk's."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.commands[name]
            names = ", ".join([name] + [a for a, n in ALIASES.items() if n == name])
            rows.append((names, cmd.get_short_help_str(limit=formatter.width - 6 - len(names))))
        rows += [(name, f"Same as 'trk {name}'.") for name in sorted(ELSEWHERE)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=DefaultListGroup)
def runs():
    """List, delete, restore and inspect runs.

    Without a subcommand, `trk runs` lists runs (see `trk runs list --help`).
    Runs are selected by index (`1`), range (`2:5`) or id prefix.
    """


def _listing(deleted: bool):
    @click.argument("specs", nargs=-1, metavar="[RUN]...", shell_complete=completion.runs)
    @click.option("-s", "--short", is_flag=True, help="Omit the start time.")
    @click.option("-n", "--limit", type=int, default=None, help="Show at most N runs (default 20).")
    @click.option("-a", "--all", "show_all", is_flag=True, help="Show all runs.")
    @click.option("--tree", is_flag=True,
                  help="Show step runs under their pipeline, and under each run the runs it requires (<-).")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print runs as JSON (times as ISO-8601, with each run's last scalar values).")
    @click.option("--no-color", is_flag=True,
                  help="No colours (also when $NO_COLOR is set, not on a terminal, or with --fmt latex).")
    @fmt_option()
    @click.option("-d", "--deleted", "show_deleted", is_flag=True, hidden=deleted,
                  help="Show deleted runs (as 'trk runs deleted' does).")
    @batch_option()
    @filter_options()
    def listing(specs, short, limit, show_all, tree, as_json, no_color, fmt, show_deleted, batch, **kw):
        trash = deleted or show_deleted
        st = store()
        filt = batch_filter(st, run_filter(kw), batch)
        shown = None if show_all else (limit if limit is not None else 20)
        if specs:
            from tracker.store.select import select_positions

            _check_words(st, filt, specs, trash)
            chosen = select_positions(st, filt, specs, deleted=trash)[:shown]
            listed = [run for _, run in chosen]
            index = {run.id: i for i, run in chosen}
        elif show_all and not (tree or as_json or fmt):
            _stream(st, filt, trash, short, colour_wanted(no_color))
            return
        else:
            listed = st.query(filt, deleted=trash, limit=shown)
            index = {r.id: i + 1 for i, r in enumerate(listed)}
        warn_store(st)
        if as_json:
            from tracker.views.info import scalars_of
            from tracker.views.runview import json_record

            scalars = scalars_of(st, listed) if listed else {}
            click.echo(json.dumps([dict(json_record(r, scalars.get(r.id, {})), index=index[r.id], **_elapsed(r))
                                   for r in listed], indent=2, default=str))
            return
        if tree:
            listed = _tree_order(st, listed)
        depth_of = (lambda r: getattr(r, "_depth", 0)) if tree else None
        if fmt:
            _print_table(listed, index, short, depth_of, st, fmt, fmt != "latex" and colour_wanted(no_color))
        else:
            for line in run_lines(listed, lambda r: index.get(r.id, r.id[:8]), short=short, depth_of=depth_of, st=st,
                                  colour=colour_wanted(no_color)):
                click.echo(line)
        if not specs and (limit is None or not listed):  # `-n N` asked for N: no count then
            _say_how_many(st, filt, trash, len(listed))

    return listing


def _elapsed(run) -> dict:
    """For JSON: a running run's `elapsed` seconds since it started."""
    return {"elapsed": elapsed_seconds(run.sort_key)} if run.status == "running" and run.sort_key else {}


def _print_table(listed, index, short, depth_of, st, fmt: str, colour: bool) -> None:
    """The listing as a tabulate table (`--fmt`): a header row, then a row a run."""
    from tabulate import tabulate

    headers = ["#", "operation"] + ([] if short else ["started"]) + ["status", "label"]
    rows = [line_cells(index.get(r.id, r.id[:8]), ("  " * depth_of(r) if depth_of else "") + r.opspec, r.sort_key,
                       r.status, r.tags, batch_label(st, r.id, r.opspec, r.label, r), short) for r in listed]
    at = headers.index("status")
    if colour:  # tabulate measures cells without their colour codes
        for row in rows:
            row[at] = colour_status(row[at])
    text = tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
    click.echo("\n".join(line.rstrip() for line in text.splitlines()))


def _say_how_many(st, filt, deleted: bool, shown: int) -> None:
    """On stderr, so a script reading the lines never sees it: that there are
    no runs (and how to make one), or that only the newest were shown."""
    if shown == 0:
        filtered = st.count(None, deleted=deleted) > 0  # there are runs: the filters left none
        if deleted:
            click.echo("trk: no deleted runs" + (" match" if filtered else ""), err=True)
        elif filtered:
            click.echo("trk: no runs match", err=True)
        else:
            click.echo("trk: no runs yet: start one with 'trk run OP' ('trk operations' lists the operations)",
                       err=True)
        return
    total = st.count(filt, deleted=deleted)
    if total > shown:
        click.echo(f"({shown} of {total} runs shown; -a for all)", err=True)


def _check_words(st, filt, specs, deleted: bool) -> None:
    """A spec with letters that is no run's id prefix may be a mistyped
    command (`trk runs dead`): say it is neither, with the nearest commands."""
    from tracker.errors import RunSpecError

    for spec in specs:
        if spec.isdigit() or ":" in spec or st.by_prefix(spec, filt, deleted=deleted, limit=1):
            continue
        import difflib

        close = difflib.get_close_matches(spec, sorted(list(runs.commands) + list(ALIASES) + list(ELSEWHERE)), n=3)
        hint = f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        where = "deleted run" if deleted else "run"
        raise RunSpecError(f"no {where} has an id starting with '{spec}', and 'trk runs {spec}' is not a command",
                           hint + "Try 'trk runs' to list runs or 'trk runs --help' for the commands.")


def _stream(st, filt, deleted: bool, short: bool, colour: bool = False) -> None:
    """`trk runs -a`: print lines as rows are read, a page at a time, laid
    out as `run_lines` does, with column widths from the index."""
    op_width, status_width = st.widths(filt, deleted=deleted)
    if not deleted and (not filt.statuses or "running" in filt.statuses):
        from tracker.records import replace

        if st.count(replace(filt, statuses=["running"])):  # live runs show their elapsed time
            status_width = max(status_width, RUNNING_WIDTH)
    index_width = len(f"[{st.count(filt, deleted=deleted)}]")
    widths = [index_width, op_width] + ([] if short else [19]) + [status_width, 0]
    page: list[str] = []
    for n, (run_id, op, key, status, label, tags) in enumerate(st.listing(filt, deleted=deleted), 1):
        if is_batch_op(op) and not deleted:
            label = batch_label(st, run_id, op, label)
        page.append(join_cells(line_cells(n, op, key, status, tags, label, short), widths,
                               (2 if short else 3) if colour else None))
        if len(page) >= 1000:
            click.echo("\n".join(page))  # a page per write: 100,000 echo calls cost more than the rest
            page.clear()
    if page:
        click.echo("\n".join(page))
    warn_store(st)


def _tree_order(st, runs):
    """Steps under their pipeline; under each run, a `<-` line per run it
    requires (its dependency edges; the upstream run keeps its own place)."""
    from tracker.store.record import RunRecord
    from tracker.views.lineage import Lineage

    lineage = Lineage(st)
    ids = {r.id for r in runs}
    children: dict = {}
    for r in runs:
        children.setdefault(r.parent if r.parent in ids else None, []).append(r)
    out = []

    def walk(parent_id, depth):
        for r in sorted(children.get(parent_id, []), key=lambda r: r.sort_key, reverse=parent_id is None):
            r._depth = depth
            out.append(r)
            for up in lineage.upstream(RunRecord.of(r)):
                out.append(_Required(up, depth + 1))
            walk(r.id, depth + 1)

    walk(None, 0)
    return out


class _Required:
    """A `<-` line of `trk runs --tree`: a run the line above requires."""

    def __init__(self, up, depth: int):
        rec = up.record
        self.id = up.run_id
        self._depth = depth
        self.opspec = f"<- {rec.op if rec else '?'}"
        self.sort_key = rec.started if rec and rec.started else 0
        self.status = up.state
        self.tags = []
        self.label = up.alias or up.name


runs.command("list", help="List runs, newest first.")(_listing(False))
runs.command("deleted", help="List deleted runs (restorable until purged).")(_listing(True))


@runs.command("rm")
@click.argument("specs", nargs=-1, metavar="[RUN]...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Delete running runs too: stop them first (as trk stop does).")
@filter_options()
def rm(specs, yes, force, **kw):
    """Delete runs (all matching runs when no RUN is given).

    Deleted runs move to $TRK_HOME/trash: `trk runs restore` brings them back
    until `trk runs purge` removes them for good.
    """
    st = store()
    chosen = select_runs(st, specs, run_filter(kw))
    if not chosen:
        click.echo("Nothing to delete.")
        return
    if not yes:
        for line in run_lines(chosen, lambda r: "-", short=False):
            click.echo(line)
        if not confirm(f"Delete {len(chosen)} run(s)?", yes):
            return
    from tracker.api import delete

    _move(st, "Deleted", lambda: delete(chosen, store=st, force=force))


@runs.command("restore")
@click.argument("specs", nargs=-1, metavar="[RUN]...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@filter_options()
def restore(specs, yes, **kw):
    """Restore deleted runs (all deleted runs when no RUN is given)."""
    st = store()
    chosen = select_runs(st, specs, run_filter(kw), deleted=True)
    if not chosen:
        click.echo("Nothing to restore.")
        return
    if not yes and not confirm(f"Restore {len(chosen)} run(s)?", yes):
        return
    _move(st, "Restored", lambda: st.restore(chosen))


@runs.command("purge")
@click.argument("specs", nargs=-1, metavar="[RUN]...")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@filter_options()
def purge(specs, yes, **kw):
    """Permanently remove deleted runs (all when no RUN is given)."""
    st = store()
    chosen = select_runs(st, specs, run_filter(kw), deleted=True)
    if not chosen:
        click.echo("Nothing to purge.")
        return
    if not yes and not confirm(f"Permanently remove {len(chosen)} run(s)? This cannot be undone.", yes, default=False):
        return
    _move(st, "Purged", lambda: st.purge(chosen))


def _move(st, verb, move):
    """Run a delete, restore or purge; say what it did, even when it failed
    for some runs, and which runs other processes moved first."""
    from tracker.store import MoveError

    try:
        done = move()
    except MoveError as e:
        click.echo(f"{verb} {len(e.done)} run(s)")
        warn_store(st)
        raise
    click.echo(f"{verb} {len(done)} run(s)")
    warn_store(st)


@runs.command("info")
@click.argument("spec", required=False, metavar="[RUN]", shell_complete=completion.runs)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@filter_options()
def info(spec, as_json, **kw):
    """Show a run's metadata (the latest run when no RUN is given)."""
    from tracker.views.info import run_info

    st = store()
    run = select_runs(st, [spec] if spec else [], run_filter(kw), default="latest")[0]
    data = run_info(st, run)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k}: {v}")
        elif isinstance(value, list):
            click.echo(f"{key}:")
            for v in value:
                click.echo(f"  - {v}")
        else:
            click.echo(f"{key}: {'' if value is None else value}")


@runs.command("label")
@click.argument("specs", nargs=-1, metavar="[RUN]...")
@click.option("-s", "--set", "set_", metavar="LABEL", help="Replace the label.")
@click.option("-a", "--append", metavar="TEXT", help="Append TEXT to the label.")
@click.option("-p", "--prepend", metavar="TEXT", help="Prepend TEXT to the label.")
@click.option("-c", "--clear", is_flag=True, help="Clear the label.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@filter_options(tag_short=False)
def label(specs, set_, append, prepend, clear, yes, **kw):
    """Set, append to, prepend to or clear run labels."""
    if sum(x is not None and x is not False for x in (set_, append, prepend)) + bool(clear) != 1:
        raise click.UsageError("give exactly one of --set, --append, --prepend or --clear")
    st = store()
    chosen = select_runs(st, specs, run_filter(kw), default="latest")
    if len(chosen) > 1 and not confirm(f"Change the label of {len(chosen)} runs?", yes):
        return
    for r in chosen:
        old = r.label
        new = "" if clear else set_ if set_ is not None else (
            f"{old} {append}".strip() if append is not None else f"{prepend} {old}".strip())
        r.set_label(new)
    click.echo(f"Labeled {len(chosen)} run(s)")


@runs.command("tag")
@click.argument("specs", nargs=-1, metavar="[RUN]...")
@click.option("-a", "--add", multiple=True, metavar="TAG", help="Add TAG (may repeat).")
@click.option("-d", "--delete", multiple=True, metavar="TAG", help="Remove TAG (may repeat).")
@click.option("-c", "--clear", is_flag=True, help="Remove all tags first.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@filter_options(tag_short=False)
def tag(specs, add, delete, clear, yes, **kw):
    """Add or remove run tags."""
    if not (add or delete or clear):
        raise click.UsageError("give --add, --delete or --clear")
    st = store()
    chosen = select_runs(st, specs, run_filter(kw), default="latest")
    if len(chosen) > 1 and not confirm(f"Change the tags of {len(chosen)} runs?", yes):
        return
    for r in chosen:
        r.set_tags(add=add, remove=delete, clear=clear)
    click.echo(f"Tagged {len(chosen)} run(s)")
