"""Stand-in for training: writes a model, a metric and a curve."""
import argparse
import json

p = argparse.ArgumentParser()
p.add_argument("--thresh", type=int)
p.add_argument("--out")
args = p.parse_args()
with open(args.out, "w") as f:
    f.write(f"model thresh={args.thresh}\n")
json.dump({"accuracy": 0.75, "loss": {"train": 0.5, "val": 0.625}}, open("accuracy.json", "w"))
json.dump({"roc": [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.5, "tpr": 0.75}, {"fpr": 1.0, "tpr": 1.0}]},
          open("auc.json", "w"))
print(f"trained with thresh {args.thresh}")
