"""Parsing an operation's `requires:` into `Dependency` values (nothing resolved).

Guild's forms are accepted: a list, one mapping or a string; the string
shorthand (`prepare`, `operation:prepare`, `file:x`, a URL); and an inline
resource (`name:` with a `sources:` list) standing for its sources.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import DependencyError
from ..project.loader import OpDef

KINDS = ("operation", "file", "url")
TARGET_TYPES = ("copy", "link")

# How a dependency arrives when `target-type:` is not given. Upstream runs and
# project files are copied, so a program writing to its input changes only
# its own run; cached downloads are linked (read-only, and re-verified each
# time they are reused).
DEFAULT_TARGET_TYPE = {"operation": "copy", "file": "copy", "url": "link"}


@dataclass
class Dependency:
    """One entry of an operation's `requires:`."""

    kind: str  # operation, file or url
    spec: str  # operation name (or regex), project path, or URL
    select: list[str] = field(default_factory=list)
    target_path: str = ""
    target_type: str = "copy"  # copy or link: how the files arrive in the run
    sha256: str | None = None
    alias: str | None = None  # the dependency's `name:`

    @property
    def link(self) -> bool:
        """True when the run gets a symlink rather than a copy."""
        return self.target_type == "link"

    @property
    def name(self) -> str:
        """`KIND:SPEC`, how the dependency is named in messages and attrs."""
        return f"{self.kind}:{self.spec}"

    @property
    def short(self) -> str:
        """The dependency's `name:`, or the operation or file name alone."""
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
        kinds = [k for k in KINDS if k in item]
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
            target_type=_target_type(item, kind, op), sha256=sha, alias=item.get("name"),
        ))
    return deps


def _target_type(item: dict, kind: str, op: OpDef) -> str:
    """Guild's `target-type: link|copy`; `link: yes` is trk's older spelling of `link`."""
    given = item.get("target-type", item.get("target_type"))
    where = f"{kind} dependency '{item[kind]}' in {op.fullname}"
    if given is not None and str(given).lower() not in TARGET_TYPES:
        raise DependencyError(f"invalid target-type {str(given)!r} for {where}: use link or copy")
    if "link" in item:
        linked = "link" if item["link"] else "copy"
        if given is not None and str(given).lower() != linked:
            raise DependencyError(f"conflicting link: {item['link']!r} and target-type: {given} for {where}",
                                  "Give only target-type: link or target-type: copy.")
        return linked
    return str(given).lower() if given is not None else DEFAULT_TARGET_TYPE[kind]


def _as_mapping(item: Any) -> Any:
    """Guild's string shorthand: `prepare`, `operation:prepare`, `file:x`, a URL."""
    if not isinstance(item, str):
        return item
    kind, sep, spec = item.partition(":")
    if sep and kind in KINDS:
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
        shared = {k: v for k, v in item.items() if k in ("target-path", "path", "target-type")}
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


def take_dep_specs(op: OpDef, assigned: dict[str, Any]) -> dict[str, str]:
    """Move `NAME=RUN` assignments that name a dependency (not a flag) out of
    `assigned`; they pick the upstream run for dependency NAME."""
    if not op.config.get("requires"):
        return {}
    names = dependency_names(op)
    return {name: str(assigned.pop(name)) for name in list(assigned) if name in names and name not in op.flags}
