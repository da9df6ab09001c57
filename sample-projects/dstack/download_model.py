"""Stands in for GPT-2's download_model.py: writes a tiny 'model'."""
import json
import os
import sys

model = sys.argv[1]
path = os.path.join("models", model)
os.makedirs(path, exist_ok=True)
with open(os.path.join(path, "hparams.json"), "w") as f:
    json.dump({"n_vocab": 27, "model": model}, f)
with open(os.path.join(path, "encoder.json"), "w") as f:
    json.dump({c: i for i, c in enumerate(" abcdefghijklmnopqrstuvwxyz")}, f)
print(f"downloaded model {model} to {path}")
