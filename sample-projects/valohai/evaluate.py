"""Evaluation: reads the `model` input, prints an accuracy."""

import argparse
import os
import sys

p = argparse.ArgumentParser()
p.add_argument("-t", type=float, dest="threshold")
p.add_argument("--verbose", action="store_true")
args = p.parse_args()
folder = os.path.join(os.environ.get("VH_INPUTS_DIR", "/valohai/inputs"), "model")
(name,) = os.listdir(folder)
with open(os.path.join(folder, name)) as f:
    model = f.read().strip()
if args.verbose:
    print(f"argv: {sys.argv[1:]}")
print(f"model: {model}")
print(f"accuracy: {0.9 if args.threshold < 0.6 else 0.7}")
