"""Metrics: TensorBoard event files (`events`), output scalars parsed from a
program's printed lines (`output`), and the incremental SQLite index (`index`).

Submodules import heavy packages (protobuf, tensorboard) only when reading.
"""
