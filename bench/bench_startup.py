"""Start-up cost of the everyday commands (architecture issue's bar).

    python bench/bench_startup.py [--repeat 21] [--src DIR]

Prints, as medians of interleaved rounds:
- `trk run` of a trivial operation minus the same program run bare
  (bar: <= 0.06 s);
- `trk runs` on an empty store against `python -c "import click, yaml"`
  (bar: <= 1.2x).
`--src DIR` times another checkout of trk (e.g. a `git worktree` of an
older commit) through PYTHONPATH, for before/after figures. Not a test:
timings on a shared machine vary; read the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import wall  # noqa: E402

PROJECT = """\
noop:
  exec: python3 -c pass
  output-scalars: no
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--src", help="a trk checkout to time instead of the installed one")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="trk-bench-startup-")
    try:
        proj = os.path.join(tmp, "proj")
        os.makedirs(proj)
        with open(os.path.join(proj, "trk.yml"), "w") as f:
            f.write(PROJECT)
        env = dict(os.environ, TRK_HOME=os.path.join(tmp, "home"))
        # Users' Pythons cache bytecode; without it every start compiles trk.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        empty = dict(env, TRK_HOME=os.path.join(tmp, "empty"))
        if args.src:
            env["PYTHONPATH"] = empty["PYTHONPATH"] = os.path.abspath(args.src)
        trk = [sys.executable, "-m", "tracker"]
        cases = {
            "bare program": (["python3", "-c", "pass"], env),
            "trk run noop": (trk + ["run", "noop", "-y"], env),
            "import click, yaml": ([sys.executable, "-c", "import click, yaml"], env),
            "trk runs (empty store)": (trk + ["runs"], empty),
            "trk --help": (trk + ["--help"], env),
        }
        for argv, e in cases.values():  # warm caches: project cache, .pyc files
            wall(argv, e, proj)
            wall(argv, e, proj)
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeat):
            for name, (argv, e) in cases.items():
                times[name].append(wall(argv, e, proj))
        med = {k: statistics.median(v) for k, v in times.items()}
        for name, t in med.items():
            print(f"{name:28s} {t * 1000:7.1f} ms")
        overhead = med["trk run noop"] - med["bare program"]
        ratio = med["trk runs (empty store)"] / med["import click, yaml"]
        print(f"{'trk run overhead':28s} {overhead * 1000:7.1f} ms   (bar: <= 60 ms)")
        print(f"{'trk runs / import click,yaml':28s} {ratio:7.2f} x    (bar: <= 1.2 x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
