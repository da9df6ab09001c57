"""Encodes input.txt with the downloaded model's encoder (GPT-2's encode.py, in small)."""
import argparse

import encoder
from load_dataset import load_text

p = argparse.ArgumentParser()
p.add_argument("--model_name", default="124M")
p.add_argument("in_text")
p.add_argument("out_npz")
args = p.parse_args()
enc = encoder.get_encoder(args.model_name, "models")
tokens = enc.encode(load_text(args.in_text))
with open(args.out_npz, "w") as f:
    f.write(" ".join(map(str, tokens)))
print(f"encoded {len(tokens)} tokens to {args.out_npz}")
