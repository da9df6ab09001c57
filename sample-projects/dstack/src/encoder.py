"""A character encoder read from the model's encoder.json."""
import json
import os


class Encoder:
    def __init__(self, table):
        self.table = table

    def encode(self, text):
        return [self.table[c] for c in text.lower() if c in self.table]


def get_encoder(model_name, models_dir):
    with open(os.path.join(models_dir, model_name, "encoder.json")) as f:
        return Encoder(json.load(f))
