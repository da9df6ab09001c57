"""Moving runs safely: the move lock, a rename that never replaces, and
removing what killed processes left behind.

Used by `RunStore` only; the store decides where locks and runs live.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
import time

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from .lock import is_locked

# A hidden temp dir untouched this long belongs to a killed process.
LEFTOVER_AGE_S = 10 * 60


def clean_leftovers(base: str, suffix: str, min_age: float = LEFTOVER_AGE_S, stamp: str | None = None) -> bool:
    """Remove hidden `.*<suffix>` entries in `base` left by killed processes.

    Only entries unmodified for `min_age` seconds whose run lock nobody
    holds go: a live process is still making the others. With `stamp`, look
    at most once per `min_age` (listing 10,000 runs for each new run adds up).
    Returns whether it looked.
    """
    now = time.time()
    if stamp is not None:
        st = _lstat(stamp)
        if st is not None and 0 <= now - st.st_mtime < min_age:
            return False
        try:
            os.makedirs(os.path.dirname(stamp), exist_ok=True)
            os.close(os.open(stamp, os.O_WRONLY | os.O_CREAT, 0o644))
            os.utime(stamp)
        except OSError:
            pass
    try:
        names = [n for n in os.listdir(base) if n.startswith(".") and n.endswith(suffix)]
    except OSError:
        return True
    for name in names:
        path = os.path.join(base, name)
        # mtimes, not ctimes: making a run touches its dir and attrs dir.
        touched = [st.st_mtime for st in map(_lstat, (path, os.path.join(path, ".trk", "attrs"))) if st is not None]
        if not touched or now - max(touched) < min_age or is_locked(os.path.join(path, ".trk", "lock")):
            continue
        if os.path.islink(path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        else:
            remove_tree(path)
    return True


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


class MoveLock:
    """An flock on a file that exists only while held, so none pile up."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def acquire(self, timeout: float = 2.0) -> bool:
        """Take the lock, waiting up to `timeout` s; False if another process keeps it."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # A holder unlinks the file on release; a lock on an unlinked
                # file excludes nobody, so then lock the current file instead.
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    self.fd = fd
                    return True
            except (BlockingIOError, FileNotFoundError):
                pass
            os.close(fd)
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)

    def release(self) -> None:
        """Unlink the lock file, then release it (a no-op when not held)."""
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self.fd)
            self.fd = None


_renameat2: Any = None


def rename_noreplace(src: str, dst: str) -> None:
    """Rename `src` to `dst`; FileExistsError when `dst` exists, even as an
    empty directory (which a plain rename silently replaces)."""
    global _renameat2
    if _renameat2 is None:
        _renameat2 = _load_renameat2()
    if _renameat2:
        import ctypes

        if _renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), 1) == 0:  # AT_FDCWD, RENAME_NOREPLACE
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not: "unsupported here"
            raise OSError(err, os.strerror(err), src, None, dst)
    # Without renameat2, check then rename: callers hold the run's move lock,
    # so no trk process can create `dst` in between. A missing `src` is
    # reported first, as the kernel does.
    if not os.path.lexists(src):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), src)
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


def _load_renameat2() -> Any:
    # ctypes is imported only when a run moves: it costs start-up time.
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def remove_tree(path: str) -> None:
    """Remove a directory tree, ignoring what is already gone."""
    import shutil  # here, not at the top: shutil imports lzma, bz2... that `trk run` never needs

    shutil.rmtree(path, ignore_errors=True)
