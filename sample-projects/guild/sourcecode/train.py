"""Prints which of its source files the run holds (the working directory is the run directory)."""

import os

lr = 0.1

names = sorted(
    os.path.join(root, name)[2:]
    for root, dirs, files in os.walk(".")
    for name in files
    if not root.startswith(("./.guild", "./.trk"))
)
print(f"lr: {lr}")
print(f"files: {len(names)}")
