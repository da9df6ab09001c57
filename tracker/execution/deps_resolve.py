"""Resolving `operation:` and `file:` dependencies (URLs: `deps_url`).

Resolution touches no new run: it picks the upstream run and its files, or
the project file, and checks that each stays inside its root (the upstream
run, the project). Digests are computed on demand: `--needed` asks before
the run exists; otherwise they come from the very bytes the run receives.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from ..errors import DependencyError
from ..fsutil import hash_path, is_inside, skip_reason
from ..project.loader import OpDef, Project
from ..store import Run, RunStore
from .deps_spec import Dependency


@dataclass
class Resolved:
    """A dependency resolved: what the run gets, and notes to say when it does."""

    dep: Dependency
    sha256: str
    run: Run | None = None  # operation deps
    source: str | None = None  # file and url deps: the path to link or copy
    files: list[str] = field(default_factory=list)  # operation deps: selected paths in the run
    allowed: list[str] = field(default_factory=list)  # operation deps: where the upstream run's links may lead
    file_digests: dict[str, str] = field(default_factory=dict)  # operation deps: per selected path
    notes: list[str] = field(default_factory=list)  # warnings for the run's output

    def digest(self, project_dir: str) -> str:
        """The dependency's SHA-256, computed now if not known yet."""
        if not self.sha256:
            if self.run is not None:
                for rel in self.files:
                    if rel not in self.file_digests:
                        self.file_digests[rel] = hash_path(os.path.join(self.run.dir, rel), self.run.dir,
                                                           self.allowed)
                self.sha256 = operation_digest(self.run.id, [(rel, self.file_digests[rel]) for rel in self.files])
            elif self.source:
                self.sha256 = hash_path(self.source, project_dir)
        return self.sha256


def operation_digest(run_id: str, files: list[tuple[str, str]]) -> str:
    """What identifies an upstream run's input: its id and each selected file's digest."""
    h = hashlib.sha256(run_id.encode())
    for rel, digest in files:
        h.update(b"\0" + rel.encode() + b"\0" + digest.encode())
    return h.hexdigest()


def unmet(dep: Dependency, reason: str) -> DependencyError:
    """The error for a dependency that cannot be resolved, with the reason."""
    return DependencyError(
        f"run failed because a dependency was not met: could not resolve '{dep.name}' in {dep.short} ({reason})")


def op_matches(dep: Dependency, opspec: str, model: str) -> bool:
    """Whether a run of `opspec` satisfies `dep` (a name, `model:name` or a regex)."""
    spec = dep.spec
    if opspec == spec or (model and opspec == f"{model}:{spec}"):
        return True
    if ":" not in spec and not model and opspec.rpartition(":")[2] == spec:
        return True
    try:
        return bool(re.fullmatch(spec, opspec) or (model and re.fullmatch(f"{model}:{spec}", opspec)))
    except re.error:
        return False


def resolve_operation(dep: Dependency, op: OpDef, store: RunStore, dep_specs: dict[str, str]) -> Resolved:
    """The upstream run for `dep` (named on the command line, or the newest
    completed one) and the files it provides. Asks the run index: the
    store's operations, then the newest completed run of those that match."""
    from .runlinks import run_roots

    ops = [o for o in store.operations() if op_matches(dep, o, op.model)]
    given = next((dep_specs[n] for n in (dep.alias, dep.name, dep.spec, dep.short) if n and n in dep_specs), None)
    if given is not None:
        run = _named_run(dep, store, ops, given)
    else:
        newest = store.newest(ops, "completed")
        if not newest:
            raise unmet(dep, "no suitable run")
        run = newest[0]
    allowed = run_roots(store, run)
    files, notes = [], []
    for rel in _select_files(run, dep.select):
        # A link the upstream program made to elsewhere (or a loop, or a
        # dangling link) is not the run's output.
        full = os.path.join(run.dir, rel)
        # Only a link can loop back to a directory above it.
        parents = [os.path.realpath(os.path.join(run.dir, p)) for p in _prefixes(rel)] if os.path.islink(full) else []
        why = skip_reason(full, run.dir, allowed, parents)
        if why is None:
            files.append(rel)
        else:
            notes.append(f"WARNING: {rel} of run {run.short_id} {describe_skip(why, 'the run')}; not used")
    if dep.select and not files:
        raise unmet(dep, f"run {run.short_id} has no file matching {', '.join(dep.select)}")
    return Resolved(dep, "", run=run, files=files, allowed=allowed, notes=notes)


def _prefixes(rel: str) -> list[str]:
    """The directories above `rel`: `a/b/c` -> ``, `a`, `a/b`."""
    parts = rel.split(os.sep)[:-1]
    return [os.sep.join(parts[:i]) for i in range(len(parts) + 1)]


SKIPPED = {
    "outside": "is a link to outside {where}",
    "loop": "is a symlink loop",
    "broken": "is a broken link",
    "special": "is not a regular file",
    "unreadable": "cannot be read",
}


def describe_skip(why: str, where: str) -> str:
    """`fsutil.skip_reason`'s answer as words: `is a link to outside the project`."""
    return SKIPPED.get(why, why).format(where=where)


def _named_run(dep: Dependency, store: RunStore, ops: list[str], spec: str) -> Run:
    """The run a user named with `NAME=RUN_SPEC`: an id prefix, or an index
    into the runs of the required operation (`prepare=2`: the one before last)."""
    from ..errors import RunSpecError
    from ..store.select import RunFilter, select_from

    try:
        chosen = select_from(store, RunFilter(exact_ops=ops), [spec])
    except RunSpecError as e:
        other = next(iter(store.by_prefix(spec, limit=1)), None) if len(spec) >= 6 else None
        if other is not None:
            raise unmet(dep, f"run {other.short_id} is a run of {other.opspec}, not {dep.spec}") from None
        raise unmet(dep, f"no run '{spec}': {e}") from None
    if len(chosen) != 1:
        raise unmet(dep, f"'{spec}' selects {len(chosen)} runs; name one")
    run = chosen[0]
    if run.status != "completed":
        raise unmet(dep, f"run {run.short_id} is {run.status}")
    return run


def _select_files(run: Run, patterns: list[str]) -> list[str]:
    """Paths of an upstream run to provide: those selected, or by default all
    it holds but its own source code (the new run has its own) and `.trk`."""
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


def resolve_file(dep: Dependency, project: Project) -> Resolved:
    """The project file or directory `dep` names; it must be inside the project."""
    root = os.path.realpath(project.dir)
    if not is_inside(root, dep.spec):
        raise DependencyError(
            f"dependency '{dep.name}' of {project.filename} is outside the project directory {root}",
            "Dependencies may only name files inside the project; copy the file into the project.")
    path = os.path.realpath(os.path.join(root, dep.spec))
    if not os.path.exists(path):
        raise unmet(dep, f"{dep.spec} does not exist in {root}")
    if skip_reason(path, root) == "special":  # a FIFO would block the copy forever
        raise unmet(dep, f"{dep.spec} is not a regular file or directory")
    # Hashed on demand: a copied file is hashed as it is copied.
    return Resolved(dep, "", source=path)
