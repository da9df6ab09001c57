"""A helper module; the `rooted` operation runs it from the run's `src` directory."""

print(f"helpers running from {__file__.rsplit('/', 2)[-2]}")
