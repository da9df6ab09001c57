"""`python -m tracker`: the same as the `trk` command."""

from tracker.cli.entry import main

main()
