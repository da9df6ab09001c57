"""Fine-tunes the 'model' on the encoded dataset (GPT-2's train.py, in small)."""
import argparse
import os

p = argparse.ArgumentParser()
p.add_argument("--run_name", required=True)
p.add_argument("--model_name", default="124M")
p.add_argument("--dataset", required=True)
p.add_argument("--batch_size", type=int, default=1)
p.add_argument("--learning_rate", type=float, default=0.00002)
p.add_argument("--optimizer", default="adam")
p.add_argument("--sample_every", type=int, default=100)
p.add_argument("--steps", type=int, default=10)
args = p.parse_args()

tokens = open(args.dataset).read().split()
assert os.path.isdir(os.path.join("models", args.model_name)), "no model: download-model's artifact is missing"
ckpt = os.path.join("checkpoint", args.run_name)
samples = os.path.join("samples", args.run_name)
os.makedirs(ckpt, exist_ok=True)
os.makedirs(samples, exist_ok=True)
loss = 4.0
for step in range(1, args.steps + 1):
    loss = loss * (1 - 1000 * args.learning_rate)
    print(f"step: {step}")
    print(f"loss: {loss:.4f}")
    if step % args.sample_every == 0:
        with open(os.path.join(samples, f"samples-{step}"), "w") as f:
            f.write(f"sample at step {step}\n")
with open(os.path.join(ckpt, "model.ckpt"), "w") as f:
    f.write(f"{args.model_name} {args.optimizer} {len(tokens)} tokens\n")
print(f"saved {ckpt}/model.ckpt")
