"""Copying a project's source files into a run, and their digest.

Default: text files under 1 MiB, skipping `.gitignore`d paths, VCS dirs,
virtualenvs and caches. An operation's `sourcecode:` rules adjust that. The
digest is computed from the very bytes copied, so it always matches the run.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from dataclasses import dataclass
from typing import Any

from ..errors import OpError
from ..fsutil import hash_stream, is_inside

MAX_SIZE = 1024 * 1024
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".trk", ".guild", "node_modules", ".dvc",
              ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache", ".tox", ".venv", "venv"}


@dataclass
class Rule:
    """One include or exclude pattern of `sourcecode:`."""
    include: bool
    pattern: str

    def matches(self, relpath: str) -> bool:
        """True when the pattern matches a project-relative path or its file name."""
        p = self.pattern.rstrip("/")
        return (
            fnmatch.fnmatch(relpath, p)
            or fnmatch.fnmatch(os.path.basename(relpath), p)
            or relpath.startswith(p + "/")
        )


def parse_rules(spec: Any, where: str = "sourcecode") -> tuple[bool, list[Rule], str]:
    """Return (enabled, rules, root) from an operation's `sourcecode` value."""
    if spec is None or spec is True:
        return True, [], "."
    if spec is False:
        return False, [], "."
    root = "."
    if isinstance(spec, dict) and ("select" in spec or "root" in spec):
        root = str(spec.get("root") or ".")
        spec = spec.get("select") or []
    if isinstance(spec, (str, dict)):
        spec = [spec]
    if not isinstance(spec, list):
        raise OpError(f"invalid {where}: expected a list of patterns, got {spec!r}")
    rules: list[Rule] = []
    for item in spec:
        if isinstance(item, str):
            rules.append(Rule(True, item))
        elif isinstance(item, dict) and len(item) == 1 and next(iter(item)) in ("include", "exclude"):
            key, pats = next(iter(item.items()))
            for p in [pats] if isinstance(pats, str) else list(pats or []):
                rules.append(Rule(key == "include", str(p)))
        else:
            raise OpError(f"invalid {where} rule {item!r}: use a pattern, {{include: PATTERN}} or {{exclude: PATTERN}}")
    # A list of bare patterns selects only those files (Guild's meaning).
    only = bool(rules) and all(r.include for r in rules)
    if only:
        rules.insert(0, Rule(False, "*"))
    return True, rules, root


def _gitignore(root: str) -> list[tuple[bool, str]]:
    path = os.path.join(root, ".gitignore")
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return []
    pats = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pats.append((neg, line[1:] if neg else line))
    return pats


def _ignored(relpath: str, is_dir: bool, pats: list[tuple[bool, str]]) -> bool:
    ignored = False
    for neg, pat in pats:
        dir_only = pat.endswith("/")
        p = pat.strip("/")
        if dir_only and not is_dir:
            continue
        anchored = "/" in pat.rstrip("/")
        hit = fnmatch.fnmatch(relpath, p) if anchored else (
            fnmatch.fnmatch(os.path.basename(relpath), p) or fnmatch.fnmatch(relpath, p)
        )
        if hit:
            ignored = not neg
    return ignored


def _is_text(head: bytes) -> bool:
    return b"\0" not in head


def _is_venv(path: str) -> bool:
    return os.path.exists(os.path.join(path, "pyvenv.cfg")) or os.path.exists(os.path.join(path, "bin", "activate"))


def copy_source(project_dir: str, dest: str | None, spec: Any = None) -> tuple[list[str], str]:
    """Copy the selected source files to `dest`; return (relpaths, digest).

    With `dest` None nothing is written: the digest a run would get now.
    """
    enabled, rules, root = parse_rules(spec)
    if not enabled:
        return [], hashlib.sha256().hexdigest()
    project_dir = os.path.realpath(project_dir)
    if not is_inside(project_dir, root):
        raise OpError(f"sourcecode root '{root}' is outside the project directory {project_dir}")
    src_root = os.path.realpath(os.path.join(project_dir, root))
    ignore = _gitignore(project_dir)
    dest_real = os.path.realpath(dest) if dest else None
    copied: list[str] = []
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(src_root):
        rel_dir = os.path.relpath(dirpath, src_root)
        rel_dir = "" if rel_dir == "." else rel_dir
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            rel = os.path.join(rel_dir, d)
            if d in _SKIP_DIRS or d.startswith(".") or os.path.islink(full):
                continue
            if os.path.realpath(full) == dest_real or _ignored(rel, True, ignore) or _is_venv(full):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = os.path.join(rel_dir, name)
            full = os.path.join(dirpath, name)
            if _ignored(rel, False, ignore) or os.path.islink(full):
                continue
            selected: bool | None = None
            for rule in rules:
                if rule.matches(rel):
                    selected = rule.include
            if selected is False:
                continue
            file_digest = _copy_one(full, os.path.join(dest, rel) if dest else None, name, selected)
            if file_digest is None:
                continue
            digest.update(rel.encode() + b"\0" + bytes.fromhex(file_digest))
            copied.append(rel)
    return copied, digest.hexdigest()


def _copy_one(full: str, target: str | None, name: str, selected: bool | None) -> str | None:
    """Copy one source file (if `target`) and return its SHA-256; None when
    it is not part of the snapshot (too big or binary unless selected)."""
    # O_NOFOLLOW: a file swapped for a link after the walk is not followed out
    # of the project. O_NONBLOCK: a FIFO is skipped below, not waited on.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        with os.fdopen(os.open(full, flags), "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or (selected is None and st.st_size > MAX_SIZE):
                return None
            head = f.read(1024)
            if selected is None and (name.startswith(".") or not _is_text(head)):
                return None
            if target is None:
                return hash_stream(f, first=head)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                with open(target, "wb") as out:
                    file_digest = hash_stream(f, out, first=head)
            except OSError:
                os.unlink(target)  # no half file in the snapshot
                raise
            os.chmod(target, st.st_mode & 0o777)
            return file_digest
    except OSError:
        return None
