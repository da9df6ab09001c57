print("loss: 0.5")
print("acc=0.25")
