"""The fork server a Dask worker starts staged runs through (execution/forkserver.py):
real staged runs, a real server process, real supervisors forked from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from tracker.execution.forkserver import ForkServer

from .conftest import copy_sample, wait_for


@pytest.fixture
def server():
    """A fork server, as a Dask worker starts one, stopped after the test."""
    server = ForkServer(dict(os.environ))
    yield server
    server.close()


def _staged(trk, proj, *flags: str) -> str:
    trk("run", "noop", *flags, "--stage", "-y", cwd=proj)
    return json.loads(trk("runs", "--json").stdout)[0]["id"]


def _run(trk, run_id: str) -> dict:
    return json.loads(trk("runs", "info", run_id[:8], "--json").stdout)


def test_the_server_starts_staged_runs_as_its_children(trk, tmp_path, trk_home):
    proj = copy_sample(tmp_path, "dask")
    (proj / "guild.yml").write_text((proj / "guild.yml").read_text().replace(
        "exec: python -c pass", f"exec: python {tmp_path / 'grand.py'}"))
    (tmp_path / "grand.py").write_text("import os\n"
                                   "parent = os.getppid()\n"
                                   "grand = open(f'/proc/{parent}/stat').read().rsplit(')', 1)[1].split()[1]\n"
                                   "print('ppid', parent, 'grandparent', grand)\n")
    ids = [_staged(trk, proj, f"i={i}") for i in range(3)]
    server = ForkServer(dict(os.environ))
    try:
        results = [None] * 3

        def start(k):
            results[k] = server.start(ids[k], str(trk_home))

        threads = [threading.Thread(target=start, args=(k,)) for k in range(3)]  # at once, as worker threads do
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results == [(0, "")] * 3
        for run_id in ids:
            run = _run(trk, run_id)
            assert run["status"] == "completed"
            out = trk("cat", run_id[:8], "--output").stdout
            # The program's parent is the run's supervisor, a child of the server.
            assert f"ppid {run['pid']} grandparent {server.proc.pid}" in out
        assert server.proc.poll() is None
    finally:
        server.close()
    assert server.proc.returncode == 0  # its input closed: it exits


def test_a_run_that_cannot_start_says_why(trk, tmp_path, trk_home, server):
    proj = copy_sample(tmp_path, "dask")
    run_id = _staged(trk, proj)
    trk("run", "--start", run_id[:8], "-q")  # started already: no longer staged
    code, err = server.start(run_id, str(trk_home))
    assert code != 0 and "trk:" in err and run_id[:8] in err


def test_the_project_the_server_loads_for_a_run_is_the_one_on_disk_then(trk, tmp_path, trk_home, server):
    # One supervisor starts both runs, one after the other: each loads its
    # run's project as it is on disk then; an edit between two runs counts.
    proj = copy_sample(tmp_path, "dask")
    first, second = _staged(trk, proj, "i=1"), _staged(trk, proj, "i=2")
    assert server.start(first, str(trk_home)) == (0, "")
    text = (proj / "guild.yml").read_text()
    (proj / "guild.yml").write_text(text.replace(
        "  exec: python -c pass\n", "  exec: python -c pass\n  output-scalars:\n    acc: 'acc=(\\value)'\n"))
    assert server.start(second, str(trk_home)) == (0, "")
    assert "matched no line" not in trk("cat", first[:8], "--output").stdout
    assert "output-scalars: pattern" in trk("cat", second[:8], "--output").stdout
    assert _run(trk, second)["status"] == "completed"


def test_a_project_broken_after_staging_fails_the_run_not_the_server(trk, tmp_path, trk_home, server):
    proj = copy_sample(tmp_path, "dask")
    first, second = _staged(trk, proj, "i=1"), _staged(trk, proj, "i=2")
    good = (proj / "guild.yml").read_text()
    (proj / "guild.yml").write_text(good + "\nnoop: [unclosed\n")
    code, err = server.start(first, str(trk_home))
    assert code != 0 and "guild.yml" in err  # the run's own supervisor says what is wrong
    (proj / "guild.yml").write_text(good)
    assert server.start(second, str(trk_home)) == (0, "")  # the same server, still serving
    assert _run(trk, second)["status"] == "completed"


def test_a_dead_server_is_reported_and_replaced(trk, tmp_path, trk_home):
    from tracker.execution import forkserver

    proj = copy_sample(tmp_path, "dask")
    first, second = _staged(trk, proj, "i=1"), _staged(trk, proj, "i=2")
    env = dict(os.environ)
    assert forkserver.start_run(first, str(trk_home), env) == (0, "")
    old = forkserver._server
    old.proc.kill()
    old.proc.wait()
    assert forkserver.start_run(second, str(trk_home), env) == (0, "")  # a new server
    assert forkserver._server is not old and _run(trk, second)["status"] == "completed"
    forkserver._server.close()


def test_the_server_exits_when_its_worker_dies(tmp_path):
    # A worker that dies (kill -9) closes the server's input; the server must not outlive it.
    code = ("import os, sys; from tracker.execution.forkserver import ForkServer; "
            "s = ForkServer(dict(os.environ)); print(s.proc.pid, flush=True); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30).stdout
    pid = int(out.split()[0])
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped
                break
        threading.Event().wait(0.05)
    else:
        raise AssertionError(f"fork server {pid} outlived its worker")


def test_without_a_server_the_worker_forks_the_supervisor_itself(trk, tmp_path, trk_home):
    from tracker.execution.dask_submit import _forked

    proj = copy_sample(tmp_path, "dask")
    run_id = _staged(trk, proj)
    assert _forked(run_id, str(trk_home)) == (0, "")
    assert _run(trk, run_id)["status"] == "completed"
    code, err = _forked(run_id, str(trk_home))  # no longer staged
    assert code != 0 and run_id[:8] in err


def _staged_train(trk, proj, hold) -> str:
    trk("run", "train", f"hold={hold}", "--stage", "-y", cwd=proj)
    return json.loads(trk("runs", "--json").stdout)[0]["id"]


def test_a_supervisor_starts_runs_one_after_another_and_a_stop_ends_only_its_run(trk, tmp_path, trk_home, server):
    # A supervisor stays for the next run (forking one per run cost a trial
    # about 3 ms of CPU). `trk stop` signals the process holding the run's
    # lock, that supervisor: its run ends terminated, and it serves on.
    proj = copy_sample(tmp_path, "dask")
    hold = tmp_path / "hold"
    first, held, last = _staged(trk, proj, "i=1"), _staged_train(trk, proj, hold), _staged(trk, proj, "i=2")
    assert server.start(first, str(trk_home)) == (0, "")
    result = []
    starter = threading.Thread(target=lambda: result.append(server.start(held, str(trk_home))))
    starter.start()
    wait_for(lambda: os.path.exists(str(hold) + ".started"), what="the held run to start")
    stopped = trk("stop", held[:8], "-y")
    assert "terminated" in stopped.stdout + stopped.stderr, stopped
    starter.join(30)
    assert result and result[0][0] != 0
    assert server.start(last, str(trk_home)) == (0, "")
    runs = {run_id: _run(trk, run_id) for run_id in (first, held, last)}
    assert [runs[r]["status"] for r in (first, held, last)] == ["completed", "terminated", "completed"]
    assert runs[first]["pid"] == runs[held]["pid"] == runs[last]["pid"]  # the one supervisor
    assert runs[first]["pid"] not in (os.getpid(), server.proc.pid)


def test_a_supervisor_killed_mid_run_is_reported_and_the_next_run_gets_a_new_one(trk, tmp_path, trk_home, server):
    import signal

    proj = copy_sample(tmp_path, "dask")
    hold = tmp_path / "hold"
    held, after = _staged_train(trk, proj, hold), _staged(trk, proj, "i=1")
    result = []
    starter = threading.Thread(target=lambda: result.append(server.start(held, str(trk_home))))
    starter.start()
    wait_for(lambda: os.path.exists(str(hold) + ".started"), what="the held run to start")
    supervisor = _run(trk, held)["pid"]
    os.kill(supervisor, signal.SIGKILL)
    starter.join(30)
    assert result == [(-signal.SIGKILL, "the run's supervisor died")]
    hold.touch()  # (its program, orphaned, ends now)
    assert server.start(after, str(trk_home)) == (0, "")
    assert _run(trk, held)["status"] == "terminated"
    assert _run(trk, after)["status"] == "completed" and _run(trk, after)["pid"] != supervisor


def test_a_supervisor_answers_each_run_and_exits_after_its_share(trk, tmp_path, trk_home):
    # What runs leave in a supervisor stays bounded: after `runs` runs it says
    # it takes no more and exits (the server forks a new one for the next).
    from tracker.execution.dask_submit import be_supervisor_of_runs

    proj = copy_sample(tmp_path, "dask")
    ids = [_staged(trk, proj, f"i={i}") for i in range(2)]
    requests_read, requests_write = os.pipe()
    replies_read, replies_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        be_supervisor_of_runs(requests_read, replies_write, (requests_write, replies_read), 2)
    os.close(requests_read)
    os.close(replies_write)
    for run_id in [*ids, ids[0]]:  # a third request: never read
        os.write(requests_write, json.dumps({"run": run_id, "home": str(trk_home)}).encode() + b"\n")
    os.close(requests_write)  # (a supervisor that read on would see the end after it, not hang)
    with os.fdopen(replies_read, "rb") as f:
        replies = [json.loads(line) for line in f]  # to the end: it exited
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert replies == [{"exit_code": 0, "stderr": "", "more": True}, {"exit_code": 0, "stderr": "", "more": False}]
    assert [_run(trk, run_id)["status"] for run_id in ids] == ["completed", "completed"]


def test_a_supervisor_that_died_between_runs_is_replaced(trk, tmp_path, trk_home, server):
    import signal

    proj = copy_sample(tmp_path, "dask")
    first, second = _staged(trk, proj, "i=1"), _staged(trk, proj, "i=2")
    assert server.start(first, str(trk_home)) == (0, "")
    supervisor = _run(trk, first)["pid"]
    os.kill(supervisor, signal.SIGKILL)  # idle: it holds no run
    assert server.start(second, str(trk_home)) == (0, "")
    assert _run(trk, second)["status"] == "completed" and _run(trk, second)["pid"] != supervisor
