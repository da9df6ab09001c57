"""Flags as module globals: prints the values it runs with."""

import os

lr = 0.1
epochs = 5
name = "mnist"
layers = [64, 32]
debug = False
dropout = None
_private = "not a flag"

print("global lr", repr(lr))
print("global epochs", repr(epochs))
print("global name", repr(name))
print("global layers", repr(layers))
print("global debug", repr(debug))
print("global dropout", repr(dropout))
print("global extra", repr(globals().get("extra")))
for key in sorted(os.environ):
    if key.startswith("FLAG_"):
        print("env", key, repr(os.environ[key]))
