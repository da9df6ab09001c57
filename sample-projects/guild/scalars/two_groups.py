print("loss is 0.25")
print("acc is 0.75")
print("model is ready")  # not a number: not a scalar
