lr = 0.1
epochs = 2
optimizer = "sgd"

loss = abs(lr - 0.05) * 10 + 1.0 / epochs + (0.1 if optimizer == "sgd" else 0.0)
print(f"loss: {loss:.4f}")
