print("0.5 (loss)")
print("0.75 (acc)")
