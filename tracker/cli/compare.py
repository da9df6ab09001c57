"""`trk compare`: a table of runs by attributes, flags and scalars."""

from __future__ import annotations

import csv
import json
import os
import sys
from itertools import islice
from typing import Iterator

import click

from . import completion

from .util import (batch_filter, batch_option, colour_status, colour_wanted, filter_options, fmt_option, progress_bar,
                   run_filter, select_runs, store, warn_store)


@click.command()
@click.argument("specs", nargs=-1, metavar="[RUN]...", shell_complete=completion.runs)
@click.option("-t", "--table", is_flag=True, help="Print the table to stdout (no pager).")
@click.option("-cc", "--columns", metavar="SPEC",
              help="Columns: .operation,.status,.label,.started,.time,=FLAG,#SCALAR,"
                   "'min #loss as best' (comma-separated).")
@click.option("--csv", "csv_path", metavar="PATH", help="Write CSV to PATH ('-' for stdout).")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON.")
@click.option("-u", "--skip-unchanged", is_flag=True, help="Drop columns whose value is the same in every row.")
@click.option("--min", "min_col", metavar="COL", help="Sort by column COL, smallest first.")
@click.option("--max", "max_col", metavar="COL", help="Sort by column COL, largest first.")
@click.option("-n", "--limit", type=int, help="Compare at most N runs (newest first).")
@fmt_option()
@click.option("--no-color", is_flag=True,
              help="No colours (also when $NO_COLOR is set, not on a terminal, or with --fmt latex).")
@batch_option()
@filter_options(tag_short=False)
def compare(specs, table, columns, csv_path, as_json, skip_unchanged, min_col, max_col, limit, fmt, no_color, batch,
            **kw):
    """Compare runs by flags and scalars (all matching runs by default).

    Scalars come from an incremental index of the runs' TensorBoard event
    files; a pipeline run shows the scalars of its steps (`train#loss`).
    The default table keeps each finished run's row, as shown, until the
    run changes (in $TRK_HOME/index/compare-rows.sqlite; safe to delete).
    On a terminal, statuses are coloured and indexing many runs' scalars
    shows a progress bar.
    """
    from tracker.views.columns import parse_columns, skip_unchanged as drop_same, sort_rows
    from tracker.views.compare import Comparison

    st = store()
    filt = batch_filter(st, run_filter(kw), batch)
    bar = progress_bar("Indexing scalars")
    if not (specs or columns or as_json or min_col or max_col):
        # The default table: each finished run's row as rendered last time it was shown.
        from tracker.views.rowcache import CachedTable

        cached = CachedTable(st, filt, limit, progress=bar)
        keep = cached.changing() if skip_unchanged and len(cached) > 1 else None
        headers, kinds = cached.headers, cached.kinds
        if keep is not None:
            headers, kinds = [headers[i] for i in keep], [kinds[i] for i in keep]
        _warn(st, cached)
        if csv_path:
            _write_csv(csv_path, headers, cached.rows(keep))
            return
        widths = None
        if fmt is None and len(cached) > LARGE_TABLE and not ("status" in headers and colour_wanted(no_color)):
            widths = cached.widths(keep)  # (None: a cell is not ASCII)
        if widths is not None and all(h.isascii() for h in headers):  # 100,000 rows: laid out as read, never all held
            _echo_lines(_ascii_table(headers, kinds, widths, cached.rows(keep)), table)
            return
        _output(headers, kinds, cached.columns(keep), csv_path, table, fmt, no_color)
        return
    if specs:
        cmp = Comparison(st, select_runs(st, specs, filt)[:limit], progress=bar)
    else:  # every matching run, read from the index a page at a time
        cmp = Comparison(st, filt=filt, limit=limit, progress=bar)
    cols = parse_columns(columns) if columns else cmp.default_columns()
    headers = cmp.headers(cols)
    kinds = ["attr"] + [c.kind for c in cols if not (c.kind == "attr" and c.key == "run")]
    if as_json:
        rows = sort_rows(headers, [r for page in cmp.pages(cols) for r in page], min_col, max_col)
        _typed_times(headers, [c for c in cols if not (c.kind == "attr" and c.key == "run")], rows)
        _warn(st, cmp)
        if skip_unchanged and len(rows) > 1:
            headers, kinds, rows = drop_same(headers, kinds, rows)
        click.echo(json.dumps([dict(zip(headers, r)) for r in rows], indent=2, default=str))
        return
    headers, kinds, columns_ = _columns(cmp, cols, headers, kinds, min_col, max_col, skip_unchanged)
    _warn(st, cmp)
    status = next((c.header for c in cols if c.kind == "attr" and c.key == "status"), None)
    _output(headers, kinds, columns_, csv_path, table, fmt, no_color, status)


def _output(headers, kinds, columns_, csv_path, table, fmt, no_color, status: str | None = "status") -> None:
    """Write the cells as CSV, or as a table (paged on a terminal unless `table`)."""
    if csv_path:
        _write_csv(csv_path, headers, zip(*columns_))
        return
    colour = fmt != "latex" and status in headers and colour_wanted(no_color)
    _echo_lines(table_lines(headers, columns_, kinds, fmt, headers.index(status) if colour else None), table)


def _write_csv(path: str, headers, rows) -> None:
    out = sys.stdout if path == "-" else open(path, "w", newline="")
    try:
        w = csv.writer(out)
        w.writerow(headers)
        w.writerows(rows)
    finally:
        if out is not sys.stdout:
            out.close()


def _echo_lines(lines, table: bool) -> None:
    """Print the table's lines, through the pager on a terminal unless `table`."""
    if table or not sys.stdout.isatty() or os.environ.get("TRK_NO_PAGER"):
        while True:
            chunk = list(islice(lines, 1000))
            if not chunk:
                break
            click.echo("\n".join(chunk))
    else:
        click.echo_via_pager(line + "\n" for line in lines)


def _typed_times(headers, cols, rows) -> None:
    """For JSON: `started`/`stopped` as ISO-8601 (timezone-aware), `time` as seconds."""
    from datetime import datetime

    for i, col in enumerate(cols, 1):
        if col.kind != "attr" or col.key not in ("started", "stopped", "time"):
            continue
        for row in rows:
            v = row[i]
            if not isinstance(v, str) or not v:
                row[i] = None
            elif col.key == "time":
                h, m, sec = (int(x) for x in v.split(":"))
                row[i] = h * 3600 + m * 60 + sec
            else:
                row[i] = datetime.strptime(v, "%Y-%m-%d %H:%M:%S").astimezone().isoformat()


def _warn(st, cmp) -> None:
    """What the store and the scalar index ran into while the rows were read."""
    warn_store(st)
    for w in cmp.warnings:
        click.echo(f"trk: warning: {w}", err=True)


def _columns(cmp, cols, headers, kinds, min_col, max_col, skip_unchanged):
    """The table's cells, column by column, formatted a page at a time (raw
    values are not kept: at 100,000 runs they would not fit the memory a
    listing may use), sorted by --min/--max and trimmed by -u."""
    from tracker.display import cell_formatter
    from tracker.views.columns import sort_column, sort_rows

    sort_col = min_col or max_col
    if sort_col:
        sort_col = sort_column(headers, sort_col)  # an unknown column is an error before any work
    at = headers.index(sort_col) if sort_col else None
    formats = [cell_formatter(k) for k in kinds]
    # Cells that repeat (operations, statuses, flag values) share one string.
    shown = [c for c in cols if not (c.kind == "attr" and c.key == "run")]
    shared = [False] + [c.kind == "flag" or (c.kind == "attr" and c.key not in ("started", "stopped", "label"))
                        for c in shown]
    out: list[list[str]] = [[] for _ in headers]
    keys: list = []
    seen: dict[str, str] = {}
    for ids, values in cmp.column_pages(cols):
        for i, (fmt, col) in enumerate(zip(formats, [ids, *values])):
            cells = map(fmt, col)
            out[i] += [seen.setdefault(c, c) for c in cells] if shared[i] else cells
        if at is not None:
            keys += [ids, *values][at]
    if at is not None:
        order = [k for _, k in sort_rows(["key", "k"], [[v, k] for k, v in enumerate(keys)],
                                         "key" if min_col else None, "key" if max_col else None)]
        out = [[col[k] for k in order] for col in out]
    return _drop_same(headers, kinds, out) if skip_unchanged else (headers, kinds, out)


def _drop_same(headers, kinds, columns):
    """Without the columns (but `run`) whose cells are the same in every row (-u)."""
    if not columns or len(columns[0]) < 2:
        return headers, kinds, columns
    keep = [0] + [i for i in range(1, len(headers)) if len(set(columns[i])) > 1]
    return [headers[i] for i in keep], [kinds[i] for i in keep], [columns[i] for i in keep]


# Past this many rows, tables are laid out by `_plain_table` (the same
# layout as tabulate's "plain", which spends seconds on 100,000 rows).
LARGE_TABLE = 2000


def table_lines(headers, columns, kinds, fmt: str | None = None, colour_at: int | None = None) -> Iterator[str]:
    """A tabulate table (`fmt`, default "plain"), scalars right-aligned, no
    trailing spaces; the column at `colour_at` (statuses) coloured by status."""
    if fmt is None and columns and len(columns[0]) > LARGE_TABLE:
        return _plain_table(headers, columns, kinds, colour_at)
    from tabulate import tabulate

    if colour_at is not None:  # tabulate measures cells without their colour codes
        columns = list(columns)
        columns[colour_at] = [colour_status(c) for c in columns[colour_at]]
    align = ["right" if k == "scalar" else "left" for k in kinds]
    text = tabulate(list(zip(*columns)), headers=headers, tablefmt=fmt or "plain", disable_numparse=True,
                    colalign=align)
    return iter([line.rstrip() for line in text.splitlines()])


def _plain_table(headers, columns, kinds, colour_at: int | None = None) -> Iterator[str]:
    """tabulate's "plain" layout for one-line cells: each column as wide as
    its widest cell or its header plus 2, two spaces between columns."""
    right = [k == "scalar" for k in kinds]
    if colour_at is None and all(h.isascii() for h in headers) and all("".join(col).isascii() for col in columns):
        yield from _ascii_table(headers, kinds, [max(map(len, col), default=0) for col in columns], zip(*columns))
        return
    width = _display_width()
    widths = [max(width(h) + 2, max(map(width, col), default=0)) for h, col in zip(headers, columns)]

    def pad(c: str, w: int, r: bool) -> str:
        if c.isascii():
            return c.rjust(w) if r else c.ljust(w)
        fill = " " * (w - width(c))
        return fill + c if r else c + fill

    yield "  ".join(pad(h, w, r) for h, w, r in zip(headers, widths, right)).rstrip()
    for k in range(0, len(columns[0]), 1000):  # padded a thousand rows at a time
        padded = [[c.rjust(w) if c.isascii() else pad(c, w, True) for c in col[k:k + 1000]] if r else
                  [c.ljust(w) if c.isascii() else pad(c, w, False) for c in col[k:k + 1000]]
                  for col, w, r in zip(columns, widths, right)]
        if colour_at is not None:
            padded[colour_at] = [colour_status(c) for c in padded[colour_at]]
        for row in zip(*padded):
            yield "  ".join(row).rstrip()


def _ascii_table(headers, kinds, widths, rows) -> Iterator[str]:
    """`_plain_table`'s layout when every cell is ASCII (one character a
    column), `widths` the longest cell of each column: one %-format a row, in C."""
    right = [k == "scalar" for k in kinds]
    widths = [max(len(h) + 2, w) for h, w in zip(headers, widths)]
    yield "  ".join(h.rjust(w) if r else h.ljust(w) for h, w, r in zip(headers, widths, right)).rstrip()
    line = "  ".join(f"%{'' if r else '-'}{w}s" for w, r in zip(widths, right))
    for row in rows:
        yield (line % row).rstrip()


def _display_width():
    """How wide a cell shows, measured as tabulate measures it: with wcwidth
    (East Asian wide characters count 2) when that is installed, else len."""
    try:
        from wcwidth import wcswidth
    except ImportError:
        return len

    def width(s: str) -> int:
        if s.isascii():
            return len(s)
        w = wcswidth(s)
        return len(s) if w < 0 else w

    return width
