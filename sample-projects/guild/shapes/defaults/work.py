import argparse

p = argparse.ArgumentParser()
p.add_argument("--step")
p.add_argument("--seed", type=int)
args = p.parse_args()
print("step", args.step, "seed", args.seed)
