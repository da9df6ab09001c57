"""Cutting a program's output into lines: one buffer for saving, echoing and parsing it.

Shared by the process supervisor (what `.trk/output` keeps, the prefixed
echo of parallel steps) and the output-scalar parser, so both see the same
lines: complete ones, `\\r` redraws in their last state, overlong lines in
pieces. Imports nothing of trk.
"""

from __future__ import annotations

LINE_CAP = 1 << 20  # a line longer than this is passed on in pieces, not held whole


class LineBuffer:
    """Cuts one output stream into the lines trk saves, prefixes and parses.

    `feed` returns `(ready, lines)`: `ready` is the output that is settled
    (complete lines, plus the start of a line longer than `cap`, passed on
    so that memory stays bounded); `lines` is the part of it made of whole
    lines, for the output-scalar parser. A line redrawn with `\\r` (a
    progress bar) is kept in its last state, as a terminal shows it:
    `a\\rb\\rc\\n` gives `c\\n`; `\\r\\n` is a line end. Work is
    proportional to the data fed: the partial line is kept in pieces and
    joined once.
    """

    def __init__(self, cap: int = LINE_CAP):
        self.cap = cap
        self.parts: list[bytes] = []  # the partial line
        self.size = 0
        self.cut_short = False  # the partial line's start was passed on already (overlong)

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """Take bytes from the stream; return (ready output, whole lines in it)."""
        cut = data.rfind(b"\n") + 1
        ready = lines = b""
        if cut:
            ready = _redrawn(b"".join(self.parts) + data[:cut] if self.parts else data[:cut])
            lines = ready[ready.find(b"\n") + 1:] if self.cut_short else ready
            self.parts, self.size, self.cut_short = [], 0, False
            data = data[cut:]
        if data and self.cut_short and not self.parts and b"\r" not in data:
            ready += data  # the rest of an overlong line goes on as it comes
        elif data:
            self._grow(data)
            if self.size > self.cap:
                ready += b"".join(self.parts)
                self.parts, self.size, self.cut_short = [], 0, True
        return ready, lines

    def close(self) -> tuple[bytes, bytes]:
        """The last, unterminated line: (as saved, as parsed with a line end)."""
        rest = b"".join(self.parts)
        self.parts, self.size = [], 0
        if not rest:
            return b"", b""
        ready = _redrawn(rest + b"\n")[:-1]
        return ready, b"" if self.cut_short else ready + b"\n"

    def _grow(self, data: bytes) -> None:
        # Redraws drop what they cover: keep from the last \r that text follows.
        end = len(data.rstrip(b"\r"))
        if end:
            cr = data.rfind(b"\r", 0, end)
            if cr >= 0:
                data = data[cr + 1:]
                self.parts, self.size = [], 0
            elif self.parts and self.parts[-1].endswith(b"\r"):
                self.parts, self.size = [], 0
        self.parts.append(data)
        self.size += len(data)


def _redrawn(block: bytes) -> bytes:
    """Complete lines with each `\\r` redraw reduced to its last state."""
    if b"\r" not in block or block.count(b"\r") == block.count(b"\r\n"):
        return block  # the usual case, found in C: no redraws
    return b"".join(_last_state(line + b"\n") for line in block[:-1].split(b"\n"))


def _last_state(line: bytes) -> bytes:
    body = line[:-1]
    cr = body.rfind(b"\r", 0, len(body.rstrip(b"\r")))
    return line[cr + 1:] if cr >= 0 else line
