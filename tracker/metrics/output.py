"""Output scalars: metrics a program prints (`loss=1.0`, `acc: 0.5`).

Lines are matched against the operation's `output-scalars` patterns (see
`patterns`) in a background thread, so the pipe from the program is drained at full speed;
matches are written to a TensorBoard event file, flushed at most
FLUSH_SECONDS after they are printed (so `trk compare` sees a running run's
scalars) and when the run ends.
"""

from __future__ import annotations

import queue
import threading
import time

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..lines import LineBuffer

from .patterns import Pattern, compile_config, is_disabled, scan_default, scan_patterns

FLUSH_SECONDS = 2.0


class OutputScalarSpec:
    """A compiled `output-scalars` config: Guild's default pattern, a list of
    patterns, or nothing (`output-scalars: no`).

    `ignore` names keys the default pattern skips: the run's flag names, as
    Guild does (a script echoing `lr: 0.1` is showing a flag, not a scalar).
    """

    def __init__(self, spec: Any, ignore: Any = ()):
        self.default = False
        self.patterns: list[Pattern] = []
        self.ignore: frozenset[str] = frozenset()
        if is_disabled(spec):
            return
        if spec is None or spec is True:
            self.default = True
            self.ignore = frozenset(str(name) for name in ignore)
            return
        self.patterns = compile_config(spec)

    @property
    def enabled(self) -> bool:
        """False when `output-scalars` is off, or has no pattern."""
        return self.default or bool(self.patterns)

    def unmatched(self, matched: set[int]) -> list[str]:
        """One warning for each pattern that matched no line (`matched` holds
        the indexes of those that did); none for the default pattern."""
        warnings = []
        for i, p in enumerate(self.patterns):
            line = f"output-scalars: pattern {p.describe()} matched no line"
            if i not in matched and line not in warnings:
                warnings.append(line)
        return warnings


def parse_lines(spec: OutputScalarSpec, data: bytes, step: int,
                matched: set[int] | None = None) -> tuple[list[tuple[str, float, int]], int]:
    """Scalars (tag, value, step) in complete lines of `data`; returns the new step.

    A line's `step` (a `step` key, group or mapping entry) sets the step of
    its own scalars and of those after it (see `patterns.as_step`). The
    indexes of the patterns that matched a line are added to `matched`.
    """
    if spec.default:
        return scan_default(data, step, spec.ignore)
    return scan_patterns(spec.patterns, data, step, set() if matched is None else matched)


class OutputScalars:
    """Feeds a run's output to the patterns and writes matches as events.

    `feed` only queues the bytes; a worker thread parses and writes, so the
    program's pipe is never held up by scalar parsing.
    """

    def __init__(self, spec: Any, events_dir: str, ignore: Any = ()):
        self.spec = spec if isinstance(spec, OutputScalarSpec) else OutputScalarSpec(spec, ignore)
        self.events_dir = events_dir
        self.writer = None
        self.step = 0
        self.matched: set[int] = set()  # indexes of the patterns that matched a line
        self.warnings: list[str] = []  # for the user, once the output has ended
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

    def close(self) -> list[str]:
        """Parse what is left, flush and close the event file; return (and keep
        in `warnings`) a warning for each pattern that matched no line."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join()
            self._thread = None
        _, rest = self.lines.close()
        if rest:
            self._process(rest)
        if self.writer is not None:
            self.writer.close()
        self.warnings = self.spec.unmatched(self.matched)
        return self.warnings

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
        scalars, self.step = parse_lines(self.spec, data, self.step, self.matched)
        if scalars:
            if self.writer is None:
                from .events import EventWriter

                self.writer = EventWriter(self.events_dir)
            self.writer.add_scalars((tag, value, step) for tag, value, step in scalars)
