print("acc: 0.75")
