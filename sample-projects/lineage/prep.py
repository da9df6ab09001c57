k = 2

rows = 10 * k
with open("data.txt", "w") as f:
    f.write(f"{k}\n")
print(f"rows: {rows}")
