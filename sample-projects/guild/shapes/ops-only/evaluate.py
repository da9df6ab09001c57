import argparse

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=1)
args = p.parse_args()
print("acc: %s" % (1 - 1 / (args.n + 1)))
