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
    """Link the runs' event files into `logdir/<run name>/[<step>/]`; links
    made before stay, so calling it again adds new event files."""
    from ..metrics.events import find_event_files, prefix_of

    os.makedirs(logdir, exist_ok=True)
    for run in runs:
        top = os.path.join(logdir, run_link_name(run))
        for rel, path in find_event_files(run.dir):
            # Under the run's name, or `name/step` for a pipeline step's: not
            # `name/.trk`, where trk keeps the files it writes.
            link = os.path.join(top, prefix_of(rel), os.path.basename(rel))
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


class LiveLogdir:
    """A logdir kept in step with a selection of runs: runs that appear are
    linked, runs that go (deleted) are unlinked, a renamed run (new label)
    moves, and runs still going get their new event files linked."""

    def __init__(self, logdir: str, select: Callable[[], Sequence[Run]]):
        self.logdir = logdir
        self.select = select
        self.names: dict[str, str] = {}  # run id -> its directory name in the logdir
        self.live: dict[str, Run] = {}  # runs that may still write event files

    def refresh(self) -> None:
        """Bring the logdir up to date with `select()`."""
        runs = {r.id: r for r in self.select()}
        for run_id in [i for i in self.names if i not in runs]:
            shutil.rmtree(os.path.join(self.logdir, self.names.pop(run_id)), ignore_errors=True)
            self.live.pop(run_id, None)
        todo = []
        for run_id, run in runs.items():
            name = run_link_name(run)
            old = self.names.get(run_id)
            if old is None or run_id in self.live or old != name:
                if old is not None and old != name:
                    shutil.rmtree(os.path.join(self.logdir, old), ignore_errors=True)
                self.names[run_id] = name
                todo.append(run)
        make_logdir(todo, self.logdir)
        self.live = {r.id: r for r in runs.values() if r.index_stamp is None}


def serve(runs: Sequence[Run] | Callable[[], Sequence[Run]], host: str = "127.0.0.1", port: int = 0,
          logdir: str | None = None, on_ready: Callable[[str], None] | None = None,
          stop_after: float | None = None, refresh: float = RELOAD_SECONDS) -> None:
    """Start TensorBoard on the runs and block until Ctrl-C or SIGTERM (or
    `stop_after` seconds). `runs` may be a function giving the runs to show:
    it is asked again every `refresh` seconds, so runs started, finished or
    deleted meanwhile appear and disappear. A temporary logdir is removed at
    the end, however it ends."""
    import logging
    import signal

    from tensorboard import program

    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    select = runs if callable(runs) else (lambda fixed=list(runs): [r for r in fixed if os.path.isdir(r.dir)])
    tmp = None
    if logdir is None:
        tmp = logdir = tempfile.mkdtemp(prefix="trk-tensorboard-")

    def terminated(signum, frame):
        raise KeyboardInterrupt  # the same clean end as Ctrl-C

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        view = LiveLogdir(logdir, select)
        view.refresh()
        tb = program.TensorBoard()
        tb.configure(logdir=logdir, host=host, port=port or free_port(host), reload_interval=max(1, int(refresh)))
        url = tb.launch()
        if on_ready:
            on_ready(url)
        end = time.monotonic() + stop_after if stop_after else None
        synced = time.monotonic()
        try:
            while end is None or time.monotonic() < end:
                time.sleep(0.25)
                if time.monotonic() - synced >= refresh:
                    view.refresh()
                    synced = time.monotonic()
        except KeyboardInterrupt:
            pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
