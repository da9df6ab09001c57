"""Prints each argument it receives on its own line, in brackets."""

import sys

for arg in sys.argv[1:]:
    print(f"[{arg}]")
