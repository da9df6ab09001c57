"""Stands in for StyleGAN2's run_generator.py: one text 'image' per seed."""
import argparse
import os
import time

p = argparse.ArgumentParser()
p.add_argument("command", choices=["generate-images"])
p.add_argument("--network", required=True)
p.add_argument("--seeds", required=True)
p.add_argument("--truncation-psi", type=float, default=0.5)
p.add_argument("--result-dir", required=True)
args = p.parse_args()

first, _, last = args.seeds.partition("-")
seeds = list(range(int(first), int(last or first) + 1))
network = open(args.network).read().strip()
start = time.time()
os.makedirs(args.result_dir, exist_ok=True)
for i, seed in enumerate(seeds):
    print(f"Generating image for seed {seed} ({i}/{len(seeds)}) ...")
    with open(os.path.join(args.result_dir, f"seed{seed}.png"), "w") as f:
        f.write(f"{network}; seed {seed}; psi {args.truncation_psi}\n")
print(f"dnnlib: Finished run_generator.generate_images() in {time.time() - start:.0f}s.")
