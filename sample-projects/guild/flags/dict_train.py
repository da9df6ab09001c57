"""Flags as items of a global dict (flags-dest: dict:params)."""

params = {
    "lr": 0.1,
    "epochs": 5,
    "model": {"layers": 2, "activation": "relu"},
}

for key, value in sorted(params.items()):
    print("param", key, repr(value))
