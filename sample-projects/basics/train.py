"""A toy training loop that prints scalars the way real scripts do."""

import argparse

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--optimizer", default="sgd")
p.add_argument("--verbose", default="no")
p.add_argument("--x", default=None)
args = p.parse_args()

loss = 1.0
for step in range(1, args.epochs + 1):
    loss = loss * (1 - args.lr)
    print(f"step: {step}")
    print(f"loss: {loss:.4f}")
    print(f"acc={1 - loss:.4f}")
print(f"trained with {args.optimizer}")
