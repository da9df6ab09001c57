"""Running staged runs on a Dask cluster: trk stages, Dask schedules, workers start.

`trk run ... --dask ADDRESS` makes each run it would start (a single run, a
pipeline's steps, a batch's trials) as a staged run, then submits one Dask
task per run that executes `trk run --start RUN` on a worker, against the
same `$TRK_HOME` on a shared file system. trk does no scheduling of its own;
the run's lock (`launch.claim_staged`) keeps a task Dask runs twice (after
a worker died) from starting a run twice. `distributed` is imported only here.
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import threading
import time
from typing import Any

from ..errors import TrkError
from ..project.loader import OpDef, Project
from ..store import Run, RunLock, RunStore, now_us, this_host
from .lifecycle import LaunchResult, RunOptions

log = logging.getLogger("trk")

SCHEDULER_ENV = "TRK_DASK_SCHEDULER"
IN_FLIGHT = 256  # trials or DAG steps submitted at once: Dask queues them, the cluster decides
STAGE_AT_ONCE = 4  # trials staged at once (file writes: a few at a time hide the file system's latency)
POLL_SECONDS = 0.25
CONNECT_SECONDS = 10


def start_staged(run_id: str, home: str) -> dict[str, Any]:
    """The Dask task: start staged run `run_id` (`trk run --start RUN`) on this worker.

    The run gets a supervisor process, as a local run does (its pid is the
    run's, so `trk stop` stops it and never the worker): where the system
    has fork, a supervisor of the worker's fork server (`forkserver`), or
    one the worker forks when that server cannot start, so it starts with
    trk already imported (a new Python would spend most of a short trial
    starting up); else a new `python -m tracker` (argv list, no shell).
    `$TRK_DASK_SCHEDULER` is dropped from its environment, or it would
    submit the run to Dask again.
    """
    worker = _worker_address()
    try:
        RunStore(home).get(run_id).write_attr("dask_worker", worker)
    except OSError:
        pass  # no such run here (another $TRK_HOME): starting it says so
    if hasattr(os, "fork"):
        from .forkserver import start_run

        started = start_run(run_id, home, {k: v for k, v in os.environ.items() if k != SCHEDULER_ENV})
        code, err = started if started is not None else _forked(run_id, home)
    else:
        code, err = _spawned(["run", "--start", run_id, "-q"], home)
    return {"exit_code": code, "stderr": err[-2000:], "worker": worker}


def _worker_address() -> str:
    """This Dask worker's address (the host's name outside a worker)."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return this_host()


def _spawned(argv: list[str], home: str) -> tuple[int, str]:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != SCHEDULER_ENV}
    env["TRK_HOME"] = home
    p = subprocess.run([sys.executable, "-m", "tracker", *argv], env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    return p.returncode, p.stderr  # its exit status is reported, and the run says how it ended


def _preload() -> None:
    """Import what starting a run needs, once per worker, before forking: the
    children inherit it instead of each importing it again."""
    import importlib

    for name in ("logging", "tracker.execution.launch", "tracker.execution.process", "tracker.metrics.output",
                 "tracker.project.resolve", "tracker.project.sourcecode", "tracker.store.select",
                 "tracker.project.formats", "tracker.project.formats.modelcache", "zlib"):
        importlib.import_module(name)


def _start_here(run_id: str) -> int:
    """Start staged run `run_id` in this process, as `trk run --start RUN -q`
    does; its exit code (a failure trk knows about is said on stderr)."""
    from ..errors import TrkError
    from .launch import RunOptions, relaunch
    from .process import Sinks, exit_code_for
    from .stop import stop_on_signals

    from ..store.select import select_from

    store = RunStore()
    try:
        run = store.on_disk(run_id) or select_from(store, None, [run_id])[0]  # (the latter says it is missing)
        with stop_on_signals():  # a stop between a pipeline's steps ends it, not this process
            result = relaunch(store, run, RunOptions(), Sinks(), staged_only=True)
    except TrkError as e:
        print(f"trk: {e.message}", file=sys.stderr, flush=True)
        return e.exit_code
    if result.error:
        print(f"trk: {result.error}", file=sys.stderr, flush=True)
    return exit_code_for(result.exit_code)


def _as_supervisor(stderr_fd: int | None, close: tuple[int, ...]) -> None:
    """In a child just forked: close `close`, put stdin and stdout on
    /dev/null and stderr on `stderr_fd` (None: /dev/null too), and Python's
    streams on them."""
    for fd in close:
        os.close(fd)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if stderr_fd is not None else (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
    if stderr_fd is not None:
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
    os.environ.pop(SCHEDULER_ENV, None)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115  (the parent's streams are not ours)
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def _start_as_supervisor(run_id: str, home: str) -> int:
    """Start staged run `run_id` of `$TRK_HOME` `home` here, a supervisor; its exit code."""
    os.environ["TRK_HOME"] = home
    try:
        return _start_here(run_id)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def be_supervisor(run_id: str, home: str, stderr_fd: int, close: tuple[int, ...] = ()) -> None:
    """In a child just forked: close `close`, put stdin and stdout on
    /dev/null and stderr on `stderr_fd`, start staged run `run_id`, and exit
    with its exit code (never returns: the parent's code must not run on here)."""
    code = 1
    try:
        _as_supervisor(stderr_fd, close)
        code = _start_as_supervisor(run_id, home)
    finally:
        os._exit(code)


def be_supervisor_of_runs(requests: int, replies: int, close: tuple[int, ...], runs: int) -> None:
    """In a child a fork server just forked: start the staged runs asked for on
    `requests` (a line of JSON each: run, home) one after another, answering
    each on `replies` (exit_code, stderr: what trk said on stderr meanwhile,
    more: whether it takes another), `runs` of them at most; then exit (never
    returns). Between runs it holds no run's lock, and a signal ends it."""
    import io
    import json

    code = 1
    try:
        _as_supervisor(None, close)
        quiet = sys.stderr
        lines = os.fdopen(requests, "rb")
        for n in range(runs):
            line = lines.readline()
            if not line:
                break  # the server is gone
            request = json.loads(line)
            said = io.StringIO()
            sys.stderr = said
            try:
                exit_code = _start_as_supervisor(request["run"], request["home"])
            except BaseException as e:  # noqa: BLE001  (whatever one run raises, the next may start)
                exit_code = 130 if isinstance(e, KeyboardInterrupt) else 1
                said.write(f"trk: {type(e).__name__}: {e}\n")
            finally:
                sys.stderr = quiet
            reply = {"exit_code": exit_code, "stderr": said.getvalue(), "more": n + 1 < runs}  # (the server cuts it)
            os.write(replies, json.dumps(reply).encode() + b"\n")
        code = 0
    finally:
        os._exit(code)


def _forked(run_id: str, home: str) -> tuple[int, str]:
    """Start staged run `run_id` in a child forked from this (worker) process:
    its exit code and what it wrote to stderr."""
    _preload()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only this thread exists here; it never returns into the worker
        be_supervisor(run_id, home, write_end, (read_end,))
    os.close(write_end)
    chunks = []
    with open(read_end, "rb") as f:
        while chunk := f.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


class DaskSubmitter:
    """Submits staged runs to one Dask scheduler and waits for them; `launch` is
    what a batch or a pipeline calls instead of running a trial or step here."""

    def __init__(self, store: RunStore, address: str, retries: int = 0):
        if retries < 0:
            raise TrkError(f"--retries must be at least 0, not {retries}", exit_code=2)
        try:
            Client = _client_class()
        except ImportError:
            raise TrkError("--dask needs Dask's 'distributed' package",
                           "Install it with 'pip install trk[dask]'.") from None
        self.store, self.address, self.retries = store, address, retries
        try:
            _probe(address)
            self.client = Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise TrkError(f"cannot reach the Dask scheduler at {address}: {e}",
                           f"Start one with 'dask scheduler', or check --dask / ${SCHEDULER_ENV}.") from None
        self._staging = threading.Semaphore(STAGE_AT_ONCE)

    def close(self) -> None:
        """Disconnect from the scheduler."""
        self.client.close()

    def launch(self, store: RunStore, project: Project, op: OpDef, flags: dict[str, Any],
               opts: RunOptions | None = None, sinks: Any = None, extra: dict[str, Any] | None = None) -> LaunchResult:
        """Stage `op` as a run (a stepped op: its parent, run whole on the worker), submit it, wait for it."""
        from .launch import launch

        staged_opts = copy.copy(opts or RunOptions())  # the caller's options, staging instead of running
        staged_opts.stage = True
        with self._staging:
            result = launch(store, project, op, flags, staged_opts, sinks, extra)
        if result.reused or result.run is None:
            return result
        return self.run_staged(result.run)

    def run_staged(self, run: Run) -> LaunchResult:
        """Submit staged `run` and wait; re-stage and submit it again after a
        failure, `retries` times at most. The exit code is the run's."""
        attempt = 0
        while True:
            why, fresh = self._submit_and_wait(run, attempt)
            if why == "stopped":
                return LaunchResult(fresh, -2, error=f"stopped waiting for run {run.short_id}")
            status = fresh.status
            if status == "completed":
                return LaunchResult(fresh, 0)
            why = why or fresh.get("error") or f"it ended {status}"
            if attempt >= self.retries:
                code = fresh.get("exit_status")
                code = code if isinstance(code, int) and code > 0 else 1  # a dead worker's run: a failed trial
                return LaunchResult(fresh, code, error=f"run {run.short_id} {status} on Dask: {why}")
            attempt += 1
            log.info(f"retrying run {run.short_id} ({status}: {why}), attempt {attempt + 1} of {self.retries + 1}")
            restage(fresh, f"trk: retry {attempt} of {self.retries} after the run ended {status}: {why}")

    def _submit_and_wait(self, run: Run, attempt: int) -> tuple[str | None, Run]:
        """Run one attempt of `run` on the cluster. Returns None, "stopped" when
        Ctrl-C came, or what went wrong that the run itself does not say; and
        the run as read after it."""
        from distributed import TimeoutError as DaskTimeout

        from .stop import stop_on_signals

        future = self.client.submit(start_staged, run.id, self.store.home, key=f"trk-start-{run.id}-{attempt}",
                                    pure=False)
        done = threading.Event()
        # Told when it ends, rather than asking: a hundred waiting trials must
        # not keep the client's event loop busy answering "not yet".
        future.add_done_callback(lambda _: done.set())
        with stop_on_signals() as interruption:  # in a worker thread: the main thread's Ctrl-C
            try:
                while not done.wait(POLL_SECONDS):
                    if interruption.stopping:
                        break
            except KeyboardInterrupt:
                pass
            if not done.is_set():
                future.cancel()  # still queued: it stays staged (`trk queue run` can start it)
                return "stopped", self._fresh(run)
            fresh = self._fresh(run)
            if "exit_status" in fresh.attrs and future.status == "finished":
                # Its supervisor recorded how it ended (and the worker, where):
                # nothing to fetch from the worker.
                return None, fresh
            try:
                outcome = future.result(timeout=CONNECT_SECONDS)
            except (TimeoutError, DaskTimeout) as e:
                outcome = {"exit_code": None, "stderr": f"no result from Dask: {e}", "worker": None}
            except Exception as e:  # noqa: BLE001  (what the task raised: KilledWorker when its workers died)
                outcome = {"exit_code": None, "stderr": f"{type(e).__name__}: {e}", "worker": None}
        fresh = self._fresh(run)
        while fresh.refresh_status() == "running":
            # Started by an earlier try of this task whose worker died while trk
            # itself lives on: the run is still its supervisor's; wait for it.
            time.sleep(POLL_SECONDS)
            fresh = self._fresh(run)
        return _settle(fresh, outcome), fresh  # (what _settle records, it writes through `fresh`)

    def _fresh(self, run: Run) -> Run:
        """`run` read again from its files: another process (the worker's) changed
        it, and this long-lived process's run index synced once, at its start."""
        return Run(run.id, run.dir, on_write=self.store.touched)


def _client_class() -> type:
    """`distributed.Client`, imported without numpy when this process has none yet.

    `distributed` imports numpy as it starts only to allocate the buffers it
    receives into, and uses `bytearray` where numpy is missing
    (`distributed.protocol.utils.host_array`); a submitter receives no
    arrays. Kept out, numpy costs `trk run --dask` neither its import
    (about 70 ms before the first trial is submitted) nor its thread pool: a
    100-trial batch used 0.15 s less CPU. numpy imports as usual afterwards
    (another thread importing it meanwhile would fail: `trk run` has none then).
    """
    if "numpy" in sys.modules:
        from distributed import Client

        return Client
    sys.modules["numpy"] = None  # (meanwhile `import numpy` raises ImportError)
    try:
        from distributed import Client

        return Client
    except ImportError:
        pass  # a `distributed` that needs numpy after all: import it with numpy, below
    finally:
        del sys.modules["numpy"]
    from distributed import Client

    return Client


def _probe(address: str) -> None:
    """Connect to a `tcp://HOST:PORT` scheduler once: a refused connection fails
    at once (Dask's client would retry until its timeout)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else "tcp://" + address)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        return  # other transports (tls://, ucx://...): the client reports their errors
    socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_SECONDS).close()


def _settle(run: Run, outcome: dict[str, Any]) -> str | None:
    """Record an outcome the run could not write itself: its supervisor died
    with its worker (terminated), or trk on the worker never started it."""
    status = run.status
    err = (outcome.get("stderr") or "").strip().splitlines()
    last = err[-1] if err else f"exit status {outcome.get('exit_code')}"
    if status not in ("terminated", "staged") or "exit_status" in run.attrs:
        return None
    held = RunLock(run.lock_path)
    if not held.try_acquire():
        return None  # another process took it meanwhile: it writes the outcome
    try:
        if status == "staged":
            why = f"trk on Dask worker {outcome.get('worker') or '?'} could not start it: {last}"
            run.fail(why + " (is $TRK_HOME the same path on the workers' shared file system?)")
            return why
        why = "its supervisor died (Dask worker lost)"
        run.write_attr("error", why)
        run.terminate()
        return why
    finally:
        held.release()


def restage(run: Run, note: str) -> None:
    """Make a finished run staged again, in its own directory, for another attempt."""
    held = RunLock(run.lock_path)
    if not held.try_acquire():
        raise TrkError(f"run {run.short_id} is running: cannot stage it again")
    try:
        run.clear_outcome()
        run.del_attr("started")
        run.write_attr("attempt", int(run.get("attempt") or 1) + 1)
        with open(run.output_path, "ab") as f:  # the output of every attempt stays, in order
            f.write(note.encode() + b"\n")
        run.write_attr("staged", now_us())
    finally:
        held.release()


def run_on_dask(store: RunStore, project: Project, op: OpDef, flags: dict[str, Any], opts: RunOptions,
                sinks: Any, extra: dict[str, Any], submitter: DaskSubmitter) -> LaunchResult:
    """`trk run OP --dask`: a pipeline's parent runs here and submits each
    step when its upstream steps are done; any other run is submitted whole."""
    if op.is_stepped:
        from .pipeline import run_pipeline

        if opts.max_parallel is None:
            opts.max_parallel = IN_FLIGHT  # the cluster decides how many run at once
        return run_pipeline(store, project, op, flags, opts, sinks, extra, submitter.launch)
    return submitter.launch(store, project, op, flags, opts, sinks, extra)
