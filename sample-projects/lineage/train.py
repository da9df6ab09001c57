lr = 0.1

with open("data.txt") as f:
    k = int(f.read())
loss = round(1.0 / (k * lr * 10), 4)
with open("model.txt", "w") as f:
    f.write(f"{loss}\n")
print(f"loss: {loss}")
