"""Timing helpers shared by the bench scripts."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

TRK = os.path.join(os.path.dirname(sys.executable), "trk")


def median_wall(argv, env, cwd=None, repeat=3) -> float:
    """Median wall seconds of running argv (output discarded, must succeed)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)
