"""Prints each `--NAME VALUE` as `NAME=VALUE` (a scalar); `--touch F` creates F."""

import sys

args = sys.argv[1:]
for name, value in zip(args[::2], args[1::2]):
    name = name.lstrip("-")
    if name == "touch":
        open(value, "a").close()
    else:
        print(f"{name}={value}")
