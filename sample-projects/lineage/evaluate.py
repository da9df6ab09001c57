with open("model.txt") as f:
    loss = float(f.read())
print(f"acc: {round(1 - loss / 2, 4)}")
