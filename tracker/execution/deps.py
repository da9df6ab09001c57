"""Run dependencies (`requires:`): upstream runs, project files, configs, modules and URLs.

`plan_dependencies` resolves every dependency without touching the new run
(URLs are downloaded into a verified, content-addressed cache);
`DepsPlan.apply` then copies or links them into the run and records what it
got, with digests computed from the very bytes the run received.

The work is split by stage: `deps_spec` parses `requires:` (and named
`resources:`), `deps_resolve` resolves operation, file, config and module
sources, `deps_url` URLs and their cache, `deps_select` what `select` picks
and where `rename`/`target-path` put it, `deps_apply` places them in the
run (why upstream files are copied by default is explained there), with
`deps_archive` (safe unpacking), `deps_config` (config files rewritten with
flag values) and `deps_post` (`post-process:` commands). This module is the
entry point; the names other modules import from it stay here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import DependencyError
from ..fsutil import copy_hashed, hash_path
from ..project.loader import OpDef, Project
from ..store import RunStore
from .deps_apply import DepsPlan
from .deps_resolve import Resolved, interpolated, resolve_config, resolve_file, resolve_module, resolve_operation
from .deps_spec import Dependency, dependency_names, parse_requires, take_dep_specs
from .deps_url import resolve_url

__all__ = ["Dependency", "DepsPlan", "Resolved", "copy_hashed", "dependency_names", "hash_path", "parse_requires",
           "plan_dependencies", "take_dep_specs"]


def plan_dependencies(store: RunStore, project: Project, op: OpDef, dep_specs: dict[str, str],
                      flags: dict[str, Any] | None = None, progress: Any = None) -> DepsPlan:
    """Resolve `op`'s dependencies (a few index queries each, never a store listing).

    `flags` fill `${flag}` references in source paths and URLs and are
    written into `config:` sources. As in Guild, a source already resolved
    under the same names is skipped, and an `optional: yes` one that cannot
    be resolved is left out with a note. `progress` makes the callbacks that
    hear how downloads go (see `deps_url.ProgressFactory`).
    """
    flags = flags or {}
    resolved = []
    seen = set()
    for dep in parse_requires(op, flags):
        key = (dep.resource, dep.resolving_name)
        if key in seen:
            resolved.append(Resolved(dep, "", skipped=f"Skipping resolution of {dep.resolving_name} because "
                                                      "it's already resolved"))
            continue
        seen.add(key)
        try:
            resolved.append(_resolve(dep, store, project, op, dep_specs, flags, progress))
        except DependencyError:
            if not dep.optional:
                raise
            resolved.append(Resolved(dep, "", skipped=f"Could not resolve {dep.resolving_name} - skipping "
                                                      "because dependency is optional"))
    return DepsPlan(op, project, resolved, flags)


def _resolve(dep: Dependency, store: RunStore, project: Project, op: OpDef, dep_specs: dict[str, str],
             flags: dict[str, Any], progress: Any = None) -> Resolved:
    if dep.kind == "operation":
        return resolve_operation(dep, op, store, dep_specs)
    if dep.kind == "module":
        return resolve_module(dep, project)
    dep = dataclasses.replace(dep, spec=interpolated(dep, dep.spec, flags))
    if dep.kind == "file":
        return resolve_file(dep, project)
    if dep.kind == "config":
        return resolve_config(dep, project)
    r = resolve_url(dep, store, project, progress)
    if dep.unpack:
        from .deps_archive import archive_type
        from .deps_url import url_basename

        r.archive = archive_type(url_basename(dep.spec), dep.archive_type)
    return r
