"""A small process that starts staged runs by forking itself: one per Dask worker.

Forking the Dask worker for every trial costs about 10 ms on these VMs (a
60 MB process's page tables, and copy-on-write faults in the worker's busy
event loop afterwards); forking a process that holds nothing but trk's
imports costs under 2. `ForkServer` starts `python -m
tracker.execution.forkserver` once per worker (an argv list, no shell) and
asks it, a line of JSON per run, to start staged runs; the server forks a
supervisor for each (its pid is the run's, as a local run's is) and answers
with the exit code and the end of its stderr. The server exits when its
worker goes (its standard input closes); runs it started finish on their own.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STDERR_KEPT = 2000  # characters of a run's stderr sent back (what the submitter says of a failure)
WAIT_POLL = 0.05  # seconds between looks for children that ended without closing their stderr


class ForkServer:
    """The client end, in the Dask worker: `start(run_id, home)` -> (exit code, stderr)."""

    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "tracker.execution.forkserver"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._lock = threading.Lock()
        self._waiting: dict[int, list[Any]] = {}  # request -> [event, reply]
        self._next = 0
        self.alive = True
        threading.Thread(target=self._read, name="trk-forkserver", daemon=True).start()

    def start(self, run_id: str, home: str) -> tuple[int, str] | None:
        """Start staged run `run_id` and wait for it; None when the server was gone
        before it was asked (start the run another way)."""
        done = threading.Event()
        with self._lock:
            if not self.alive:
                return None
            self._next += 1
            request = self._next
            self._waiting[request] = [done, None]
            try:
                self.proc.stdin.write(json.dumps({"id": request, "run": run_id, "home": home}).encode() + b"\n")
                self.proc.stdin.flush()
            except (OSError, ValueError):
                self._gone()
                return None
        done.wait()
        reply = self._waiting.pop(request)[1]
        if reply is None:  # it died with the run started, or not: the run's own state says
            return 1, "trk's fork server on this worker died"
        return reply["exit_code"], reply["stderr"]

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                reply = json.loads(line)
                waiting = self._waiting[reply["id"]]
            except (ValueError, KeyError, TypeError):
                continue
            waiting[1] = reply
            waiting[0].set()
        with self._lock:
            self._gone()

    def _gone(self) -> None:
        """The server died: its waiting callers get None (under the lock)."""
        self.alive = False
        for waiting in self._waiting.values():
            waiting[0].set()

    def close(self) -> None:
        """Stop the server (runs it started go on)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait()


_server: ForkServer | None = None
_server_lock = threading.Lock()


def start_run(run_id: str, home: str, env: dict[str, str]) -> tuple[int, str] | None:
    """Start a staged run through this process's fork server (started on first
    use, and again after it died); None when no server can run here."""
    global _server
    for _ in range(2):  # (a server that died since it was last used is found out by asking it)
        with _server_lock:
            if _server is None or not _server.alive:
                try:
                    _server = ForkServer(env)
                except OSError:
                    return None
            server = _server
        started = server.start(run_id, home)
        if started is not None:
            return started
    return None


# -- the server ---------------------------------------------------------------

def serve() -> None:
    """Read requests from stdin, fork a supervisor for each, answer on stdout as each ends."""
    from .dask_submit import _preload

    _preload()
    requests = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDWR), 1)  # (nothing a child prints may reach the replies)
    children: dict[int, list[Any]] = {}  # stderr fd -> [request, pid, chunks, status]
    buffered = b""
    while True:
        ready, _, _ = select.select([requests.fileno(), *children], [], [], WAIT_POLL if children else None)
        for fd in ready:
            if fd == requests.fileno():
                data = os.read(fd, 65536)
                if not data:
                    return  # the worker is gone
                buffered += data
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    _fork(json.loads(line), children, out)
            else:
                chunk = os.read(fd, 65536)
                if chunk:
                    children[fd][2].append(chunk)
                else:
                    _reap(fd, children, out, block=True)
        for fd in list(children):
            _reap(fd, children, out, block=False)


def _fork(request: dict[str, Any], children: dict[int, list[Any]], out: Any) -> None:
    from .dask_submit import be_supervisor, preload_project

    project = preload_project(request["run"], request["home"])  # (the child would load it cold)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the supervisor: never returns into the server's loop
        # Only the server holds its ends: the worker must see the replies end when it dies.
        be_supervisor(request["run"], request["home"], write_end, (read_end, out.fileno(), *children), project)
    os.close(write_end)
    children[read_end] = [request["id"], pid, [], None]


def _reap(fd: int, children: dict[int, list[Any]], out: Any, block: bool) -> None:
    """Answer for the child reading from `fd` once it has exited (and its stderr closed or drained)."""
    child = children[fd]
    if child[3] is None:
        pid, status = os.waitpid(child[1], 0 if block else os.WNOHANG)
        if pid == 0:
            return
        child[3] = os.waitstatus_to_exitcode(status)
    if not block:  # exited, stderr still open (a process it left holds it): take what is there
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            child[2].append(chunk)
    os.close(fd)
    del children[fd]
    text = b"".join(child[2]).decode(errors="replace")[-STDERR_KEPT:]
    out.write(json.dumps({"id": child[0], "exit_code": child[3], "stderr": text}).encode() + b"\n")
    out.flush()


if __name__ == "__main__":
    serve()
