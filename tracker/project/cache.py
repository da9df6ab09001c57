"""The JSON cache of parsed project files, so a repeated `trk run` does not even import YAML.

An entry is keyed by the project file's path and holds the signature (size,
mtime, inode) of every file it was read from: the project file and each file
it `include:`s. A change to any of them makes the entry stale. The models of
other formats (`formats/modelcache.py`) use `cached_entry`/`store_entry`: any
key, files that must still be absent, and directory listings.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

MISS = object()
_VERSION = 5  # since 3: the signatures of included files, and the entries with their sources; 4: `1e-3` is a float;
# 5: the formats' models (bump it whenever what a format's model holds changes)
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


def cached_entry(key: str, cache_dir: str | None) -> Any:
    """The data stored under `key`, or MISS when there is none or any file it
    watches changed (appeared, went, or changed size, mtime or inode) or any
    directory it watches lists other names with its suffixes."""
    if not cache_dir:
        return MISS
    import json

    try:
        with open(_cache_file(key, cache_dir), encoding="utf-8") as f:
            entry = json.load(f)
        if entry.get("version") != _VERSION or entry.get("key") != key:
            return MISS
        if any(_signature(name) != signature for name, signature in entry["files"]):
            return MISS
        if any(_listing(dir, suffixes) != names for dir, suffixes, names in entry["listings"]):
            return MISS
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return MISS
    return entry.get("data")


def store_entry(key: str, cache_dir: str | None, data: Any, files: list[str],
                listings: list[tuple[str, tuple[str, ...]]]) -> None:
    """Cache JSON `data` under `key`, watching `files` (absent ones must stay
    absent) and the names with those suffixes in each listed directory."""
    if not cache_dir:
        return
    import json
    import time

    from ..fsutil import atomic_write

    signatures = []
    for name in dict.fromkeys(files):
        signature = _signature(name)
        if signature is not None and time.time_ns() - signature[1] < 2_000_000_000:
            return  # modified just now: a same-size edit in the same mtime tick would go unseen
        signatures.append([name, signature])
    watched = [[dir, list(suffixes), _listing(dir, tuple(suffixes))] for dir, suffixes in dict.fromkeys(listings)]
    try:
        text = json.dumps({"version": _VERSION, "key": key, "files": signatures, "listings": watched, "data": data})
        os.makedirs(os.path.join(cache_dir, "projects"), exist_ok=True)
        atomic_write(_cache_file(key, cache_dir), text)
    except (TypeError, ValueError, OSError):
        pass


def _listing(dir: str, suffixes: tuple[str, ...] | list[str]) -> list[str] | None:
    # Names, not the directory's mtime: a stage writing its outs (or dvc.lock)
    # beside dvc.yaml changes the mtime on every run.
    try:
        return sorted(n for n in os.listdir(dir) if n.endswith(tuple(suffixes)))
    except OSError:
        return None
