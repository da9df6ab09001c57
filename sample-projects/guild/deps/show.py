"""Prints the files a downstream run got (not its source code), then the files named as arguments."""

import json
import os
import sys


def source_files():
    """The run's source code files, as trk (attrs) or Guild (manifest) records them."""
    try:
        with open(os.path.join(".trk", "attrs", "sourcecode_files")) as f:
            return set(json.load(f))
    except OSError:
        pass
    try:
        with open(os.path.join(".guild", "manifest")) as f:
            return {line.split(" ")[1] for line in f if line.startswith("s ")}
    except OSError:
        return set()


source = source_files()
for root, dirs, files in os.walk("."):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for name in sorted(files):
        path = os.path.normpath(os.path.join(root, name))
        if path not in source:
            print(path)
for name in sys.argv[1:]:
    print(f"--- {name}")
    for line in open(name).read().splitlines():
        print(f"> {line}")  # not `key: value`: these are not scalars
