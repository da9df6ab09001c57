"""Reads its flags from a config file (flags-dest: config:FILE)."""

import sys

path = sys.argv[1] if len(sys.argv) > 1 else "config.yml"
with open(path) as f:
    for line in f.read().splitlines():
        print("config", line)
