for epoch, acc in ((1, 61.5), (2, 72.25), (3, 80.0)):
    print(f"epoch {epoch}")
    print(f"validation accuracy {acc}%")
