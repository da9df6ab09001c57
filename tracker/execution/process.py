"""Supervising a run's program: spawn it, stream its output live, record the outcome.

The program runs with the run directory as its working directory. Its stdout
and stderr are echoed as they arrive, appended to `.trk/output`, and fed to
the output-scalar parser. Ctrl-C and SIGTERM are passed on to the program.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable

from ..errors import TrkError
from ..store import Run


@dataclass
class Sinks:
    """Where a program's output is echoed (None: not echoed)."""

    stdout: BinaryIO | None = None
    stderr: BinaryIO | None = None
    prefix: bytes = b""

    @classmethod
    def console(cls, prefix: str = "") -> "Sinks":
        """Echo to this process's stdout and stderr."""
        return cls(sys.stdout.buffer, sys.stderr.buffer, prefix.encode())

    def prefixed(self, name: str) -> "Sinks":
        """The same sinks, each line prefixed `[name] ` (parallel steps)."""
        return Sinks(self.stdout, self.stderr, f"[{name}] ".encode())


def echo_line(sinks: Sinks | None, line: str) -> None:
    """Echo a trk message line to the sinks' stdout (with their prefix)."""
    if sinks is not None and sinks.stdout is not None:
        try:
            sinks.stdout.write(sinks.prefix + line.encode() + b"\n")
            sinks.stdout.flush()
        except (BrokenPipeError, ValueError):
            sinks.stdout = None  # the reader went away: the run goes on


class _Echo:
    """Echoes one stream. With a prefix (parallel steps), only whole lines are
    written, each prefixed, so lines of concurrent steps never splice."""

    def __init__(self, out: BinaryIO | None, prefix: bytes):
        self.out = out
        self.prefix = prefix
        self.tail = b""

    def write(self, data: bytes) -> None:
        if self.out is None:
            return
        if self.prefix:
            data = self.tail + data
            cut = data.rfind(b"\n") + 1
            self.tail = data[cut:]
            if not cut:
                return
            data = b"".join(self.prefix + line + b"\n" for line in data[:cut].split(b"\n")[:-1])
        self._emit(data)

    def close(self) -> None:
        if self.tail and self.out is not None:
            self._emit(self.prefix + self.tail + b"\n")
        self.tail = b""

    def _emit(self, data: bytes) -> None:
        try:
            self.out.write(data)
            self.out.flush()
        except (BrokenPipeError, ValueError):
            self.out = None


def program_env(run: Run, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a run's program gets: ours, the run's ids, and `env:`."""
    env = dict(os.environ)
    env.update(
        TRK_RUN_ID=run.id,
        TRK_RUN_DIR=run.dir,
        RUN_DIR=run.dir,
        RUN_ID=run.id,
        PYTHONUNBUFFERED="1",
    )
    if extra:
        env.update({str(k): str(v) for k, v in extra.items()})
    return env


def _scalar_parser(run: Run, spec: Any):
    """The output-scalar writer for this run, or None when disabled."""
    from ..metrics.output import OutputScalars

    try:
        scalars = OutputScalars(spec, run.meta_dir)
    except ValueError as e:
        raise TrkError(str(e), "Fix output-scalars in the project file.") from None
    return scalars if scalars.spec.enabled else None


class _LineTails:
    """Keeps each stream's partial last line, so stdout and stderr lines
    never splice together before scalar parsing."""

    def __init__(self):
        self.tails: dict[int, bytes] = {}

    def complete(self, fd: int, data: bytes) -> bytes:
        cut = data.rfind(b"\n") + 1
        head = self.tails.pop(fd, b"")
        if not cut:
            self.tails[fd] = head + data
            return b""
        if data[cut:]:
            self.tails[fd] = data[cut:]
        return head + data[:cut]

    def rest(self) -> bytes:
        return b"".join(t + b"\n" for t in self.tails.values())


class _Interrupted(Exception):
    pass


def run_process(
    run: Run,
    argv: list[str],
    env: dict[str, str],
    sinks: Sinks | None = None,
    output_scalars: Any = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> int:
    """Run `argv` for `run` and return its exit code (negative: signal).

    Writes `started`, `stopped`, `exit_status` (and `terminated` on Ctrl-C or
    SIGTERM) attrs. The caller holds the run's lock.
    """
    sinks = sinks or Sinks()
    scalars = _scalar_parser(run, output_scalars)
    out = open(run.output_path, "ab", buffering=0)
    run.start()
    try:
        proc = subprocess.Popen(
            argv, cwd=run.dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
    except OSError as e:
        msg = f"cannot run {argv[0]}: {e.strerror or e}"
        out.write((f"trk: {msg}\n").encode())
        out.close()
        run.finish(127)
        raise TrkError(msg, exit_code=127) from None
    run.write_attr("program_pid", proc.pid)
    if on_start:
        on_start(proc)
    terminated = False

    def on_term(signum, frame):
        raise _Interrupted()

    old_term = _set_signal(signal.SIGTERM, on_term)
    echoes = {proc.stdout.fileno(): _Echo(sinks.stdout, sinks.prefix), proc.stderr.fileno(): _Echo(sinks.stderr, sinks.prefix)}
    sel = selectors.DefaultSelector()
    for f in (proc.stdout, proc.stderr):
        sel.register(f, selectors.EVENT_READ)
    open_fds = 2
    tails = _LineTails()
    try:
        while open_fds:
            try:
                events = sel.select(timeout=2.0)
                for key, _ in events:
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fileobj)
                        open_fds -= 1
                        continue
                    out.write(data)
                    echoes[key.fd].write(data)
                    if scalars is not None:
                        scalars.feed(tails.complete(key.fd, data))
                if scalars is not None:
                    scalars.maybe_flush()
            except (KeyboardInterrupt, _Interrupted) as e:
                terminated = True
                # The terminal already sent SIGINT to the whole process group;
                # a signal sent to trk alone is passed on.
                try:
                    proc.send_signal(signal.SIGINT if isinstance(e, KeyboardInterrupt) else signal.SIGTERM)
                except ProcessLookupError:
                    pass
        while True:
            try:
                code = proc.wait()
                break
            except (KeyboardInterrupt, _Interrupted):
                terminated = True
                proc.send_signal(signal.SIGTERM)
    finally:
        sel.close()
        for echo in echoes.values():
            echo.close()
        if old_term is not None:
            _set_signal(signal.SIGTERM, old_term)
        proc.stdout.close()
        proc.stderr.close()
        out.close()
        if scalars is not None:
            scalars.feed(tails.rest())
            scalars.close()
    run.finish(code, terminated)
    return code


def _set_signal(sig, handler):
    try:
        return signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def exit_code_for(code: int) -> int:
    """Shell convention for a process killed by a signal: 128 + N."""
    return 128 - code if code < 0 else code
