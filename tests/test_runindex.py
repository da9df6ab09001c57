"""The run index: commands ask it instead of listing the store, and it keeps
up with runs added, removed or changed by trk or behind its back."""

from __future__ import annotations

import json
import os
import shutil
import time

from tracker.store import RunStore, now_us
from tracker.store.select import RunFilter, select_from


def make_runs(home, n, op="train", start=0, settle=True):
    """n finished runs written through the store API, oldest first."""
    store = RunStore(str(home))
    t0 = now_us() - 10_000_000_000
    ids = []
    for i in range(start, start + n):
        run, _ = store.new_run()
        for name, value in (("id", run.id), ("op", op), ("flags", {"i": i}), ("label", f"i={i}"),
                            ("tags", ["even"] if i % 2 == 0 else []), ("initialized", t0 + i),
                            ("started", t0 + i), ("stopped", t0 + i + 5), ("exit_status", 0 if i % 7 else 1)):
            run.write_attr(name, value)
        store.publish(run)
        ids.append(run.id)
    if settle:
        time.sleep(2.1)  # past the file system's clock tick: the index trusts these rows
    return ids


def lines(trk, *args):
    return trk("runs", *args).stdout.splitlines()


def test_listing_reads_only_what_it_shows(trk, trk_home):
    ids = make_runs(trk_home, 60)
    assert len(lines(trk)) == 20
    # Damage an old run the default listing does not show: it is not read, so nothing is said.
    old = trk_home / "runs" / ids[0] / ".trk" / "attrs" / "label"
    old.write_text("{not json\n")
    p = trk("runs")
    assert p.stderr == "(20 of 60 runs shown; -a for all)\n" and len(p.stdout.splitlines()) == 20
    # Shown, it is read, and reported.
    p = trk("runs", "60")
    assert "listed as error" in p.stderr and p.stdout.startswith("[60]")


def test_runs_added_and_removed_behind_trks_back(trk, trk_home):
    ids = make_runs(trk_home, 30)
    assert len(lines(trk, "-a")) == 30
    runs = trk_home / "runs"
    copy = "f" * 32
    shutil.copytree(runs / ids[-1], runs / copy)
    (runs / copy / ".trk" / "attrs" / "id").write_text(json.dumps(copy) + "\n")
    (runs / copy / ".trk" / "attrs" / "started").write_text(json.dumps(now_us()) + "\n")
    shutil.rmtree(runs / ids[0])
    listed = lines(trk, "-a")
    assert len(listed) == 30
    assert trk("select", "1").stdout.strip() == copy
    assert ids[0] not in trk("runs", "-a", "--json").stdout


def test_streamed_listing_matches_the_paged_one(trk, trk_home):
    make_runs(trk_home, 2500)  # more than a streamed page
    streamed = lines(trk, "-a")
    paged = lines(trk, "-n", "5000")
    assert streamed == paged and len(streamed) == 2500
    assert streamed[0].startswith("[1]") and streamed[-1].startswith("[2500]")


def test_filters_and_specs_are_index_queries(trk, trk_home):
    make_runs(trk_home, 40, op="prepare")
    make_runs(trk_home, 40, op="m:train", start=40)
    store = RunStore(str(trk_home))
    assert store.count(RunFilter(operations=["train"])) == 40
    assert store.count(RunFilter(operations=["prep"])) == 40
    assert store.count(RunFilter(tags=["even"])) == 40
    assert store.count(RunFilter(statuses=["error"])) == len([i for i in range(80) if i % 7 == 0])
    assert store.count(RunFilter(labels=["i=7"])) == 11  # i=7 and i=70 to i=79
    newest = store.query(limit=1)[0]
    assert newest.label == "i=79"
    picked = select_from(store, RunFilter(operations=["prepare"]), ["5:6", "2"])
    assert [r.label for r in picked] == ["i=38", "i=35", "i=34"]
    assert [r.label for r in select_from(store, None, [newest.id[:10], "3"])] == ["i=79", "i=77"]
    assert store.position(newest) == 1
    assert [r.label for r in store.newest(["prepare"], "completed")] == ["i=39"]


def test_edits_by_trk_reach_the_index_at_once(trk, trk_home):
    make_runs(trk_home, 5)
    trk("runs", "label", "3", "--set", "relabelled", "-y")
    assert [l for l in lines(trk, "-l", "relabelled")] == [lines(trk, "3")[0].replace("[3]", "[1]", 1)]
    trk("runs", "tag", "2", "--add", "best", "-y")
    assert len(lines(trk, "-t", "best")) == 1


def test_in_place_edit_of_a_finished_run_and_reindex(trk, trk_home):
    ids = make_runs(trk_home, 30)
    lines(trk, "-a")  # indexed
    label = trk_home / "runs" / ids[0] / ".trk" / "attrs" / "label"
    st = os.stat(label)
    label.write_text('"i=XY"\n')  # same size
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns))
    p = trk("check", "--reindex")
    assert p.stdout.splitlines()[0] == "30 run(s), 0 deleted"
    assert len(lines(trk, "-l", "i=XY")) == 1


def test_check_reports_damaged_runs_and_cleans_leftovers(trk, trk_home):
    ids = make_runs(trk_home, 3)
    (trk_home / "runs" / ids[1] / ".trk" / "attrs" / "tags").write_text("5\n")
    left = trk_home / "runs" / ".deadbeef.tmp"
    (left / ".trk" / "attrs").mkdir(parents=True)
    old = time.time() - 3600
    os.utime(left / ".trk" / "attrs", (old, old))
    os.utime(left, (old, old))
    p = trk("check")
    assert "1 run(s) with damaged metadata" in p.stdout and ids[1][:8] in p.stdout
    assert not left.exists()


def test_running_run_becomes_terminated_when_its_supervisor_dies(trk, trk_home, project):
    import signal
    import subprocess

    (project / "sleep.py").write_text("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    with open(project / "trk.yml", "a") as f:
        f.write("\nsleeper:\n  exec: python sleep.py\n")
    proc = trk.popen("run", "sleeper", "-y", cwd=project, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    assert proc.stdout.readline().strip() == b"ready"
    assert "running" in lines(trk)[0]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert "terminated" in lines(trk)[0]
    assert "terminated" in lines(trk, "--terminated")[0]


def test_a_run_trk_publishes_needs_no_relisting(trk, trk_home, project):
    """A new run goes into the index as it is published, so the next command
    does not list `runs/` again (what keeps `trk run` flat at 100,000 runs)."""
    import sqlite3

    make_runs(trk_home, 5)
    lines(trk)  # the index remembers runs/ as it is now (settled)
    trk("run", "echo", "-y", cwd=project)
    st = os.stat(trk_home / "runs")
    db = sqlite3.connect(trk_home / "index" / "runs.sqlite")
    assert db.execute("SELECT ino, mtime FROM places WHERE place = 0").fetchone() == (st.st_ino, st.st_mtime_ns)
    assert db.execute("SELECT count(*) FROM runs WHERE op = 'echo'").fetchone() == (1,)
    assert not [n for n in os.listdir(trk_home / "runs") if n.startswith(".")]  # made in staging/, not runs/
    assert lines(trk)[0].startswith("[1]  echo")


def test_live_status_filters_use_the_index_of_open_runs(trk_home):
    ids = make_runs(trk_home, 30, settle=False)
    store = RunStore(str(trk_home))
    staged, _ = store.new_run()
    for name, value in (("id", staged.id), ("op", "train"), ("flags", {}), ("initialized", now_us()),
                        ("staged", now_us())):
        staged.write_attr(name, value)
    store.publish(staged)
    assert store.count(RunFilter(statuses=["staged"])) == 1
    assert store.count(RunFilter(statuses=["running", "staged"])) == 1
    assert store.count(RunFilter(statuses=["completed"])) == len([i for i in range(30) if i % 7])
    where, params = RunFilter(statuses=["running"]).sql()
    plan = store.index.db.execute(f"EXPLAIN QUERY PLAN SELECT count(*) FROM runs WHERE place = 0 AND ({where})",
                                  params).fetchall()
    assert "runs_open" in str(plan)  # not a walk over every run (100,000 at scale)
    assert len(ids) == 30
