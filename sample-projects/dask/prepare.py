with open("data.txt", "w") as f:
    f.write("1 2 3 4\n")
print("prepared data.txt")
