"""Batch trials through Dask (issue 14). Prints figures; not a test.

    python bench/bench_dask.py

A 100-trial batch of a no-op operation submitted with `--dask` to a
scheduler and two workers (`--nthreads 1`) on this machine, against the 100
programs run with `xargs -P 2`, in five rounds of one each (best of each
taken); bar: under 3x. The scheduler and workers are
started here and stopped by PID. The run store lives under $TMPDIR: the bench
prints what creating a file costs there, as every trial writes a few dozen
(a run's attrs, lock and output), and on some disks that cost is most of a trial.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import TRK, project_env, wall, xargs_noops

PROJECT = """
noop:
  exec: python -c pass
  sourcecode: no
  flags:
    i: 0
"""
DASK = os.path.join(os.path.dirname(sys.executable), "dask")
ROUNDS = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cluster(tmp: str) -> tuple[str, list[subprocess.Popen]]:
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    log = open(os.path.join(tmp, "dask.log"), "wb")  # noqa: SIM115  (the cluster's processes write it until stopped)
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--no-dashboard"], stdout=log, stderr=log)]
    for _ in range(2):
        procs.append(subprocess.Popen([DASK, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-nanny", "--no-dashboard"], stdout=log, stderr=log))
    with Client(address, timeout=30, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=30)
    return address, procs


def _create_cost(tmp: str, n: int = 200) -> float:
    """Microseconds to create (and write) one small file in a new directory under `tmp`."""
    import time

    where = tempfile.mkdtemp(dir=tmp)
    t = time.perf_counter()
    for i in range(n):
        with open(os.path.join(where, str(i)), "x") as f:
            f.write("1\n")
    return (time.perf_counter() - t) / n * 1e6


def main():
    tmp = tempfile.mkdtemp(prefix="trk-bench-dask-")
    procs: list[subprocess.Popen] = []
    try:
        proj, env = project_env(tmp, {"guild.yml": PROJECT})
        address, procs = _start_cluster(tmp)

        # Rounds of both, one after the other: a machine that slows down or
        # speeds up meanwhile (a shared VM) does so for both.
        bares, times = [], []
        for k in range(ROUNDS):
            bares.append(xargs_noops(env, proj, repeat=1))
            env["TRK_HOME"] = os.path.join(tmp, f"home-{k}")
            times.append(wall([TRK, "run", "noop", "i=range[1:100]", "-y", "-q", "--dask", address], env, proj))
        bare, dask = min(bares), min(times)
        print(f"file creation under {tempfile.gettempdir()}: {_create_cost(tmp):.0f} us a file")
        print(f"100-trial no-op batch through Dask (scheduler + 2 workers), best of {ROUNDS} rounds: {dask:.2f} s; "
              f"xargs -P 2: {bare:.2f} s; ratio {dask / bare:.2f} (bar < 3)")
        print("  rounds (trk / xargs): " + ", ".join(f"{t:.2f}/{b:.2f}" for t, b in zip(times, bares)))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
