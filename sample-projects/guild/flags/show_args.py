"""Prints each argument and FLAG_ variable it gets, one per line."""

import os
import sys

for arg in sys.argv[1:]:
    print("argv", repr(arg))
for key in sorted(os.environ):
    if key.startswith("FLAG_") or key.startswith("MY_"):
        print("env", key, repr(os.environ[key]))
