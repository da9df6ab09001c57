"""Foundation performance figures (issue 2). Prints ratios measured in one run.

    python bench/bench_foundation.py [--runs 10000] [--repeat 15]

Not a test: timings on a shared machine vary; read the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = os.path.join(ROOT, "sample-projects", "steps")
TRK = os.path.join(os.path.dirname(sys.executable), "trk")


def timed(argv, env, cwd=None, repeat=15):
    """Median wall seconds and max peak RSS (MiB) of running argv."""
    walls, rss = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        walls.append(time.perf_counter() - t)
        rss.append(usage.ru_maxrss / 1024)
        if status != 0:
            raise SystemExit(f"{argv} failed with status {status}")
    return statistics.median(walls), max(rss)


def make_runs(home: str, n: int) -> None:
    """Create n finished runs through the library (no processes spawned)."""
    sys.path.insert(0, ROOT)
    from tracker.store import RunStore, now_us

    store = RunStore(home)
    t0 = now_us()
    for i in range(n):
        run, _ = store.new_run()
        for name, value in (("id", run.id), ("op", f"m{i % 5}:train"), ("flags", {"lr": 0.1 * (i % 7), "epochs": i % 11}),
                            ("label", f"lr={0.1 * (i % 7):.1f}"), ("tags", []), ("initialized", t0 + i),
                            ("started", t0 + i), ("stopped", t0 + i + 5), ("exit_status", i % 13 == 0 and 1 or 0)):
            run.write_attr(name, value)
        store.publish(run)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="trk-bench-")
    env = dict(os.environ, TRK_HOME=os.path.join(tmp, "empty"))
    try:
        base, _ = timed([sys.executable, "-c", "import click, yaml"], env, repeat=args.repeat)
        ver, _ = timed([TRK, "--version"], env, repeat=args.repeat)
        empty, _ = timed([TRK, "runs"], env, repeat=args.repeat)
        print(f"python -c 'import click, yaml'   {base * 1000:7.1f} ms")
        print(f"trk --version                    {ver * 1000:7.1f} ms   ratio {ver / base:.2f} (bar 1.5)")
        print(f"trk runs (empty store)           {empty * 1000:7.1f} ms   ratio {empty / base:.2f} (bar 1.5)")

        bare, _ = timed([sys.executable, "step.py", "--msg", "hello world"], env, cwd=STEPS, repeat=args.repeat)
        env_run = dict(env, TRK_HOME=os.path.join(tmp, "hello"))
        run, _ = timed([TRK, "run", "m1:hello", "-y"], env_run, cwd=STEPS, repeat=args.repeat)
        print(f"python step.py (bare script)     {bare * 1000:7.1f} ms")
        print(f"trk run m1:hello -y              {run * 1000:7.1f} ms   overhead {(run - bare) * 1000:.0f} ms (bar 150 ms)")

        home = os.path.join(tmp, "big")
        t = time.perf_counter()
        make_runs(home, args.runs)
        print(f"made {args.runs} runs through the library in {time.perf_counter() - t:.1f} s")
        env_big = dict(env, TRK_HOME=home)
        cold, cold_rss = timed([TRK, "runs", "-n", str(args.runs)], env_big, repeat=1)
        # Attrs written in the last 2 s are not cached (coarse mtimes); let them settle.
        time.sleep(2.1)
        timed([TRK, "runs", "-n", str(args.runs)], env_big, repeat=1)
        warm, warm_rss = timed([TRK, "runs", "-n", str(args.runs)], env_big, repeat=5)
        print(f"trk runs -n {args.runs} (cold index) {cold:6.3f} s   peak {cold_rss:.0f} MiB")
        print(f"trk runs -n {args.runs} (warm index) {warm:6.3f} s   peak {warm_rss:.0f} MiB (bar 0.5 s, 150 MiB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
