"""Prints metrics the way Guild's default output-scalars pattern reads them."""

lr = 0.1
epochs = 2

print(f"lr: {lr}")  # a flag, echoed: not a scalar
print(f"epochs: {epochs}")
for step in range(1, epochs + 1):
    print(f"step: {step}")
    print(f"loss: {1 / step:.3f}")
    print(f"acc: {1 - 1 / (step + 1):.3f} (best so far)")  # a remark in parentheses is ignored
print("val_loss: 0.25 (step 10)")  # a trailing (step N) sets the step
print("val_acc: 0.8 (11)")
print("Done: 3 items")  # not a number: not a scalar
