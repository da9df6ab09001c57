import argparse

p = argparse.ArgumentParser()
p.add_argument("--msg", default="hello")
args = p.parse_args()
print("msg:", args.msg)
