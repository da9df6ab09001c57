"""Run dependencies (`requires:`): upstream runs, project files and URLs.

`plan_dependencies` resolves every dependency without touching the new run
(URLs are downloaded into a verified, content-addressed cache);
`DepsPlan.apply` then copies or links them into the run and records what it
got, with digests computed from the very bytes the run received.

The work is split by stage: `deps_spec` parses `requires:`, `deps_resolve`
resolves operation and file dependencies, `deps_url` URLs and their cache,
`deps_apply` places them in the run (why upstream files are copied by
default is explained there). This module is the entry point; the names
other modules import from it stay here.
"""

from __future__ import annotations

from ..fsutil import copy_hashed, hash_path
from ..project.loader import OpDef, Project
from ..store import RunStore
from .deps_apply import DepsPlan
from .deps_resolve import Resolved, resolve_file, resolve_operation
from .deps_spec import Dependency, dependency_names, parse_requires, take_dep_specs
from .deps_url import resolve_url

__all__ = ["Dependency", "DepsPlan", "Resolved", "copy_hashed", "dependency_names", "hash_path", "take_dep_specs",
           "parse_requires", "plan_dependencies"]


def plan_dependencies(store: RunStore, project: Project, op: OpDef, dep_specs: dict[str, str]) -> DepsPlan:
    """Resolve `op`'s dependencies (a few index queries each, never a store listing)."""
    resolved = []
    for dep in parse_requires(op):
        if dep.kind == "operation":
            resolved.append(resolve_operation(dep, op, store, dep_specs))
        elif dep.kind == "file":
            resolved.append(resolve_file(dep, project))
        else:
            resolved.append(resolve_url(dep, store, project))
    return DepsPlan(op, project, resolved)
