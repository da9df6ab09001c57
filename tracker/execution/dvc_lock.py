"""`dvc.lock` in DVC's schema 2.0, DVC's md5 of files and directories, and its cache.

A stage's lock entry records its cmd, the md5 of its deps and outs and the
values of its params, exactly as DVC 3 writes them (`hash: md5`, a
directory's md5 is that of its JSON listing plus `.dir`), so DVC itself
reads trk's lock. Where the workspace has `.dvc/`, cached outs are stored
in DVC's cache layout (`.dvc/cache/files/md5/<2 hex>/<rest>`). `why_run`
compares a stage with its entry and says why it must run, or None.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # annotations only: on `trk run dvc:STAGE`'s path
if TYPE_CHECKING:
    from typing import Any

from ..errors import TrkError
from ..fsutil import atomic_write
from ..project.formats.dvc_stages import Pipeline, Stage, param_values

LOCK = "dvc.lock"
CHUNK = 1 << 20


_MD5: dict[tuple, str] = {}


def file_md5(path: str) -> str:
    """The md5 of a file's bytes (DVC 3's `hash: md5`: no dos2unix); a file
    many stages depend on is read once (keyed by its inode, size and mtime)."""
    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _MD5:
        _MD5[key] = _md5(path)
    return _MD5[key]


def _md5(path: str) -> str:
    import hashlib  # here: OpenSSL costs 2-3 ms to load, and many stages hash nothing

    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _dir_listing(path: str) -> list[dict]:
    """A directory's files as DVC lists them: relpath (posix) and md5, by relpath."""
    entries = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in (".dvc", ".git")]
        for name in files:
            full = os.path.join(root, name)
            if os.path.isfile(full):
                rel = os.path.relpath(full, path).replace(os.sep, "/")
                entries.append({"md5": file_md5(full), "relpath": rel, "_size": os.path.getsize(full)})
    return sorted(entries, key=lambda e: e["relpath"])


def path_info(path: str) -> dict[str, Any] | None:
    """`hash`, `md5`, `size` (and `nfiles` for a directory) of `path`, as a
    lock entry holds them; None when it does not exist."""
    if os.path.isfile(path):
        return {"hash": "md5", "md5": file_md5(path), "size": os.path.getsize(path)}
    if os.path.isdir(path):
        listing = _dir_listing(path)
        plain = json.dumps([{"md5": e["md5"], "relpath": e["relpath"]} for e in listing], sort_keys=True)
        import hashlib

        return {"hash": "md5", "md5": hashlib.md5(plain.encode()).hexdigest() + ".dir",
                "size": sum(e["_size"] for e in listing), "nfiles": len(listing)}
    return None


# -- the lock file ------------------------------------------------------------


def read_lock(project_dir: str) -> dict[str, Any]:
    """The stage entries of `dvc.lock` ({} when there is none)."""
    return _read_lock(project_dir)[0]


def _read_lock(project_dir: str) -> tuple[dict[str, Any], str | None, bool]:
    """The stage entries, the text (None: no lock) and whether trk's kept parse of it was used."""
    path = os.path.join(project_dir, LOCK)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}, None, False
    from .dvc_lockyaml import load

    try:
        data, kept = load(text, _cache_dir(), project_dir)
    except Exception as e:
        import yaml

        if not isinstance(e, yaml.YAMLError):
            raise
        raise TrkError(f"{LOCK}: not valid YAML ({e})", f"Delete {LOCK}: trk writes it again.", exit_code=2) from None
    stages = data.get("stages") if isinstance(data, dict) else None
    return stages if isinstance(stages, dict) else {}, text, kept


def stage_entry(pipeline: Pipeline, stage: Stage) -> dict[str, Any]:
    """The lock entry of `stage` as its files are now."""
    entry: dict[str, Any] = {"cmd": stage.cmd}
    deps = []
    for written, rel in stage.deps:
        info = path_info(os.path.join(pipeline.dir, rel))
        deps.append({"path": written, **(info or {})})
    if deps:
        entry["deps"] = sorted(deps, key=lambda d: d["path"])
    params = param_values(pipeline, stage)
    if params:
        entry["params"] = {f: dict(sorted(v.items())) for f, v in sorted(params.items())}
    outs = []
    for out in stage.outs:
        info = path_info(os.path.join(pipeline.dir, out.file))
        outs.append({"path": out.path, **(info or {})})
    if outs:
        entry["outs"] = sorted(outs, key=lambda o: o["path"])
    return entry


def update_lock(pipeline: Pipeline, stage: Stage) -> dict[str, Any]:
    """Write `stage`'s entry into `dvc.lock` (under a file lock: parallel
    stages update it too); return the entry."""
    import fcntl

    from .dvc_lockyaml import dump, remember

    entry = stage_entry(pipeline, stage)
    path = os.path.join(pipeline.dir, LOCK)
    # Locking dvc.yaml itself (never replaced by trk) leaves no lock file in the workspace.
    with open(os.path.join(pipeline.dir, "dvc.yaml"), "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        old, old_text, kept = _read_lock(pipeline.dir)
        stages = dict(old)
        stages[stage.name] = entry
        # Stages no longer in dvc.yaml leave the lock, as DVC drops them.
        stages = {k: v for k, v in sorted(stages.items()) if k in pipeline.stages}
        data = {"schema": "2.0", "stages": stages}
        text = dump(data)  # exactly PyYAML's safe_dump, without importing it for the usual lock
        if text != old_text:  # the same text again (nothing changed): the file stays as it is
            atomic_write(path, text)
        if text != old_text or not kept:
            remember(text, data, _cache_dir(), pipeline.dir)  # the next read of this text needs no YAML either
    return entry


def _cache_dir() -> str:
    """Where trk keeps its parse of the lock it wrote last (see `dvc_lockyaml`)."""
    from ..store.runstore import RunStore

    return RunStore().project_cache_dir


# -- DVC's cache ----------------------------------------------------------------


def cache_dir(project_dir: str) -> str | None:
    """DVC 3's cache of md5 objects, when the workspace is a DVC repository."""
    if not os.path.isdir(os.path.join(project_dir, ".dvc")):
        return None
    return os.path.join(project_dir, ".dvc", "cache", "files", "md5")


def _store(cache: str, md5: str, src: str | None, data: bytes | None = None) -> None:
    dest = os.path.join(cache, md5[:2], md5[2:])
    if os.path.exists(dest):
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = f"{dest}.tmp-{os.getpid()}"
    if src is not None:
        import shutil

        shutil.copyfile(src, tmp)
    else:
        with open(tmp, "wb") as f:
            f.write(data or b"")
    os.chmod(tmp, 0o444)  # DVC's cache files are read-only
    os.replace(tmp, dest)


def store_outs(pipeline: Pipeline, stage: Stage) -> None:
    """Store the stage's cached outs in DVC's cache (a no-op without `.dvc/`)."""
    cache = cache_dir(pipeline.dir)
    if cache is None:
        return
    for out in stage.outs:
        if not out.cache:
            continue
        path = os.path.join(pipeline.dir, out.file)
        if os.path.isfile(path):
            _store(cache, file_md5(path), path)
        elif os.path.isdir(path):
            listing = _dir_listing(path)
            for e in listing:
                _store(cache, e["md5"], os.path.join(path, e["relpath"]))
            plain = json.dumps([{"md5": e["md5"], "relpath": e["relpath"]} for e in listing], sort_keys=True)
            import hashlib

            _store(cache, hashlib.md5(plain.encode()).hexdigest() + ".dir", None, plain.encode())


def in_cache(pipeline: Pipeline, md5: str) -> bool:
    """Whether DVC's cache holds object `md5`."""
    cache = cache_dir(pipeline.dir)
    return cache is None or os.path.exists(os.path.join(cache, md5[:2], md5[2:]))


# -- why a stage runs ---------------------------------------------------------------


def why_run(pipeline: Pipeline, stage: Stage, locked: dict[str, Any] | None) -> str | None:
    """Why `stage` must run, compared with its lock entry; None when unchanged."""
    if stage.always_changed:
        return "it is always_changed"
    if not isinstance(locked, dict):
        return f"it is not in {LOCK}"
    old_deps = {d.get("path"): d for d in locked.get("deps") or [] if isinstance(d, dict)}
    if set(old_deps) != {w for w, _ in stage.deps}:
        return "its dependencies changed"
    for written, rel in stage.deps:
        info = path_info(os.path.join(pipeline.dir, rel))
        if info is None or info["md5"] != old_deps[written].get("md5"):
            return f"dependency '{written}' changed"
    old_params = locked.get("params") or {}
    now = param_values(pipeline, stage)
    if set(old_params) != set(now):
        return "its parameters changed"
    for file, values in now.items():
        before = old_params.get(file) or {}
        for key in sorted(set(values) | set(before)):
            if values.get(key) != before.get(key):
                return f"parameter '{key}' changed ({_show(before.get(key))} -> {_show(values.get(key))})"
    old_outs = {o.get("path"): o for o in locked.get("outs") or [] if isinstance(o, dict)}
    if set(old_outs) != {o.path for o in stage.outs}:
        return "its outputs changed"
    for out in stage.outs:
        info = path_info(os.path.join(pipeline.dir, out.file))
        if info is None:
            return f"output '{out.path}' is missing"
        if info["md5"] != old_outs[out.path].get("md5"):
            return f"output '{out.path}' changed"
        if out.cache and not in_cache(pipeline, info["md5"]):
            return f"output '{out.path}' is not in the DVC cache"
    if locked.get("cmd") != stage.cmd:  # last, as DVC checks: a changed param often changes the command too
        return "its command changed"
    return None


def _show(value: Any) -> str:
    return "none" if value is None else json.dumps(value) if not isinstance(value, str) else value


def missing_deps(pipeline: Pipeline, stage: Stage, produced: set[str]) -> list[tuple[int, str]]:
    """Deps that neither exist nor are an out of a stage in `produced`: (index, path)."""
    missing = []
    for i, (written, rel) in enumerate(stage.deps):
        if os.path.exists(os.path.join(pipeline.dir, rel)):
            continue
        if any(rel == p or rel.startswith(p + "/") or p.startswith(rel + "/") for p in produced):
            continue
        missing.append((i, written))
    return missing
