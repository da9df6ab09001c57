"""Prints metrics in a format of its own."""

for epoch, acc in enumerate([61.5, 72.25, 80.0], start=1):
    print(f"epoch {epoch}")
    print(f"validation accuracy {acc}%")
