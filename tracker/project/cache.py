"""The JSON cache of parsed project files, so a repeated `trk run` does not even import YAML.

An entry is keyed by the project file's path and holds the signature (size,
mtime, inode) of every file it was read from: the project file and each file
it `include:`s. A change to any of them makes the entry stale.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

MISS = object()
_VERSION = 4  # since 3: the signatures of included files, and the entries with their sources; 4: `1e-3` is a float
# (Entries of older versions sit under other names and are never read again; `trk check` need not clean them.)


def _cache_file(path: str, cache_dir: str) -> str:
    # Two checksums, not a cryptographic hash: entries name their project
    # file (checked on read), so a collision only costs a cache miss, and
    # hashlib (OpenSSL) would cost every `trk run` 3 ms to import.
    import zlib

    key = path.encode()
    return os.path.join(cache_dir, "projects", f"{zlib.crc32(key):08x}{zlib.adler32(key):08x}.json")


def _signature(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def cached(path: str, cache_dir: str | None) -> Any:
    """`(data, warnings)` cached for the project file `path`, or MISS when
    there is none or any file it was read from has changed since."""
    if not cache_dir:
        return MISS
    import json

    try:
        with open(_cache_file(path, cache_dir), encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return MISS
    if not isinstance(entry, dict) or entry.get("version") != _VERSION:
        return MISS
    files = entry.get("files")
    try:
        if files[0][0] != path or any(_signature(name) != signature for name, signature in files):
            return MISS
    except (TypeError, ValueError, IndexError, KeyError):
        return MISS
    return entry.get("data"), entry.get("warnings") or []


def store(path: str, files: list[str], cache_dir: str | None, data: Any, warnings: list[str]) -> None:
    """Cache `data` read from the project file `path` and the other `files` it names."""
    if not cache_dir:
        return
    import json
    import time

    from ..fsutil import atomic_write

    signatures = []
    for name in [path] + [f for f in files if f != path]:
        signature = _signature(name)
        if signature is None or time.time_ns() - signature[1] < 2_000_000_000:
            return  # modified just now: a same-size edit in the same mtime tick would go unseen
        signatures.append([name, signature])
    try:
        text = json.dumps({"version": _VERSION, "files": signatures, "data": data, "warnings": warnings})
        if json.loads(text)["data"] != data:
            return  # not JSON-exact (non-string keys, dates): always parse YAML
        os.makedirs(os.path.join(cache_dir, "projects"), exist_ok=True)
        atomic_write(_cache_file(path, cache_dir), text)
    except (TypeError, ValueError, OSError):
        pass
