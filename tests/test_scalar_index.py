"""The incremental scalar index, on real event files and real symlinks."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tracker.metrics.events import EventWriter
from tracker.metrics.index import ScalarIndex


def write(dir, tag, values, start=0):
    w = EventWriter(str(dir))
    for i, v in enumerate(values):
        w.add_scalar(tag, v, start + i)
    w.close()
    return w


def test_aggregates(tmp_path):
    run = tmp_path / "r1" / ".trk"
    write(run, "loss", [3.0, 1.0, 2.0])
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([("r1", str(tmp_path / "r1"), "s")])
    a = idx.get(["r1"])["r1"][("", "loss")]
    assert (a.first, a.last, a.min, a.max, a.count, a.avg, a.first_step, a.last_step) == (3, 2, 1, 3, 3, 2, 0, 2)


def test_growing_file_is_read_incrementally(tmp_path):
    run = tmp_path / "r1"
    w = EventWriter(str(run / ".trk"))
    w.add_scalar("loss", 5.0, 0)
    w.flush()
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([("r1", str(run), None)])
    assert idx.get(["r1"])["r1"][("", "loss")].count == 1
    w.add_scalar("loss", 1.0, 1)
    w.add_scalar("loss", 2.0, 2)
    w.close()
    idx.refresh([("r1", str(run), None)])
    a = idx.get(["r1"])["r1"][("", "loss")]
    assert (a.count, a.first, a.last, a.min, a.max) == (3, 5.0, 2.0, 1.0, 5.0)


def test_finished_run_is_not_walked_again(tmp_path):
    run = tmp_path / "r1"
    write(run / ".trk", "loss", [1.0])
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([("r1", str(run), "done")])
    write(run / ".trk", "loss", [9.0], start=5)  # not looked at: same stamp
    idx.refresh([("r1", str(run), "done")])
    assert idx.get(["r1"])["r1"][("", "loss")].count == 1
    idx.refresh([("r1", str(run), "done-2")])
    assert idx.get(["r1"])["r1"][("", "loss")].count == 2


def test_parent_rolls_up_children_through_symlinks(tmp_path):
    c1, c2, parent = tmp_path / "c1", tmp_path / "c2", tmp_path / "parent"
    write(c1 / ".trk", "loss", [1.0])
    write(c2 / ".trk", "acc", [0.5])
    parent.mkdir()
    os.symlink("../c1", parent / "train")
    os.symlink(str(c2), parent / "eval")
    os.symlink("..", parent / "loop")  # a cycle must not hang the walk
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([("p", str(parent), "s")])
    got = idx.get(["p"])["p"]
    assert got[("train", "loss")].last == 1.0 and got[("eval", "acc")].last == 0.5


def test_corrupt_index_is_rebuilt(tmp_path):
    write(tmp_path / "r1" / ".trk", "loss", [1.0])
    db = tmp_path / "idx.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    idx = ScalarIndex(str(db))
    idx.refresh([("r1", str(tmp_path / "r1"), "s")])
    assert idx.get(["r1"])["r1"][("", "loss")].last == 1.0


def test_truncated_file_of_finished_run_warns(tmp_path):
    w = write(tmp_path / "r1" / ".trk", "loss", [1.0, 2.0, 3.0])
    data = open(w.path, "rb").read()
    open(w.path, "wb").write(data[:-10])
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([("r1", str(tmp_path / "r1"), "s")])
    assert idx.get(["r1"])["r1"][("", "loss")].count == 2
    assert any("truncated" in w for w in idx.warnings)


KILL_SCRIPT = textwrap.dedent("""
    import sys
    from tracker.metrics.index import ScalarIndex
    root, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    idx = ScalarIndex(db)
    print("ready", flush=True)
    idx.refresh([(f"r{i}", f"{root}/r{i}", "s") for i in range(n)])
""")


def indexed_runs(db):
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM runs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0  # not created yet


def test_kill_during_refresh_never_leaves_wrong_values(tmp_path):
    """SIGKILL lands while runs are being indexed (seen by polling the
    database), three times over; what is indexed is always exactly right and
    a later refresh completes the rest."""
    import time

    n = 60
    for i in range(n):
        write(tmp_path / f"r{i}" / ".trk", "loss", [float(i)] * 1999 + [float(i) + 0.5])
    db = str(tmp_path / "idx.sqlite")
    counts = []
    for _ in range(3):
        before = indexed_runs(db)
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path), db, str(n)],
                                stdout=subprocess.PIPE)
        proc.stdout.readline()
        deadline = time.monotonic() + 30
        while indexed_runs(db) <= before and time.monotonic() < deadline:
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        idx = ScalarIndex(db)
        partial = idx.get([f"r{i}" for i in range(n)])
        counts.append(len(partial))
        for run_id, aggs in partial.items():  # whatever is there is right
            a = aggs[("", "loss")]
            i = float(run_id[1:])
            assert (a.count, a.first, a.last, a.max, a.sum) == (2000, i, i + 0.5, i + 0.5, 1999 * i + i + 0.5)
        idx.close()
    assert 0 < counts[0] < n, counts  # the first kill came mid-refresh
    idx = ScalarIndex(db)
    idx.refresh([(f"r{i}", str(tmp_path / f"r{i}"), "s") for i in range(n)])
    got = idx.get([f"r{i}" for i in range(n)])
    assert len(got) == n
    assert all((got[f"r{i}"][("", "loss")].count, got[f"r{i}"][("", "loss")].last) == (2000, i + 0.5)
               for i in range(n))


def test_purged_runs_leave_the_index(trk, tmp_path):
    import sqlite3

    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("op:\n  exec: python -c \"print('loss=1')\"\n")
    trk("run", "op", "-y", cwd=proj)
    assert "loss" in trk("compare", "-t").stdout
    trk("runs", "rm", "-y")
    trk("runs", "purge", "-y")
    db = sqlite3.connect(trk.home / "index" / "scalars.sqlite")
    assert db.execute("SELECT count(*) FROM aggs").fetchone()[0] == 0


def aggs_of(idx, run_id):
    return {k: (a.first, a.last, a.min, a.max, a.count, a.first_step, a.last_step)
            for k, a in idx.get([run_id]).get(run_id, {}).items()}


def test_prefixes(tmp_path):
    run = tmp_path / "r"
    write(run / ".trk", "a", [1.0])
    write(run / "train" / ".trk", "a", [2.0])
    write(run / "logs" / "eval", "a", [3.0])
    write(run, "b", [4.0])
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([("r", str(run), "s")])
    assert {k: v[1] for k, v in aggs_of(idx, "r").items()} == {
        ("", "a"): 1.0, ("train", "a"): 2.0, ("logs/eval", "a"): 3.0, ("", "b"): 4.0}


def test_replaced_shrunk_and_vanished_files(tmp_path):
    run = tmp_path / "r"
    a = write(run / ".trk", "loss", [5.0, 6.0]).path
    b = write(run / "other", "acc", [0.5]).path
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([("r", str(run), None)])
    assert aggs_of(idx, "r")[("", "loss")] == (5.0, 6.0, 5.0, 6.0, 2, 0, 1)
    # Same size, new content (mtime moved on): read again from the start.
    other = write(tmp_path / "tmp", "loss", [7.0, 1.0]).path
    assert os.path.getsize(other) == os.path.getsize(a)
    os.replace(other, a)
    st = os.stat(a)
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    idx.refresh([("r", str(run), None)])
    assert aggs_of(idx, "r")[("", "loss")] == (7.0, 1.0, 1.0, 7.0, 2, 0, 1)
    # Shrunk: only what is left counts.
    os.replace(write(tmp_path / "tmp2", "loss", [4.0]).path, a)
    idx.refresh([("r", str(run), None)])
    assert aggs_of(idx, "r")[("", "loss")] == (4.0, 4.0, 4.0, 4.0, 1, 0, 0)
    # Vanished: its scalars go.
    os.remove(b)
    idx.refresh([("r", str(run), None)])
    assert list(aggs_of(idx, "r")) == [("", "loss")]


def test_grown_file_keeps_first_and_merges(tmp_path):
    run = tmp_path / "r"
    w = EventWriter(str(run / ".trk"))
    for step, v in enumerate([4.0, 2.0]):
        w.add_scalar("loss", v, step)
    w.flush()
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([("r", str(run), None)])
    for step, v in [(2, 8.0), (3, 3.0)]:
        w.add_scalar("loss", v, step)
    w.add_scalar("new", 1.0, 3)
    w.close()
    idx.refresh([("r", str(run), None)])
    got = idx.get(["r"])["r"]
    assert aggs_of(idx, "r")[("", "loss")] == (4.0, 3.0, 2.0, 8.0, 4, 0, 3)
    assert got[("", "loss")].avg == pytest.approx(17.0 / 4)
    assert aggs_of(idx, "r")[("", "new")] == (1.0, 1.0, 1.0, 1.0, 1, 3, 3)


def test_forget_and_only_asked_runs(tmp_path):
    for r in ("a", "b"):
        write(tmp_path / r / ".trk", "loss", [1.0])
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([(r, str(tmp_path / r), "s") for r in ("a", "b")])
    assert set(idx.get(["a"])) == {"a"}
    idx.forget(["a"])
    assert set(idx.get(["a", "b"])) == {"b"}
    # A forgotten run is indexed again even with its old stamp.
    idx.refresh([("a", str(tmp_path / "a"), "s")])
    assert idx.get(["a"])["a"][("", "loss")].count == 1


def test_schema_mismatch_and_deleted_database_are_rebuilt(tmp_path):
    import sqlite3

    write(tmp_path / "r1" / ".trk", "loss", [1.0, 2.0])
    db = str(tmp_path / "index" / "scalars.sqlite")
    idx = ScalarIndex(db)
    idx.refresh([("r1", str(tmp_path / "r1"), "s")])
    idx.close()
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 999")
    con.close()
    idx = ScalarIndex(db)
    idx.refresh([("r1", str(tmp_path / "r1"), "s")])
    assert idx.get(["r1"])["r1"][("", "loss")].count == 2
    idx.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    idx = ScalarIndex(db)
    idx.refresh([("r1", str(tmp_path / "r1"), "s")])
    assert idx.get(["r1"])["r1"][("", "loss")].count == 2


CONCURRENT_SCRIPT = textwrap.dedent("""
    import sys
    from tracker.metrics.index import ScalarIndex
    root, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ScalarIndex(db).refresh([(f"r{i}", f"{root}/r{i}", "s") for i in range(n)])
""")


def test_concurrent_refreshes_agree(tmp_path):
    n = 40
    for i in range(n):
        write(tmp_path / f"r{i}" / ".trk", "loss", [float(i), float(i) + 1])
    db = str(tmp_path / "idx.sqlite")
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_SCRIPT, str(tmp_path), db, str(n)])
             for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    got = ScalarIndex(db).get([f"r{i}" for i in range(n)])
    assert {r: (a[("", "loss")].count, a[("", "loss")].last) for r, a in got.items()} == {
        f"r{i}": (2, i + 1.0) for i in range(n)}


def test_lookup_prefix_forms(tmp_path):
    from tracker.views.compare import lookup

    c1, c2, parent = tmp_path / "c1", tmp_path / "c2", tmp_path / "parent"
    write(c1 / ".trk", "loss", [1.0])
    write(c2 / ".trk", "loss", [2.0])
    write(parent / ".trk", "acc", [0.5])
    os.symlink(str(c1), parent / "train")
    os.symlink(str(c2), parent / "eval")
    idx = ScalarIndex(str(tmp_path / "idx.sqlite"))
    idx.refresh([("p", str(parent), "s")])
    aggs = idx.get(["p"])["p"]
    assert lookup(aggs, "train#loss").last == 1.0
    assert lookup(aggs, "eval#loss").last == 2.0
    assert lookup(aggs, "loss").last == 2.0  # no own `loss`: first prefix in order ("eval")
    assert lookup(aggs, "acc").last == 0.5
    assert lookup(aggs, "test#loss") is None


def test_float32_scalars_read_back_as_logged():
    import struct

    from tracker.metrics.aggs import shortest

    f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]  # noqa: E731
    assert f32(0.1) == 0.10000000149011612 and shortest(f32(0.1)) == 0.1
    assert shortest(f32(0.1667)) == 0.1667 and shortest(f32(1 / 3)) == 0.33333334
    assert shortest(f32(1e-7)) == 1e-7 and shortest(f32(-2.5)) == -2.5
    assert shortest(0.1) == 0.1 and shortest(1 / 3) == 1 / 3  # float64 values stay as they are
    assert shortest(float("inf")) == float("inf") and shortest(0.0) == 0.0
    nan = shortest(float("nan"))
    assert nan != nan


def test_compare_shows_a_float32_scalar_as_logged_and_converts_an_older_index(trk, tmp_path):
    import json
    import sqlite3

    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("op:\n  exec: python log.py\n")
    (proj / "log.py").write_text("print('loss: 0.1')\nprint('acc: 0.1667')\n")
    trk("run", "op", "-y", cwd=proj)
    rows = json.loads(trk("compare", "--json", "-cc", "loss,acc").stdout)
    assert (rows[0]["loss"], rows[0]["acc"]) == (0.1, 0.1667)
    assert trk("compare", "--csv", "-", "-cc", "loss,acc").stdout.splitlines()[1].endswith(",0.1,0.1667")
    # An index of version 2 holds float32 values widened to float64: converted in place.
    db = sqlite3.connect(trk.home / "index" / "scalars.sqlite")
    db.execute("UPDATE aggs SET last = 0.10000000149011612 WHERE tag = 'loss'")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    rows = json.loads(trk("compare", "--json", "-cc", "loss").stdout)
    assert rows[0]["loss"] == 0.1
    db = sqlite3.connect(trk.home / "index" / "scalars.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    db.close()


def test_compare_sorts_by_a_column_named_as_guild_names_it(trk, tmp_path):
    import json

    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("op:\n  main: log\n  flags:\n    x: 1\n")
    (proj / "log.py").write_text("x = 1\nprint(f'acc: {x / 10}')\n")
    for x in (2, 3, 1):
        trk("run", "op", f"x={x}", "-y", cwd=proj)
    by = lambda *args: [r["x"] for r in json.loads(trk("compare", "--json", "-cc", "=x,acc", *args).stdout)]  # noqa: E731
    assert by("--max", "#acc") == [3, 2, 1] and by("--min", "#acc") == [1, 2, 3] and by("--min", "=x") == [1, 2, 3]
    assert by("--max", "acc") == [3, 2, 1]
    p = trk("compare", "-t", "--min", "#nope", "-cc", "=x,acc", check=False)
    assert p.returncode != 0 and "cannot sort by '#nope': no such column" in p.stderr
