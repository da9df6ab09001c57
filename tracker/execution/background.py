"""`trk run --background`: the same `trk run` in a detached child process.

The child is trk itself, started again with the same arguments (an argv
list, never a shell) in a session of its own, stdin and stdout on
/dev/null, so it outlives the terminal and the `trk` that started it. It
runs the operation as a foreground `trk run -y -q` would: the program's
output goes to the run's output file. As soon as the child has made its run
it writes the run's id to a pipe the parent reads (`report_run`), and the
parent returns; when the child ends before making a run (a bad flag, an
unmet dependency), the parent reports the child's error instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from ..errors import TrkError

ENV_FD = "TRK_BACKGROUND_FD"


@dataclass
class Started:
    """What the background child reported: its run (or the run `--needed` reused) and its pid."""

    run_id: str
    op: str
    pid: int
    reused: bool = False


def in_background_child() -> bool:
    """Whether this trk is the detached child of `trk run --background`."""
    return ENV_FD in os.environ


def start_background(args: list[str], cwd: str | None = None) -> Started:
    """Run `trk ARGS` detached; return once it has made its run.

    TrkError (with the child's own message and exit code) when the child
    ended without making a run.
    """
    read_fd, write_fd = os.pipe()
    # The child's stderr until it has made its run: a file no one else can
    # open (unlinked at once), read back only if the child fails first.
    err = tempfile.TemporaryFile(prefix="trk-bg-")
    env = dict(os.environ, **{ENV_FD: str(write_fd)})
    try:
        proc = subprocess.Popen([sys.executable, "-m", "tracker", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, pass_fds=(write_fd,),
                                start_new_session=True)
    except OSError as e:
        os.close(read_fd)
        err.close()
        raise TrkError(f"cannot start trk in the background: {e.strerror or e}") from None
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        line = pipe.readline().decode("utf-8", "replace").rstrip("\n").split("\t")
    if len(line) == 3 and line[0] in ("run", "reused"):
        err.close()
        return Started(line[1], line[2], proc.pid, reused=line[0] == "reused")
    code = proc.wait()
    err.seek(0)
    text = err.read().decode("utf-8", "replace").strip()
    err.close()
    prefix = "trk: "
    message = text[len(prefix):] if text.startswith(prefix) else text
    raise TrkError(message or f"trk ended without starting a run (exit status {code})", exit_code=code or 1)


def report_run(run_id: str, op: str, reused: bool = False) -> None:
    """In the background child: tell the parent which run this is, then let
    go of the parent's stderr (later messages are the run's to record)."""
    fd = os.environ.pop(ENV_FD, None)  # the program must not inherit it
    if fd is None:
        return
    try:
        os.write(int(fd), f"{'reused' if reused else 'run'}\t{run_id}\t{op}\n".encode())
        os.close(int(fd))
    except (OSError, ValueError):
        pass  # the parent is gone: the run goes on
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    os.close(devnull)
