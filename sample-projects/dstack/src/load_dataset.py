"""Reads the text to encode."""


def load_text(path):
    with open(path) as f:
        return f.read()
