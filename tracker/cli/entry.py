"""The `trk` console script's entry: the plain `trk run OP NAME=VALUE... -y`
goes straight to the run (see `quickrun`); everything else through click.

click and its imports cost about a third of a trivial run's overhead, and
most runs started by scripts and sweeps are exactly this plain form.
"""

from __future__ import annotations

import sys


def main() -> None:
    """`trk`: the quick run path when it applies, else the click CLI."""
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        from .quickrun import quick_run

        code = quick_run(argv[1:])
        if code is not None:
            sys.exit(code)
    from .main import main as cli_main

    try:
        cli_main()
    except SystemExit as e:
        if "distributed" in sys.modules:  # a `--dask` command: see _exit_without_teardown
            _exit_without_teardown(e.code)
        raise


def _exit_without_teardown(code) -> None:
    """Exit as `sys.exit(code)` would, but without finalizing the interpreter:
    once Dask's client is imported, tearing down its modules (tornado, numpy,
    asyncio...) takes about 70 ms of a `trk run --dask` that took a second or
    two. The exit handlers still run (the client's close, logging's flush);
    every thread trk started has ended by now, and distributed's are daemons."""
    import atexit
    import os

    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)
