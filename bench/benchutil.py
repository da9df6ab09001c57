"""Timing helpers shared by the bench scripts."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

TRK = os.path.join(os.path.dirname(sys.executable), "trk")


def wall(argv, env, cwd=None) -> float:
    """Wall seconds of running argv once (output discarded, must succeed)."""
    t = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def median_wall(argv, env, cwd=None, repeat=3) -> float:
    """Median wall seconds of running argv (output discarded, must succeed)."""
    return statistics.median(wall(argv, env, cwd) for _ in range(repeat))


def project_env(tmp: str, files: dict[str, str]) -> tuple[str, dict[str, str]]:
    """A project `tmp/proj` holding `files` ({name: text}), and an environment
    with `TRK_HOME` under `tmp` and this Python's bin directory first on PATH."""
    proj = os.path.join(tmp, "proj")
    os.makedirs(proj)
    for name, text in files.items():
        with open(os.path.join(proj, name), "w") as f:
            f.write(text)
    env = dict(os.environ, TRK_HOME=os.path.join(tmp, "home"))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return proj, env


def xargs_noops(env, cwd, n: int = 100, repeat: int = 3) -> float:
    """The best of `repeat` wall times of `n` `python -c pass` run by `xargs -P 2`:
    the baseline of the batch benches."""
    return min(wall(["bash", "-c", f"seq {n} | xargs -P 2 -I{{}} python -c pass"], env, cwd) for _ in range(repeat))
