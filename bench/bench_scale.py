"""How trk's commands scale with the number of runs in the store.

    python bench/bench_scale.py [--sizes 1000,10000,100000] [--repeat 5] [--keep DIR] [--no-tensorboard]

Builds stores of realistic finished runs in-process through trk's store API
(5 operations, ~7% errors, every 10th run with an upstream `prepare` run as
a dependency, pipelines with step children, 3 scalars x 5 steps per run),
then times trk commands against each as child processes: the median wall
time of --repeat runs and the largest peak RSS. A store of 10 runs and an
empty one are measured too, for the bars printed next to the largest size.
`--keep DIR` keeps the stores in DIR and reuses them on the next call
(building 100,000 runs takes a while); the runs the benchmark adds are
removed again at the end. trk is imported as usual (the installed one, or
this checkout); `PYTHONPATH=/other/checkout` benchmarks another checkout.

Not a test: timings on a shared machine vary; read the figures.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRK = os.path.join(os.path.dirname(sys.executable), "trk")
if importlib.util.find_spec("tracker") is None:  # not installed: this checkout's
    sys.path.insert(0, ROOT)
HOST = os.uname().nodename
PROJECT = """\
prepare:
  exec: python3 -c pass
train:
  exec: python3 -c pass
  requires:
    - operation: prepare
noop:
  exec: python3 -c pass
"""
# One block of 10 runs: a prepare, a train using it, a pipeline (slot 6) with two steps (7, 8).
BLOCK = ("prepare", "train", "train", "train", "evaluate", "export", "pipeline", "train", "evaluate", "train")
STEPS = {7: "train", 8: "evaluate"}
GAP_US = 30_000_000  # runs start 30 s apart


def _flags(op: str, rng: random.Random) -> dict:
    if op == "prepare":
        return {"rows": rng.choice([1000, 5000]), "seed": rng.randrange(100)}
    if op == "evaluate":
        return {"split": rng.choice(["val", "test"])}
    if op == "export":
        return {"format": "onnx", "quantize": rng.random() < 0.5}
    return {"lr": rng.choice([0.1, 0.01, 0.001]), "epochs": rng.randrange(1, 50),
            "batch_size": rng.choice([32, 64]), "optimizer": rng.choice(["sgd", "adam"])}


def build(home: str, n: int) -> float:
    """Add n finished runs (newest starting now) to the store at home; seconds taken."""
    from tracker.metrics.events import EventWriter
    from tracker.store import RunStore, now_us

    t = time.perf_counter()
    store, rng = RunStore(home), random.Random(n)
    first = now_us() - n * GAP_US
    upstream = parent = None
    errors: list[bool] = []
    for i in range(n):
        j = i % 10
        if j == 0:
            errors = [rng.random() < 0.07 for _ in range(10)]
            errors[6] = errors[7] or errors[8]  # a pipeline fails when a step does
        op, start, failed = BLOCK[j], first + i * GAP_US, errors[j]
        stop = start + (GAP_US * 3 if j == 6 else rng.randrange(5_000_000, 25_000_000))
        run, build_dir = store.new_run()
        flags = _flags(op, rng)
        label = " ".join(f"{k}={v}" for k, v in flags.items())
        attrs = {"id": run.id, "op": op, "flags": flags, "label": label,
                 "tags": rng.choice([[], [], ["baseline"], ["exp3", "gpu"]]), "initialized": start - 200_000,
                 "host": HOST, "pid": rng.randrange(1000, 99999)}
        if op != "pipeline":
            attrs["cmd"] = [sys.executable, "-um", op] + [f"--{k}={v}" for k, v in flags.items()]
        attrs["env"] = {"PYTHONHASHSEED": "0"} if j == 3 else {}
        if j in STEPS:
            attrs.update(parent=parent, step=STEPS[j])
        if op != "pipeline":
            attrs.update(sourcecode_digest=f"{rng.getrandbits(256):064x}", sourcecode_files=["train.py", "trk.yml"])
            for name in attrs["sourcecode_files"]:
                with open(os.path.join(build_dir, name), "w") as f:
                    f.write(f"# {name} of a benchmark run\n")
        if j == 0 or (j == 1 and upstream):
            with open(os.path.join(build_dir, "data.csv"), "w") as f:
                f.write("x,y\n" + "".join(f"{k},{k * k}\n" for k in range(20)))
        if j == 1 and upstream:
            attrs["deps"] = [{"name": "operation:prepare", "kind": "operation", "run": upstream,
                              "sha256": f"{rng.getrandbits(256):064x}", "files": ["data.csv"], "target_type": "copy"}]
            attrs["label"] += f" prepare={upstream[:8]}"
        attrs.update(started=start, program_pid=attrs["pid"] + 1, stopped=stop, exit_status=1 if failed else 0)
        for name, value in attrs.items():
            run.write_attr(name, value)
        meta = os.path.join(build_dir, ".trk")
        for name, text in (("lock", ""), ("output", "epoch 1 loss=0.5\nepoch 2 loss=0.3\n"),
                           ("opref", json.dumps({"project": "/bench", "file": "trk.yml", "model": "", "op": op}))):
            with open(os.path.join(meta, name), "w") as f:
                f.write(text)
        if op != "pipeline":
            events = EventWriter(meta)
            for step in range(5):
                for tag, value in (("loss", 1 / (step + 1)), ("acc", step / 5), ("lr", flags.get("lr", 0.1))):
                    events.add_scalar(tag, value + rng.random() / 100, step)
            events.close()
        store.publish(run)
        if j == 0:
            upstream = upstream if failed else run.id
        elif j == 6:
            parent = run.id
        elif j in STEPS:  # a pipeline links its steps into its own directory
            os.symlink(os.path.join("..", run.id), os.path.join(store.run_path(parent), STEPS[j]))
    return time.perf_counter() - t


# Runs a command and prints its wall time, peak RSS (MB) and exit status. A
# child's peak RSS counts its parent's at the fork (the kernel keeps the old
# image's high-water mark at exec), so commands are started from this small
# process, never from the benchmark, which grows as it builds stores. With a
# line prefix in argv[1], time until the command prints that line, then stop
# it with Ctrl-C (SIGINT restored: a shell's background job ignores it); how
# it exits then does not count.
RUNNER = """\
import os, signal, subprocess, sys, time
until = sys.argv[1]
t = time.perf_counter()
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE if until else subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
if until:
    ready = any(line.startswith(until) for line in p.stdout)
    wall = time.perf_counter() - t
    p.send_signal(signal.SIGINT)
    signal.signal(signal.SIGALRM, lambda *_: p.kill())
    signal.alarm(120)
_, status, usage = os.wait4(p.pid, 0)
if not until:
    wall = time.perf_counter() - t
print(wall, usage.ru_maxrss / 1024, (0 if ready else "no-line") if until else status)
"""


def timed(argv, env, cwd=None, repeat=5, before=None, after=None, until=""):
    """Median wall seconds and largest peak RSS (MB) of argv run `repeat`
    times; `before`/`after` are called untimed around each run."""
    walls, rss = [], []
    for _ in range(repeat):
        if before:
            before()
        out = subprocess.run([sys.executable, "-c", RUNNER, until, *argv], env=env, cwd=cwd,
                             stdout=subprocess.PIPE, text=True, check=True).stdout.split()
        if out[2] != "0":
            raise SystemExit(f"{' '.join(argv)} failed ({out[2]}) with TRK_HOME={env['TRK_HOME']}")
        walls.append(float(out[0]))
        rss.append(float(out[1]))
        if after:
            after()
    return statistics.median(walls), max(rss)


def measure(home, project, repeat, rows, tensorboard):
    """Time the commands of `rows` against the store at home: {row: (seconds, MB)}."""
    env = dict(os.environ, TRK_HOME=home)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users have bytecode caches
    out = {}

    def trk(*args, key, **kw):
        if key in rows:
            out[key] = timed([TRK, *args], env, cwd=project, **kw)
            print(f"  {key:<14} {out[key][0]:8.3f} s {out[key][1]:6.0f} MB", flush=True)

    def untimed(*args):
        return subprocess.run([TRK, *args], env=env, cwd=project, capture_output=True, text=True, check=True).stdout

    trk("runs", "-a", key="runs_first", repeat=1)  # also warms the attrs index for what follows
    trk("runs", key="runs", repeat=repeat)
    trk("runs", "-a", key="runs_all", repeat=repeat)
    trk("select", key="select", repeat=repeat)
    cold = lambda: [os.remove(p) for p in glob.glob(os.path.join(home, "index", "scalars.sqlite*"))  # noqa: E731
                    + glob.glob(os.path.join(home, "index", "compare-rows.sqlite*"))]  # (and the rows rendered)
    trk("compare", "-t", key="compare_cold", repeat=repeat, before=cold)
    if "compare_warm" in rows:
        untimed("compare", "-t")
    trk("compare", "-t", key="compare_warm", repeat=repeat)
    if "run_train" in rows:
        untimed("run", "train", "-y")  # caches the parsed project file
    trk("run", "train", "-y", key="run_train", repeat=repeat)
    trk("run", "noop", "-y", key="run_noop", repeat=repeat)
    latest = []
    trk("runs", "rm", "-y", "1", key="rm", repeat=repeat, before=lambda: latest.append(untimed("select").strip()),
        after=lambda: untimed("runs", "restore", "-y", latest[-1]))
    if tensorboard:  # once: start-up is until it prints its URL; Ctrl-C removes its logdir
        trk("tensorboard", key="tensorboard", repeat=1, until="TensorBoard ")
    trk("runs", key="runs_added_top", repeat=repeat, before=lambda: build(home, 1000))  # the bar's `trk runs`
    trk("runs", "-a", key="runs_added", repeat=repeat, before=lambda: build(home, 1000))
    return out


ROWS = [("runs_first", "trk runs -a (first after build/reuse, once)"), ("runs", "trk runs (20 rows)"),
        ("runs_all", "trk runs -a (warm)"), ("runs_added_top", "trk runs after 1,000 added behind its back"),
        ("runs_added", "trk runs -a after 1,000 added behind its back"),
        ("select", "trk select"), ("compare_cold", "trk compare -t (cold scalar index)"),
        ("compare_warm", "trk compare -t (warm)"), ("run_train", "trk run train -y (requires prepare)"),
        ("run_noop", "trk run noop -y"), ("rm", "trk runs rm -y 1"), ("tensorboard", "trk tensorboard start-up (once)")]


def bars(res, big):
    """{row: text} of the issue's bars checked against the largest store."""
    def get(key, size):
        return res.get(size, {}).get(key, (None, None))[0]

    checks = {"run_train": (get("run_train", 10), lambda base: base + 0.03, "10 runs + 0.03 s"),
              "runs": (get("runs", 0), lambda base: 1.5 * base, "1.5 x empty store"),
              "runs_all": (1.0, None, "1 s"), "compare_warm": (2.0, None, "2 s"), "runs_added_top": (2.0, None, "2 s")}
    text = {}
    for key, _ in ROWS:
        wall, rss = res[big].get(key, (None, None))
        if wall is None:
            continue
        parts = []
        if key in checks:
            base, rule, what = checks[key]
            if base is not None:
                limit = rule(base) if rule else base
                parts.append(f"<= {limit:.3f} s ({what}) {'ok' if wall <= limit else 'MISSED'}")
        parts.append("RSS ok" if rss <= 150 else "RSS > 150 MB")
        text[key] = "; ".join(parts)
    return text


def print_table(res, sizes):
    cols = [0, 10] + sizes
    names = {0: "empty", 10: "10 runs"}
    width = max(len(label) for _, label in ROWS)
    print("\n" + f"{'command':<{width}}  " + "".join(f"{names.get(n, f'{n:,} runs'):>18}" for n in cols)
          + f"   bars at {sizes[-1]:,} runs")
    for key, label in ROWS:
        cells = []
        for n in cols:
            wall, rss = res.get(n, {}).get(key, (None, None))
            cells.append(f"{wall:.3f} s {rss:4.0f} MB" if wall is not None else "-")
        print(f"{label:<{width}}  " + "".join(f"{c:>18}" for c in cells) + "   " + bars(res, sizes[-1]).get(key, ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="store sizes, comma-separated")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command (the median is shown)")
    ap.add_argument("--keep", metavar="DIR", help="keep the stores in DIR and reuse those built before")
    ap.add_argument("--no-tensorboard", action="store_true", help="skip timing trk tensorboard")
    ap.add_argument("--rows", help="time only these rows (keys, comma-separated: " + ",".join(k for k, _ in ROWS) + ")")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    tmp = tempfile.mkdtemp(prefix="trk-bench-scale-")
    project = os.path.join(tmp, "project")
    os.makedirs(project)
    with open(os.path.join(project, "trk.yml"), "w") as f:
        f.write(PROJECT)
    every = set(args.rows.split(",")) if args.rows else {key for key, _ in ROWS}
    res: dict[int, dict] = {}
    try:
        print("empty store", flush=True)
        res[0] = measure(os.path.join(tmp, "empty"), project, args.repeat, {"runs"}, False)
        for n in [10] + sizes:
            home = os.path.join(args.keep if args.keep and n > 10 else tmp, f"store-{n}")
            marker = home + ".built"
            if os.path.exists(marker):
                print(f"{n:,} runs: reusing {home}", flush=True)
            else:
                shutil.rmtree(home, ignore_errors=True)
                took = build(home, n)
                with open(marker, "w") as f:
                    f.write(f"{n}\n")
                print(f"{n:,} runs: built in {took:.1f} s ({took / n * 1000:.2f} ms a run) in {home}", flush=True)
                time.sleep(2.1)  # attrs written in the last 2 s are not cached (coarse mtimes)
            before = set(os.listdir(os.path.join(home, "runs")))
            rows = every - {"runs_added", "runs_added_top"} if n == 10 else every
            res[n] = measure(home, project, args.repeat, rows, not args.no_tensorboard)
            if args.keep and n > 10:  # leave the kept store as it was built
                for name in set(os.listdir(os.path.join(home, "runs"))) - before:
                    shutil.rmtree(os.path.join(home, "runs", name), ignore_errors=True)
        print_table(res, sizes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
