"""`trk compare`: a table of runs by attributes, flags and scalars."""

from __future__ import annotations

import csv
import json
import os
import sys

import click

from .util import filter_options, run_filter, select_runs, store, warn_store


@click.command()
@click.argument("specs", nargs=-1, metavar="[RUN]...")
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
@filter_options(tag_short=False)
def compare(specs, table, columns, csv_path, as_json, skip_unchanged, min_col, max_col, limit, **kw):
    """Compare runs by flags and scalars (all matching runs by default).

    Scalars come from an incremental index of the runs' TensorBoard event
    files; a pipeline run shows the scalars of its steps (`train#loss`).
    """
    from tracker.display import format_cell
    from tracker.views.compare import Comparison, parse_columns, skip_unchanged as drop_same, sort_rows

    st = store()
    if specs or limit is None:
        runs = select_runs(st, specs, run_filter(kw))[:limit]
    else:
        runs = st.query(run_filter(kw), limit=limit)
    cmp = Comparison(st, runs)
    warn_store(st)
    for w in cmp.warnings:
        click.echo(f"trk: warning: {w}", err=True)
    cols = parse_columns(columns) if columns else cmp.default_columns()
    headers, rows = cmp.table(cols)
    kinds = ["attr"] + [c.kind for c in cols if not (c.kind == "attr" and c.key == "run")]
    rows = sort_rows(headers, rows, min_col, max_col)
    if skip_unchanged and len(rows) > 1:
        headers, kinds, rows = drop_same(headers, kinds, rows)
    if as_json:
        click.echo(json.dumps([dict(zip(headers, r)) for r in rows], indent=2, default=str))
        return
    cells = [[format_cell(v, k) for v, k in zip(r, kinds)] for r in rows]
    if csv_path:
        out = sys.stdout if csv_path == "-" else open(csv_path, "w", newline="")
        try:
            w = csv.writer(out)
            w.writerow(headers)
            w.writerows(cells)
        finally:
            if out is not sys.stdout:
                out.close()
        return
    text = format_table(headers, cells, kinds)
    if table or not sys.stdout.isatty() or os.environ.get("TRK_NO_PAGER"):
        click.echo(text)
    else:
        click.echo_via_pager(text + "\n")


# Past this many rows, tables are laid out by `_plain_table` (the same
# layout as tabulate's "plain", which spends seconds on 100,000 rows).
LARGE_TABLE = 2000


def format_table(headers, cells, kinds) -> str:
    """A plain tabulate table, scalars right-aligned, no trailing spaces."""
    if len(cells) > LARGE_TABLE:
        return _plain_table(headers, cells, kinds)
    from tabulate import tabulate

    align = ["right" if k == "scalar" else "left" for k in kinds]
    text = tabulate(cells, headers=headers, tablefmt="plain", disable_numparse=True, colalign=align)
    return "\n".join(line.rstrip() for line in text.splitlines())


def _plain_table(headers, cells, kinds) -> str:
    """tabulate's "plain" layout for one-line cells: each column as wide as
    its widest cell or its header plus 2, two spaces between columns."""
    right = [k == "scalar" for k in kinds]
    widths = [len(h) + 2 for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            if len(c) > widths[i]:
                widths[i] = len(c)

    def line(row) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)).rstrip()

    return "\n".join([line(headers)] + [line(row) for row in cells])
