"""Staged runs and `trk queue run`: N at a time, each run exactly once, and
what a killed queue leaves behind."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from .conftest import wait_for

PROJECT = """
work:
  exec: python work.py ${i} ${out} ${secs}
  flags:
    i: 0
    out: ''
    secs: 0.2
"""

# Appends its `i` to `out`, then waits `secs` or until `out.go` exists.
WORK = """
import os, sys, time
i, out, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(out, "a") as f:
    f.write(i + "\\n")
end = time.time() + secs
while time.time() < end and not os.path.exists(out + ".go"):
    time.sleep(0.05)
print("done", i)
"""


def _project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "guild.yml").write_text(PROJECT)
    (proj / "work.py").write_text(WORK)
    return proj


def _statuses(trk) -> dict[str, str]:
    runs = json.loads(trk("runs", "-n", "1000", "--json").stdout)
    return {r["id"]: r["status"] for r in runs if r.get("op") == "work"}


def test_stage_trials_then_queue_runs_each_once_in_staging_order(trk, tmp_path):
    proj = _project(tmp_path)
    out = tmp_path / "ran.txt"
    trk("run", "work", "i=range[1:6]", f"out={out}", "secs=0", "--stage-trials", "-y", cwd=proj)
    assert set(_statuses(trk).values()) == {"staged"}
    assert not out.exists()
    listed = trk("queue", "list").stdout.splitlines()
    assert [line.split()[-3] for line in listed] == [f"i={n}" for n in range(1, 7)]
    p = trk("queue", "run", "-j", "1")
    assert "Started 6 staged run(s): 6 completed, 0 failed" in p.stdout
    assert out.read_text().split() == [str(n) for n in range(1, 7)]  # oldest staging first
    assert set(_statuses(trk).values()) == {"completed"}
    assert "There are no staged runs." in trk("queue", "run").stdout


def test_two_queues_run_every_staged_run_exactly_once(trk, tmp_path):
    proj = _project(tmp_path)
    out = tmp_path / "ran.txt"
    trk("run", "work", "i=range[1:16]", f"out={out}", "secs=0.1", "--stage-trials", "-y", cwd=proj)
    queues = [trk.popen("queue", "run", "-j", "2", stdout=-1, stderr=-1, text=True) for _ in range(2)]
    outputs = [q.communicate(timeout=120) for q in queues]
    assert all(q.returncode == 0 for q in queues), outputs
    ran = out.read_text().split()
    assert sorted(ran, key=int) == [str(n) for n in range(1, 17)], ran  # each once: none twice, none left out
    assert set(_statuses(trk).values()) == {"completed"}


def test_start_of_a_run_another_process_started_is_refused(trk, tmp_path):
    proj = _project(tmp_path)
    out = tmp_path / "ran.txt"
    trk("run", "work", "i=1", f"out={out}", "secs=2", "--stage", "-y", cwd=proj)
    run_id = next(iter(_statuses(trk)))
    first = trk.popen("run", "--start", run_id[:8], stdout=-1, stderr=-1, text=True)
    wait_for(lambda: out.exists())
    second = trk("run", "--start", run_id[:8], check=False)
    assert second.returncode != 0
    assert "is running" in second.stderr or "another process" in second.stderr
    first.communicate(timeout=60)
    assert out.read_text().split() == ["1"]


def test_killed_queue_leaves_started_runs_terminated_and_the_rest_staged(trk, tmp_path):
    proj = _project(tmp_path)
    out = tmp_path / "ran.txt"
    trk("run", "work", "i=range[1:6]", f"out={out}", "secs=30", "--stage-trials", "-y", cwd=proj)
    queue = trk.popen("queue", "run", "-j", "2", stdout=-1, stderr=-1)
    try:
        wait_for(lambda: out.exists() and len(out.read_text().split()) == 2)
        time.sleep(0.3)
        os.kill(queue.pid, signal.SIGKILL)
        queue.wait(timeout=10)
    finally:
        if queue.poll() is None:
            queue.kill()
    started = out.read_text().split()
    statuses = _statuses(trk)
    assert sorted(statuses.values()) == ["staged"] * 4 + ["terminated"] * 2
    Path(f"{out}.go").write_text("")  # the killed queue's programs, and the runs to come, end at once
    p = trk("queue", "run", "-j", "4", timeout=200)  # a second queue finishes the staged runs
    assert "Started 4 staged run(s): 4 completed" in p.stdout
    final = _statuses(trk)
    assert sorted(final.values()) == ["completed"] * 4 + ["terminated"] * 2
    assert {k for k, v in final.items() if v == "terminated"} == {k for k, v in statuses.items() if v == "terminated"}
    assert sorted(out.read_text().split(), key=int) == [str(n) for n in range(1, 7)]
    assert len(started) == 2
