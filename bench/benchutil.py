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
