"""The `trk` command line: click commands that parse, call the library and print.

Nothing outside this package imports it.
"""
