"""Stopping runs: from the supervising process, and from another one.

Each program runs in a process group (a session) of its own, so a stop
reaches everything it started, and the terminal's Ctrl-C reaches trk
alone. trk then stops the program: SIGTERM to its group, and SIGKILL when
it has not ended `GRACE_SECONDS` later or when a second signal arrives.

- In the supervising process, `stop_on_signals()` turns SIGINT, SIGTERM and
  SIGHUP into that stop, for every program the process runs (all steps of a
  pipeline), and the runs end recorded as `terminated`.
- From another process, `stop_runs` (`trk stop`) sends SIGTERM to a run's
  supervising trk process, which stops its programs as above and records
  the outcome; programs still alive after the timeout get SIGKILL.

Programs get SIGTERM, never SIGINT: SIGINT makes a Python program print a
KeyboardInterrupt traceback into the run's output, and one signal is all a
program needs to handle to stop cleanly however it is stopped.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Iterator

from ..records import record
from ..store import Run, this_host

GRACE_SECONDS = 10.0  # how long a program has after SIGTERM before SIGKILL
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def signal_group(pid: int, sig: int) -> None:
    """Send `sig` to the process group a program leads (the program alone
    where there are no process groups); a group already gone is fine."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Interruption:
    """The stop signal the supervising process received, if any."""

    def __init__(self):
        self.signum: int | None = None
        self.since = 0.0  # time.monotonic() of the first signal

    @property
    def stopping(self) -> bool:
        """True once a stop signal came."""
        return self.signum is not None

    def overdue(self) -> bool:
        """True once the programs have had their grace period."""
        return self.stopping and time.monotonic() - self.since > GRACE_SECONDS


class Program:
    """One program being supervised: its pid once it is started."""

    pid: int | None = None


class _Handler:
    """Process-wide: signals can only be handled in the main thread, while
    the programs may be supervised from any thread (DAG steps)."""

    def __init__(self):
        self.depth = 0
        self.old: dict[int, object] = {}
        self.current: Interruption | None = None
        self.programs: set[Program] = set()  # set.add/discard are atomic: no lock the handler could block on

    def __call__(self, signum, frame) -> None:
        cur = self.current
        first = not cur.stopping
        if first:
            cur.signum, cur.since = signum, time.monotonic()
        programs = list(self.programs)
        if not programs:
            # trk is between programs (making a run, between steps): stop that work.
            raise KeyboardInterrupt
        for program in programs:
            if program.pid is not None:
                signal_group(program.pid, signal.SIGTERM if first else signal.SIGKILL)


_handler = _Handler()


@contextmanager
def stop_on_signals() -> Iterator[Interruption]:
    """While active, SIGINT, SIGTERM and SIGHUP stop the programs this process
    supervises (their runs end `terminated`) instead of killing trk.

    Re-entrant; yields the Interruption that says which signal came. Outside
    the main thread it only reports the main thread's interruption, if any.
    """
    if threading.current_thread() is not threading.main_thread():
        yield _handler.current or Interruption()
        return
    if _handler.depth == 0:
        _handler.current = Interruption()
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) != signal.SIG_IGN:  # e.g. SIGHUP under nohup: keep ignoring it
                _handler.old[sig] = signal.signal(sig, _handler)
    _handler.depth += 1
    current = _handler.current
    try:
        yield current
    finally:
        _handler.depth -= 1
        if _handler.depth == 0:
            for sig, old in _handler.old.items():
                signal.signal(sig, old if old is not None else signal.SIG_DFL)  # None: set outside Python
            _handler.old.clear()
            _handler.current = None


@contextmanager
def supervising() -> Iterator[Program]:
    """Register a program (set its pid once started) for stop signals."""
    program = Program()
    _handler.programs.add(program)
    try:
        yield program
    finally:
        _handler.programs.discard(program)


# -- stopping runs from another process (`trk stop`) -------------------------

KILL_WAIT_SECONDS = 5.0  # after SIGKILL, how long the supervisor has to record the run
POLL_SECONDS = 0.05


@record
class StopOutcome:
    """How stopping one run went: its status afterwards and whether SIGKILL was needed."""

    run: Run
    status: str
    was_running: bool
    killed: bool = False
    elsewhere: str | None = None  # the host it runs on, when not this one: not signalled from here


def stop_runs(runs: list[Run], timeout: float = GRACE_SECONDS) -> list[StopOutcome]:
    """Stop running runs (a pipeline with its running steps); wait until
    each is recorded, sending SIGKILL to programs left after `timeout` s.

    A run that is not running is left alone (its outcome says so).
    """
    outcomes = [StopOutcome(run, _fresh(run).status, False) for run in runs]
    for o in outcomes:
        if o.status == "running" and not _here(o.run) and _lock_holder(o.run.lock_path) is None:
            # Supervised on another machine (a Dask worker on a shared $TRK_HOME):
            # its pids are that machine's, and here they could be anyone's.
            o.elsewhere = str(o.run.get("host"))
    targets = [o for o in outcomes if o.status == "running" and o.elsewhere is None]
    # Taken while the runs are running, so these pids are theirs.
    groups = {o.run.id: set(_program_pids(o.run)) for o in targets}
    asked: set[int] = set()
    for o in targets:
        o.was_running = True
        pid = supervisor_pid(o.run)
        if pid is None:  # no supervisor to ask: stop the programs directly
            _signal_all(groups[o.run.id], signal.SIGTERM)
        elif pid not in asked:
            asked.add(pid)
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    pending = _wait(targets, groups, timeout)
    for o in pending:
        o.killed = True
        _signal_all(groups[o.run.id] | set(_program_pids(o.run)), signal.SIGKILL)
    _wait(pending, groups, KILL_WAIT_SECONDS)
    return outcomes


def _wait(pending: list[StopOutcome], groups: dict[str, set[int]], timeout: float) -> list[StopOutcome]:
    """Wait up to `timeout` s for runs to end and their programs to be gone;
    return those not done."""
    deadline = time.monotonic() + timeout
    orphans_told: set[int] = set()
    while True:
        left = []
        for o in pending:
            o.status = _fresh(o.run).status
            alive = {pid for pid in groups[o.run.id] if _group_exists(pid)}
            if o.status != "running" and alive - orphans_told:
                # Its supervisor ended without stopping them (it died, or could
                # not handle the signal): they are ours to stop.
                _signal_all(alive - orphans_told, signal.SIGTERM)
                orphans_told |= alive
            if o.status == "running" or alive:
                left.append(o)
        if not left or time.monotonic() >= deadline:
            return left
        pending = left
        time.sleep(POLL_SECONDS)


def _signal_all(pids, sig: int) -> None:
    for pid in pids:
        signal_group(pid, sig)


def _group_exists(pgid: int) -> bool:
    if not hasattr(os, "killpg"):
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fresh(run: Run) -> Run:
    """The run as it is on disk now (a Run caches its attrs)."""
    return Run(run.id, run.dir)


def _running_tree(run: Run) -> list[Run]:
    """The run and its running descendants (steps are linked from their parent's directory)."""
    found = [run]
    if "cmd" in run.attrs:  # an operation with a program has no steps
        return found
    try:
        names = os.listdir(run.dir)
    except OSError:
        return found
    for name in names:
        path = os.path.join(run.dir, name)
        if not os.path.islink(path):
            continue
        target = os.path.realpath(path)
        if not os.path.isdir(os.path.join(target, ".trk", "attrs")):
            continue
        child = Run(os.path.basename(target), target)
        if child.parent == run.id and child.status == "running":
            found += _running_tree(child)
    return found


def _here(run: Run) -> bool:
    """Whether `run` is (or was last) supervised on this machine (`host`; a
    run without one is taken to be)."""
    host = run.get("host")
    return host is None or host == this_host()


def _program_pids(run: Run) -> list[int]:
    """Process groups of the programs running for a run (and its steps) on this machine."""
    return [r.get("program_pid") for r in _running_tree(_fresh(run))
            if isinstance(r.get("program_pid"), int) and r.get("program_pid") > 1 and _here(r)]


def supervisor_pid(run: Run) -> int | None:
    """The pid of the trk process supervising a running run, or None.

    Where the system tells who holds the run's lock (Linux), that is the
    answer; else the `pid` attr most recently written in the run's tree
    (a restarted pipeline's own `pid` is its first supervisor's).
    """
    holder = _lock_holder(run.lock_path)
    if holder is not None:
        return holder
    tree = _running_tree(_fresh(run))
    pids = [(r.get("started") or 0, r.get("pid")) for r in tree if isinstance(r.get("pid"), int) and _here(r)]
    pid = max(pids)[1] if pids else None
    if pid is None or pid <= 1 or pid == os.getpid():
        return None
    return pid


def _lock_holder(path: str) -> int | None:
    """The pid holding the flock on `path`, from /proc/locks; None when unknown."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    # `1: FLOCK  ADVISORY  WRITE 11882 fe:00:2146310 0 EOF`; waiters have `->` after the number.
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5] == want and parts[4].isdigit():
            pid = int(parts[4])
            return pid if pid > 1 and pid != os.getpid() else None
    return None
