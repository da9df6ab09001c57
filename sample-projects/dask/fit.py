lr = 0.1

values = [float(v) for v in open("data.txt").read().split()]
loss = abs(lr - 0.05) * sum(values)
with open("model.txt", "w") as f:
    f.write(f"{loss}\n")
print(f"loss: {loss:.4f}")
