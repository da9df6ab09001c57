"""Stand-in for feature extraction: counts the words of the cleaned files."""
import glob

import yaml

ngrams = yaml.safe_load(open("params.yaml"))["featurize"]["ngrams"]
for path in sorted(glob.glob("data/*.cln")):
    print(f"{path} {len(open(path).read().split())} ngrams={ngrams}")
