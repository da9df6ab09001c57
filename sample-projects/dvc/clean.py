"""Stand-in for a cleanup script: lower-cases its input."""
import sys

src, dest = sys.argv[1:]
with open(src) as f, open(dest, "w") as out:
    out.write(f.read().lower())
print(f"cleaned {src}")
