"""`trk cat -f` follows a running run's output (a stepped run's: each step's) until it ends."""

from __future__ import annotations

import subprocess
import time


def wait_running(trk, proj, op, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        p = trk("runs", "-s", "-o", op, cwd=proj, check=False)
        if "running" in p.stdout:
            return
        time.sleep(0.1)
    raise AssertionError("the run did not start")


def test_cat_follow_prints_output_as_it_comes_then_the_status(trk, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "slow.py").write_text("import time\nfor i in range(6):\n    print(f'line {i}', flush=True)\n"
                                  "    time.sleep(0.3)\n")
    (proj / "trk.yml").write_text("slow:\n  exec: python slow.py\n  output-scalars: no\n"
                                  "two:\n  steps:\n    - slow\n    - slow\n")
    runner = trk.popen("run", "slow", "-y", cwd=proj, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_running(trk, proj, "slow")
        p = trk("cat", "-f", cwd=proj, timeout=60)
    finally:
        runner.wait(timeout=60)
    assert p.stdout.splitlines() == [f"line {i}" for i in range(6)]
    assert p.stderr.strip().endswith("completed (exit 0)")
    # A finished run: its whole output, at once.
    assert trk("cat", "-f", cwd=proj).stdout.splitlines()[-1] == "line 5"


def test_cat_follow_of_a_stepped_run_follows_each_step(trk, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "slow.py").write_text("import time\nfor i in range(3):\n    print(f'line {i}', flush=True)\n"
                                  "    time.sleep(0.3)\n")
    (proj / "trk.yml").write_text("slow:\n  exec: python slow.py\n  output-scalars: no\n"
                                  "two:\n  steps:\n    - slow\n    - run: slow\n      name: again\n")
    runner = trk.popen("run", "two", "-y", cwd=proj, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_running(trk, proj, "two")
        p = trk("cat", "-f", "-o", "two", cwd=proj, timeout=60)
    finally:
        runner.wait(timeout=60)
    lines = p.stdout.splitlines()
    headers = [line for line in lines if line.startswith("== step ")]
    assert [h.split()[2] for h in headers] == ["slow", "again"], lines
    assert [line for line in lines if line.startswith("line")] == ["line 0", "line 1", "line 2"] * 2
    assert "completed (exit 0)" in p.stderr
    watched = trk("watch", "-o", "two", cwd=proj)  # Guild's name for it; the run has ended: all at once
    assert sorted(watched.stdout.splitlines()) == sorted(lines) and "completed (exit 0)" in watched.stderr
