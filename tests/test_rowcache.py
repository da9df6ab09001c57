"""The default `trk compare` table read from the cache of rendered rows (views/rowcache.py).

Every test compares the cached table with the table rendered from the run
and scalar indexes by `Comparison` (the path every other column spec takes),
so a cached cell that went stale or was laid out in the wrong column fails.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import copy_sample

PROJECT = """
train:
  exec: python train.py
  flags:
    lr: 0.1
    epochs: 2
    note: plain
report:
  exec: python report.py
  flags:
    rows: 10
"""


@pytest.fixture
def proj(tmp_path):
    p = tmp_path / "proj"
    p.mkdir()
    (p / "trk.yml").write_text(PROJECT)
    (p / "train.py").write_text("print('loss: 0.25')\nprint('acc: 0.5')\n")
    # `lr` is a scalar here and a flag of train: one column, the flag's (as Guild shows it).
    (p / "report.py").write_text("print('lr: 7')\nprint('score: 3')\n")
    return p


def rendered_table():
    """(headers, columns) as the uncached path renders them, and as the cache gives them."""
    from tracker.cli.compare import _columns
    from tracker.store import RunStore
    from tracker.views.compare import Comparison
    from tracker.views.rowcache import CachedTable

    st = RunStore()
    cmp = Comparison(st)
    cols = cmp.default_columns()
    headers = cmp.headers(cols)
    kinds = ["attr"] + [c.kind for c in cols]
    h, _, columns = _columns(cmp, cols, headers, kinds, None, None, False)
    cached = CachedTable(RunStore())
    return (h, [list(c) for c in columns]), (cached.headers, [list(c) for c in cached.columns()]), cached.rendered


def make_runs(trk, proj):
    trk("run", "train", "-y", cwd=proj)
    trk("run", "train", "lr=0.01", "note=élan 東京", "-y", cwd=proj)
    trk("run", "report", "-y", "--label", "weekly", cwd=proj)
    trk("run", "train", "epochs=5", "-y", cwd=proj)


def test_the_cached_table_is_the_rendered_table(trk, proj):
    make_runs(trk, proj)
    first = trk("compare", "-t").stdout  # renders every row and caches it
    rendered, cached, count = rendered_table()
    assert count == 0  # every row came from the cache
    assert cached == rendered
    assert rendered[0] == ["run", "operation", "started", "time", "status", "label", "epochs", "lr", "note", "rows",
                           "acc", "loss", "score"]
    assert trk("compare", "-t").stdout == first
    assert "élan 東京" in first
    # CSV and -u read the same cells.
    assert trk("compare", "--csv", "-").stdout.splitlines()[0] == ",".join(rendered[0])
    header = trk("compare", "-t", "-u").stdout.splitlines()[0].split()
    assert "status" not in header and "note" in header  # all completed; notes differ


def test_a_run_that_changed_is_rendered_again(trk, proj, trk_home):
    make_runs(trk, proj)
    trk("compare", "-t")
    report = json.loads(trk("runs", "--json", "-o", "report").stdout)[0]["id"]
    trk("runs", "label", report[:8], "--set", "monthly", "-y")
    out = trk("compare", "-t").stdout
    assert "monthly" in out and "weekly" not in out
    rendered, cached, count = rendered_table()
    assert count == 0 and cached == rendered
    # A flag changed by hand in the attr file: the run's version is read from its files.
    train = json.loads(trk("runs", "--json", "-o", "train").stdout)[0]["id"]
    flags_file = trk_home / "runs" / train / ".trk" / "attrs" / "flags"
    assert flags_file.exists(), sorted(os.listdir(flags_file.parent))
    flags = flags_file.read_text().replace("\"epochs\": 5", "\"epochs\": 6")
    flags_file.write_text(flags)
    rendered, cached, count = rendered_table()
    assert cached == rendered and "6" in cached[1][cached[0].index("epochs")]


def test_unfinished_runs_are_rendered_every_time(trk, proj):
    make_runs(trk, proj)
    trk("run", "train", "lr=0.5", "--stage", "-y", cwd=proj)
    trk("compare", "-t")
    rendered, cached, count = rendered_table()
    assert count == 1 and cached == rendered
    assert "staged" in cached[1][cached[0].index("status")]


def test_a_damaged_cache_is_replaced(trk, proj, trk_home):
    make_runs(trk, proj)
    first = trk("compare", "-t").stdout
    (trk_home / "index" / "compare-rows.sqlite").write_bytes(b"not a database" * 100)
    p = trk("compare", "-t")
    assert p.stdout == first and p.stderr == ""
    assert rendered_table()[2] == 0  # rebuilt


def test_times_show_in_the_time_zone_of_the_reader(trk, proj, monkeypatch):
    trk("run", "train", "-y", cwd=proj)
    monkeypatch.setenv("TZ", "UTC")
    utc = trk("compare", "-t").stdout.splitlines()[1].split()
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    tokyo = trk("compare", "-t").stdout.splitlines()[1].split()
    assert utc[2:4] != tokyo[2:4]  # started, nine hours later
    hour = lambda cols: int(cols[3].split(":")[0])  # noqa: E731
    assert (hour(utc) + 9) % 24 == hour(tokyo)


def test_a_cell_with_the_separator_is_shown_and_not_cached(trk, proj):
    trk("run", "train", "-y", cwd=proj)
    from tracker.store import RunStore

    st = RunStore()
    run = st.get(json.loads(trk("runs", "--json").stdout)[0]["id"])
    run.set_label("a\x1fb")
    rendered, cached, count = rendered_table()
    assert cached == rendered and "a\x1fb" in cached[1][cached[0].index("label")]
    assert rendered_table()[2] == 1  # rendered again each time


def test_rows_of_runs_that_left_the_store_are_dropped(trk, proj, trk_home):
    import sqlite3

    make_runs(trk, proj)
    trk("compare", "-t")
    trk("runs", "rm", "-o", "report", "-y")
    trk("compare", "-t", "-o", "train")  # a filtered table keeps the other rows
    db = trk_home / "index" / "compare-rows.sqlite"
    assert sqlite3.connect(db).execute("SELECT count(*) FROM rows").fetchone()[0] == 4
    out = trk("compare", "-t").stdout
    assert "report" not in out
    assert sqlite3.connect(db).execute("SELECT count(*) FROM rows").fetchone()[0] == 3


def test_large_tables_are_laid_out_as_tabulate_lays_out_small_ones():
    # Past 2,000 rows the table is formatted as it is read (`_ascii_table`, from
    # each column's longest cell); it must read exactly as tabulate's "plain" does.
    import random

    from tracker.cli.compare import _ascii_table, table_lines

    rnd = random.Random(7)
    headers = ["run", "operation", "lr", "note", "loss"]
    kinds = ["attr", "attr", "flag", "flag", "scalar"]
    words = ["", "a", "train", "0.001", "1e-05", "long value here", "x y"]
    columns = [[rnd.choice(words) for _ in range(300)] for _ in headers]
    columns[0] = [f"{k:08x}" for k in range(300)]
    expected = list(table_lines(headers, columns, kinds))  # tabulate: fewer than 2,000 rows
    widths = [max(map(len, col)) for col in columns]
    assert list(_ascii_table(headers, kinds, widths, zip(*columns))) == expected
