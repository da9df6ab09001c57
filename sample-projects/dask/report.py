print(f"report: {open('model.txt').read().strip()}")
