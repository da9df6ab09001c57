"""Supervising programs: Ctrl-C, `trk stop`, and capturing output in linear time."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tracker.execution.process import LineBuffer
from tracker.metrics.events import read_scalars

PROJECT_YML = """
noop:
  exec: python -c pass
hang:
  exec: python hang.py
stubborn:
  exec: python hang.py ignore-term
graceful:
  exec: python hang.py exit-0-on-term
spawner:
  exec: python spawner.py
pipe:
  steps:
    - run: hang
      name: first
pardag:
  steps:
    - run: noop
      name: root
    - run: hang
      name: a
      needs: [root]
    - run: hang
      name: b
      needs: [root]
redraw:
  exec: python redraw.py
bigline:
  exec: python bigline.py
"""

HANG_PY = """
import signal, sys, time
if "ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "exit-0-on-term" in sys.argv:
    def bye(signum, frame):
        print("saving checkpoint", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
end = time.time() + 60
while time.time() < end:
    time.sleep(0.05)
"""

SPAWNER_PY = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open("child.pid", "w").write(str(child.pid))
print("ready", flush=True)
child.wait()
"""

REDRAW_PY = """
import sys
out = sys.stdout
out.write("a\\rb\\rc\\n")
for i in range(1000):
    out.write(f"\\rprogress {i + 1}/1000")
    out.flush()
out.write("\\n")
out.write("windows line\\r\\n")
out.write("step: 7\\n")
out.write("\\rloss: 0.5\\n")
out.write("half")
out.flush()
sys.stderr.write("err line\\n")
sys.stderr.flush()
out.write(" line\\n")
out.write("x" * 3_000_000 + "\\n")
out.write("acc: 0.25\\n")
out.write("last, no newline")
"""

BIGLINE_PY = """
import sys
chunk = b"y" * 65536
for _ in range(100 * 1000 * 1000 // 65536):
    sys.stdout.buffer.write(chunk)
"""


@pytest.fixture
def proj(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    (d / "trk.yml").write_text(PROJECT_YML)
    (d / "hang.py").write_text(HANG_PY)
    (d / "spawner.py").write_text(SPAWNER_PY)
    (d / "redraw.py").write_text(REDRAW_PY)
    (d / "bigline.py").write_text(BIGLINE_PY)
    return d


def run_dirs(trk):
    runs = trk.home / "runs"
    return [p for p in runs.iterdir() if (p / ".trk" / "attrs" / "id").exists()] if runs.exists() else []


def attr(run_dir, name, default=None):
    try:
        return json.loads((run_dir / ".trk" / "attrs" / name).read_text())
    except (OSError, ValueError):
        return default


def output(run_dir) -> str:
    path = run_dir / ".trk" / "output"
    return path.read_text() if path.exists() else ""  # a pipeline run has none


def wait_for(pred, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


def wait_ready(trk, count=1):
    """Wait until `count` programs printed `ready`; return their run dirs."""
    def ready():
        dirs = [d for d in run_dirs(trk) if "ready" in output(d)]
        return dirs if len(dirs) >= count else None
    return wait_for(ready)


def statuses(trk) -> dict:
    """Step name (or op for top-level runs) -> status."""
    runs = json.loads(trk("runs", "-a", "--json").stdout)
    return {r.get("step") or r["op"]: r["status"] for r in runs}


def start(trk, proj, *args):
    # A session of its own, as a terminal's foreground job has its own process group.
    return trk.popen("run", *args, "-y", cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                     start_new_session=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too; it may wait for its (gone) parent to be reaped.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def assert_terminated_by_user(proc, run_dir, code=130, how="by user"):
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, (out, err)
    said = [line for line in err.splitlines() if not line.startswith("INFO: [trk] running ")]  # a pipeline's steps
    assert said == [f"trk: run {run_dir.name[:8]} terminated {how}"]
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    assert attr(run_dir, "terminated") is True
    for d in run_dirs_of(run_dir):
        assert "Traceback" not in output(d)


def run_dirs_of(run_dir):
    """The run and its step runs."""
    dirs = [run_dir]
    for p in run_dir.iterdir():
        if p.is_symlink():
            dirs.append(p.resolve())
    return dirs


# -- Ctrl-C ----------------------------------------------------------------


def test_ctrl_c_terminates_run_without_traceback(trk, proj):
    proc = start(trk, proj, "hang")
    (run_dir,) = wait_ready(trk)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert_terminated_by_user(proc, run_dir)
    assert statuses(trk) == {"hang": "terminated"}
    assert output(run_dir) == "ready\n"


def test_sigint_to_trk_alone_terminates_run(trk, proj):
    proc = start(trk, proj, "hang")
    (run_dir,) = wait_ready(trk)
    os.kill(proc.pid, signal.SIGINT)
    assert_terminated_by_user(proc, run_dir)
    assert statuses(trk) == {"hang": "terminated"}


def test_ctrl_c_stops_the_programs_whole_process_group(trk, proj):
    proc = start(trk, proj, "spawner")
    (run_dir,) = wait_ready(trk)
    child = int((run_dir / "child.pid").read_text())
    assert alive(child)
    os.killpg(proc.pid, signal.SIGINT)
    assert_terminated_by_user(proc, run_dir)
    wait_for(lambda: not alive(child), timeout=10)


def test_ctrl_c_terminates_pipeline_and_running_step(trk, proj):
    proc = start(trk, proj, "pipe")
    wait_ready(trk)
    parent = next(d for d in run_dirs(trk) if attr(d, "op") == "pipe")
    os.killpg(proc.pid, signal.SIGINT)
    assert_terminated_by_user(proc, parent)
    assert statuses(trk) == {"pipe": "terminated", "first": "terminated"}


def test_ctrl_c_terminates_parallel_steps(trk, proj):
    proc = start(trk, proj, "pardag", "--max-parallel", "2")
    wait_ready(trk, count=2)
    parent = next(d for d in run_dirs(trk) if attr(d, "op") == "pardag")
    os.killpg(proc.pid, signal.SIGINT)
    assert_terminated_by_user(proc, parent)
    assert statuses(trk) == {"pardag": "terminated", "root": "completed", "a": "terminated", "b": "terminated"}


def test_sigterm_to_trk_stops_the_run(trk, proj):
    proc = start(trk, proj, "hang")
    (run_dir,) = wait_ready(trk)
    proc.send_signal(signal.SIGTERM)
    assert_terminated_by_user(proc, run_dir, code=143, how="by SIGTERM")


# -- trk stop ----------------------------------------------------------------


def test_stop_running_run(trk, proj):
    proc = start(trk, proj, "hang")
    (run_dir,) = wait_ready(trk)
    program = attr(run_dir, "program_pid")
    p = trk("stop", "-y")
    assert p.stdout.splitlines() == [f"Stopped run {run_dir.name[:8]}: terminated"]
    assert_terminated_by_user(proc, run_dir, code=143, how="by SIGTERM")
    assert statuses(trk) == {"hang": "terminated"}
    assert not alive(program)


def test_stop_asks_first_listing_the_runs(trk, proj):
    proc = start(trk, proj, "hang")
    (run_dir,) = wait_ready(trk)
    p = trk("stop", input="n\n")
    assert "You are about to stop the following runs:" in p.stdout
    assert "hang" in p.stdout and "running" in p.stdout and "Stop 1 run(s)?" in p.stdout
    assert statuses(trk) == {"hang": "running"}
    trk("stop", "1", "-y")
    proc.communicate(timeout=30)
    assert statuses(trk) == {"hang": "terminated"}


def test_stop_with_nothing_running(trk, proj):
    assert trk("stop", "-y").stdout == "Nothing to stop.\n"


def test_stop_records_terminated_when_program_exits_0(trk, proj):
    """A program that ends cleanly on SIGTERM was still stopped: terminated, not completed."""
    proc = start(trk, proj, "graceful")
    (run_dir,) = wait_ready(trk)
    trk("stop", "-y")
    proc.communicate(timeout=30)
    assert attr(run_dir, "exit_status") == 0
    assert statuses(trk) == {"graceful": "terminated"}
    assert output(run_dir) == "ready\nsaving checkpoint\n"


def test_stop_pipeline_stops_step_and_parent(trk, proj):
    proc = start(trk, proj, "pipe")
    (step_dir,) = wait_ready(trk)
    program = attr(step_dir, "program_pid")
    p = trk("stop", "-y")
    assert len(p.stdout.splitlines()) == 2  # the pipeline run and its step
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert statuses(trk) == {"pipe": "terminated", "first": "terminated"}
    assert not alive(program)


def test_stop_kills_program_that_ignores_sigterm(trk, proj):
    proc = start(trk, proj, "stubborn")
    (run_dir,) = wait_ready(trk)
    program = attr(run_dir, "program_pid")
    t = time.time()
    p = trk("stop", "-y", "--timeout", "1")
    assert time.time() - t < 15
    assert p.stdout.splitlines() == [f"Killed run {run_dir.name[:8]} (still running 1 s after SIGTERM): terminated"]
    proc.communicate(timeout=30)
    assert attr(run_dir, "exit_status") == -signal.SIGKILL
    assert statuses(trk) == {"stubborn": "terminated"}
    assert not alive(program)


def test_stop_run_whose_supervisor_was_killed(trk, proj):
    proc = start(trk, proj, "hang")
    (run_dir,) = wait_ready(trk)
    program = attr(run_dir, "program_pid")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    try:
        assert statuses(trk) == {"hang": "terminated"}
        p = trk("stop", "1", "-y")
        assert "is not running (terminated)" in p.stderr
    finally:
        os.killpg(program, signal.SIGKILL)


def test_staged_run_started_on_another_machine_records_that_machine(trk, proj):
    trk("run", "noop", "--stage", "-y", cwd=proj)
    (run_dir,) = run_dirs(trk)
    for name, value in (("host", "submitter.invalid"), ("pid", 1)):  # staged on another machine
        (run_dir / ".trk" / "attrs" / name).write_text(json.dumps(value))
    trk("run", "--start", run_dir.name[:8], "-y", cwd=proj)
    assert attr(run_dir, "host") == os.uname().nodename and attr(run_dir, "pid") not in (1, None)


def test_stop_never_signals_pids_of_a_run_supervised_on_another_machine(trk_home):
    from tracker.execution.stop import stop_runs
    from tracker.store import RunLock, RunStore, now_us

    store = RunStore()
    run, build = store.new_run()
    lock = RunLock(os.path.join(build, ".trk", "lock"))
    lock.acquire()  # its supervisor, as seen from here: a lock with no holder on this machine
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)  # a local process with those pids
    try:
        t = now_us()
        for name, value in {"id": run.id, "op": "hang", "flags": {}, "label": "", "tags": [], "initialized": t,
                            "started": t, "host": "worker.invalid", "pid": bystander.pid,
                            "program_pid": bystander.pid, "cmd": ["python", "hang.py"]}.items():
            run.write_attr(name, value)
        store.publish(run)
        (outcome,) = stop_runs([store.get(run.id)], timeout=1)
        assert outcome.elsewhere == "worker.invalid" and outcome.status == "running"
        time.sleep(0.2)
        assert bystander.poll() is None  # neither SIGTERM nor SIGKILL reached it
    finally:
        bystander.kill()
        bystander.wait()
        lock.release()


# -- output capture ----------------------------------------------------------


def run_bytes(trk, proj, *args):
    """`trk run ARGS -y`, its stdout and stderr as bytes (as a terminal gets them)."""
    p = subprocess.run([sys.executable, "-m", "tracker", "run", *args, "-y"], cwd=proj, env=trk.env(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout, p.stderr


def test_saved_output_keeps_last_state_of_redraws_and_whole_lines(trk, proj):
    out, err = run_bytes(trk, proj, "redraw")
    assert b"\rprogress 1/1000\rprogress 2/1000" in out, "the live echo is the program's output as is"
    assert err == b"err line\n"
    (run_dir,) = run_dirs(trk)
    saved = (run_dir / ".trk" / "output").read_bytes()
    # stderr's line lands whole between stdout's lines, wherever it came.
    assert b"err line" in saved.split(b"\n")
    assert saved.replace(b"err line\n", b"", 1) == (
        b"c\nprogress 1000/1000\nwindows line\r\nstep: 7\nloss: 0.5\nhalf line\n"
        + b"x" * 3_000_000 + b"\nacc: 0.25\nlast, no newline")
    (events,) = [p for p in (run_dir / ".trk").iterdir() if "tfevents" in p.name]
    assert read_scalars(str(events)).scalars == [("loss", 7, 0.5), ("acc", 7, 0.25)]


def test_prefixed_echo_of_parallel_steps_shows_last_state(trk, proj):
    (proj / "trk.yml").write_text(PROJECT_YML + """
par:
  steps:
    - run: redraw
      name: r
    - run: noop
      needs: [r]
""")
    out, err = run_bytes(trk, proj, "par")
    lines = out.split(b"\n")
    assert lines[:3] == [b"[r] c", b"[r] progress 1000/1000", b"[r] windows line\r"]
    assert lines[-2:] == [b"[r] last, no newline", b""]
    assert b"[r] err line\n" in err


def test_100_mb_without_newline_is_captured_fast_in_bounded_memory(trk, proj, tmp_path):
    # Measured in a process of its own: ru_maxrss covers every child it waited for.
    probe = ("import resource, subprocess, sys, time; t = time.time(); "
             "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
             "print(time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    p = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "tracker", "run", "bigline", "-y"],
                       cwd=proj, env=trk.env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    seconds, max_rss_kb = p.stdout.split()
    (run_dir,) = run_dirs(trk)
    try:
        assert os.path.getsize(run_dir / ".trk" / "output") == 100 * 1000 * 1000 // 65536 * 65536
        assert float(seconds) < 20, "capture is linear: well under a second unloaded (quadratic took 50 s)"
        assert int(max_rss_kb) < 80 * 1024, "a long line is passed on in pieces, not held whole"
    finally:
        os.unlink(run_dir / ".trk" / "output")


# -- LineBuffer ----------------------------------------------------------------


def feed_all(chunks, cap=1 << 20):
    buf = LineBuffer(cap)
    ready, lines = [], []
    for c in chunks:
        r, l = buf.feed(c)
        ready.append(r)
        lines.append(l)
    r, l = buf.close()
    return b"".join(ready + [r]), b"".join(lines + [l])


def test_line_buffer_redraws_and_line_ends():
    assert feed_all([b"a\rb\rc\n"]) == (b"c\n", b"c\n")
    assert feed_all([b"loss=1\r\n"]) == (b"loss=1\r\n", b"loss=1\r\n")
    assert feed_all([b"abc\r\r\n"]) == (b"abc\r\r\n", b"abc\r\r\n")  # nothing drawn over it
    assert feed_all([b"x\r", b"\n"]) == (b"x\r\n", b"x\r\n")
    assert feed_all([b"tail"]) == (b"tail", b"tail\n")


def test_line_buffer_result_does_not_depend_on_how_output_is_cut():
    data = b"a\rb\rc\nloss=1\r\n\rprog 1\rprog 2\r\nx\ry\r\r\nhalf\rend"
    whole = feed_all([data])
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            assert feed_all([data[:i], data[i:j], data[j:]]) == whole, (i, j)


def test_line_buffer_passes_overlong_lines_on_in_pieces():
    buf = LineBuffer(cap=100)
    ready, lines = buf.feed(b"x" * 60)
    assert (ready, lines) == (b"", b"")
    ready, lines = buf.feed(b"x" * 60)
    assert ready == b"x" * 120 and lines == b""
    assert buf.size == 0
    ready, lines = buf.feed(b"x" * 10 + b"\nloss=1\n")
    assert ready == b"x" * 10 + b"\nloss=1\n"
    assert lines == b"loss=1\n", "the end of an overlong line is not parsed as a line of its own"
    for _ in range(1000):  # memory stays bounded however long the line
        buf.feed(b"y" * 70)
        assert buf.size <= 100


# -- rm --force of a running run -------------------------------------------


def test_rm_without_force_refuses_a_running_run(trk, proj):
    proc = start(trk, proj, "hang")
    (run_dir,) = wait_ready(trk)
    p = trk("runs", "rm", "-y", "1", check=False)
    assert p.returncode == 1 and "cannot delete running run" in p.stderr
    assert run_dir.exists()
    trk("stop", "-y")
    proc.communicate(timeout=30)


def test_rm_force_stops_the_run_first_and_records_its_end(trk, proj):
    proc = start(trk, proj, "hang")
    (run_dir,) = wait_ready(trk)
    program = attr(run_dir, "program_pid")
    p = trk("runs", "rm", "--force", "-y", "1")
    assert "Deleted 1 run(s)" in p.stdout and "Traceback" not in p.stderr
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in out + err
    assert not alive(program)
    trashed = trk.home / "trash" / "runs" / run_dir.name
    assert attr(trashed, "terminated") is True and attr(trashed, "exit_status") is not None
    assert json.loads(trk("runs", "deleted", "--json").stdout)[0]["status"] == "terminated"
