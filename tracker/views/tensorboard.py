"""Serving runs with the real TensorBoard (the tensorboard package).

The logdir is a temporary directory named after the runs, so TensorBoard
shows `<short id> <op> <label>` for each. It holds links to the runs' own
event files only (`find_event_files`), not to the run directories:
TensorBoard follows every symlink it meets, with no guard against cycles,
so a run holding `ln -s / root` would have it walk the whole file system.
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

RELOAD_SECONDS = 5  # TensorBoard's reload interval, and how often new event files are linked


def run_link_name(run: Run) -> str:
    """The logdir name of a run: `<short id> <op> <label>`."""
    name = f"{run.short_id} {run.opspec} {run.label}".strip()
    return re.sub(r"[/\0]", "_", name)[:200]


def make_logdir(runs: Sequence[Run], logdir: str) -> None:
    """Link the runs' event files into `logdir/<run name>/<their dir in the run>/`;
    links made before stay, so calling it again adds new event files."""
    from ..metrics.events import find_event_files

    os.makedirs(logdir, exist_ok=True)
    for run in runs:
        top = os.path.join(logdir, run_link_name(run))
        for rel, path in find_event_files(run.dir):
            link = os.path.join(top, rel)
            if os.path.lexists(link):
                continue
            try:
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(os.path.realpath(path), link)
            except OSError:
                continue  # e.g. a file and a directory of the same name: TensorBoard misses one file


def free_port(host: str) -> int:
    """A free TCP port on `host`."""
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
        tb.configure(logdir=logdir, host=host, port=port or free_port(host), reload_interval=RELOAD_SECONDS)
        url = tb.launch()
        if on_ready:
            on_ready(url)
        end = time.monotonic() + stop_after if stop_after else None
        live = [r for r in runs if r.index_stamp is None]  # may still write new event files
        synced = time.monotonic()
        try:
            while end is None or time.monotonic() < end:
                time.sleep(0.5)
                if live and time.monotonic() - synced >= RELOAD_SECONDS:
                    make_logdir(live, logdir)
                    synced = time.monotonic()
        except KeyboardInterrupt:
            pass
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
