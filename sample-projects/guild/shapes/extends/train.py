import argparse

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=1.0)
p.add_argument("--epochs", type=int, default=1)
args = p.parse_args()
print("loss: %s" % round(args.lr * args.epochs, 4))
