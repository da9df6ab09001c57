"""Following a running run's output (`trk cat -f`, `trk watch`).

A run's output is the file its supervisor writes as the program prints
(`.trk/output`); following it is reading what was added, again and again,
until the run has ended and the file holds nothing more. A stepped run's
own output is only trk's step lines: following it follows each step's
output in turn, the way the steps run, with a line naming each step.
"""

from __future__ import annotations

import time
from typing import Iterator

from ..store import Run, RunStore


class _Tail:
    """Reads what a file gained since the last read."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0

    def read(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return b""
        self.offset += len(data)
        return data


def follow(run: Run, store: RunStore, poll: float = 0.25, timeout: float | None = None) -> Iterator[bytes]:
    """The run's output as it is written, until the run ends (or `timeout`
    seconds pass); for a stepped run, each step's output in turn."""
    end = None if timeout is None else time.monotonic() + timeout
    tails: dict[str, _Tail] = {run.id: _Tail(run.output_path)}
    order: list[str] = [run.id]
    while True:
        running = fresh(run).status == "running"  # asked before the last read: nothing written after it is missed
        store.rescan()
        children = sorted(store.children([run.id]), key=lambda r: r.sort_key)
        if children and run.id in tails:  # a stepped run: its steps' output, not its own step lines
            order.remove(run.id)
            del tails[run.id]
        for child in children:
            if child.id not in tails:
                tails[child.id] = _Tail(child.output_path)
                order.append(child.id)
                name = child.get("step") or child.opspec
                yield f"== step {name} ({child.short_id} {child.opspec}) ==\n".encode()
        got = False
        for run_id in order:
            data = tails[run_id].read()
            if data:
                got = True
                yield data
        if not running and not got:
            return
        if end is not None and time.monotonic() >= end:
            return
        if not got:
            time.sleep(poll)


def fresh(run: Run) -> Run:
    """The run read again from its files (a Run keeps the attrs it read)."""
    return Run(run.id, run.dir)
