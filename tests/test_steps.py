"""Stepped runs beyond the seed transcript: DAGs, failure, resume, signals."""

import json
import os
import signal
import subprocess

import pytest

from .conftest import wait_for

PIPE_YML = """
sleep:
  exec: python -c "import time, sys; print('start ${name}', flush=True); time.sleep(${secs}); print('done ${name}')"
  flags: {name: x, secs: 1}
flaky:
  description: Fails until the file named by 'marker' exists
  exec: python -c "import os, sys; ok = os.path.exists('${marker}'); print('flaky', 'ok' if ok else 'failing'); sys.exit(0 if ok else 1)"
  flags: {marker: /nonexistent}
hang:
  description: Sleeps until the file named by 'marker' exists
  exec: python hang.py ${marker}
  flags: {marker: /nonexistent}
write:
  exec: python -c "open('out.txt', 'w').write('${text}'); print('wrote', '${text}')"
  flags: {text: hello}
dag:
  steps:
    - run: sleep name=root secs=0
      name: root
    - run: sleep name=a secs=1.5
      name: a
      needs: root
    - run: sleep name=b secs=1.5
      name: b
      needs: [root]
    - run: sleep name=last secs=0
      name: last
      needs: [a, b]
cycle:
  steps:
    - run: sleep
      name: a
      needs: [c]
    - run: sleep
      name: b
      needs: [a]
    - run: sleep
      name: c
      needs: [b]
resumable:
  flags: {marker: /nonexistent}
  steps:
    - run: sleep name=first secs=0
      name: first
    - run: flaky marker=${marker}
      name: flaky
    - run: sleep name=third secs=0
      name: third
hanging:
  flags: {marker: /nonexistent}
  steps:
    - run: sleep name=first secs=0
      name: first
    - run: hang marker=${marker}
      name: hang
checked:
  flags: {text: hello}
  steps:
    - run: write text=${text}
      checks:
        - file: out.txt
          contains: hello
        - output: "^wrote [a-z]+$"
"""


HANG_PY = """
import os, sys, time
print("hang", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.1)
"""


@pytest.fixture
def pipe(tmp_path):
    d = tmp_path / "pipe"
    d.mkdir()
    (d / "trk.yml").write_text(PIPE_YML)
    (d / "hang.py").write_text(HANG_PY)
    return d


def runs_json(trk):
    return json.loads(trk("runs", "-a", "--json").stdout)


def by_step(runs):
    """Step name -> newest run of that step."""
    return {r.get("step"): r for r in reversed(runs) if r.get("step")}


def test_dag_runs_independent_steps_in_parallel(trk, pipe):
    p = trk("run", "dag", "--max-parallel", "2", "-y", cwd=pipe)
    assert "[a] start a" in p.stdout and "[b] done b" in p.stdout
    steps = by_step(runs_json(trk))
    a, b, root, last = steps["a"], steps["b"], steps["root"], steps["last"]
    assert a["started"] < b["stopped"] and b["started"] < a["stopped"], "a and b overlap"
    assert root["stopped"] <= min(a["started"], b["started"])
    assert last["started"] >= max(a["stopped"], b["stopped"])


def test_dag_max_parallel_one_is_sequential(trk, pipe):
    trk("run", "dag", "--max-parallel", "1", "-y", cwd=pipe)
    steps = by_step(runs_json(trk))
    a, b = steps["a"], steps["b"]
    assert a["stopped"] <= b["started"] or b["stopped"] <= a["started"]


def test_cycle_is_an_error_naming_it(trk, pipe):
    p = trk("run", "cycle", "-y", cwd=pipe, check=False)
    assert p.returncode == 1
    assert "trk: steps of cycle have a cycle: a -> c -> b -> a" in p.stderr


def test_preview_runs_nothing(trk, pipe):
    out = trk("run", "dag", "--preview", cwd=pipe).stdout
    assert out.splitlines() == [
        "dag",
        "  root: sleep name=root secs=0",
        "  a: sleep name=a secs=1.5  (needs root)",
        "  b: sleep name=b secs=1.5  (needs root)",
        "  last: sleep name=last secs=0  (needs a, b)",
    ]
    assert runs_json(trk) == []


def test_failure_stops_pipeline_and_restart_resumes(trk, pipe, tmp_path):
    marker = tmp_path / "marker"
    p = trk("run", "resumable", f"marker={marker}", "-y", cwd=pipe, check=False)
    assert p.returncode == 1
    assert "trk: step 'flaky' failed with exit status 1" in p.stderr
    runs = runs_json(trk)
    parent = next(r for r in runs if r["op"] == "resumable")
    assert parent["status"] == "error"
    assert sorted(by_step(runs)) == ["first", "flaky"], "third never ran"
    first_id = by_step(runs)["first"]["id"]
    marker.write_text("")
    p = trk("run", "--restart", parent["id"][:8], cwd=pipe)
    assert "INFO: [trk] reusing first" in p.stderr
    runs = runs_json(trk)
    parent = next(r for r in runs if r["op"] == "resumable")
    assert parent["status"] == "completed"
    pdir = parent["dir"]
    assert sorted(os.listdir(pdir)) == [".trk", "first", "flaky", "third"]
    assert os.path.basename(os.path.realpath(os.path.join(pdir, "first"))) == first_id
    flaky = os.path.basename(os.path.realpath(os.path.join(pdir, "flaky")))
    assert next(r for r in runs if r["id"] == flaky)["status"] == "completed"


def _statuses(trk):
    runs = runs_json(trk)
    parent = next(r for r in runs if r["op"] == "hanging")
    return parent, by_step(runs)


def test_kill_9_of_supervisor_then_restart(trk, pipe, tmp_path):
    marker = tmp_path / "marker"
    proc = trk.popen("run", "hanging", f"marker={marker}", "-y", cwd=pipe, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "hang" in by_step(runs_json(trk)) and by_step(runs_json(trk))["hang"]["status"] == "running",
                 timeout=20)
        parent, steps = _statuses(trk)
        assert parent["status"] == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        parent, steps = _statuses(trk)
        assert parent["status"] == "terminated" and steps["hang"]["status"] == "terminated"
        assert steps["first"]["status"] == "completed"
    finally:
        marker.write_text("")  # lets the orphaned program end
    trk("run", "--restart", parent["id"], cwd=pipe, timeout=60)
    parent, steps = _statuses(trk)
    assert parent["status"] == "completed" and steps["hang"]["status"] == "completed"


def test_sigint_terminates_parent_and_step(trk, pipe, tmp_path):
    marker = tmp_path / "never"
    proc = trk.popen("run", "hanging", f"marker={marker}", "-y", cwd=pipe, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: "hang" in by_step(runs_json(trk)) and by_step(runs_json(trk))["hang"]["status"] == "running",
             timeout=20)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert proc.wait(timeout=30) == 130
    parent, steps = _statuses(trk)
    assert parent["status"] == "terminated" and steps["hang"]["status"] == "terminated"


def test_checks_fail_the_parent(trk, pipe):
    trk("run", "checked", "-y", cwd=pipe)
    parent = next(r for r in runs_json(trk) if r["op"] == "checked")
    assert parent["status"] == "completed"
    p = trk("run", "checked", "text=bye", "-y", cwd=pipe, check=False)
    assert p.returncode == 1
    assert "ERROR: [trk] check failed for step write: file 'out.txt' does not contain 'hello'" in p.stderr
    parent = next(r for r in runs_json(trk) if r["op"] == "checked")
    assert parent["status"] == "error"
    p = trk("run", "checked", "text=HELLO", "-y", cwd=pipe, check=False)
    assert "check failed for step write: file 'out.txt' does not contain 'hello'" in p.stderr
    p = trk("run", "checked", "text=hello2", "-y", cwd=pipe, check=False)
    assert "check failed for step write: output does not match '^wrote [a-z]+$'" in p.stderr


def test_two_pipelines_at_once_link_their_own_children(trk, pipe):
    procs = [trk.popen("run", "dag", "-y", cwd=pipe, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    runs = runs_json(trk)
    parents = [r for r in runs if r["op"] == "dag"]
    assert len(parents) == 2
    for parent in parents:
        for name in ("root", "a", "b", "last"):
            child_id = os.path.basename(os.path.realpath(os.path.join(parent["dir"], name)))
            child = next(r for r in runs if r["id"] == child_id)
            assert child["parent"] == parent["id"] and child["step"] == name


def test_tree_and_info(trk, pipe):
    trk("run", "dag", "-y", cwd=pipe)
    lines = trk("runs", "--tree", "-s").stdout.splitlines()
    assert lines[0].split()[1] == "dag"
    assert all(l.split()[1] == "sleep" and "    sleep" in l for l in lines[1:])
    info = trk("runs", "info", "5").stdout
    assert "steps:" in info and "  - root:" in info and "  - last:" in info


FAIL_FAST_YML = """
sleep:
  exec: python hang.py ${marker}
  flags: {marker: /nonexistent}
boom:
  exec: python -c "import sys, time; time.sleep(0.5); sys.exit(2)"
par:
  flags: {marker: /nonexistent}
  steps:
    - run: sleep marker=${marker}
      name: long
      needs: []
    - run: boom
      name: boom
      needs: []
    - run: boom
      name: after
      needs: [boom]
"""


def test_fail_fast_terminates_running_siblings(trk, pipe, tmp_path):
    (pipe / "trk.yml").write_text(FAIL_FAST_YML)
    marker = tmp_path / "never"
    p = trk("run", "par", f"marker={marker}", "--fail-fast", "--max-parallel", "2", "-y", cwd=pipe, check=False,
            timeout=60)
    assert p.returncode == 2
    steps = by_step(runs_json(trk))
    assert steps["boom"]["status"] == "error"
    assert steps["long"]["status"] in ("terminated", "error")
    assert "after" not in steps
    parent = next(r for r in runs_json(trk) if r["op"] == "par")
    assert parent["status"] == "error"


def test_guilds_short_run_options_in_a_step_are_ignored_with_a_warning(trk, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("hello:\n  exec: echo hi\nall:\n  steps:\n    - hello -b -q --bg\n")
    p = trk("run", "all", "-y", cwd=proj)
    out = p.stdout + p.stderr
    assert "run parameter background used in 'hello -b -q --bg' ignored" in out
    assert "run parameter quiet used in 'hello -b -q --bg' ignored" in out
    assert "hi" in p.stdout
