"""Data safety of scalars: a damaged or busy index, links out of a run, odd
steps and values, and scalars of a running run. Real runs, real event files,
real symlinks, a really damaged SQLite file."""

import json
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from tracker.metrics.events import STEP_MAX, STEP_MIN, EventWriter, read_scalars
from tracker.metrics.index import IndexBusy, ScalarIndex
from tracker.metrics.output import FLUSH_SECONDS, OutputScalars, OutputScalarSpec, parse_lines


def make_project(tmp_path, yml: str, **scripts: str):
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "trk.yml").write_text(textwrap.dedent(yml))
    for name, text in scripts.items():
        (proj / f"{name}.py").write_text(textwrap.dedent(text))
    return proj


def compare_json(trk, *args):
    p = trk("compare", "--json", *args)
    assert "Traceback" not in p.stderr, p.stderr
    return json.loads(p.stdout)


def info_scalars(trk, *args) -> dict:
    return json.loads(trk("runs", "info", "--json", *args).stdout).get("scalars", {})


def warnings_of(p) -> list[str]:
    return [line for line in p.stderr.splitlines() if line.startswith("trk: warning:")]


# -- 6. a damaged index is moved aside and rebuilt ----------------------------

TAGS = 300  # three runs of 300 tags: an index of some 60 pages


def index_three_runs(trk, tmp_path):
    proj = make_project(tmp_path, "op:\n  exec: python many.py\n",
                        many=f"for i in range({TAGS}):\n    print(f'm{{i}}={{i}}.5')\n")
    for _ in range(3):
        trk("run", "op", "-y", cwd=proj)
    compare_json(trk, "-cc", "#m0")
    db = trk.home / "index" / "scalars.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file, none in the WAL
    con.close()
    return db


def damage(db, how: str) -> None:
    data = db.read_bytes()
    page_size = int.from_bytes(data[16:18], "big")
    pages = len(data) // page_size
    assert pages > 20, pages
    if how == "pages":  # random bytes over the middle third of the pages; the header is fine
        rnd = random.Random(6)
        with open(db, "r+b") as f:
            for page in range(pages // 3, 2 * pages // 3):
                f.seek(page * page_size)
                f.write(rnd.randbytes(page_size))
    elif how == "truncated":
        with open(db, "r+b") as f:
            f.truncate(pages // 2 * page_size)
    else:  # a stale schema: trk's version number over tables that are not trk's
        con = sqlite3.connect(db)
        con.executescript("DROP TABLE aggs; CREATE TABLE aggs (run_id TEXT, tag TEXT, value REAL);")
        con.close()


@pytest.mark.parametrize("how", ["pages", "truncated", "stale-schema"])
def test_damaged_index_is_moved_aside_and_rebuilt(trk, tmp_path, how):
    db = index_three_runs(trk, tmp_path)
    damage(db, how)
    p = trk("compare", "--json", "-cc", "#m0,#m299")
    assert "Traceback" not in p.stderr, p.stderr
    assert [(r["m0"], r["m299"]) for r in json.loads(p.stdout)] == [(0.5, 299.5)] * 3
    (warning,) = warnings_of(p)
    assert warning.startswith("trk: warning: the scalar index was damaged (") and "rebuilding it" in warning
    aside = [n for n in os.listdir(db.parent) if n.startswith("scalars.sqlite.corrupt-")]
    assert len(aside) == 1 and aside[0] in warning
    again = trk("compare", "--json", "-cc", "#m0,#m299")
    assert warnings_of(again) == [] and json.loads(again.stdout) == json.loads(p.stdout)


def test_purge_works_on_a_damaged_index(trk, tmp_path):
    db = index_three_runs(trk, tmp_path)
    trk("runs", "rm", "-y", "1", "2")
    damage(db, "pages")
    p = trk("runs", "purge", "-y", check=False)
    assert (p.returncode, "Traceback" in p.stderr) == (0, False), p.stderr
    assert "Purged 2 run(s)" in p.stdout
    assert "the scalar index was damaged" in p.stderr
    assert [n for n in os.listdir(db.parent) if n.startswith("scalars.sqlite.corrupt-")]
    assert [r["m299"] for r in compare_json(trk, "-cc", "#m299")] == [299.5]
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    assert con.execute("SELECT count(DISTINCT run_id) FROM aggs").fetchone() == (1,)


def test_runs_indexed_before_the_damage_was_found_are_rebuilt(tmp_path):
    for r in ("a", "b"):
        w = EventWriter(str(tmp_path / r / ".trk"))
        w.add_scalar("loss", 1.0, 0)
        w.close()
    db = tmp_path / "idx.sqlite"
    idx = ScalarIndex(str(db))
    idx.refresh([(r, str(tmp_path / r), "s") for r in ("a", "b")])
    idx.close()
    db.write_bytes(db.read_bytes()[:100] + b"\xff" * (db.stat().st_size - 100))
    got = idx.get(["a", "b"])  # found at reading: what this process indexed comes back
    assert {r: a[("", "loss")].last for r, a in got.items()} == {"a": 1.0, "b": 1.0}
    assert len(idx.warnings) == 1


# -- 7. a busy index is a clear error -----------------------------------------

HOLD = textwrap.dedent("""
    import sys
    from tracker.metrics.index import ScalarIndex
    with ScalarIndex(sys.argv[1]).locked():
        print("locked", flush=True)
        sys.stdin.readline()
""")


def test_busy_index_names_the_pid_holding_it(trk, tmp_path, monkeypatch):
    proj = make_project(tmp_path, "op:\n  exec: python loss.py\n", loss="print('loss=1')\n")
    trk("run", "op", "-y", cwd=proj)  # not indexed yet: compare must write
    db = trk.home / "index" / "scalars.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        monkeypatch.setenv("TRK_INDEX_TIMEOUT", "0.5")
        t = time.monotonic()
        p = trk("compare", "-t", check=False)
        assert time.monotonic() - t < 15
        assert p.returncode == 1
        lines = p.stderr.splitlines()
        assert lines[0] == f"trk: the scalar index is busy (locked by PID {holder.pid}); try again", p.stderr
        assert "TRK_INDEX_TIMEOUT" in p.stderr and "Traceback" not in p.stderr
    finally:
        holder.communicate("\n", timeout=20)
    assert [r["loss"] for r in compare_json(trk, "-cc", "#loss")] == [1.0]


def test_sqlite_busy_is_busy_not_damage(tmp_path):
    """A write lock held inside SQLite (not trk's lock file) gives IndexBusy;
    the database is not taken for damaged and stays where it is."""
    for r in ("a", "b"):
        w = EventWriter(str(tmp_path / r / ".trk"))
        w.add_scalar("loss", 1.0, 0)
        w.close()
    db = str(tmp_path / "idx.sqlite")
    first = ScalarIndex(db)
    first.refresh([("a", str(tmp_path / "a"), "s")])
    first.close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        idx = ScalarIndex(db, timeout=0.2)
        with pytest.raises(IndexBusy) as e:
            idx.refresh([("b", str(tmp_path / "b"), "s")])
        assert "the scalar index is busy" in e.value.message
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert idx.warnings == [] and not [n for n in os.listdir(tmp_path) if "corrupt" in n]
    assert ScalarIndex(db).get(["a"])["a"][("", "loss")].last == 1.0


# -- 11. only a run's own event files, and its steps' -------------------------

def test_links_out_of_the_run_are_not_followed(trk, tmp_path):
    proj = make_project(tmp_path, "op:\n  exec: python loss.py\n", loss="print('loss=1')\n")
    trk("run", "op", "-y", cwd=proj)
    run_dir = trk("select", "--path").stdout.strip()
    outside = tmp_path / "outside"
    w = EventWriter(str(outside))
    w.add_scalar("foreign", 5.0, 0)
    w.close()
    os.symlink("/", os.path.join(run_dir, "root"))
    os.symlink(str(outside), os.path.join(run_dir, "ext"))
    os.symlink(w.path, os.path.join(run_dir, "events.out.tfevents.linked"))
    os.symlink("..", os.path.join(run_dir, "loop"))
    t = time.monotonic()
    p = trk("compare", "--json", timeout=30)
    assert time.monotonic() - t < 15
    (row,) = json.loads(p.stdout)
    assert row["loss"] == 1.0 and "foreign" not in row
    assert info_scalars(trk) == {"loss": "1.0 (step 0)"}


PIPE_YML = """
up:
  exec: python up.py
up2:
  exec: python up.py
down:
  exec: python down.py
  requires:
    - operation: up
      select: logs
    - operation: up2
      select: logs
      target-path: linked
      target-type: link
pipe:
  steps:
    - run: up --needed
      name: up
      isolate-runs: no  # may reuse a run of another pipeline (the test below)
    - run: up2
      name: up2
    - run: down
      name: down
"""
UP = """
from tracker.metrics.events import EventWriter
w = EventWriter("logs")
w.add_scalar("upstream", 9.0, 3)
w.close()
print("own=1")
"""


def test_dependency_files_are_not_scalars_but_steps_roll_up(trk, tmp_path):
    """`down` receives upstream event files, copied (`up`, where copying is
    the default) and linked (`up2`): they are not its scalars. The pipeline
    rolls up its steps' own scalars."""
    proj = make_project(tmp_path, PIPE_YML, up=UP, down="print('mine=2')\n")
    trk("run", "pipe", "-y", cwd=proj)
    down_dir = trk("select", "--path", "-o", "down").stdout.strip()
    for sub in ("logs", "linked/logs"):  # the upstream files are there
        (name,) = os.listdir(os.path.join(down_dir, sub))
        assert read_scalars(os.path.join(down_dir, sub, name)).scalars == [("upstream", 3, 9.0)]
    assert os.path.islink(os.path.join(down_dir, "linked", "logs"))  # a selected directory lands whole
    assert set(info_scalars(trk, "-o", "down")) == {"mine"}
    assert set(info_scalars(trk, "-o", "up")) == {"own", "logs#upstream"}
    rollup = {"up#own", "up/logs#upstream", "up2#own", "up2/logs#upstream", "down#mine"}
    assert set(info_scalars(trk, "-o", "pipe")) == rollup
    # Again: `up` is reused, so the new pipeline's step link points at a run
    # of the first pipeline; it still rolls up.
    p = trk("run", "pipe", "-y", cwd=proj)
    assert "Skipping run because a completed run with the same inputs exists" in p.stdout + p.stderr
    assert set(info_scalars(trk, "-o", "pipe")) == rollup
    rows = compare_json(trk, "-cc", ".operation,#upstream,#mine")
    assert [(r["upstream"], r["mine"]) for r in rows if r["operation"] == "down"] == [(None, 2.0)] * 2
    assert [(r["upstream"], r["mine"]) for r in rows if r["operation"] == "pipe"] == [(9.0, 2.0)] * 2


# -- 13. odd steps and values -------------------------------------------------

def test_step_beyond_int64_is_clamped(trk, tmp_path):
    proj = make_project(tmp_path, "op:\n  exec: python steps.py\n", steps="""
        print("step: 99999999999999999999")
        print("loss: 1")
        print("step: 12345678901234567")
        print("acc: 2")
    """)
    trk("run", "op", "-y", cwd=proj, timeout=30)
    (row,) = compare_json(trk, "-cc", "#loss,step loss,step acc")
    assert (row["loss"], row["step loss"], row["step acc"]) == (1.0, STEP_MAX, 12345678901234567)


def test_steps_out_of_range_or_not_finite_never_break_parsing():
    spec = OutputScalarSpec({"step": r"epoch (\S+)", "a": r"a=(\S+)"})
    got, _ = parse_lines(spec, b"epoch 4\na=1\nepoch inf\na=2\nepoch -1e30\na=3\nepoch nan\na=4\n", 0)
    assert got == [("a", 1.0, 4), ("a", 2.0, 4), ("a", 3.0, STEP_MIN), ("a", 4.0, STEP_MIN)]
    got, _ = parse_lines(OutputScalarSpec(None), b"step: -99999999999999999999999\nloss=1\n", 0)
    assert got == [("loss", 1.0, STEP_MIN)]


WRITE_HUGE_NEGATIVE = textwrap.dedent("""
    import sys
    from tracker.metrics.events import EventWriter
    w = EventWriter(sys.argv[1])
    w.add_scalar("loss", 1.0, -10 ** 23)
    w.add_scalar("loss", 2.0, 10 ** 20)
    w.close()
    print(w.path)
""")


def test_event_writer_clamps_steps(tmp_path):
    p = subprocess.run([sys.executable, "-c", WRITE_HUGE_NEGATIVE, str(tmp_path)], capture_output=True, text=True,
                       timeout=30)  # once, a step below -2**64 looped for ever
    assert read_scalars(p.stdout.strip()).scalars == [("loss", STEP_MIN, 1.0), ("loss", STEP_MAX, 2.0)]


def test_nan_scalars_do_not_break_compare(trk, tmp_path):
    proj = make_project(tmp_path, "op:\n  exec: python nan.py\n", nan="""
        print("loss=nan")
        print("loss=3")
        print("loss=1")
        print("acc=nan")
    """)
    trk("run", "op", "-y", cwd=proj)
    (row,) = compare_json(trk, "-cc", "#loss,min loss,max loss,first loss,avg loss,#acc")
    assert (row["loss"], row["min loss"], row["max loss"]) == (1.0, 1.0, 3.0)
    assert all(row[k] != row[k] for k in ("first loss", "avg loss", "acc"))  # NaN
    p = trk("compare", "-t", "--min", "acc")
    assert "Traceback" not in p.stderr


def test_odd_attrs_do_not_break_compare(trk, tmp_path):
    proj = make_project(tmp_path, "op:\n  exec: python loss.py\n", loss="print('loss=1')\n")
    trk("run", "op", "-y", cwd=proj)
    attrs = os.path.join(trk("select", "--path").stdout.strip(), ".trk", "attrs")
    for name, value in (("parent", {"not": "an id"}), ("step", ["a", "list"])):
        with open(os.path.join(attrs, name), "w") as f:
            json.dump(value, f)
    p = trk("compare", "-t", "-cc", ".operation,#loss,fit#loss")
    assert "Traceback" not in p.stderr and "1.0" in p.stdout


# -- 18. scalars of a running run ---------------------------------------------

def test_a_scalar_reaches_the_file_within_flush_seconds(tmp_path):
    """The deadline runs from the scalar, not from the last output: output
    that keeps trickling in (here one line just before the deadline) does not
    push the flush back."""
    out = OutputScalars(None, str(tmp_path))
    t0 = time.monotonic()
    out.feed(b"loss=0.5\n")
    time.sleep(FLUSH_SECONDS * 0.9)
    out.feed(b"no scalar here\n")
    seen = None
    while seen is None and time.monotonic() - t0 < 3 * FLUSH_SECONDS:
        files = list(tmp_path.iterdir())
        if files and read_scalars(str(files[0])).scalars:
            seen = time.monotonic() - t0
        time.sleep(0.02)
    out.close()
    assert seen is not None and seen < FLUSH_SECONDS + 0.75, seen


LIVE = """
import os, time
print("loss=0.5", flush=True)
while not os.path.exists("go"):
    time.sleep(0.05)
print("loss=0.25", flush=True)
while not os.path.exists("stop"):
    time.sleep(0.05)
print("loss=0.125", flush=True)
"""


def test_compare_shows_a_running_runs_scalars(trk, tmp_path):
    proj = make_project(tmp_path, "live:\n  exec: python live.py\n", live=LIVE)
    proc = trk.popen("run", "live", "-y", cwd=proj, stdout=subprocess.PIPE)

    def wait_for(loss, status):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = compare_json(trk, "-cc", ".status,#loss")
            if rows and rows[0]["loss"] == loss:
                assert rows[0]["status"] == status
                return
            time.sleep(0.2)
        raise AssertionError(f"compare never showed loss={loss}: {rows}")

    try:
        assert proc.stdout.readline() == b"loss=0.5\n"
        wait_for(0.5, "running")
        run_dir = trk("select", "--path").stdout.strip()
        open(os.path.join(run_dir, "go"), "w").close()
        wait_for(0.25, "running")
    finally:
        run_dir = trk("select", "--path").stdout.strip()
        open(os.path.join(run_dir, "stop"), "w").close()
        proc.wait(timeout=30)
    wait_for(0.125, "completed")  # the last scalar is flushed as the run ends
