import sys

lr = float(sys.argv[1])
print(f"loss={1 - lr:.2f}")
