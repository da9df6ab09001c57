"""Stepped-run overhead (issue 5). Prints figures; not a test.

    python bench/bench_steps.py

- a 20-step pipeline of no-op steps: total time minus the steps' own process
  time (the same 20 programs run bare, one after another), per step; bar 0.1 s.
- a 3-step pipeline of trivial scripts, end to end; goal under 0.6 s
  (Guild AI 0.9 measured here: 6.4 s).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import TRK, median_wall  # noqa: E402

PROJECT = """
noop:
  exec: python -c "pass"
step:
  main: step
pipe20:
  steps:
{steps20}
pipe3:
  steps:
    - step
    - step
    - step
"""


def main():
    tmp = tempfile.mkdtemp(prefix="trk-bench-steps-")
    try:
        proj = os.path.join(tmp, "proj")
        os.makedirs(proj)
        with open(os.path.join(proj, "trk.yml"), "w") as f:
            f.write(PROJECT.format(steps20="\n".join("    - noop" for _ in range(20))))
        with open(os.path.join(proj, "step.py"), "w") as f:
            f.write("print('step')\n")
        env = dict(os.environ, TRK_HOME=os.path.join(tmp, "home"))
        bare1 = median_wall([sys.executable, "-c", "pass"], env, proj, repeat=10)
        total20 = median_wall([TRK, "run", "pipe20", "-y"], env, proj, repeat=3)
        per_step = (total20 - 20 * bare1) / 20
        print(f"bare no-op program               {bare1 * 1000:7.1f} ms")
        print(f"20-step pipeline of no-op steps  {total20:7.2f} s")
        print(f"overhead per step                {per_step * 1000:7.1f} ms (bar 100 ms)")
        total3 = median_wall([TRK, "run", "pipe3", "-y"], env, proj, repeat=5)
        print(f"3-step pipeline, end to end      {total3:7.2f} s (goal < 0.6 s; Guild AI 0.9: 6.4 s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
