import argparse

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--batch", type=int)
p.add_argument("--retries", type=int)
args = p.parse_args()
print("lr", args.lr, "batch", args.batch, "retries", args.retries)
print("loss: %s" % (args.lr * args.batch))
