"""Supervising a run's program: spawn it, stream its output live, record the outcome.

The program runs with the run directory as its working directory, in a
session of its own. Its stdout and stderr are echoed as they arrive, saved
to `.trk/output` line by line (a `\\r` redraw in its last state), and fed
to the output-scalar parser; one `LineBuffer` per stream does all three in
time linear in the output, with bounded memory. Ctrl-C, SIGTERM and SIGHUP
stop the program (see `stop`) and the run is recorded `terminated`.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable

from ..records import record
from ..errors import TrkError
from ..store import Run
from ..lines import LineBuffer
from .stop import Interruption, signal_group, stop_on_signals, supervising


@record
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
        except (OSError, ValueError):
            sinks.stdout = None  # the reader went away or the terminal hung up: the run goes on


class Echo:
    """Echoes one stream live. With a prefix (parallel steps) it echoes the
    LineBuffer's settled output, each line prefixed, so lines of concurrent
    steps never splice; without, the raw bytes (the terminal draws `\\r`)."""

    def __init__(self, out: BinaryIO | None, prefix: bytes):
        self.out = out
        self.prefix = prefix
        self.at_line_start = True

    def raw(self, data: bytes) -> None:
        if self.out is not None and not self.prefix:
            self._emit(data)

    def settled(self, data: bytes) -> None:
        if self.out is None or not self.prefix or not data:
            return
        head = self.prefix if self.at_line_start else b""
        self.at_line_start = data.endswith(b"\n")
        self._emit(head + data[:-1].replace(b"\n", b"\n" + self.prefix) + data[-1:])

    def close(self) -> None:
        if not self.at_line_start:
            self.settled(b"\n")

    def _emit(self, data: bytes) -> None:
        try:
            self.out.write(data)
            self.out.flush()
        except (OSError, ValueError):  # the reader went away or the terminal hung up: the run goes on
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
        # The run directory is a record of the run: no __pycache__ of the
        # source snapshot in it (an operation's env: may turn this off).
        PYTHONDONTWRITEBYTECODE="1",
    )
    parent = run.get("parent")  # a step's pipeline run (dstack's `$run_name`); never an outer trk's
    env.pop("TRK_PARENT_RUN_ID", None)
    if isinstance(parent, str):
        env["TRK_PARENT_RUN_ID"] = parent
    dest = run.get("sourcecode_dest")
    if isinstance(dest, str) and dest not in ("", "."):  # `sourcecode: {dest: DIR}`: modules are there (Guild)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.join(run.dir, dest), env.get("PYTHONPATH")) if p)
    if extra:
        env.update({str(k): str(v) for k, v in extra.items()})
    return env


def scalar_parser(run: Run, spec: Any):
    """The output-scalar writer for this run, or None when disabled."""
    if spec is False:  # `output-scalars: no`: not even the parser's import
        return None
    if spec is None:  # the default patterns: nothing to check before the program starts
        return _FirstOutput(run)
    from ..metrics.output import OutputScalars

    try:
        scalars = OutputScalars(spec, run.meta_dir, ignore=run.flags)  # flags are not scalars (as Guild)
    except ValueError as e:
        raise TrkError(str(e), "Fix output-scalars in the project file.") from None
    return scalars if scalars.spec.enabled else None


class _FirstOutput:
    """The default output-scalar writer, made when the program first prints:
    a run whose program prints nothing (a pipeline's no-op, a DVC stage that
    only writes files) spares the parser's imports and set-up."""

    def __init__(self, run: Run):
        self.run = run
        self.real: Any = None
        self.warnings: list[str] = []

    def feed(self, data: bytes) -> None:
        """Queue output bytes for the parser (made now if need be)."""
        if data:
            if self.real is None:
                from ..metrics.output import OutputScalars

                self.real = OutputScalars(None, self.run.meta_dir, ignore=self.run.flags)
            self.real.feed(data)

    def close(self) -> list[str]:
        """Parse what is left and close the event file (see OutputScalars.close)."""
        if self.real is not None:
            self.warnings = self.real.close()
        return self.warnings


READ_SIZE = 1 << 16
# After a small read, let output gather for a moment: a program printing
# line by line then costs trk one pass per batch, not one per line, and its
# writes need not wake trk each time. Live output is late by at most this.
BATCH_SECONDS = 0.002
BATCH_BYTES = 1 << 14


def run_process(
    run: Run,
    argv: list[str],
    env: dict[str, str],
    sinks: Sinks | None = None,
    output_scalars: Any = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
    cwd: str | None = None,
    after: Callable[[int], int] | None = None,
) -> int:
    """Run `argv` for `run` and return its exit code (negative: signal).

    Writes `started`, `pid`, `program_pid`, `stopped`, `exit_status` (and
    `terminated` when a stop signal came) attrs. The caller holds the run's lock.
    The program runs in `cwd` (default: the run directory); `after` (a
    format's runtime: DVC's lock, Gradient's datasets) gets its exit code
    unless a stop came, and returns the run's, before the run is finished.
    """
    sinks = sinks or Sinks()
    scalars = scalar_parser(run, output_scalars)
    with stop_on_signals() as stop, supervising() as program:
        if stop.stopping:  # stopped before its program started (between steps)
            run.terminate(-stop.signum)
            return -stop.signum
        run.record_supervisor()  # (a restart, a staged run started elsewhere: another trk process)
        run.start()
        proc = _spawn(run, argv, env, cwd)
        program.pid = proc.pid
        if stop.stopping:  # the signal came while it was starting
            signal_group(proc.pid, signal.SIGTERM)
        run.write_attr("program_pid", proc.pid)
        if on_start:
            on_start(proc)
        code = _capture(run, proc, sinks, scalars, stop)
        program.pid = None  # reaped: its pid may be reused
        if after is not None and not stop.stopping:
            code = after(code)
        if scalars is not None and not stop.stopping:
            say_warnings(run, sinks, scalars.warnings)
        run.finish(code, stop.stopping)
    return code


def say_warnings(run: Run, sinks: Sinks, warnings: list[str]) -> None:
    """Save warnings about the run's output (a pattern that matched no line) and echo them."""
    if warnings:
        with open(run.output_path, "ab") as out:
            out.write("".join(f"WARNING: {w}\n" for w in warnings).encode())
        for w in warnings:
            echo_line(sinks, f"WARNING: {w}")


def _spawn(run: Run, argv: list[str], env: dict[str, str], cwd: str | None = None) -> subprocess.Popen:
    try:
        # A session of its own: a stop signals the program's whole group, and
        # the terminal's Ctrl-C reaches trk alone, which stops the program.
        return subprocess.Popen(argv, cwd=cwd or run.dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as e:
        msg = f"cannot run {argv[0]}: {e.strerror or e}"
        with open(run.output_path, "ab") as out:
            out.write(f"trk: {msg}\n".encode())
        run.finish(127)
        raise TrkError(msg, exit_code=127) from None


def _capture(run: Run, proc: subprocess.Popen, sinks: Sinks, scalars: Any, stop: Interruption) -> int:
    """Echo, save and parse the program's output until it ends; return its exit code."""
    streams = {f.fileno(): (LineBuffer(), Echo(sink, sinks.prefix))
               for f, sink in ((proc.stdout, sinks.stdout), (proc.stderr, sinks.stderr))}
    killed = False
    try:
        with open(run.output_path, "ab", buffering=0) as out, selectors.DefaultSelector() as sel:
            for f in (proc.stdout, proc.stderr):
                sel.register(f, selectors.EVENT_READ)
            while sel.get_map():
                got = 0
                for key, _ in sel.select(timeout=0.5 if stop.stopping else 2.0):
                    data = os.read(key.fd, READ_SIZE)
                    got = max(got, len(data))
                    lines, echo = streams[key.fd]
                    if data:
                        echo.raw(data)
                        ready, whole = lines.feed(data)
                    else:
                        sel.unregister(key.fileobj)
                        ready, whole = lines.close()
                    if ready:
                        out.write(ready)
                        echo.settled(ready)
                    if whole and scalars is not None:
                        scalars.feed(whole)
                    if not data:
                        echo.close()
                if not killed and stop.overdue():
                    killed = True
                    signal_group(proc.pid, signal.SIGKILL)
                if 0 < got < BATCH_BYTES:
                    time.sleep(BATCH_SECONDS)
        while True:
            try:
                return proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if not killed and stop.overdue():
                    killed = True
                    signal_group(proc.pid, signal.SIGKILL)
    except BaseException:
        signal_group(proc.pid, signal.SIGTERM)  # trk cannot supervise it any more: do not leave it running
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
        if scalars is not None:
            scalars.close()


def exit_code_for(code: int) -> int:
    """Shell convention for a process killed by a signal: 128 + N."""
    return 128 - code if code < 0 else code
