"""The run store: runs on disk, their attrs index, and selecting runs.

Owns everything under `$TRK_HOME`. May import `tracker.errors` and
`tracker.fsutil` only; everything else in trk builds on it.
"""

from .attrs import BadAttrs
from .lock import RunLock
from .run import Run, default_home, now_us, this_host
from .runstore import MoveError, RunStore

__all__ = ["BadAttrs", "MoveError", "Run", "RunLock", "RunStore", "default_home", "now_us", "this_host"]
