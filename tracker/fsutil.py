"""Small file-system helpers: atomic writes, JSON-compatible YAML attrs, and
the one answer to "is this path inside that root".

Every metadata write in trk goes through `atomic_write` so a killed process
leaves either the old or the new file, never half of one. Every check that a
path from a user, a project file or a run stays within its root goes through
`is_inside` / `resolve_inside`.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any


def atomic_write(path: str, data: bytes | str) -> None:
    """Write `data` to `path` via a temp file in the same dir + os.replace."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    dirname = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=dirname, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def dump_attr(value: Any) -> str:
    """Encode an attribute value as YAML in JSON-compatible flow style.

    JSON is a subset of YAML 1.2, so these files read as YAML to any tool,
    while trk reads them back with the much faster json module.
    """
    return json.dumps(value, ensure_ascii=False, sort_keys=False) + "\n"


def load_attr(text: str) -> Any:
    """Decode an attribute file written by `dump_attr` or edited by hand."""
    try:
        return json.loads(text)
    except ValueError:
        import yaml

        return yaml.safe_load(text)


class PathEscape(ValueError):
    """A path leads outside the root it must stay in."""


def is_inside(root: str, path: str) -> bool:
    """True when `path` (absolute, or relative to `root`) is `root` or lies
    under it once symlinks, `..` and absolute components are resolved."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, path))
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def resolve_inside(root: str, path: str, what: str = "path") -> str:
    """The real path of `path` under `root`; raise PathEscape when it leads
    outside (`what` names the path in the message)."""
    if not is_inside(root, path):
        raise PathEscape(f"{what} '{path}' is outside {root}")
    return os.path.realpath(os.path.join(root, path))


def remove_sqlite(path: str) -> None:
    """Delete an SQLite database and its journal files (a cache to rebuild)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(path + suffix)
        except OSError:
            pass
