"""Output capture cost (issue 17). Prints figures; not a test.

    python bench/bench_capture.py [--quick]

Capture cost = (wall of `trk run OP` - trk's fixed start-up) / wall of the
same program without trk, its output going to a file. The program runs as
trk runs it, with PYTHONUNBUFFERED=1 (live output); the figure against the
program with Python's usual buffering to a file is shown too: the difference
is what unbuffered writes cost the program itself. trk's fixed start-up is
`trk run` of a no-op program minus that program's own wall time. Each
figure is the best of several rounds, each round timing everything together
(other load on the machine only ever adds time). Also shown: the CPU trk
itself spends on the capture (beyond its start-up and the program's own),
steadier than wall time on a loaded machine.

1. 100,000 `step: i` / `loss: x` pairs (200,000 lines)          bar <= 3x
2. 100,000 lines `epoch 5 loss=0.31 acc=0.92`                   (reported)
3. 20 MB without a newline                                      bar <= 4x
4. 100 MB without a newline (`cat FILE`), against the same piped
   into `cat` writing a file (what trk does, minus echo)        bar <= 2x
5. 100,000 `\\r` redraws of a 100-byte progress bar              bar <= 3x
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import TRK  # noqa: E402

SCRIPTS = {
    "noop.py": "pass\n",
    "scalars.py": ("for i in range(100000):\n"
                   "    print(f'step: {i}')\n"
                   "    print(f'loss: {1.0 / (i + 1)}')\n"),
    "epochs.py": ("for i in range(100000):\n"
                  "    print('epoch 5 loss=0.31 acc=0.92')\n"),
    "blob.py": ("import sys\n"
                "chunk = b'x' * 65536\n"
                "for _ in range(20 * 1000 * 1000 // 65536):\n"
                "    sys.stdout.buffer.write(chunk)\n"),
    "progress.py": ("import sys\n"
                    "for i in range(100000):\n"
                    "    done = i // 2000\n"
                    "    sys.stdout.write(f'\\rtrain {i + 1:6d}/100000 [' + '#' * done + '.' * (50 - done) + '] loss=0.1234 99.9it/s')\n"
                    "    sys.stdout.flush()\n"
                    "print()\n"),
}

CASES = [
    # (label, trk op, command without trk, bar)
    ("1. 200,000 lines step/loss (100,000 scalars)", "scalars", ["python", "scalars.py"], 3.0),
    ("2. 100,000 lines 'epoch 5 loss=0.31 acc=0.92'", "epochs", ["python", "epochs.py"], None),
    ("3. 20 MB without a newline", "blob", ["python", "blob.py"], 4.0),
    ("4. 100 MB without a newline (`cat FILE`), against `cat FILE | cat > OUT`", "big", "pipe", 2.0),
    ("5. 100,000 \\r progress redraws", "progress", ["python", "progress.py"], 3.0),
]


def project(proj: str) -> None:
    os.makedirs(proj)
    lines = []
    for name, text in SCRIPTS.items():
        with open(os.path.join(proj, name), "w") as f:
            f.write(text)
        lines += [f"{name[:-3]}:", f"  exec: python {name}"]
    # Outside the project, so that no run copies it as source code.
    big = os.path.join(os.path.dirname(proj), "big.bin")
    lines += ["big:", f"  exec: cat {big}"]
    with open(os.path.join(proj, "trk.yml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(big, "wb") as f:
        for _ in range(100):
            f.write(b"y" * 1_000_000)


def timed(argv, env, cwd, to_file=False) -> tuple[float, float]:
    """(wall, CPU) seconds of argv and everything it runs, its output to a
    file in cwd (or discarded). argv "pipe" is `cat big.bin | cat > FILE`."""
    target = os.path.join(cwd, "bare.out")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(target if to_file else os.devnull, "wb") as out:
        t = time.perf_counter()
        if argv == "pipe":
            src = subprocess.Popen(["cat", os.path.join(os.path.dirname(cwd), "big.bin")], stdout=subprocess.PIPE)
            subprocess.run(["cat"], stdin=src.stdout, stdout=out, check=True)
            src.stdout.close()
            src.wait()
        else:
            subprocess.run(argv, env=env, cwd=cwd, stdout=out, stderr=out, check=True)
        took = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if to_file:
        os.unlink(target)
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def drop_outputs(home: str) -> None:
    """Delete saved outputs: hundreds of MB of dirty pages slow down what follows."""
    runs = os.path.join(home, "runs")
    for name in os.listdir(runs):
        path = os.path.join(runs, name, ".trk", "output")
        if os.path.exists(path) and os.path.getsize(path) > 1 << 20:
            os.unlink(path)


def figure(op, argv, env, proj, repeat) -> tuple[float, float, float, float, float]:
    """(trk run, trk's fixed start-up, program alone as trk runs it, program
    alone buffered, CPU trk spends capturing): wall times are the best of
    `repeat` rounds, each round timing everything together so that all see
    the same load (load only adds time); CPU is the median."""
    unbuffered = dict(env, PYTHONUNBUFFERED="1")
    rounds = []
    for _ in range(repeat):
        noop_bare = timed(["python", "noop.py"], unbuffered, proj, to_file=True)
        noop_trk = timed([TRK, "run", "noop", "-y"], env, proj)
        bare = timed(argv, unbuffered, proj, to_file=True)
        buffered = timed(argv, env, proj, to_file=True)
        tracked = timed([TRK, "run", op, "-y"], env, proj)
        drop_outputs(env["TRK_HOME"])
        # trk's CPU beyond its start-up and beyond what the program itself uses
        cpu = (tracked[1] - noop_trk[1]) - (bare[1] - noop_bare[1])
        rounds.append((tracked[0], noop_trk[0], noop_bare[0], bare[0], buffered[0], cpu))
    tracked, noop_trk, noop_bare, bare, buffered = (min(r[i] for r in rounds) for i in range(5))
    return tracked, noop_trk - noop_bare, bare, buffered, statistics.median(r[5] for r in rounds)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="two rounds per figure instead of seven")
    ap.add_argument("--only", type=int, action="append", help="run only figure N (may repeat)")
    args = ap.parse_args()
    repeat = 2 if args.quick else 7
    tmp = tempfile.mkdtemp(prefix="trk-bench-capture-")
    try:
        proj = os.path.join(tmp, "proj")
        project(proj)
        env = dict(os.environ, TRK_HOME=os.path.join(tmp, "home"))
        env.pop("PYTHONUNBUFFERED", None)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        for i, (label, op, argv, bar) in enumerate(CASES, 1):
            if args.only and i not in args.only:
                continue
            tracked, fixed, bare, buffered, cpu = figure(op, argv, env, proj, repeat)
            cost = (tracked - fixed) / bare
            verdict = f" (bar <= {bar:g}x)" if bar else ""
            print(f"{label}\n   trk run {tracked:.2f} s (start-up {fixed:.2f} s), alone {bare:.2f} s "
                  f"(buffered {buffered:.2f} s): capture cost {cost:.1f}x{verdict}, "
                  f"{(tracked - fixed) / buffered:.1f}x against the buffered program; "
                  f"trk's CPU for the capture {cpu:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
