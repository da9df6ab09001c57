"""Reports the trained weight's error against the true weight 2."""

w = float(open("model.txt").read())
print(f"error: {abs(w - 2):.4f}")
