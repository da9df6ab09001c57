"""`python -m tracker`: the same as the `trk` command."""

from tracker.cli.main import main

main()
