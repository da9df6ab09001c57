"""Data safety of the run store: racing moves, --run-dir, bad metadata,
in-place attr edits and leftovers of killed writes."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tracker.store import RunLock, RunStore, now_us
from tracker.store import moves


def make_run(store: RunStore, label: str = "x", **extra) -> str:
    """A finished run written through the library (no process spawned)."""
    run, _ = store.new_run()
    t = now_us()
    attrs = {"id": run.id, "op": "echo", "flags": {"n": 1}, "label": label, "tags": [], "initialized": t,
             "started": t, "stopped": t + 5, "exit_status": 0}
    attrs.update(extra)
    for name, value in attrs.items():
        run.write_attr(name, value)
    Path(run.dir, "data.txt").write_text("user data")
    store.publish(run)
    return run.id


def places(home: Path, run_id: str) -> list[str]:
    return [p for p in ("runs", "trash/runs") if os.path.lexists(home / p / run_id)]


# -- 1. racing rm / restore / purge ------------------------------------------


def test_racing_rm_restore_purge_never_loses_a_run(trk, trk_home):
    store = RunStore()
    keep = [make_run(store, label="keep") for _ in range(80)]
    doomed = [make_run(store, label="doomed") for _ in range(20)]
    # Four processes at a time, each running one of these in turn, over the same runs.
    scripts = [
        [("runs", "rm", "-y"), ("runs", "restore", "-y")] * 3,
        [("runs", "restore", "-y"), ("runs", "rm", "-y")] * 3,
        [("runs", "rm", "-y"), ("runs", "rm", "-y", "-l", "keep"), ("runs", "restore", "-y")] * 2,
        [("runs", "purge", "-y", "-l", "doomed"), ("runs", "rm", "-y", "-l", "doomed"), ("runs", "restore", "-y")] * 2
        + [("runs", "purge", "-y", "-l", "doomed")],
    ]
    results: list[subprocess.CompletedProcess] = []

    def play(script):
        for args in script:
            results.append(trk(*args, check=False, timeout=300))

    threads = [threading.Thread(target=play, args=(s,)) for s in scripts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in results:
        assert "Traceback" not in p.stderr, p.stderr
        assert p.returncode == 0, p.args[3:] + [p.stdout, p.stderr]
        for line in p.stderr.splitlines():
            assert line.startswith("trk: warning: run ") and line.endswith("; skipped"), line
    for run_id in keep:
        where = places(trk_home, run_id)
        assert len(where) == 1, (run_id, where)
        assert (trk_home / where[0] / run_id / "data.txt").read_text() == "user data"
        assert json.loads((trk_home / where[0] / run_id / ".trk" / "attrs" / "id").read_text()) == run_id
    for run_id in doomed:
        assert len(places(trk_home, run_id)) <= 1, run_id
    # The runs gone are exactly those purges said they purged.
    purged = sum(int(p.stdout.split()[1]) for p in results if p.stdout.startswith("Purged "))
    assert purged == sum(not places(trk_home, run_id) for run_id in doomed)
    # Nothing half-moved or half-purged is left behind, and no lock files pile up.
    assert [n for d in ("runs", "trash/runs") for n in os.listdir(trk_home / d) if n.startswith(".")] == []
    assert os.listdir(trk_home / "locks") == []


def test_rm_refuses_when_the_trash_holds_the_same_id(trk, trk_home):
    store = RunStore()
    run_id = make_run(store, label="live")
    other = make_run(store, label="other")
    # An older copy of the run in the trash (a restore interrupted by hand, a copied store...).
    (trk_home / "trash" / "runs").mkdir(parents=True)
    os.rename(trk_home / "runs" / other, trk_home / "trash" / "runs" / run_id)
    p = trk("runs", "rm", run_id[:8], "-y", check=False)
    assert p.returncode == 1
    assert p.stderr.startswith(f"trk: cannot delete run {run_id[:8]}: the trash already holds a run with that id")
    assert "Traceback" not in p.stderr
    # Nothing removed: both copies are intact.
    assert (trk_home / "runs" / run_id / "data.txt").exists()
    assert json.loads((trk_home / "trash" / "runs" / run_id / ".trk" / "attrs" / "label").read_text()) == "other"
    p = trk("runs", "restore", run_id[:8], "-y", check=False)
    assert p.returncode == 1 and "cannot restore run" in p.stderr and "Traceback" not in p.stderr
    assert places(trk_home, run_id) == ["runs", "trash/runs"]


@pytest.mark.parametrize("has_renameat2", [True, False])
def test_rename_noreplace_refuses_an_existing_empty_dir(tmp_path, monkeypatch, has_renameat2):
    if not has_renameat2:
        monkeypatch.setattr(moves, "_renameat2", False)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "f").write_text("x")
    dst.mkdir()  # os.rename would replace this silently
    with pytest.raises(FileExistsError):
        moves.rename_noreplace(str(src), str(dst))
    assert (src / "f").exists() and dst.exists()
    with pytest.raises(FileNotFoundError):
        moves.rename_noreplace(str(tmp_path / "gone"), str(dst))
    os.rmdir(dst)
    moves.rename_noreplace(str(src), str(dst))
    assert (dst / "f").exists() and not src.exists()


def test_run_being_moved_is_skipped_with_a_message(trk, trk_home):
    store = RunStore()
    run_id = make_run(store)
    lock = store.move_lock(run_id)
    assert lock.acquire()
    try:
        p = trk("runs", "rm", "-y")
    finally:
        lock.release()
    assert p.stdout == "Deleted 0 run(s)\n"
    assert p.stderr == f"trk: warning: run {run_id[:8]} is being moved by another process; skipped\n"
    assert places(trk_home, run_id) == ["runs"]
    assert trk("runs", "rm", "-y").stdout == "Deleted 1 run(s)\n"


def test_run_moved_between_listing_and_moving_is_reported(trk_home):
    store = RunStore()
    a, b = make_run(store), make_run(store)
    listed = store.list()
    os.makedirs(trk_home / "trash" / "runs")
    os.rename(trk_home / "runs" / a, trk_home / "trash" / "runs" / a)  # another process's rm
    done = store.delete(listed)
    assert [r.id for r in done] == [b]
    assert store.warnings == [f"run {a[:8]} was already moved by another process; skipped"]
    assert places(trk_home, a) == ["trash/runs"] and places(trk_home, b) == ["trash/runs"]


# -- 2. --run-dir ----------------------------------------------------------------


def test_run_dir_must_be_empty_unless_forced(trk, project, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    p = trk("run", "echo", "--run-dir", str(target), "-y", cwd=project, check=False)
    assert p.returncode == 2
    assert p.stderr.startswith(f"trk: run directory {target} is not empty\n")
    assert "--force-run-dir" in p.stderr
    assert sorted(os.listdir(target)) == ["notes.txt"]
    assert trk("runs").stdout == ""
    p = trk("run", "echo", "--run-dir", str(target), "--force-run-dir", "-y", cwd=project)
    assert p.stdout == "[hello]\n[1]\n"
    assert trk("runs", "-s").stdout == "[1]  echo  completed  msg=hello n=1\n"
    assert trk("select", "1", "--path").stdout.strip() == str(target)
    assert (target / "notes.txt").read_text() == "mine" and (target / "echo.py").exists()
    # A directory that already holds a run is refused even with --force-run-dir.
    p = trk("run", "echo", "--run-dir", str(target), "--force-run-dir", "-y", cwd=project, check=False)
    assert p.returncode == 2 and p.stderr.startswith(f"trk: {target} already holds a run")


def test_run_dir_inside_the_store_is_refused(trk, project, trk_home):
    p = trk("run", "echo", "--run-dir", str(trk_home / "runs" / "mine"), "-y", cwd=project, check=False)
    assert p.returncode == 2 and "overlaps the run store" in p.stderr
    assert trk("runs").stdout == ""


def test_run_dir_holding_the_store_is_refused(trk, project, tmp_path):
    # TRK_HOME=D/.trk and --run-dir D: the run's metadata would go in D/.trk,
    # and purging the run would remove the whole store.
    trk.home = tmp_path / "d" / ".trk"
    trk("run", "echo", "-y", cwd=project)
    (run_id,) = os.listdir(trk.home / "runs")
    p = trk("run", "echo", "--run-dir", str(tmp_path / "d"), "--force-run-dir", "-y", cwd=project, check=False)
    assert p.returncode == 2 and "overlaps the run store" in p.stderr
    assert os.listdir(trk.home / "runs") == [run_id] and not (trk.home / "attrs").exists()


def test_purge_of_run_dir_run_keeps_the_users_files(trk, project, tmp_path, trk_home):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    trk("run", "echo", "--run-dir", str(target), "--force-run-dir", "-y", cwd=project)
    assert trk("runs", "rm", "1", "-y").stdout == "Deleted 1 run(s)\n"
    assert (target / ".trk").is_dir()
    assert trk("runs", "purge", "-y").stdout == "Purged 1 run(s)\n"
    assert sorted(os.listdir(target)) == ["echo.py", "notes.txt", "train.py", "trk.yml"]
    assert (target / "notes.txt").read_text() == "mine"
    assert [n for d in ("runs", "trash/runs") for n in os.listdir(trk_home / d) if not n.startswith(".")] == []


# -- 5. bad metadata -------------------------------------------------------------

BAD = {
    "started": ("garbage", "attr 'started' is not a time (garbage)"),
    "tags": ("5", "attr 'tags' is not a list of strings (5)"),
    "flags": ("[1, 2]", "attr 'flags' is not a mapping ([1, 2])"),
    "label": ("{}", "attr 'label' is not a string ({})"),
    "exit_status": ('"x"', "attr 'exit_status' is not an integer (x)"),
    "parent": ("7", "attr 'parent' is not a string (7)"),
    "stopped": ("{\"half\": ", "attr file 'stopped' is corrupt ("),
    "op": ("op: [unclosed", "attr file 'op' is corrupt ("),
    "cmd": ("- a\n- 2024-01-01\n", "attr 'cmd' is not JSON data ("),
}


def test_bad_attrs_show_the_run_as_error_and_spare_the_others(trk, trk_home):
    store = RunStore()
    good = [make_run(store, label="good"), make_run(store, label="good")]
    bad = {}
    for name, (text, _) in BAD.items():
        run_id = make_run(store, label="bad")
        (trk_home / "runs" / run_id / ".trk" / "attrs" / name).write_text(text)
        bad[run_id] = name
    p = trk("runs", "-a", "-s")
    assert "Traceback" not in p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == len(good) + len(bad)
    assert sorted(l.split()[2] for l in lines if "good" in l) == ["completed", "completed"]
    warnings = p.stderr.splitlines()
    assert len(warnings) == len(bad), warnings  # one line per bad run
    for run_id, name in bad.items():
        (w,) = [w for w in warnings if w.startswith(f"trk: warning: run {run_id[:8]}: ")]
        assert BAD[name][1] in w and w.endswith("; listed as error"), w
        assert str(trk_home / "runs" / run_id / ".trk" / "attrs" / name) in w
    data = {d["id"]: d for d in json.loads(trk("runs", "-a", "--json").stdout)}
    assert all(data[i]["status"] == "error" and BAD[n][1] in data[i]["error"] for i, n in bad.items())
    assert all(data[i]["status"] == "completed" for i in good)
    for run_id, name in bad.items():
        p = trk("runs", "info", run_id[:8])
        assert "status: error" in p.stdout and BAD[name][1] in p.stdout, p.stdout
    p = trk("compare", "-t")
    assert len(p.stdout.splitlines()) == 1 + len(good) + len(bad) and "Traceback" not in p.stderr
    assert trk("select", good[0][:8]).stdout.strip() == good[0]
    assert trk("ls", good[0][:8], "-n").stdout.splitlines() == ["data.txt"]
    assert trk("runs", "rm", "-y", good[0][:8]).stdout == "Deleted 1 run(s)\n"
    assert trk("runs", "rm", "-y", next(iter(bad))[:8]).stdout == "Deleted 1 run(s)\n"
    assert len(trk("runs", "-a").stdout.splitlines()) == len(good) + len(bad) - 2


def test_run_properties_never_raise_on_bad_attrs(trk_home):
    store = RunStore()
    run_id = make_run(store)
    attrs = trk_home / "runs" / run_id / ".trk" / "attrs"
    for name, (text, _) in BAD.items():
        (attrs / name).write_text(text)
    (attrs / "env").write_bytes(b"\xff\xfe")  # not UTF-8
    run = store.get(run_id)
    assert run.status == "error" and "(and 9 more)" in run.error
    assert (run.started, run.stopped, run.tags, run.flags, run.label, run.parent, run.opspec) == (
        None, None, [], {}, "", None, "?")
    assert run.sort_key == run.attrs["initialized"] and run.duration_us is None
    assert run.to_dict()["status"] == "error"


def test_attrs_larger_than_one_read_are_written_and_read_whole(trk_home):
    """Attr files are read and written straight through their descriptors, in
    64 KiB reads: a value several reads long (a big flags dict) comes back whole,
    through a new run's first attrs, a later write, and a fresh read."""
    store = RunStore()
    run, _ = store.new_run()
    big = {f"flag_{i}": "v" * 50 + str(i) for i in range(5000)}  # about 330 KB of JSON
    run.init_attrs({"id": run.id, "op": "big", "flags": big, "initialized": now_us()})
    store.publish(run)
    run.write_attr("label", "x" * 200_000)
    fresh = RunStore().get(run.id)
    assert fresh.flags == big and fresh.label == "x" * 200_000
    assert os.path.getsize(os.path.join(fresh.attrs_dir, "flags")) > 3 * 65536
    with pytest.raises(FileExistsError):  # a new run's first attrs never overwrite one already there
        fresh.init_attrs({"op": "other"})
    assert RunStore().get(run.id).opspec == "big"


def test_writing_an_attr_of_a_run_not_read_yet_keeps_every_view_of_it_true(trk_home):
    """A write to a run trk has not read (a Dask worker noting itself on the
    run it starts) does not read every attr first; reads after it see the
    files, the new one too. A run already read keeps its attrs current."""
    store = RunStore()
    run_id = make_run(store, label="before")
    fresh = store.get(run_id)
    fresh.write_attr("dask_worker", "tcp://w:1")
    fresh.del_attr("label")
    assert fresh.get("dask_worker") == "tcp://w:1" and fresh.label == "" and fresh.opspec == "echo"
    assert fresh.status == "completed"
    read = store.get(run_id)
    assert read.attrs["op"] == "echo"  # read: now kept current in memory
    read.write_attr("label", "after")
    read.del_attr("dask_worker")
    assert read.label == "after" and "dask_worker" not in read.attrs
    listed = next(r for r in store.query() if r.id == run_id)  # from the run index, a summary
    listed.write_attr("label", "listed")
    assert listed.label == "listed" and RunStore().get(run_id).label == "listed"


# -- 8. attrs edited in place ------------------------------------------------------


def _edit_in_place(path: Path, text: str) -> None:
    """Rewrite a file keeping its inode, size and times (only its ctime changes)."""
    st = path.stat()
    assert len(text.encode()) == st.st_size
    with open(path, "r+") as f:
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)


def test_attr_edited_in_place_with_same_size_and_mtime_is_noticed(trk, trk_home):
    store = RunStore()
    run_id = make_run(store, label="old", host="aaaa")
    other = make_run(store, label="other")
    time.sleep(2.1)  # attrs written within the last 2 s are not cached
    assert trk("runs", "-s").stdout == "[1]  echo  completed  other\n[2]  echo  completed  old\n"
    db = sqlite3.connect(trk_home / "index" / "runs.sqlite")
    assert sorted(db.execute("SELECT id FROM runs").fetchall()) == sorted([(run_id,), (other,)])  # cached
    db.close()
    attrs = trk_home / "runs" / run_id / ".trk" / "attrs"
    _edit_in_place(attrs / "label", '"new"\n')
    assert trk("runs", "-s").stdout == "[1]  echo  completed  other\n[2]  echo  completed  new\n"
    # An attr the listing does not show, and one that changes the order.
    _edit_in_place(attrs / "host", '"bbbb"\n')
    assert "host: bbbb" in trk("runs", "info", run_id[:8]).stdout.splitlines()
    started = json.loads((attrs / "started").read_text())
    _edit_in_place(attrs / "started", json.dumps(started + 10**9) + "\n")
    assert trk("runs", "-s").stdout == "[1]  echo  completed  new\n[2]  echo  completed  other\n"


# -- 9. leftovers of killed writes --------------------------------------------------


def _leftover(runs_dir: Path, age_s: float) -> Path:
    run_id = os.urandom(16).hex()
    d = runs_dir / f".{run_id}.tmp"
    (d / ".trk" / "attrs").mkdir(parents=True)
    (d / ".trk" / "attrs" / "id").write_text(json.dumps(run_id))
    (d / "half-copied.py").write_text("x")
    old = time.time() - age_s
    for p in (d / ".trk" / "attrs", d):
        os.utime(p, (old, old))
    return d


def test_leftover_temp_dirs_are_cleaned_at_the_next_write_and_never_listed(trk, project, trk_home):
    runs_dir = trk_home / "runs"
    runs_dir.mkdir(parents=True)
    stale = _leftover(runs_dir, 3600)
    fresh = _leftover(runs_dir, 0)  # maybe a run being made right now
    held = _leftover(runs_dir, 3600)
    lock = RunLock(str(held / ".trk" / "lock"))
    lock.acquire()  # a live process still making its run
    try:
        p = trk("runs")
        assert p.stdout == "" and "warning" not in p.stderr and "no runs yet" in p.stderr  # no leftover is listed
        trk("run", "echo", "-y", cwd=project)
        assert not stale.exists()
        assert fresh.exists() and held.exists()
        lines = trk("runs", "-s").stdout.splitlines()
        assert [l.split()[1] for l in lines] == ["echo"]
    finally:
        lock.release()


# -- 9. a run ending while it is listed ----------------------------------------------


def _running_run(store: RunStore) -> tuple[str, RunLock]:
    """A run whose supervisor (this test) holds its lock and has not ended it."""
    run, build = store.new_run()
    lock = RunLock(os.path.join(build, ".trk", "lock"))
    lock.acquire()
    t = now_us()
    for name, value in {"id": run.id, "op": "echo", "flags": {}, "label": "", "tags": [],
                        "initialized": t, "started": t}.items():
        run.write_attr(name, value)
    store.publish(run)
    return run.id, lock


def test_a_run_ending_between_reading_attrs_and_asking_its_lock_is_not_terminated(trk_home):
    store = RunStore()
    run_id, lock = _running_run(store)
    listed = store.get(run_id)
    assert "exit_status" not in listed.attrs  # read while it runs...
    RunStore().get(run_id).finish(0)  # ...then its supervisor records the end
    lock.release()  # and lets go: the listing asks the lock only now
    assert listed.status == "completed"


def test_index_row_of_a_run_ending_between_reading_and_asking_is_not_terminated(trk_home):
    store = RunStore()
    store.list()  # the index exists
    run_id, lock = _running_run(store)
    index = store.index
    asked = []

    def ends_first(path):  # the supervisor finishes just as the lock is asked
        if not asked:
            asked.append(path)
            RunStore().get(run_id).finish(0)
            lock.release()
        return RunLock(path).try_acquire() is False

    index.is_locked = ends_first
    assert [r.status for r in store.list()] == ["completed"] and asked
    assert [r.status for r in RunStore().list()] == ["completed"]


def test_a_listing_asking_the_lock_does_not_make_a_claim_fail(trk_home):
    store = RunStore()
    run_id, lock = _running_run(store)
    lock.release()
    path = os.path.join(store.get(run_id).dir, ".trk", "lock")
    # Another process asks the lock in a loop, as `trk runs` does for a run
    # not finished: it takes the lock for an instant each time.
    prober = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom tracker.store.lock import is_locked\n"
         "n, stop = 0, time.time() + 1.5\nwhile time.time() < stop:\n    is_locked(sys.argv[1]); n += 1\nprint(n)",
         path], stdout=subprocess.PIPE, text=True)
    failed = claims = 0
    while prober.poll() is None:
        held = RunLock(path)
        if held.try_acquire():
            held.release()
        else:
            failed += 1
        claims += 1
    assert failed == 0 and claims > 100 and int(prober.stdout.read()) > 100
