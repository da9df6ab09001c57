"""Scalar figures (issue 3). Prints figures; not a test.

    python bench/bench_scalars.py [--quick]

0. event files: writing and reading (checksums verified) 1,000,000 scalars
1. fresh index over 1,000 runs x 10 tags x 100 steps (1,000,000 scalars)
2. `trk compare -t` again with nothing changed (1,000 runs)
3. `trk compare -t` over 10,000 runs with the index up to date, and the
   library's own share (ScalarIndex.refresh + get)
4. Guild's scale: 1,000 runs of 11 scalars x 10 steps, compare warm / index deleted
5. a program printing 100,000 scalar lines, tracked vs `output-scalars: no`,
   and the CPU that OutputScalars itself spends on those lines
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchutil import TRK, median_wall as wall  # noqa: E402


def make_runs(home: str, n: int, tags: int, steps: int, offset: int = 0) -> None:
    from tracker.metrics.events import EventWriter
    from tracker.store import RunStore, now_us

    store = RunStore(home)
    t0 = now_us() - 10_000_000
    for i in range(n):
        run, _ = store.new_run()
        for name, value in (("id", run.id), ("op", "train"), ("flags", {"lr": 0.01 * (i % 10), "batch": 32}),
                            ("label", ""), ("tags", []), ("initialized", t0 + i), ("started", t0 + i),
                            ("stopped", t0 + i + 5), ("exit_status", 0)):
            run.write_attr(name, value)
        w = EventWriter(os.path.join(run.dir, ".trk"))
        for step in range(steps):
            w.add_scalars([(f"tag{t}", (i + t) / (step + 1), step) for t in range(tags)])
        w.close()
        store.publish(run)


def event_file_rates(tmp: str) -> None:
    from tracker.metrics.events import EventWriter, read_scalars

    n_steps, tags = 100_000, 10
    batches = [[(f"tag{t}", t + 1.0 / (step + 1), step) for t in range(tags)] for step in range(n_steps)]
    t = time.perf_counter()
    w = EventWriter(os.path.join(tmp, "rates"))
    for batch in batches:
        w.add_scalars(batch)
    w.close()
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    res = read_scalars(w.path)
    read_s = time.perf_counter() - t
    n = len(res.scalars)
    assert n == n_steps * tags and res.warning is None
    print(f"0. event file, {n:,} scalars: write {n / write_s:,.0f} scalars/s, "
          f"read {n / read_s:,.0f} scalars/s with checksums (bar >= 100,000/s)")


def output_scalars_cpu() -> None:
    from tracker.metrics.output import OutputScalars

    lines = b"".join(b"step: %d\nloss=%r\n" % (i, 1.0 / (i + 1)) for i in range(100_000))
    chunks = [lines[i:i + 4096] for i in range(0, len(lines), 4096)]  # pipe-sized reads
    tmp = tempfile.mkdtemp(prefix="trk-bench-output-")
    try:
        t = time.process_time()
        out = OutputScalars(None, tmp)
        for c in chunks:
            out.feed(c)
        out.close()
        cpu = time.process_time() - t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"   OutputScalars CPU for those 200,000 lines (100,000 scalars): {cpu:.3f} s "
          f"({cpu / 100_000 * 1e6:.2f} us per scalar line)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the 10,000-run figure")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="trk-bench-scalars-")
    try:
        event_file_rates(tmp)
        home = os.path.join(tmp, "h1")
        make_runs(home, 1000, 10, 100)
        env = dict(os.environ, TRK_HOME=home)
        from tracker.metrics.index import ScalarIndex
        from tracker.store import RunStore

        store = RunStore(home)
        runs = store.list()
        idx = ScalarIndex(os.path.join(store.index_dir, "scalars.sqlite"))
        t = time.perf_counter()
        idx.refresh([(r.id, r.dir, r.index_stamp) for r in runs])
        build = time.perf_counter() - t
        print(f"1. fresh index, 1,000 runs, 1,000,000 scalars: {build:.2f} s ({1e6 / build:,.0f} scalars/s; bar < 10 s)")
        time.sleep(2.1)  # let the run attrs cache settle (coarse mtimes)
        wall([TRK, "compare", "-t"], env, repeat=1)
        warm = wall([TRK, "compare", "-t"], env)
        print(f"2. trk compare -t, 1,000 runs, nothing changed: {warm:.3f} s (bar < 0.5 s)")

        if not args.quick:
            home10 = os.path.join(tmp, "h10")
            make_runs(home10, 10000, 3, 5)
            env10 = dict(os.environ, TRK_HOME=home10)
            time.sleep(2.1)
            wall([TRK, "compare", "-t"], env10, repeat=1)
            warm10 = wall([TRK, "compare", "-t"], env10)
            print(f"3. trk compare -t, 10,000 runs, index up to date: {warm10:.3f} s (bar < 1.5 s)")
            runs10 = RunStore(home10).list()
            ids10 = [r.id for r in runs10]
            refs10 = [(r.id, r.dir, r.index_stamp) for r in runs10]
            lib = []
            for _ in range(3):
                idx10 = ScalarIndex(os.path.join(home10, "index", "scalars.sqlite"))
                t = time.perf_counter()
                idx10.refresh(refs10)
                got = idx10.get(ids10)
                lib.append(time.perf_counter() - t)
                idx10.close()
            assert len(got) == 10000
            print(f"   of which ScalarIndex.refresh + get (10,000 finished runs): {statistics.median(lib):.3f} s "
                  f"(aim < 0.3 s)")

        homeg = os.path.join(tmp, "hg")
        make_runs(homeg, 1000, 11, 10)
        envg = dict(os.environ, TRK_HOME=homeg)
        time.sleep(2.1)
        wall([TRK, "compare", "-t"], envg, repeat=1)
        warmg = wall([TRK, "compare", "-t"], envg)
        colds = []
        for _ in range(3):
            shutil.rmtree(os.path.join(homeg, "index"))
            colds.append(wall([TRK, "compare", "-t"], envg, repeat=1))
        print(f"4. Guild scale (1,000 runs, 11 scalars x 10 steps): warm {warmg:.3f} s (bar < 0.3 s), "
              f"index deleted {statistics.median(colds):.3f} s (bar < 1.5 s); Guild AI 0.9: 1.82 s / 4.82 s")

        proj = os.path.join(tmp, "proj")
        os.makedirs(proj)
        with open(os.path.join(proj, "trk.yml"), "w") as f:
            f.write("tracked:\n  exec: python printer.py\nuntracked:\n  exec: python printer.py\n  output-scalars: no\n")
        with open(os.path.join(proj, "printer.py"), "w") as f:
            f.write("import time\nt = time.perf_counter()\n"
                    "for i in range(100000):\n    print(f'step: {i}')\n    print(f'loss={1.0 / (i + 1)}')\n"
                    "open('elapsed', 'w').write(str(time.perf_counter() - t))\n")
        envp = dict(os.environ, TRK_HOME=os.path.join(tmp, "hp"))

        def program_time(op):
            subprocess.run([TRK, "run", op, "-y"], env=envp, cwd=proj, stdout=subprocess.DEVNULL, check=True)
            run_dir = subprocess.run([TRK, "select", "--path"], env=envp, cwd=proj, capture_output=True,
                                     text=True, check=True).stdout.strip()
            return float(open(os.path.join(run_dir, "elapsed")).read())

        tracked, untracked, t_tr, t_un = [], [], [], []
        for _ in range(5):
            t = time.perf_counter()
            untracked.append(program_time("untracked"))
            t_un.append(time.perf_counter() - t)
            t = time.perf_counter()
            tracked.append(program_time("tracked"))
            t_tr.append(time.perf_counter() - t)
        tr, un = statistics.median(tracked), statistics.median(untracked)
        print(f"5. program printing 100,000 scalar lines (200,000 lines): its own time {tr:.3f} s tracked vs "
              f"{un:.3f} s untracked: {100 * (tr / un - 1):+.1f} % (bar +10 %); "
              f"whole trk run {statistics.median(t_tr):.2f} s vs {statistics.median(t_un):.2f} s")
        output_scalars_cpu()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
