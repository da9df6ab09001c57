"""The formats' models cached as JSON, so a repeated `trk run dvc:STAGE` neither imports YAML nor scans scripts.

While the formats are detected and loaded, every reader notes what it
looked at (`note_file`: a file read, or checked and found absent;
`note_listing`: the names with some suffixes in a directory, e.g. the
scripts a `prepare()` scan reads or the Gradient workflow files). The models
are stored in `project.cache` keyed by the project directory and watching
all of those, so a change to any file a loader read (or the appearance of
one it looked for) makes the entry stale. Warnings are part of the models.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any, Callable

    from ..loader import Model

# The watches being filled by the loads in progress (a stack: nested loads note into each).
_WATCHES: list["_Watch"] = []
# The classes a cached model may hold, by module: anything else is not cached.
_CLASSES = {
    "tracker.project.loader": ("Model", "OpDef"),
    "tracker.project.flags": ("FlagDef", "FlagChoice"),
    "tracker.project.guildfile": ("InFile",),
    "tracker.project.formats.valohai_command": ("ValohaiOp", "Param"),
}


class _Watch:
    def __init__(self) -> None:
        self.files: list[str] = []
        self.listings: list[tuple[str, tuple[str, ...]]] = []


def note_file(path: str) -> None:
    """Note that a loader read `path`, or looked for it and found none."""
    for watch in _WATCHES:
        watch.files.append(os.path.abspath(path))


def note_listing(dir: str, suffixes: tuple[str, ...]) -> None:
    """Note that a loader listed the names ending with `suffixes` in `dir`."""
    for watch in _WATCHES:
        watch.listings.append((os.path.abspath(dir), tuple(suffixes)))


def load_cached(project_dir: str, cache_dir: str | None, load: Callable[[], list[Model]]) -> list[Model]:
    """The models `load()` gives for `project_dir`, from the cache while nothing it read has changed."""
    from .. import cache

    key = os.path.join(os.path.abspath(project_dir), "") + "\0formats"
    found = cache.cached_entry(key, cache_dir)
    if found is not cache.MISS:
        try:
            return [_decode(m) for m in found]
        except (TypeError, ValueError, KeyError, AttributeError, ImportError):
            pass  # an entry of another trk: read the files again
    watch = _Watch()
    _WATCHES.append(watch)
    try:
        models = load()
    finally:
        _WATCHES.remove(watch)
    if cache_dir and models:  # no format: detecting none costs a few stats, less than reading an entry
        try:
            data = [_encode(m) for m in models]
        except TypeError:
            return models  # holds something JSON cannot: read the files every time
        cache.store_entry(key, cache_dir, data, watch.files, watch.listings)
    return models


def _encode(value: Any) -> Any:
    """JSON data that `_decode` turns back into an equal value; TypeError for anything it cannot."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {"__t": "tuple", "v": [_encode(v) for v in value]}
    if isinstance(value, dict):
        if "__t" in value or not all(isinstance(k, str) for k in value):
            raise TypeError("a mapping JSON cannot hold as it is")
        return {k: _encode(v) for k, v in value.items()}
    cls = type(value)
    if cls.__name__ not in _CLASSES.get(cls.__module__, ()):
        raise TypeError(f"{cls.__name__} is not cached")
    return {"__t": "obj", "c": f"{cls.__module__}:{cls.__name__}",
            "a": {k: _encode(v) for k, v in vars(value).items()}}


def _decode(data: Any) -> Any:
    if isinstance(data, list):
        return [_decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    kind = data.get("__t")
    if kind is None:
        return {k: _decode(v) for k, v in data.items()}
    if kind == "tuple":
        return tuple(_decode(v) for v in data["v"])
    module, _, name = data["c"].partition(":")
    if name not in _CLASSES.get(module, ()):
        raise ValueError(f"{data['c']} is not a cached class")
    from importlib import import_module

    cls = getattr(import_module(module), name)
    obj = cls.__new__(cls)
    for k, v in data["a"].items():
        object.__setattr__(obj, k, _decode(v))  # as the records' own __init__ sets even frozen fields
    return obj
