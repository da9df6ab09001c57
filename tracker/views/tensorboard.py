"""Serving runs with the real TensorBoard (the tensorboard package).

The logdir is a temporary directory of symlinks named after the runs, so
TensorBoard shows `<short id> <op> <label>` for each.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from typing import Callable, Sequence

from ..store import Run


def run_link_name(run: Run) -> str:
    name = f"{run.short_id} {run.opspec} {run.label}".strip()
    return re.sub(r"[/\0]", "_", name)[:200]


def make_logdir(runs: Sequence[Run], logdir: str) -> None:
    os.makedirs(logdir, exist_ok=True)
    for run in runs:
        link = os.path.join(logdir, run_link_name(run))
        if not os.path.lexists(link):
            os.symlink(os.path.realpath(run.dir), link)


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(runs: Sequence[Run], host: str = "127.0.0.1", port: int = 0, logdir: str | None = None,
          on_ready: Callable[[str], None] | None = None, stop_after: float | None = None) -> None:
    """Start TensorBoard on the runs and block until Ctrl-C (or stop_after s)."""
    import logging

    from tensorboard import program

    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    tmp = None
    if logdir is None:
        tmp = logdir = tempfile.mkdtemp(prefix="trk-tensorboard-")
    try:
        make_logdir(runs, logdir)
        tb = program.TensorBoard()
        tb.configure(logdir=logdir, host=host, port=port or free_port(host), reload_interval=5)
        url = tb.launch()
        if on_ready:
            on_ready(url)
        end = time.monotonic() + stop_after if stop_after else None
        try:
            while end is None or time.monotonic() < end:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
