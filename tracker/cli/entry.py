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

    cli_main()
