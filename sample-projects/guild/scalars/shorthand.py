for i in range(3):
    print(f"iter {i}")
    print(f"loss -> {0.5 / (i + 1):.4f}")
    print(f"val/acc -> {0.3 * (i + 1):.2f}")
