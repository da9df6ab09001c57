"""Where the links trk made in a run may lead.

A run directory holds links trk made itself: a pipeline's step links to its
child runs, and dependency links (`target-type: link`) to upstream runs,
project files and cached downloads. `run_roots` lists the directories those
links rightly lead into, for `fsutil.is_inside(run.dir, path, allowed=...)`.
A link a program made to anywhere else leads outside the run.
"""

from __future__ import annotations

import os

from ..store import Run, RunStore


def run_roots(store: RunStore, run: Run) -> list[str]:
    """Dirs a path in `run` may lead into through links trk made (its child
    runs, and what its linked dependencies point at), recursively."""
    roots: list[str] = []
    _collect(store, run, roots, {run.id})
    return roots


def _collect(store: RunStore, run: Run, roots: list[str], seen: set[str]) -> None:
    for dep in run.get("deps") or []:
        if not isinstance(dep, dict) or _target_type(dep) != "link":
            continue
        kind = dep.get("kind")
        if kind == "operation" and dep.get("run") and dep["run"] not in seen:
            seen.add(dep["run"])
            upstream = store.get(dep["run"])
            roots.append(upstream.dir)
            _collect(store, upstream, roots, seen)  # its own links (e.g. to the URL cache)
        elif kind == "url" and dep.get("sha256"):
            roots.append(os.path.join(store.url_cache_dir, str(dep["sha256"])))
        elif kind == "file" and dep.get("source"):
            roots.append(str(dep["source"]))
    for child in _child_runs(store, run):
        if child.id not in seen:
            seen.add(child.id)
            roots.append(child.dir)
            _collect(store, child, roots, seen)


def _target_type(dep: dict) -> str:
    # Runs made before `target-type` was recorded: operation and URL
    # dependencies were links, files were links only with `link: yes`.
    if dep.get("target_type"):
        return str(dep["target_type"])
    if dep.get("kind") == "file":
        return "link" if dep.get("link") else "copy"
    return "link"


def _child_runs(store: RunStore, run: Run) -> list[Run]:
    """Runs a top-level link of `run` points at that are children of `run` (step links)."""
    try:
        names = os.listdir(run.dir)
    except OSError:
        return []
    children = []
    for name in names:
        path = os.path.join(run.dir, name)
        if not os.path.islink(path):
            continue
        child_id = os.path.basename(os.path.realpath(path))
        if not os.path.isdir(store.run_path(child_id)):
            continue
        child = store.get(child_id)
        if child.parent == run.id:
            children.append(child)
    return children
