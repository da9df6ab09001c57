"""Stands in for `curl -O .../tinyshakespeare/input.txt`."""
with open("input.txt", "w") as f:
    f.write("first citizen before we proceed any further hear me speak\n")
print("wrote input.txt")
