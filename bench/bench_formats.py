"""`trk run` of one stage of each seed format against a `trk.yml` operation (issue 12).

    python bench/bench_formats.py [--repeat 11]

Every project runs the same trivial command (`python3 -c pass`); a round
times each `trk run ... -y` and the bare command, interleaved, and the
figures are medians. Printed per format: the overhead over the bare command
and its ratio to the `trk.yml` operation's (bar: within 10%, a ratio
<= 1.10). Not a test: timings on a shared machine vary; read the figures.
The formats' operations parse their output for scalars, as a `trk.yml`
operation does by default; the bar's operation does not (`output-scalars:
no`), so a second ratio is to a `trk.yml` operation that does (`trk.yml+s`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import TRK, wall  # noqa: E402

CMD = "python3 -c pass"
PROJECTS = {
    "trk.yml": ({"trk.yml": f"noop:\n  exec: {CMD}\n  output-scalars: no\n"}, "noop"),
    "trk.yml+s": ({"trk.yml": f"noop:\n  exec: {CMD}\n"}, "noop"),
    "dvc": ({"dvc.yaml": f"stages:\n  noop:\n    cmd: {CMD}\n"}, "dvc:noop"),
    "dstack": ({".dstack/workflows.yaml": f"workflows:\n  - name: noop\n    image: python:3.11\n    commands:\n"
                                          f"      - {CMD}\n"}, "dstack:noop"),
    "valohai": ({"valohai.yaml": f"- step:\n    name: noop\n    image: python:3.11\n    command: {CMD}\n"},
                "valohai:noop"),
    "gradient": ({".gradient/workflows/w.yaml": f"jobs:\n  noop:\n    uses: script@v1\n    with:\n"
                                                f"      script: {CMD}\n"}, "gradient:w/noop"),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=11)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="trk-bench-formats-")
    try:
        env = dict(os.environ, TRK_HOME=os.path.join(tmp, "home"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cases = {"bare": (["sh", "-c", CMD], tmp)}
        for name, (files, op) in PROJECTS.items():
            proj = os.path.join(tmp, name.replace(".", "-"))
            for rel, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(proj, rel)), exist_ok=True)
                with open(os.path.join(proj, rel), "w") as f:
                    f.write(text)
            subprocess.run([TRK, "run", op, "-y"], env=env, cwd=proj, check=True, stdout=subprocess.DEVNULL)
            cases[name] = ([TRK, "run", op, "-y"], proj)
        times = {k: [] for k in cases}
        for _ in range(args.repeat):
            for k, (argv, cwd) in cases.items():
                times[k].append(wall(argv, env, cwd))
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med["trk.yml"] - med["bare"]
        scalars = med["trk.yml+s"] - med["bare"]
        print(f"bare command ({CMD} through sh): {med['bare'] * 1000:.1f} ms")
        for k in PROJECTS:
            over = med[k] - med["bare"]
            print(f"{k:10} trk run {med[k] * 1000:7.1f} ms  overhead {over * 1000:6.1f} ms  "
                  f"ratio to trk.yml {over / base:5.2f}  (bar: <= 1.10)  to trk.yml+s {over / scalars:5.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
