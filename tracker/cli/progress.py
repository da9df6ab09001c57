"""Progress bars for long library work (a big source copy, a download, an
index rebuild): the library calls `progress(done, total)`; on a terminal
this draws click's bar on stderr. Imports nothing until a bar is drawn, so
`trk run`'s quick path may use it."""

from __future__ import annotations

import sys
import time

# What makes work big enough for a bar from its start, by the first word of
# its label (files, bytes, runs); smaller work gets one only once it is slow.
BAR_FROM = {"Copying": 500, "Downloading": 10 * 2**20, "Reading": 1000, "Indexing": 1000}
BAR_AFTER = 0.5  # seconds


class ProgressBar:
    """A library `progress(done, total)` callback (total None: unknown)
    that draws click's bar on stderr for big or slow work; the library's
    last call has done == total, which ends the bar."""

    def __init__(self, label: str, big: int | None = None, after: float = BAR_AFTER):
        self.label = label
        self.big = BAR_FROM.get(label.split(" ", 1)[0], 0) if big is None else big
        self.after = after
        self.bar = None
        self.t0: float | None = None

    def __call__(self, done: int, total: int | None) -> None:
        """Hear how the work goes; start, move or end the bar."""
        if self.bar is None:
            now = time.monotonic()
            if self.t0 is None:
                self.t0 = now
            if total is not None and done >= total:  # over before it was worth a bar
                self.t0 = None
                return
            if (total is None or total < self.big) and now - self.t0 < self.after:
                return
            import click

            # An unknown length: click draws a bar that moves to and fro.
            self.bar = click.progressbar((x for x in ()), length=total, label=self.label, file=sys.stderr,
                                         show_pos=total is None)
        self.bar.update(done - self.bar.pos)
        if total is not None and done >= total:
            self.bar.render_finish()
            self.bar, self.t0 = None, None


def progress_bars() -> type[ProgressBar] | None:
    """What the library takes as `progress`: makes a bar for the work a
    label names; None (no bars, no cost) when stderr is not a terminal."""
    return ProgressBar if sys.stderr.isatty() else None
