"""Fits y = w * x on inputs/train.csv with a few gradient steps."""

import argparse

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
args = p.parse_args()

rows = [tuple(map(float, line.split(","))) for line in open("inputs/train.csv").read().splitlines()[1:]]
w = 0.0
for step in range(1, 4):
    grad = sum(2 * (w * x - y) * x for x, y in rows) / len(rows)
    w -= args.lr * grad
    loss = sum((w * x - y) ** 2 for x, y in rows) / len(rows)
    print(f"step: {step}")
    print(f"loss: {loss:.4f}")
open("model.txt", "w").write(f"{w}\n")
