with open("data.txt", "w") as f:
    f.write("prepared\n")
print("prepared data.txt")
