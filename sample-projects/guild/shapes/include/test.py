print("acc: 0.9")
