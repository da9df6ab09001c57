"""Prints `step`, `loss` and `acc` each epoch, as many training scripts do."""

import argparse

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--epochs", type=int, default=3)
args = p.parse_args()

loss = 1.0
for epoch in range(1, args.epochs + 1):
    loss *= 1 - args.lr
    print(f"step: {epoch}")
    print(f"loss: {loss:.4f}")
    print(f"acc={1 - loss:.4f}")
