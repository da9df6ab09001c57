"""Prints each `--NAME VALUE` as `NAME=VALUE` (a scalar); `--touch F` creates F.

It parses with argparse, so Guild (and trk) pass its flags as arguments:
a script that imports no argument parser gets them as globals instead.
"""

import argparse

p = argparse.ArgumentParser()
p.add_argument("--touch", action="append", default=[], help="create this file")
known, args = p.parse_known_args()
for path in known.touch:
    open(path, "a").close()
for name, value in zip(args[::2], args[1::2]):
    print(f"{name.lstrip('-')}={value}")
