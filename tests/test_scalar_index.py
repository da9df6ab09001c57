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


def test_kill_during_refresh_never_leaves_wrong_values(tmp_path):
    n = 60
    for i in range(n):
        write(tmp_path / f"r{i}" / ".trk", "loss", [float(i)] * 2000)
    db = str(tmp_path / "idx.sqlite")
    for delay in (0.3, 0.6):
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path), db, str(n)],
                                stdout=subprocess.PIPE)
        proc.stdout.readline()
        import time

        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        idx = ScalarIndex(db)
        partial = idx.get([f"r{i}" for i in range(n)])
        for run_id, aggs in partial.items():  # whatever is there is right
            a = aggs[("", "loss")]
            assert a.count == 2000 and a.last == float(run_id[1:])
        idx.close()
    idx = ScalarIndex(db)
    idx.refresh([(f"r{i}", str(tmp_path / f"r{i}"), "s") for i in range(n)])
    got = idx.get([f"r{i}" for i in range(n)])
    assert len(got) == n
    assert all(got[f"r{i}"][("", "loss")].count == 2000 and got[f"r{i}"][("", "loss")].max == i for i in range(n))


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
