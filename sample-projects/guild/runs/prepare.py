size = 10

with open("data.txt", "w") as f:
    f.write(f"size={size}\n")
print(f"prepared size={size}")
