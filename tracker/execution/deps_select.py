"""Which paths a dependency selects, and where each lands in the run.

As in Guild, `select` patterns are regular expressions matched against
whole relative paths (files and directories) of an upstream run, a project
directory or an unpacked archive; a selected path lands under its base
name (after `rename`) in the dependency's `target-path`. A pattern that is
not a valid regex is read as a glob (`*.csv`), where Guild matches nothing.
"""

from __future__ import annotations

import fnmatch
import os
import re

from ..errors import DependencyError
from .deps_spec import Dependency, Rename, Select

META_DIRS = (".trk", ".guild")


def list_tree(root: str) -> list[str]:
    """Every path under `root` (files and directories, `/`-separated), sorted;
    trk's and Guild's metadata directories and links to directories are not entered."""
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(d for d in dirnames if d not in META_DIRS)
        for name in dirnames + filenames:
            paths.append(name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/"))
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return sorted(paths)


def select_paths(paths: list[str], select: list[Select]) -> list[str]:
    """The paths the patterns select (each pattern matches a whole path)."""
    chosen: set[str] = set()
    for spec in select:
        matches = [(p, m) for p in paths if (m := _match(spec.pattern, p)) is not None]
        if spec.reduce:
            matches = _reduce(matches, spec.reduce)
        chosen.update(p for p, _ in matches)
    return sorted(chosen)


def _match(pattern: str, path: str) -> re.Match | bool | None:
    try:
        return re.match(f"(?:{pattern})$", path)
    except re.error:
        return True if fnmatch.fnmatchcase(path, pattern) else None


def _reduce(matches: list, how: str) -> list:
    """`select-min`/`select-max`: the match whose first group, as a number, is least/greatest."""
    best, best_val = None, None
    for path, m in matches:
        try:
            val = float(m.group(1))  # type: ignore[union-attr]
        except (AttributeError, IndexError, TypeError, ValueError):
            continue
        if best_val is None or (val < best_val if how == "min" else val > best_val):
            best, best_val = (path, m), val
    return [best] if best else []


def renamed(name: str, rules: list[Rename], flags: dict) -> str:
    """`name` after the first `rename` rule that changes it (Guild: one substitution)."""
    from ..project.resolve import interpolate

    for rule in rules:
        pattern, repl = interpolate(rule.pattern, flags), interpolate(rule.repl, flags)
        try:
            new = re.sub(pattern, repl, name, count=1)
        except (re.error, IndexError) as e:
            raise DependencyError(f"cannot rename {name} ({pattern!r} -> {repl!r}): {e}") from None
        if new != name:
            return new
    return name


def dest_rel(dep: Dependency, rel: str, flags: dict, keep_dirs: bool = False, origin_rel: str = "") -> str:
    """Where selected path `rel` lands, relative to the run directory.

    Guild places a selected path under its base name; `keep_dirs` keeps the
    directories above it (an upstream run's files when nothing is selected:
    trk copies them one by one, each where it was). `preserve-path` keeps the
    path the source had in the project (`origin_rel`) instead of `target-path`.
    """
    head, base = (rel.split("/", 1)[0], rel.split("/", 1)[1:]) if keep_dirs else (os.path.basename(rel), [])
    name = renamed(head, dep.rename, flags)
    if not name or name in (".", "..") or "/" in name and ".." in name.split("/"):
        raise DependencyError(f"rename of {rel} for {dep.resolving_name} gives {name!r}, not a file name")
    target = os.path.dirname(origin_rel) if dep.preserve_path else dep.target_path
    return os.path.normpath(os.path.join(target, name, *base))
