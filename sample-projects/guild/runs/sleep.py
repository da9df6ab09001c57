import time

seconds = 1

for i in range(seconds):
    print(f"tick {i + 1}", flush=True)
    time.sleep(1)
print("done")
