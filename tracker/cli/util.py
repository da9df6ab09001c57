"""Shared CLI pieces: run filter options, run selection, formatting."""

from __future__ import annotations

from typing import Callable

import click

from tracker.display import format_time

STATUS_FLAGS = ("completed", "error", "terminated", "running", "staged")


# Guild 0.9's names for the filters (`-Fo OP`, `-Sc`), accepted as well.
_GUILD_STATUS = {"completed": "-Sc", "error": "-Se", "terminated": "-St", "running": "-Sr", "staged": "-Ss"}


def filter_options(tag_short: bool = True) -> Callable:
    """Options every command that takes runs accepts: -o, -l, -t, --STATUS
    (and Guild's -Fo, -Fl, -Ft, -Sc...)."""

    def decorate(f):
        for status in reversed(STATUS_FLAGS):
            f = click.option(_GUILD_STATUS[status], f"--{status}", f"status_{status}", is_flag=True,
                             help=f"Only {status} runs.")(f)
        tag_decls = ("-t", "-Ft", "--tag") if tag_short else ("-Ft", "--tag")
        f = click.option(*tag_decls, "filter_tags", multiple=True, metavar="TAG", help="Only runs with TAG (may repeat).")(f)
        f = click.option("-l", "-Fl", "--label", "filter_labels", multiple=True, metavar="TEXT", help="Only runs whose label contains TEXT.")(f)
        f = click.option("-o", "-Fo", "--operation", "filter_ops", multiple=True, metavar="OP", help="Only runs of operations matching OP.")(f)
        return f

    return decorate


def batch_option() -> Callable:
    """`--batch RUN`: only the trials of batch RUN."""
    return click.option("--batch", metavar="RUN", help="Only the trials of batch RUN (a run spec).")


def batch_filter(st, filt, spec: str | None):
    """`filt` narrowed to the trials of the batch `spec` names (when given)."""
    if spec:
        from tracker.errors import RunSpecError
        from tracker.store.select import select_from

        found = select_from(st, None, [spec])
        if len(found) != 1:
            raise RunSpecError(f"--batch {spec} names {len(found)} runs, not one batch", "Give one run.")
        filt.parent = found[0].id
    return filt


def run_filter(kw: dict):
    """Take the filter options out of a command's keyword arguments as a RunFilter."""
    from tracker.store.select import RunFilter

    statuses = [s for s in STATUS_FLAGS if kw.pop(f"status_{s}", False)]
    return RunFilter(
        operations=kw.pop("filter_ops", ()) or (),
        labels=kw.pop("filter_labels", ()) or (),
        tags=kw.pop("filter_tags", ()) or (),
        statuses=statuses,
    )


def store():
    """The run store of $TRK_HOME; warnings it collects late (a run found
    damaged while being shown) are printed when the command ends."""
    from tracker.store.runstore import RunStore

    st = RunStore()
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(lambda: warn_store(st))
    return st


def warn_store(st) -> None:
    """Print (once) the warnings the store collected while listing runs."""
    for w in st.warnings:
        click.echo(f"trk: warning: {w}", err=True)
    st.warnings.clear()


def select_runs(st, specs, filt, default: str = "all", deleted: bool = False, top_level: bool = False):
    """Runs matching filters and specs; `default` applies when no spec is given
    (`all` matching runs, or the `latest`). Reads only the runs it returns."""
    from tracker.errors import RunSpecError
    from tracker.store.select import select_from

    if top_level:
        filt.top_level = True
    try:
        if specs:
            return select_from(st, filt, specs, deleted=deleted)
        if default == "latest":
            runs = st.query(filt, deleted=deleted, limit=1)
            if not runs:
                raise RunSpecError("no runs match" if deleted is False else "no deleted runs match",
                                   "Try 'trk runs' to list runs.")
            return runs
        return st.query(filt, deleted=deleted)
    finally:
        warn_store(st)


def line_cells(index, op: str, sort_key, status: str, tags: list[str], label: str, short: bool) -> list[str]:
    """The cells of a Guild-style listing line: `[N]  op  started  status  tags label`."""
    cells = [f"[{index}]", op]
    if not short:
        cells.append(format_time(sort_key))
    if status == "running" and sort_key:  # a live run: how long it has been going
        status = f"running {elapsed(sort_key)}"
    return cells + [status, " ".join(tags + ([label] if label else []))]


def elapsed_seconds(started_us: int) -> int:
    """Whole seconds since `started_us` (microseconds since the epoch)."""
    import time

    return max(0, int(time.time() - started_us / 1e6))


def elapsed(started_us: int) -> str:
    """`H:MM:SS` since `started_us`: a running run's elapsed time."""
    from tracker.display import format_duration

    return format_duration(elapsed_seconds(started_us) * 1_000_000)


# How wide a running run's status cell is (`running 0:01:23`, under 10 hours).
RUNNING_WIDTH = len("running 0:00:00")


STATUS_COLOURS = {"running": "blue", "completed": "green", "error": "red", "terminated": "yellow",
                  "staged": "cyan", "deleted": "magenta"}


def colour_wanted(no_color: bool = False) -> bool:
    """Colour by status: on a terminal, unless --no-color or $NO_COLOR (no-color.org)."""
    import os
    import sys

    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


def join_cells(cells: list[str], widths: list[int], colour_at: int | None = None) -> str:
    """One listing line: cells padded to their column's width, two spaces
    apart (so `[9]` and `[10]` lines stay aligned); the cell at `colour_at`
    (a status) coloured by its value, after padding, so columns stay aligned."""
    padded = [c.ljust(w) for c, w in zip(cells, widths)]
    if colour_at is not None:
        padded[colour_at] = colour_status(padded[colour_at])
    return "  ".join(padded).rstrip()


def colour_status(cell: str) -> str:
    """A status cell (`completed`, `running 0:01:23`, padded or not) coloured
    by its status; the padding stays outside the colour, so a line's end can
    be stripped."""
    status = cell.split(" ", 1)[0]
    if status not in STATUS_COLOURS:
        return cell
    text = cell.rstrip(" ")
    return click.style(text, fg=STATUS_COLOURS[status]) + cell[len(text):]


def run_lines(runs, index_of, short: bool = False, depth_of=None, st=None, colour: bool = False) -> list[str]:
    """Guild-style listing lines, columns as wide as their widest cell; with
    the store `st`, a batch's line ends with its trials' progress; `colour`:
    statuses coloured (see `colour_wanted`)."""
    rows = [line_cells(index_of(run), ("  " * depth_of(run) if depth_of else "") + run.opspec, run.sort_key,
                       run.status, run.tags, batch_label(st, run.id, run.opspec, run.label, run), short)
            for run in runs]
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    at = (2 if short else 3) if colour else None
    return [join_cells(r, widths, at) for r in rows]


def is_batch_op(op: str) -> bool:
    """Whether a run's operation names a batch (`train+`, `train+random`, as Guild names them)."""
    return op.endswith("+") or op.endswith("+random")


def trial_counts(st, batch_id: str) -> dict[str, int]:
    """How many of a batch's trials are in each status (index counts only)."""
    from tracker.store.select import RunFilter

    counts = {}
    for status in ("completed", "error", "terminated", "running", "staged"):
        n = st.count(RunFilter(parent=batch_id, statuses=[status]))
        if n:
            counts[status] = n
    return counts


def describe_progress(counts: dict[str, int], total: int | None = None) -> str:
    """`3/12 completed, 1 error, 2 running`: a batch's trials by status."""
    total = max(total or 0, sum(counts.values()))
    return ", ".join([f"{counts.get('completed', 0)}/{total} completed"]
                     + [f"{n} {status}" for status, n in counts.items() if status != "completed"])


def batch_label(st, run_id: str, op: str, label: str, run=None) -> str:
    """A listing's label cell: for a batch (with a store to ask), its label and its trials' progress."""
    if st is None or not is_batch_op(op):
        return label
    if run is None:
        found = st.by_ids([run_id])
        run = found[0] if found else None
    batch = run.get("batch") if run is not None else None
    total = batch.get("trials") if isinstance(batch, dict) and isinstance(batch.get("trials"), int) else None
    progress = f"({describe_progress(trial_counts(st, run_id), total)})"
    return f"{label} {progress}" if label else progress


def confirm(prompt: str, yes: bool, default: bool = True) -> bool:
    """Ask the user unless `yes` was given."""
    if yes:
        return True
    return click.confirm(prompt, default=default)


# tabulate's formats that `--fmt` takes; tabulate is imported only for them.
TABLE_FORMATS = ("github", "simple", "plain", "latex")


def fmt_option() -> Callable:
    """`--fmt FORMAT`: lay the table out with tabulate (imported only then)."""
    return click.option("--fmt", type=click.Choice(TABLE_FORMATS), default=None,
                        help="Lay the table out in one of tabulate's formats (github, simple, plain, latex). "
                             "Without it the table is laid out by trk's own faster code, as 'plain' shows it.")


def progress_bar(label: str):
    """One bar's callback for work named `label` (see `progress.ProgressBar`), on a terminal only."""
    from .progress import progress_bars

    factory = progress_bars()
    return factory(label) if factory else None
