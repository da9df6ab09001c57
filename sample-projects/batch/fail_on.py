import sys

x = 1
if x == 2:
    sys.exit("x is 2")
print(f"x: {x}")
