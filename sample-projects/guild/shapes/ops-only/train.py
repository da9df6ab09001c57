print("training")
print("loss: 0.5")
