"""`trk run` without click, for its plain forms: `trk run [MODEL:]OP [NAME=VALUE]... -y [-q]`,
and `trk run --start RUN [-q]` (how a queue worker or a Dask task starts a staged run).

`quick_run` returns None (and has printed nothing, changed nothing) when
the arguments or the operation need more than this path does — any other
option, a batch, a pipeline, dependencies, project warnings — and the click
command takes over. Otherwise it runs the operation exactly as `trk run`
does, through the same library calls, and returns the exit code.
"""

from __future__ import annotations

import sys

_YES = ("-y", "--yes")
_QUIET = ("-q", "--quiet")


def parse(args: list[str]) -> tuple[str | None, list[str], bool, str | None] | None:
    """(opspec, assigns, quiet, run to start) of a plain `trk run` command line, or None."""
    opspec, assigns, yes, quiet, start = None, [], False, False, None
    words = iter(enumerate(args))
    for i, word in words:
        if word in _YES:
            yes = True
        elif word in _QUIET:
            quiet = True
        elif word == "--start" and start is None:
            start = next(words, (0, ""))[1]
            if not start or start.startswith("-"):
                return None  # click says what is missing
        elif word.startswith("--start=") and start is None and len(word) > 8:
            start = word[8:]
        elif word.startswith(("-", "@")) or word == "":
            return None
        elif "=" in word:
            assigns.append(word)
        elif i == 0:
            opspec = word
        else:
            return None  # a second operation: click says what is wrong
    if start is not None:
        return (None, [], quiet, start) if opspec is None and not assigns else None
    return (opspec, assigns, quiet, None) if yes else None


def quick_run(args: list[str]) -> int | None:
    """Run a plain `trk run` and return its exit code; None: not a plain one."""
    import os

    parsed = parse(args)
    if parsed is None or os.environ.get("TRK_DASK_SCHEDULER"):  # submitting to Dask: the click command's
        return None
    opspec, assigns, quiet, start = parsed
    from ..errors import TrkError

    try:
        return _start(start, quiet) if start is not None else _run(opspec, assigns, quiet)
    except TrkError as e:
        print_error(e)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


def _run(opspec: str | None, assigns: list[str], quiet: bool) -> int | None:
    from ..project.flagvalues import is_batch
    from ..project.loader import load
    from ..project.resolve import parse_assigns, resolve, resolve_flags
    from ..store.runstore import RunStore

    st = RunStore()
    project = load(".", cache_dir=st.project_cache_dir)
    if project.warnings:
        return None
    op = resolve(project, opspec)
    if op.is_stepped or op.config.get("requires"):
        return None
    assigned = parse_assigns(list(assigns), op, batch=True)
    if any(is_batch(v) for v in assigned.values()):
        return None
    flags, extra = resolve_flags(op, assigned, help_cmd=opspec)
    from ..execution.launch import RunOptions, launch
    from ..execution.process import Sinks
    from .progress import progress_bars

    created = []
    opts = RunOptions(on_created=created.append, progress=progress_bars())
    sinks = Sinks() if quiet else Sinks.console()
    result = stoppable(lambda: launch(st, project, op, flags, opts, sinks, extra),
                       lambda: created[0] if created else None)
    return exit_code(result)


def _start(spec: str, quiet: bool) -> int:
    """`trk run --start RUN`: start a staged run, as the click command does."""
    from ..execution.launch import RunOptions, relaunch
    from ..execution.process import Sinks
    from ..store.runstore import RunStore
    from ..store.select import select_from
    from .progress import progress_bars

    setup_logging(quiet)
    st = RunStore()
    target = st.on_disk(spec) or select_from(st, None, [spec])[0]  # a whole id: no index sync
    opts = RunOptions(progress=progress_bars())
    sinks = Sinks() if quiet else Sinks.console()
    return exit_code(stoppable(lambda: relaunch(st, target, opts, sinks, staged_only=True), lambda: target))


def setup_logging(quiet: bool = False) -> None:
    """Send trk's log lines (`INFO: [trk] ...`) to stderr; warnings only with `quiet`."""
    import logging

    class _TrkLogFormatter(logging.Formatter):
        def format(self, record):
            return f"{record.levelname}: [trk] {record.getMessage()}"

    logger = logging.getLogger("trk")
    if quiet:
        logger.setLevel(logging.WARNING)
    if not logger.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(_TrkLogFormatter())
        logger.addHandler(h)
        logger.setLevel(logging.WARNING if quiet else logging.INFO)
        logger.propagate = False


def print_error(e) -> None:
    """A TrkError as trk prints it: `trk: message`, then the hint."""
    sys.stdout.flush()
    sys.stderr.write(f"trk: {e.message}\n" + (f"{e.hint}\n" if e.hint else ""))
    sys.stderr.flush()


def stoppable(call, run_of):
    """Run `call` with Ctrl-C (and SIGTERM, SIGHUP) stopping the program, not
    trk; when such a signal came, say which run ended and exit 128 + N."""
    import signal

    from ..execution.stop import stop_on_signals

    result = None
    with stop_on_signals() as stop:
        try:
            result = call()
        except KeyboardInterrupt:
            if not stop.stopping:
                raise
    if not stop.stopping:
        return result
    run = result.run if result is not None and result.run is not None else run_of()
    how = "by user" if stop.signum == signal.SIGINT else f"by {signal.Signals(stop.signum).name}"
    sys.stdout.flush()
    print(f"trk: run {run.short_id} terminated {how}" if run else "trk: interrupted", file=sys.stderr, flush=True)
    sys.exit(128 + stop.signum)


def exit_code(result) -> int:
    """Say why a run failed when trk knows (a pipeline's step); the shell's
    exit code for the run's (128 + N for signal N)."""
    from ..execution.process import exit_code_for

    if result.error:
        sys.stdout.flush()
        print(f"trk: {result.error}", file=sys.stderr, flush=True)
    return exit_code_for(result.exit_code)
