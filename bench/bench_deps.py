"""Dependency figures (issue 4). Prints figures; not a test.

    python bench/bench_deps.py

- resolving an `operation:` dependency among 10,000 runs of other operations
- `--needed` deciding to skip among 10,000 runs
- peak memory while hashing a large file dependency (streamed)
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
TRK = os.path.join(os.path.dirname(sys.executable), "trk")

PROJECT = """
prepare:
  exec: python -c "open('data', 'w').write('x')"
train:
  exec: python -c "print('loss=1')"
  requires:
    - operation: prepare
      select: data
big:
  exec: python -c "pass"
  requires:
    - file: big.bin
      link: yes
"""


def main():
    from tracker import project as projmod
    from tracker.execution.deps import hash_path, plan_dependencies
    from tracker.execution.needed import find_reusable
    from tracker.project.resolve import resolve
    from tracker.store import RunStore

    tmp = tempfile.mkdtemp(prefix="trk-bench-deps-")
    try:
        proj = os.path.join(tmp, "proj")
        os.makedirs(proj)
        with open(os.path.join(proj, "trk.yml"), "w") as f:
            f.write(PROJECT)
        home = os.path.join(tmp, "home")
        env = dict(os.environ, TRK_HOME=home)
        subprocess.run([TRK, "run", "prepare", "-y"], cwd=proj, env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([TRK, "run", "train", "-y"], cwd=proj, env=env, check=True, stdout=subprocess.DEVNULL)
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        from bench_foundation import make_runs

        make_runs(home, 10000)  # other operations, all newer than prepare
        time.sleep(2.1)  # let the run attrs cache settle (coarse mtimes)
        store = RunStore(home)
        store.count()  # bring the run index up to date
        project = projmod.load(proj)
        op = resolve(project, "train")
        t = time.perf_counter()
        plan = plan_dependencies(store, project, op, {})
        resolve_s = time.perf_counter() - t
        print(f"resolve operation:prepare among 10,002 runs: {resolve_s:.3f} s (bar < 0.2 s)")
        t = time.perf_counter()
        flags = {}
        plan = plan_dependencies(store, project, op, {})
        reused = find_reusable(store, project, op, flags, plan)
        needed_s = time.perf_counter() - t
        print(f"--needed decision (reused: {reused is not None}) among 10,002 runs: {needed_s:.3f} s (bar < 0.3 s)")
        t = time.perf_counter()
        subprocess.run([TRK, "run", "train", "--needed", "-y"], cwd=proj, env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"whole 'trk run train --needed' (skips): {time.perf_counter() - t:.3f} s")

        big = os.path.join(proj, "big.bin")
        size = int(os.environ.get("BIG_MB", "2048"))
        with open(big, "wb") as f:
            chunk = os.urandom(1024 * 1024)
            for _ in range(size):
                f.write(chunk)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        hash_path(big)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"hash a {size} MiB file dependency: {time.perf_counter() - t:.1f} s, "
              f"peak memory {before:.0f} -> {after:.0f} MiB (streamed)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
