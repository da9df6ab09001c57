"""`trk run ... --dask`: staged runs submitted to a real Dask scheduler with two
workers on 127.0.0.1, each worker starting `trk run --start RUN` against the
same TRK_HOME; a killed worker's trial ends terminated, `--retries` runs it again."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import copy_sample, wait_for

# A test dependency (the `test` extra): missing, these tests skip, except under CI where they must run.
distributed = __import__("distributed") if os.environ.get("CI") else pytest.importorskip("distributed")


def _dask_cmd() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "dask")
    return here if os.path.exists(here) else shutil.which("dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A `dask scheduler` and its `dask worker`s, started here and stopped by PID."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.scheduler = self._spawn("scheduler", ["scheduler", "--host", "127.0.0.1", "--port",
                                                   self.address.rsplit(":", 1)[1], "--no-dashboard"])

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{name}-{len(self.procs)}.log", "wb")  # noqa: SIM115  (written until it stops)
        env = {k: v for k, v in os.environ.items() if k not in ("TRK_HOME", "TRK_DASK_SCHEDULER")}
        p = subprocess.Popen([_dask_cmd(), *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                             cwd=self.tmp, start_new_session=True)
        self.procs.append(p)
        return p

    def start_worker(self) -> subprocess.Popen:
        # --no-nanny: the worker is the process a test kills (a nanny would start another)
        p = self._spawn("worker", ["worker", self.address, "--nworkers", "1", "--nthreads", "1", "--no-nanny",
                                   "--no-dashboard"])
        self.workers.append(p)
        return p

    def wait_for_workers(self, n: int) -> None:
        with distributed.Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=30)

    def live_workers(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def ensure_workers(self, n: int = 2) -> None:
        while len(self.live_workers()) < n:
            self.start_worker()
        self.wait_for_workers(n)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.ensure_workers(2)
        yield c
    finally:
        c.stop()


@pytest.fixture
def proj(tmp_path, cluster):
    cluster.ensure_workers(2)  # a test before may have killed one
    return copy_sample(tmp_path, "dask")


def _runs(trk) -> list[dict]:
    return json.loads(trk("runs", "-n", "1000", "--json").stdout)


def test_batch_of_20_trials_runs_on_both_workers(trk, proj, cluster):
    p = trk("run", "train", "epochs=range[1:20]", "-y", "--dask", cluster.address, cwd=proj)
    assert "Batch " in p.stdout and "20/20 completed" in p.stdout
    assert "20/20 trials: 20 done, 0 running, 0 failed" in p.stderr  # progress, as `trk queue run` prints it
    trials = [r for r in _runs(trk) if r["op"] == "train"]
    assert len(trials) == 20 and {r["status"] for r in trials} == {"completed"}
    assert sorted(r["flags"]["epochs"] for r in trials) == list(range(1, 21))
    assert len({r["dask_worker"] for r in trials}) == 2  # Dask spread them: trk scheduled nothing
    batch = next(r for r in _runs(trk) if r["op"] == "train+")
    assert batch["status"] == "completed" and "dask_worker" not in batch  # the batch ran here
    # Output and scalars, written on the workers, read here from the shared TRK_HOME
    first = min(trials, key=lambda r: r["flags"]["epochs"])
    assert "epoch: 1\nloss: 1.5000\n" in trk("cat", first["id"][:8], "--output").stdout
    rows = json.loads(trk("compare", "--json", "-o", "train", "-cc", "=epochs,#loss").stdout)
    assert sorted((r["epochs"], round(r["loss"], 4)) for r in rows if r["epochs"]) == [(e, round(0.5 + 1 / e, 4)) for e in range(1, 21)]


def test_dag_pipeline_submits_each_step_after_its_upstream(trk, proj, cluster, monkeypatch):
    monkeypatch.setenv("TRK_DASK_SCHEDULER", cluster.address)  # the environment names the scheduler, no --dask
    p = trk("run", "pipeline", "lr=0.2", "-y", cwd=proj)
    runs = {r["op"] + (f":{r.get('step')}" if r.get("step") else ""): r for r in _runs(trk)}
    assert set(runs) == {"pipeline", "prepare:prep", "fit:fit-a", "fit:fit-b", "report:report"}, runs.keys()
    assert {r["status"] for r in runs.values()} == {"completed"}, p.stderr
    assert "dask_worker" not in runs["pipeline"]  # the parent runs here, the steps on workers
    for name in ("prepare:prep", "fit:fit-a", "fit:fit-b", "report:report"):
        assert runs[name]["dask_worker"].startswith("tcp://127.0.0.1:")
    prep = runs["prepare:prep"]
    # each fit was staged once `prep` was done: its dependency resolved to that run
    assert runs["fit:fit-a"]["deps"][0]["run"] == prep["id"] and runs["fit:fit-b"]["deps"][0]["run"] == prep["id"]
    assert runs["fit:fit-a"]["started"] >= prep["stopped"] and runs["report:report"]["started"] >= max(
        runs["fit:fit-a"]["stopped"], runs["fit:fit-b"]["stopped"])
    assert "report: " in trk("cat", runs["report:report"]["id"][:8], "--output").stdout


def test_dask_scheduler_unreachable_fails_before_any_run(trk, proj):
    p = trk("run", "train", "-y", "--dask", f"tcp://127.0.0.1:{_free_port()}", cwd=proj, check=False)
    assert p.returncode != 0
    assert "trk: cannot reach the Dask scheduler at tcp://127.0.0.1:" in p.stderr and "refused" in p.stderr
    assert _runs(trk) == []


def test_failed_run_keeps_its_exit_code_error_and_worker(trk, proj, cluster):
    # The run says how it ended (its supervisor wrote it on the worker): trk
    # exits with its code, and says so, without fetching the task's result.
    with open(proj / "guild.yml", "a") as f:
        f.write("\nfail:\n  exec: python -c \"import sys; print('bad news'); sys.exit(3)\"\n  sourcecode: no\n")
    p = trk("run", "fail", "-y", "--dask", cluster.address, cwd=proj, check=False)
    assert p.returncode == 3, p.stderr
    [run] = _runs(trk)
    assert run["status"] == "error" and run["exit_status"] == 3
    assert run["dask_worker"].startswith("tcp://127.0.0.1:")  # written on the worker that started it
    assert "bad news" in trk("cat", run["id"][:8], "--output").stdout
    batch = trk("run", "train", "epochs=[1,2]", "-y", "--dask", cluster.address, cwd=proj)
    assert batch.returncode == 0 and "2/2 completed" in batch.stdout  # printed before trk's quick exit


def _held_batch(trk, proj, tmp_path, cluster, *extra):
    hold = tmp_path / "hold"
    trials = tmp_path / "trials.csv"
    with open(trials, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["lr", "hold"])
        for i, lr in enumerate([0.1, 0.2, 0.3, 0.4]):
            w.writerow([lr, str(hold) if i == 1 else ""])
    proc = trk.popen("run", "train", f"@{trials}", "-y", "--dask", cluster.address, *extra, cwd=proj,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, hold


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _kill_worker_of(run: dict, cluster: Cluster) -> None:
    """kill -9 the Dask worker process running `run`, and every process under it
    (the run's supervisor and its program)."""
    workers = {w.pid for w in cluster.live_workers()}
    worker = run["pid"]
    while worker not in workers:
        worker = _ppid(worker)
        assert worker > 1, "the run's supervisor is not under a Dask worker"
    tree = {worker}
    for _ in range(4):  # a few levels: worker -> starter -> supervisor -> program
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in tree:
                try:
                    if _ppid(int(entry)) in tree:
                        tree.add(int(entry))
                except (OSError, ValueError):
                    pass
    assert run["pid"] in tree and run["program_pid"] in tree
    for pid in sorted(tree, key=lambda p: p != worker):  # the worker first
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _running_held(trk, hold: Path) -> dict | None:
    if not Path(str(hold) + ".started").exists():
        return None
    held = [r for r in _runs(trk) if r["op"] == "train" and r["flags"].get("hold")]
    return held[0] if held and held[0]["status"] == "running" and held[0].get("program_pid") else None


def test_killed_worker_leaves_its_trial_terminated_and_the_batch_going(trk, proj, cluster, tmp_path):
    proc, hold = _held_batch(trk, proj, tmp_path, cluster)
    try:
        held = wait_for(lambda: _running_held(trk, hold), what="the held trial to run")
        # live from the submitting machine: the trial is running and its output so far readable
        assert "holding" in trk("cat", held["id"][:8], "--output").stdout
        _kill_worker_of(held, cluster)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err  # as in Guild, a batch completes though a trial did not
    assert "3/4 completed, 1 terminated" in out
    trials = {r["flags"]["lr"]: r for r in _runs(trk) if r["op"] == "train"}
    assert trials[0.2]["status"] == "terminated" and "supervisor died" in trials[0.2]["error"]
    assert [trials[lr]["status"] for lr in (0.1, 0.3, 0.4)] == ["completed"] * 3


def test_retries_restage_a_trial_whose_worker_was_killed(trk, proj, cluster, tmp_path):
    proc, hold = _held_batch(trk, proj, tmp_path, cluster, "--retries", "1")
    try:
        held = wait_for(lambda: _running_held(trk, hold), what="the held trial to run")
        os.unlink(str(hold) + ".started")
        cluster.start_worker()  # the retry needs somewhere to run besides the busy worker left
        _kill_worker_of(held, cluster)
        again = wait_for(lambda: _running_held(trk, hold), timeout=40, what="the retry to run")
        assert again["id"] == held["id"] and again["attempt"] == 2  # the same run, staged again
        hold.touch()
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "4/4 completed" in out
    trials = {r["flags"]["lr"]: r for r in _runs(trk) if r["op"] == "train"}
    assert {r["status"] for r in trials.values()} == {"completed"}
    output = trk("cat", held["id"][:8], "--output").stdout
    assert "trk: retry 1 of 1 after the run ended terminated" in output and "epoch: 2\nloss: 2.0000" in output


def test_start_a_staged_run_on_dask_and_options_it_refuses(trk, proj, cluster):
    trk("run", "train", "lr=0.3", "--stage", "-y", cwd=proj)
    staged = _runs(trk)[0]
    assert staged["status"] == "staged"
    trk("run", "--start", staged["id"][:8], "--dask", cluster.address)
    done = _runs(trk)[0]
    assert done["status"] == "completed" and done["dask_worker"].startswith("tcp://127.0.0.1:")
    again = trk("run", "--start", staged["id"][:8], "--dask", cluster.address, check=False)
    assert again.returncode != 0 and "is completed, not staged" in again.stderr
    p = trk("run", "train", "--retries", "1", "-y", cwd=proj, check=False)
    assert p.returncode == 2 and "--retries needs --dask" in p.stderr
    p = trk("run", "train", "--stage", "--dask", cluster.address, "-y", cwd=proj, check=False)
    assert p.returncode == 2 and "--dask cannot be used with --stage" in p.stderr


def test_submitter_connects_without_importing_numpy_which_imports_after(proj, cluster, tmp_path):
    # `distributed` takes numpy only for receive buffers; a submitter needs none (dask_submit._client_class).
    code = f"""
import sys
from tracker.execution.dask_submit import DaskSubmitter
from tracker.store import RunStore
submitter = DaskSubmitter(RunStore({str(tmp_path / 'home')!r}), {cluster.address!r})
print("numpy" in sys.modules)
import numpy
from distributed.protocol.utils import host_array
print(numpy.arange(3).sum(), len(host_array(5)))
submitter.close()
"""
    env = {k: v for k, v in os.environ.items() if k != "TRK_DASK_SCHEDULER"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "3", "5"]
