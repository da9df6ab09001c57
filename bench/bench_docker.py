"""Overhead of `trk run --docker` over `docker run` (issue 14's bar: <= 0.3 s).

    DOCKER_HOST=unix://... python bench/bench_docker.py [--repeat 11] [--image IMAGE]

Times, in interleaved rounds, `trk run --docker` of a trivial operation
(`exec: echo hi` in IMAGE) against `docker run --rm --network host IMAGE
echo hi` with the docker CLI, and prints the medians and their difference.
IMAGE must be in the engine already (default `trk-test/busybox:1`, which
tests/test_docker.py builds; `docker import` a busybox root filesystem to
make it). Not a test: timings on a shared machine vary; read the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile

from benchutil import TRK, wall


def main() -> None:
    """Print the medians and the overhead of trk over the docker CLI."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--image", default="trk-test/busybox:1")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="trk-bench-docker-")
    try:
        proj = os.path.join(tmp, "proj")
        os.makedirs(proj)
        with open(os.path.join(proj, "trk.yml"), "w", encoding="utf-8") as f:
            f.write(f"noop:\n  image: {args.image}\n  exec: echo hi\n  output-scalars: no\n")
        env = dict(os.environ, TRK_HOME=os.path.join(tmp, "home"))
        trk = [TRK, "run", "noop", "-y", "--docker"]
        cli = ["docker", "run", "--rm", "--network", "host", args.image, "echo", "hi"]
        wall(trk, env, proj), wall(cli, env)  # warm: imports, page cache, the engine's image layers
        trk_times, cli_times = [], []
        for _ in range(args.repeat):
            trk_times.append(wall(trk, env, proj))
            cli_times.append(wall(cli, env))
        t, c = statistics.median(trk_times), statistics.median(cli_times)
        print(f"trk run --docker (median of {args.repeat}): {t:.3f} s")
        print(f"docker run --rm   (median of {args.repeat}): {c:.3f} s")
        print(f"overhead: {t - c:+.3f} s (bar: <= 0.3 s) {'OK' if t - c <= 0.3 else 'OVER'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
