"""Stand-in for a report: shows the arguments DVC unpacked from a dictionary."""
import sys

with open("report.txt", "w") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
print("report:", " ".join(sys.argv[1:]))
