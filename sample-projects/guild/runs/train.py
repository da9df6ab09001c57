lr = 0.1

data = open("data.txt").read().strip()
print(f"data: {data}")
for step in range(1, 3):
    print(f"lr={lr * step}")
print(f"loss: {round(1 - lr, 4)}")
