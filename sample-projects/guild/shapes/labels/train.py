import argparse

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--optimizer")
p.add_argument("--data")
p.add_argument("--seed", type=int)
args = p.parse_args()
print("training with", args.optimizer, "at", args.lr)
