"""The seed's train.py: a step defined in code by prepare() (tiny stand-in for TensorFlow)."""

import os

import tracker as valohai

params = {
    "learning-rate": 0.001,
    "epochs": 3,
    "augment": False,
}
inputs = {
    "training-set": "data/training_set.csv",
}
values = valohai.prepare(
    step="train",
    default_parameters=params,
    default_inputs=inputs,
    image="tensorflow/tensorflow:gpu",
)

for name, value in sorted(values.items()):
    if name == "training-set":
        value = os.path.basename(value)
    print(f"{name} = {value!r}")
with open(values["training-set"]) as f:
    rows = [line for line in f.read().splitlines()[1:] if line]
loss = 1.0
for epoch in range(1, values["epochs"] + 1):
    loss = loss * (1 - values["learning-rate"] * 100)
    print(f"epoch: {epoch}")
    print(f"loss: {loss:.4f}")
out = os.environ.get("VH_OUTPUTS_DIR", "/valohai/outputs")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.txt"), "w") as f:
    f.write(f"trained on {len(rows)} rows, loss {loss:.4f}\n")
