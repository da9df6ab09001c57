"""Batch trials and staged runs (issue 13). Prints figures; not a test.

    python bench/bench_batch.py

- a 100-trial batch of a no-op operation with `-j 2`, against the same 100
  programs run with `xargs -P 2`; bar: under 2x.
- a 1,000-trial grid staged with `--stage-trials` (bar: under 5 s), then
  `trk runs -a` over the 1,001 runs (bar: under 0.3 s).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import TRK, median_wall, project_env, wall, xargs_noops  # noqa: E402

PROJECT = """
noop:
  exec: python -c pass
  sourcecode: no
  flags:
    i: 0
    j: 0
"""


def main():
    tmp = tempfile.mkdtemp(prefix="trk-bench-batch-")
    try:
        proj, env = project_env(tmp, {"guild.yml": PROJECT})

        bare = xargs_noops(env, proj)
        batch = min(wall([TRK, "run", "noop", "i=range[1:100]", "-j", "2", "-y", "-q"], env, proj)
                    for _ in range(2))
        print(f"100-trial no-op batch -j 2: {batch:.2f} s; xargs -P 2: {bare:.2f} s; "
              f"ratio {batch / bare:.2f} (bar < 2)")

        env["TRK_HOME"] = os.path.join(tmp, "home-stage")
        stage = wall([TRK, "run", "noop", "i=range[1:100]", "j=range[1:10]", "--stage-trials", "-y", "-q"],
                      env, proj)
        print(f"1,000-trial grid staged: {stage:.2f} s (bar < 5)")
        listing = median_wall([TRK, "runs", "-a"], env, proj, repeat=5)
        print(f"trk runs -a over 1,001 runs (1,000 staged): {listing:.3f} s (bar < 0.3)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
