"""Run dependencies (`requires:`): upstream runs, project files and URLs.

`plan_dependencies` resolves every dependency without touching the new run
(URLs are downloaded into a content-addressed cache); `DepsPlan.apply` then
links or copies them into the run and records what it got, with digests
computed from the very bytes the run received.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import DependencyError
from ..project.loader import OpDef, Project
from ..store import Run, RunStore

CHUNK = 1024 * 1024


@dataclass
class Dependency:
    """One entry of an operation's `requires:`."""

    kind: str  # operation, file or url
    spec: str  # operation name (or regex), project path, or URL
    select: list[str] = field(default_factory=list)
    target_path: str = ""
    link: bool = False
    sha256: str | None = None
    alias: str | None = None  # the dependency's `name:`

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.spec}"

    @property
    def short(self) -> str:
        if self.alias:
            return self.alias
        if self.kind == "operation":
            return self.spec.rpartition(":")[2]
        return os.path.basename(self.spec.rstrip("/")) or self.spec


def parse_requires(op: OpDef) -> list[Dependency]:
    """An operation's `requires:` (a list, one mapping or a string) as Dependencies."""
    data = op.config.get("requires")
    if data is None:
        return []
    deps = []
    for item in _flatten_sources(data if isinstance(data, list) else [data]):
        if not isinstance(item, dict):
            raise DependencyError(f"invalid dependency {item!r} in {op.fullname}: expected a mapping")
        kinds = [k for k in ("operation", "file", "url") if k in item]
        if len(kinds) != 1:
            raise DependencyError(
                f"invalid dependency {item!r} in {op.fullname}: give exactly one of operation, file or url")
        kind = kinds[0]
        select = item.get("select") or []
        select = [select] if isinstance(select, str) else [str(s) for s in select]
        select = [s.get("file", s) if isinstance(s, dict) else s for s in select]
        sha = item.get("sha256")
        if sha is not None:
            sha = str(sha).lower()
            if not re.fullmatch(r"[0-9a-f]{64}", sha):
                raise DependencyError(
                    f"invalid sha256 for {kind} dependency '{item[kind]}' in {op.fullname}: {item.get('sha256')!r}",
                    "Give the 64 hex digits of the file's SHA-256, in quotes.")
        deps.append(Dependency(
            kind=kind, spec=str(item[kind]), select=select,
            target_path=str(item.get("target-path") or item.get("path") or ""),
            link=bool(item.get("link", False)), sha256=sha, alias=item.get("name"),
        ))
    return deps


def _as_mapping(item: Any) -> Any:
    """Guild's string shorthand: `prepare`, `operation:prepare`, `file:x`, a URL."""
    if not isinstance(item, str):
        return item
    kind, sep, spec = item.partition(":")
    if sep and kind in ("operation", "file", "url"):
        return {kind: spec}
    if item.startswith(("http://", "https://")):
        return {"url": item}
    return {"operation": item}


def _flatten_sources(items: list) -> list:
    """Guild's inline resource (`name:` and a `sources:` list) stands for its sources."""
    flat = []
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("sources"), list)):
            flat.append(_as_mapping(item))
            continue
        shared = {k: v for k, v in item.items() if k in ("target-path", "path")}
        sources = item["sources"]
        for source in map(_as_mapping, sources):
            if isinstance(source, dict):
                source = {**shared, **source}
                if len(sources) == 1 and item.get("name") and "name" not in source:
                    source["name"] = item["name"]
            flat.append(source)
    return flat


def dependency_names(op: OpDef) -> set[str]:
    """Names a user may assign a run to on the command line (`prepare=RUN`)."""
    names = set()
    for dep in parse_requires(op):
        if dep.kind == "operation":
            names.update({dep.spec, dep.name, dep.short})
            if dep.alias:
                names.add(dep.alias)
    return names


@dataclass
class Resolved:
    dep: Dependency
    sha256: str
    run: Run | None = None  # operation deps
    source: str | None = None  # file and url deps: the path to link or copy
    files: list[str] = field(default_factory=list)  # operation deps: selected paths in the run


class DepsPlan:
    def __init__(self, op: OpDef, project: Project, resolved: list[Resolved]):
        self.op = op
        self.project = project
        self.resolved = resolved

    def label_parts(self) -> list[tuple[str, str]]:
        return [(r.dep.name, r.run.id) for r in self.resolved if r.run is not None]

    def digests(self) -> dict[str, dict[str, Any]]:
        """What identifies each dependency's input, for `--needed`."""
        for r in self.resolved:
            if not r.sha256 and r.source:
                r.sha256 = hash_path(r.source)
        return {r.dep.name: {"run": r.run.id if r.run else None, "sha256": r.sha256} for r in self.resolved}

    def apply(self, run: Run, say: Callable[[str], None]) -> None:
        """Link or copy every dependency into `run`; record them in attr `deps`."""
        records = []
        for r in self.resolved:
            say(f"Resolving {r.dep.name}")
            target_dir = _inside(run.dir, r.dep.target_path, f"target-path of {r.dep.name}")
            if r.run is not None:
                say(f"Using run {r.run.id} for {r.dep.name}")
                linked = []
                for rel in r.files:
                    link = os.path.join(target_dir, rel)
                    if os.path.lexists(link):
                        # The run's own source, or an earlier dependency's file: not replaced.
                        say(f"WARNING: {os.path.relpath(link, run.dir)} already exists, "
                            f"not linking it from run {r.run.short_id}")
                        continue
                    _symlink(os.path.realpath(os.path.join(r.run.dir, rel)), link)
                    linked.append(os.path.relpath(link, run.dir))
                records.append({"name": r.dep.name, "kind": "operation", "run": r.run.id, "sha256": r.sha256,
                                "files": linked})
            elif r.dep.kind == "url":
                dest = os.path.join(target_dir, _url_basename(r.dep.spec))
                _symlink(r.source, dest)
                records.append({"name": r.dep.name, "kind": "url", "url": r.dep.spec, "sha256": r.sha256,
                                "path": os.path.relpath(dest, run.dir)})
            else:
                dest = os.path.join(target_dir, os.path.basename(r.source.rstrip(os.sep)))
                if r.dep.link:
                    _symlink(r.source, dest)
                    digest = r.sha256 or hash_path(r.source)
                else:
                    digest = copy_hashed(r.source, dest)  # what the run received
                records.append({"name": r.dep.name, "kind": "file", "path": os.path.relpath(dest, run.dir),
                                "sha256": digest, "link": r.dep.link})
        run.write_attr("deps", records)


def plan_dependencies(store: RunStore, project: Project, op: OpDef, dep_specs: dict[str, str],
                      runs: list[Run] | None = None) -> DepsPlan:
    """Resolve `op`'s dependencies; `runs` is the store's listing, if at hand."""
    deps = parse_requires(op)
    resolved = []
    for dep in deps:
        if dep.kind == "operation":
            if runs is None:
                runs = store.list()
            resolved.append(_resolve_operation(dep, op, runs, dep_specs))
        elif dep.kind == "file":
            resolved.append(_resolve_file(dep, project))
        else:
            resolved.append(_resolve_url(dep, store))
    return DepsPlan(op, project, resolved)


def _unmet(dep: Dependency, reason: str) -> DependencyError:
    return DependencyError(
        f"run failed because a dependency was not met: could not resolve '{dep.name}' in {dep.short} ({reason})")


def _op_matches(dep: Dependency, opspec: str, model: str) -> bool:
    spec = dep.spec
    if opspec == spec or (model and opspec == f"{model}:{spec}"):
        return True
    if ":" not in spec and not model and opspec.rpartition(":")[2] == spec:
        return True
    try:
        return bool(re.fullmatch(spec, opspec) or (model and re.fullmatch(f"{model}:{spec}", opspec)))
    except re.error:
        return False


def _resolve_operation(dep: Dependency, op: OpDef, runs: list[Run], dep_specs: dict[str, str]) -> Resolved:
    given = next((dep_specs[n] for n in (dep.alias, dep.name, dep.spec, dep.short) if n and n in dep_specs), None)
    if given is not None:
        run = _named_run(dep, op, runs, given)
    else:
        run = next((r for r in runs if r.status == "completed" and _op_matches(dep, r.opspec, op.model)), None)
        if run is None:
            raise _unmet(dep, "no suitable run")
    files = _select_files(run, dep.select)
    if dep.select and not files:
        raise _unmet(dep, f"run {run.short_id} has no file matching {', '.join(dep.select)}")
    h = hashlib.sha256(run.id.encode())
    for rel in files:
        h.update(b"\0" + rel.encode() + b"\0" + hash_path(os.path.join(run.dir, rel)).encode())
    return Resolved(dep, h.hexdigest(), run=run, files=files)


def _named_run(dep: Dependency, op: OpDef, runs: list[Run], spec: str) -> Run:
    """The run a user named with `NAME=RUN_SPEC`: an id prefix, or an index
    into the runs of the required operation (`prepare=2`: the one before last)."""
    from ..errors import RunSpecError
    from ..store.select import select

    candidates = [r for r in runs if _op_matches(dep, r.opspec, op.model)]
    try:
        chosen = select(candidates, [spec])
    except RunSpecError as e:
        other = next((r for r in runs if r.id.startswith(spec.lower())), None) if len(spec) >= 6 else None
        if other is not None:
            raise _unmet(dep, f"run {other.short_id} is a run of {other.opspec}, not {dep.spec}") from None
        raise _unmet(dep, f"no run '{spec}': {e}") from None
    if len(chosen) != 1:
        raise _unmet(dep, f"'{spec}' selects {len(chosen)} runs; name one")
    run = chosen[0]
    if run.status != "completed":
        raise _unmet(dep, f"run {run.short_id} is {run.status}")
    return run


def _select_files(run: Run, patterns: list[str]) -> list[str]:
    """Paths of an upstream run to link: those selected, or by default all it
    holds but its own source code (the new run has its own) and `.trk`."""
    source = set() if patterns else set(run.get("sourcecode_files") or [])
    names = []
    for dirpath, dirnames, filenames in os.walk(run.dir):
        rel_dir = os.path.relpath(dirpath, run.dir)
        dirnames[:] = sorted(d for d in dirnames if d != ".trk" and not (rel_dir == "." and d.startswith(".")))
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            if rel in source:
                continue
            if not patterns or any(_pattern_match(p, rel) for p in patterns):
                names.append(rel)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return names


def _pattern_match(pattern: str, rel: str) -> bool:
    try:
        if re.fullmatch(pattern, rel):
            return True
    except re.error:
        pass
    import fnmatch

    return fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern.rstrip("/") + "/")


def _inside(root: str, rel: str, what: str) -> str:
    path = os.path.realpath(os.path.join(root, rel)) if rel else os.path.realpath(root)
    real_root = os.path.realpath(root)
    if path != real_root and not path.startswith(real_root + os.sep):
        raise DependencyError(f"{what} '{rel}' is outside the run directory")
    os.makedirs(path, exist_ok=True)
    return path


def _resolve_file(dep: Dependency, project: Project) -> Resolved:
    root = os.path.realpath(project.dir)
    path = os.path.realpath(os.path.join(root, dep.spec))
    if path != root and not path.startswith(root + os.sep):
        raise DependencyError(
            f"dependency '{dep.name}' of {project.filename} is outside the project directory {root}",
            "Dependencies may only name files inside the project; copy the file into the project.")
    if not os.path.exists(path):
        raise _unmet(dep, f"{dep.spec} does not exist in {root}")
    # Hashed on demand: a copied file is hashed as it is copied.
    return Resolved(dep, "", source=path)


def hash_path(path: str) -> str:
    """SHA-256 of a file, or of a directory's relative paths and file digests."""
    return _digest(path, None)


def copy_hashed(src: str, dest: str) -> str:
    """Copy a file or directory, hashing the bytes written; returns the digest."""
    return _digest(src, dest)


def _digest(src: str, dest: str | None) -> str:
    """Stream `src` through SHA-256, writing the same bytes to `dest` if given."""
    h = hashlib.sha256()
    if os.path.isdir(src):
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, src)
                sub = _digest(full, os.path.join(dest, rel) if dest else None)
                h.update(rel.encode() + b"\0" + sub.encode())
        return h.hexdigest()
    out = None
    if dest:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.lexists(dest):
            os.unlink(dest)
        out = open(dest, "wb")
    try:
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
                if out:
                    out.write(chunk)
    finally:
        if out:
            out.close()
    if dest:
        shutil.copymode(src, dest)
    return h.hexdigest()


def _symlink(target: str, link: str) -> None:
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.lexists(link):
        if os.path.isdir(link) and not os.path.islink(link):
            shutil.rmtree(link)
        else:
            os.unlink(link)
    os.symlink(target, link)


def _url_basename(url: str) -> str:
    from urllib.parse import urlparse

    name = os.path.basename(urlparse(url).path) or "download"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _resolve_url(dep: Dependency, store: RunStore) -> Resolved:
    """Download once into `$TRK_HOME/cache/urls/<sha256>/NAME`; verify; reuse."""
    cache = store.url_cache_dir
    index = os.path.join(cache, "index")
    os.makedirs(index, exist_ok=True)
    key = os.path.join(index, hashlib.sha256(dep.spec.encode()).hexdigest())
    name = _url_basename(dep.spec)
    expected = dep.sha256.lower() if dep.sha256 else None
    try:
        known = open(key).read().strip()
    except OSError:
        known = None
    # With a sha256 only that content will do; without, what was downloaded before.
    digest = expected or known
    if digest and os.path.isfile(os.path.join(cache, digest, name)):
        return Resolved(dep, digest, source=os.path.join(cache, digest, name))
    import http.client
    import urllib.request

    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".download-")
    h = hashlib.sha256()
    received = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(dep.spec, timeout=60) as resp:
            length = resp.headers.get("Content-Length")
            for chunk in iter(lambda: resp.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
                received += len(chunk)
        # http.client returns a short body when the connection drops early.
        if length is not None and length.isdigit() and received != int(length):
            raise _unmet(dep, f"download incomplete: got {received} of {length} bytes")
        digest = h.hexdigest()
        if expected and digest != expected:
            raise DependencyError(
                f"run failed because a dependency was not met: checksum mismatch for {dep.spec}: "
                f"expected sha256 {expected}, got {digest}",
                "Check the URL, or update sha256 in the project file if the file changed on purpose.")
        dest_dir = os.path.join(cache, digest)
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, name)
        # Read-only: runs link this file, and a program writing to its input
        # must not change the cache under every other run.
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)  # only a complete, verified download enters the cache
        tmp = None
        from ..fsutil import atomic_write

        atomic_write(key, digest + "\n")
        return Resolved(dep, digest, source=dest)
    except DependencyError:
        raise
    except (OSError, http.client.HTTPException) as e:
        raise _unmet(dep, f"download failed: {e or type(e).__name__}") from None
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass
