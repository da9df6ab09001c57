"""The run store: runs on disk, their attrs index, and selecting runs.

Owns everything under `$TRK_HOME`. May import `tracker.errors` and
`tracker.fsutil` only; everything else in trk builds on it.
"""

from .run import Run, RunLock, default_home, now_us
from .runstore import RunStore

__all__ = ["Run", "RunLock", "RunStore", "default_home", "now_us"]
