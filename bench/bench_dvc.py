"""No-op `trk repro` on a 100-stage DVC pipeline (issue 12). Prints figures; not a test.

    python bench/bench_dvc.py [N_STAGES]

A `foreach` over N items (default 100), each stage reading a shared input
and params.yaml and writing its own out. After one full `trk repro` (in a
DVC repository, so outs are in DVC's cache), a second `trk repro` has
nothing to do; bar: under 1 s. When DVC is installed, `dvc repro` on the
very same workspace and lock is timed too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import TRK, median_wall  # noqa: E402

DVC_YAML = """
stages:
  shard:
    foreach: ${{items}}
    do:
      cmd: echo ${{item}} ${{scale}} > out/${{item}}.txt
      deps:
        - input.txt
      params:
        - scale
      outs:
        - out/${{item}}.txt
"""


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    tmp = tempfile.mkdtemp(prefix="trk-bench-dvc-")
    try:
        proj = os.path.join(tmp, "proj")
        os.makedirs(os.path.join(proj, "out"))
        with open(os.path.join(proj, "dvc.yaml"), "w") as f:
            f.write(DVC_YAML.format())
        with open(os.path.join(proj, "params.yaml"), "w") as f:
            f.write("scale: 2\nitems:\n" + "".join(f"  - item{i:03d}\n" for i in range(n)))
        with open(os.path.join(proj, "input.txt"), "w") as f:
            f.write("shared input\n")
        env = dict(os.environ, TRK_HOME=os.path.join(tmp, "home"), DVC_NO_ANALYTICS="1")
        dvc = shutil.which("dvc") or shutil.which("dvc", path=os.path.dirname(sys.executable))
        if dvc:
            subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=proj, env=env, check=True)
        subprocess.run([TRK, "repro", "-q", "--max-parallel", "2"], cwd=proj, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = subprocess.run([TRK, "repro"], cwd=proj, env=env, check=True, capture_output=True, text=True).stdout
        assert "Data and pipelines are up to date." in out, out
        trk_s = median_wall([TRK, "repro"], env, cwd=proj, repeat=5)
        print(f"trk repro, nothing changed, {n} stages: {trk_s:.3f} s (bar: < 1 s)")
        if dvc:
            st = subprocess.run([dvc, "status"], cwd=proj, env=env, capture_output=True, text=True).stdout.strip()
            print(f"dvc status after trk repro: {st}")
            dvc_s = median_wall([dvc, "repro"], env, cwd=proj, repeat=3)
            print(f"dvc repro, nothing changed, {n} stages: {dvc_s:.3f} s")
        else:
            print("dvc repro: not timed (DVC is not installed; pip install dvc)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
