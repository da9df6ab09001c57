"""The lock a run's supervisor holds while the run runs, and asking whether it is held.

An flock on the run's `.trk/lock`: the kernel lets go of it when its holder
dies, however it dies, so a held lock means a live supervisor (`Run.status`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time


def is_locked(path: str) -> bool:
    """True when another open file description holds an flock on `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class RunLock:
    """The lock a supervising process holds while its run is running."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        """Block until the lock is held."""
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False (nothing held) when another process does.

        A listing asks whether a run is running by taking its lock for an
        instant (`is_locked`): a lock found held is asked again a few times
        over half a second before another process is said to hold it (a
        listing on a busy machine can be descheduled while it holds it).
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        pauses = [0.001, 0.004, 0.015, 0.03, 0.1, 0.35]
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                busy = e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
                if not busy or not pauses:
                    os.close(fd)
                    if not busy:
                        raise
                    return False
                time.sleep(pauses.pop(0))
            else:
                self.fd = fd
                return True

    def release(self) -> None:
        """Release the lock (a no-op when not held)."""
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
