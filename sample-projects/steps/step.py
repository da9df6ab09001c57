"""A tiny program for trk's sample steps: prints messages, creates files."""

import argparse
import os
import sys

p = argparse.ArgumentParser()
p.add_argument("names", nargs="*", help="print 'hello NAME' and create file NAME")
p.add_argument("--msg", help="message to print")
p.add_argument("--touch", action="append", default=[], help="create this file")
p.add_argument("--fail", action="store_true", help="exit with status 1")
args = p.parse_args()

for name in args.names:
    print(f"hello {name}")
    open(name, "a").close()
for path in args.touch:
    open(path, "a").close()
if args.msg is not None:
    print(args.msg)
if args.fail:
    sys.exit(1)
