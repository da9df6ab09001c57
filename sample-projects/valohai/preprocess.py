"""Preprocessing: reads the `raw` input, writes a dataset to the outputs."""

import argparse
import os

p = argparse.ArgumentParser()
p.add_argument("--dataset-name")
p.add_argument("--sample-count", type=int)
args = p.parse_args()
inputs = os.environ.get("VH_INPUTS_DIR", "/valohai/inputs")
with open(os.path.join(inputs, "raw", "raw.csv")) as f:
    rows = f.read().splitlines()
out = os.environ.get("VH_OUTPUTS_DIR", "/valohai/outputs")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "dataset.csv"), "w") as f:
    f.write("\n".join(rows[: args.sample_count + 1]) + "\n")
print(f"{args.dataset_name}: kept {args.sample_count} of {len(rows) - 1} rows")
