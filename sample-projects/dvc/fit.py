"""Stand-in for a per-region model: `fit.py REGION EPOCHS THRESH`."""
import sys

region, epochs, thresh = sys.argv[1:]
with open(f"model-{region}.hdfs", "w") as f:
    f.write(f"{region} epochs={epochs} thresh={thresh}\n")
print(f"fit {region}: epochs={epochs} thresh={thresh}")
