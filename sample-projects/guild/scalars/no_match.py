print("loss=0.5")
print("done")
