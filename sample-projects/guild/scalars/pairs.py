"""Prints several key=value pairs a line, as most training scripts do."""

lr = 0.1

for epoch in range(1, 4):
    print(f"epoch {epoch} loss={1 / epoch:.2f} acc={epoch / 4:.2f}")
print(f"lr={lr} final_loss=0.2")  # lr is a flag: not a scalar
print("Namespace(batch=32, shuffle=True)")  # other text on the line: nothing
