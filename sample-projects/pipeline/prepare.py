"""Keeps the first ROWS data rows of raw.csv as train.csv."""

import argparse

p = argparse.ArgumentParser()
p.add_argument("--rows", type=int, default=3)
args = p.parse_args()

lines = open("raw.csv").read().splitlines()
open("train.csv", "w").write("\n".join(lines[: args.rows + 1]) + "\n")
print(f"prepared {args.rows} rows")
