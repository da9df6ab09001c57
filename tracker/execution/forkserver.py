"""A small process that starts staged runs by forking itself: one per Dask worker.

Forking the Dask worker for every trial costs about 10 ms on these VMs (a
60 MB process's page tables, and copy-on-write faults in the worker's busy
event loop afterwards); forking a process that holds nothing but trk's
imports costs under 2. `ForkServer` starts `python -m
tracker.execution.forkserver` once per worker (an argv list, no shell) and
asks it, a line of JSON per run, to start staged runs; the server hands each
to an idle supervisor it forked earlier, or forks one (see `serve`), and
answers with the exit code and what trk said on stderr. The server exits
when its worker goes (its standard input closes); runs it started finish on
their own, and their supervisors exit then.
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

RUNS_PER_SUPERVISOR = 100  # then it exits and the next run gets a new one: what runs leave in it stays bounded


class _Supervisor:
    """The server's end of one supervisor process: its pid, the pipe it reads
    requests from and the one it answers on, and the request it is running."""

    def __init__(self, pid: int, requests: int, replies: int):
        self.pid, self.requests, self.replies = pid, requests, replies
        self.request: dict[str, Any] | None = None  # the worker's request while it runs one
        self.buffered = b""


def serve() -> None:
    """Read requests from stdin, hand each to an idle supervisor (forking one
    when none is idle), and answer on stdout as each run ends.

    A supervisor is a child of this server that starts runs one after
    another, each as `trk run --start RUN` would (holding the run's lock; its
    pid is the run's, so `trk stop` stops it and never the worker). Forking
    one for every run cost each trial about 3 ms of CPU (the fork, its exit,
    and the pages both processes copy on write after it); a supervisor that
    stays has copied them once.
    """
    from .dask_submit import _preload

    _preload()
    requests = sys.stdin.buffer
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDWR), 1)  # (nothing a child prints may reach the replies)
    supervisors: dict[int, _Supervisor] = {}  # by the fd it answers on
    idle: list[_Supervisor] = []
    buffered = b""
    while True:
        ready, _, _ = select.select([requests.fileno(), *supervisors], [], [])
        for fd in ready:
            if fd == requests.fileno():
                data = os.read(fd, 65536)
                if not data:
                    return  # the worker is gone; busy supervisors finish their runs, then see it
                requested, buffered = _messages(buffered, data)
                for request in requested:
                    _hand_over(request, supervisors, idle, out)
            else:
                _answered(supervisors[fd], supervisors, idle, out)


def _messages(buffered: bytes, data: bytes) -> tuple[list[Any], bytes]:
    """The JSON lines complete in `buffered` + `data`, and the rest (a line to come)."""
    *lines, rest = (buffered + data).split(b"\n")
    return [json.loads(line) for line in lines], rest


def _hand_over(request: dict[str, Any], supervisors: dict[int, _Supervisor], idle: list[_Supervisor],
               out: Any) -> None:
    """Give `request` to an idle supervisor, or to a new one."""
    line = json.dumps({"run": request["run"], "home": request["home"]}).encode() + b"\n"
    while idle:
        sup = idle.pop()
        try:
            os.write(sup.requests, line)
        except OSError:  # it died idle (its end of the pipe is seen in the loop)
            continue
        sup.request = request
        return
    sup = _fork_supervisor(supervisors, out)
    supervisors[sup.replies] = sup
    sup.request = request
    os.write(sup.requests, line)


def _fork_supervisor(supervisors: dict[int, _Supervisor], out: Any) -> _Supervisor:
    from .dask_submit import be_supervisor_of_runs

    requests_read, requests_write = os.pipe()
    replies_read, replies_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the supervisor: never returns into the server's loop
        # Only the server holds its ends (and the worker's): each side must see the other end when it dies.
        others = [fd for sup in supervisors.values() for fd in (sup.requests, sup.replies)]
        be_supervisor_of_runs(requests_read, replies_write,
                              (requests_write, replies_read, out.fileno(), *others), RUNS_PER_SUPERVISOR)
    os.close(requests_read)
    os.close(replies_write)
    return _Supervisor(pid, requests_write, replies_read)


def _answered(sup: _Supervisor, supervisors: dict[int, _Supervisor], idle: list[_Supervisor], out: Any) -> None:
    """Read what supervisor `sup` says: the end of its run (answer the worker),
    or nothing more (it exited: answer for the run it was on, if any)."""
    chunk = os.read(sup.replies, 65536)
    if chunk:
        replies, sup.buffered = _messages(sup.buffered, chunk)
        for reply in replies:
            _reply(out, sup.request["id"], reply["exit_code"], reply["stderr"])
            sup.request = None
            if reply.get("more"):
                idle.append(sup)
        return
    del supervisors[sup.replies]
    if sup in idle:
        idle.remove(sup)
    os.close(sup.replies)
    os.close(sup.requests)
    _, status = os.waitpid(sup.pid, 0)
    request = sup.request
    if request is None:
        return
    if not request.get("again") and _unclaimed(request["run"], request["home"]):
        # It died before it took the run (killed idle, as the run was handed
        # to it): the run is another supervisor's to start, once.
        _hand_over({**request, "again": True}, supervisors, idle, out)
        return
    # It died running the run: the run's own state says how that ended.
    _reply(out, request["id"], os.waitstatus_to_exitcode(status), "the run's supervisor died")


def _unclaimed(run_id: str, home: str) -> bool:
    """Whether staged run `run_id` is still staged, and nobody holds it."""
    from ..store import RunStore

    try:
        run = RunStore(home).on_disk(run_id)
        return run is not None and run.status == "staged"
    except Exception:  # noqa: BLE001  (whatever is wrong with it, a supervisor reports it on the run)
        return False


def _reply(out: Any, request: Any, exit_code: int, stderr: str) -> None:
    out.write(json.dumps({"id": request, "exit_code": exit_code, "stderr": stderr[-STDERR_KEPT:]}).encode() + b"\n")
    out.flush()


if __name__ == "__main__":
    serve()
