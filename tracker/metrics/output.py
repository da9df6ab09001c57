"""Output scalars: metrics a program prints (`loss=1.0`, `acc: 0.5`).

Lines are matched against the operation's `output-scalars` patterns in a
background thread, so the pipe from the program is drained at full speed;
matches are written to a TensorBoard event file, flushed at most
FLUSH_SECONDS after they are printed (so `trk compare` sees a running run's
scalars) and when the run ends.
"""

from __future__ import annotations

import math
import queue
import re
import threading
import time
from typing import Any

from ..lines import LineBuffer

from .events import STEP_MAX, STEP_MIN  # light: events imports protobuf and crc32c only when used

# `key=value` / `key: value` on a line of its own; the key has no spaces.
DEFAULT_PATTERN = rb"^[ \t]*([^\s:=]+)[ \t]*[:=][ \t]*(-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|-?nan|-?inf)[ \t]*\r?$"
FLUSH_SECONDS = 2.0


class OutputScalarSpec:
    """Compiled `output-scalars` config."""

    def __init__(self, spec: Any):
        self.default: re.Pattern | None = None
        self.tagged: list[tuple[str, re.Pattern]] = []  # tag -> regex with one group
        self.named: list[re.Pattern] = []  # regexes with (?P<key>)(?P<value>) or (?P<step>)
        self.step: re.Pattern | None = None
        if spec is False or (isinstance(spec, str) and spec.lower() in ("no", "false", "off")):
            return  # disabled
        if spec is None or spec is True:
            self.default = re.compile(DEFAULT_PATTERN, re.M)
            return
        items = spec if isinstance(spec, list) else [spec]
        for item in items:
            if isinstance(item, dict):
                for tag, pattern in item.items():
                    rx = _compile(pattern, f"output-scalars '{tag}'")
                    if tag == "step":
                        self.step = rx
                    elif rx.groups < 1:
                        raise ValueError(f"output-scalars pattern for '{tag}' needs a group for the value: {pattern!r}")
                    else:
                        self.tagged.append((str(tag), rx))
            elif isinstance(item, str):
                rx = _compile(item, "output-scalars")
                if "value" not in rx.groupindex and "step" not in rx.groupindex:
                    raise ValueError(f"output-scalars pattern {item!r} needs groups (?P<key>...) and (?P<value>...)")
                self.named.append(rx)
            else:
                raise ValueError(f"invalid output-scalars entry {item!r}: use a mapping of TAG: REGEX or a regex string")

    @property
    def enabled(self) -> bool:
        """False when `output-scalars` is off, or has no pattern."""
        return bool(self.default or self.tagged or self.named)


def _compile(pattern: Any, where: str) -> re.Pattern:
    try:
        return re.compile(str(pattern))
    except re.error as e:
        raise ValueError(f"invalid regex in {where}: {pattern!r}: {e}") from None


def _to_float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _as_step(text: str | bytes, current: int) -> int:
    """The step a printed `step` value sets: an integer is taken exactly, a
    float is truncated; NaN, infinities and non-numbers leave `current`.

    A step beyond the int64 range of TensorBoard's steps (`step:
    99999999999999999999`) is clamped to it, so the scalars that follow are
    still recorded, at the largest (or smallest) step an event file holds.
    """
    try:
        n = int(text)
    except ValueError:
        v = _to_float(text.decode("ascii", "replace") if isinstance(text, bytes) else text)
        if v is None or math.isnan(v) or math.isinf(v):
            return current
        n = int(v)
    return n if STEP_MIN <= n <= STEP_MAX else STEP_MAX if n > 0 else STEP_MIN


def parse_lines(spec: OutputScalarSpec, data: bytes, step: int) -> tuple[list[tuple[str, float, int]], int]:
    """Scalars (tag, value, step) in complete lines of `data`; returns the new step.

    Step lines set the step of the scalars after them (see `_as_step`: a step
    beyond int64 is clamped to it, a non-finite one is ignored).
    """
    out: list[tuple[str, float, int]] = []
    if spec.default is not None:
        for m in spec.default.finditer(data):
            key = m.group(1)
            try:
                value = float(m.group(2))
            except ValueError:
                continue
            if key == b"step":
                step = _as_step(m.group(2), step)
                continue
            out.append((key.decode("utf-8", "replace"), value, step))
        return out, step
    for line in data.decode("utf-8", "replace").splitlines():
        if spec.step is not None:
            m = spec.step.search(line)
            if m:
                text = m.group(1) if m.groups() else m.group(0)
                if text is not None:
                    step = _as_step(text.strip(), step)
        for tag, rx in spec.tagged:
            m = rx.search(line)
            if m:
                v = _to_float(m.group(1))
                if v is not None:
                    out.append((tag, v, step))
        for rx in spec.named:
            for m in rx.finditer(line):
                g = m.groupdict()
                if g.get("step") is not None:
                    step = _as_step(g["step"].strip(), step)
                if g.get("key") is not None and g.get("value") is not None:
                    v = _to_float(g["value"])
                    if v is not None:
                        out.append((g["key"], v, step))
    return out, step


class OutputScalars:
    """Feeds a run's output to the patterns and writes matches as events.

    `feed` only queues the bytes; a worker thread parses and writes, so the
    program's pipe is never held up by scalar parsing.
    """

    def __init__(self, spec: Any, events_dir: str):
        self.spec = spec if isinstance(spec, OutputScalarSpec) else OutputScalarSpec(spec)
        self.events_dir = events_dir
        self.writer = None
        self.step = 0
        self.lines = LineBuffer()  # the partial last line, between chunks
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def feed(self, data: bytes) -> None:
        """Queue output bytes for the worker (lines may be split anywhere)."""
        if not data or not self.spec.enabled:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="trk-output-scalars", daemon=True)
            self._thread.start()
        self._q.put(data)

    def maybe_flush(self) -> None:
        """Nothing to do: the worker flushes within FLUSH_SECONDS on its own."""

    def close(self) -> None:
        """Parse what is left, then flush and close the event file."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join()
            self._thread = None
        _, rest = self.lines.close()
        if rest:
            self._process(rest)
        if self.writer is not None:
            self.writer.close()

    def _work(self) -> None:
        # The flush deadline runs from the first unflushed scalar, so a scalar
        # reaches the file within FLUSH_SECONDS however the output trickles in
        # (a timeout restarted at every chunk could hold it back for longer).
        dirty_since = None
        while True:
            timeout = None if dirty_since is None else max(0.0, dirty_since + FLUSH_SECONDS - time.monotonic())
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                item = b""
            if item is None:
                break
            if item:
                chunks = [item]
                done = False
                while True:  # take whatever else is queued: fewer, larger batches
                    try:
                        more = self._q.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        done = True
                        break
                    chunks.append(more)
                try:
                    self._process_chunk(b"".join(chunks))
                except Exception as e:  # one bad chunk must not end scalar tracking
                    import logging

                    logging.getLogger("trk").warning(f"output scalars: {e}")
                if done:
                    break
            if self.writer is not None and self.writer.pending:
                now = time.monotonic()
                if dirty_since is None:
                    dirty_since = now
                if now - dirty_since >= FLUSH_SECONDS:
                    self.writer.flush()
                    dirty_since = None
        if self.writer is not None:
            self.writer.flush()

    def _process_chunk(self, data: bytes) -> None:
        _, lines = self.lines.feed(data)
        if lines:
            self._process(lines)

    def _process(self, data: bytes) -> None:
        scalars, self.step = parse_lines(self.spec, data, self.step)
        if scalars:
            if self.writer is None:
                from .events import EventWriter

                self.writer = EventWriter(self.events_dir)
            self.writer.add_scalars((tag, value, step) for tag, value, step in scalars)
