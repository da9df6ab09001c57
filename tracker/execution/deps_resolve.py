"""Resolving `operation:`, `file:`, `config:` and `module:` dependencies (URLs: `deps_url`).

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
from typing import Any

from ..errors import DependencyError
from ..fsutil import hash_file, hash_path, is_inside, skip_reason
from ..project.loader import OpDef, Project
from ..store import Run, RunStore
from .deps_select import META_DIRS, list_tree, select_paths
from .deps_spec import Dependency


@dataclass
class Resolved:
    """A dependency resolved: what the run gets, and notes to say when it does."""

    dep: Dependency
    sha256: str
    run: Run | None = None  # operation deps
    source: str | None = None  # file, config and url deps: the path to place (or unpack)
    files: list[str] = field(default_factory=list)  # operation deps: selected paths in the run
    whole: bool = False  # operation deps: nothing selected, each file lands where it was
    allowed: list[str] = field(default_factory=list)  # operation deps: where the upstream run's links may lead
    file_digests: dict[str, str] = field(default_factory=dict)  # operation deps: per selected path
    notes: list[str] = field(default_factory=list)  # warnings for the run's output
    archive: str | None = None  # file and url deps: the archive type to unpack, if any
    skipped: str | None = None  # why nothing is placed (optional and unresolved, resolved already)

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
            else:  # a module: its name is all there is
                self.sha256 = hashlib.sha256(self.dep.name.encode()).hexdigest()
        return self.sha256


def operation_digest(run_id: str, files: list[tuple[str, str]]) -> str:
    """What identifies an upstream run's input: its id and each selected file's digest."""
    h = hashlib.sha256(run_id.encode())
    for rel, digest in files:
        h.update(b"\0" + rel.encode() + b"\0" + digest.encode())
    return h.hexdigest()


def unmet(dep: Dependency, reason: str) -> DependencyError:
    """The error for a dependency that cannot be resolved, with the reason."""
    where = dep.resource if dep.resource and dep.resource != dep.resolving_name else dep.short
    return DependencyError(
        f"run failed because a dependency was not met: could not resolve '{dep.resolving_name}' in {where} "
        f"({reason})", dep.help)


def nothing_resolved(dep: Dependency) -> str | None:
    """Guild's answer when a source resolves to nothing: a warning (None
    with `warn-if-empty: no`); `fail-if-empty: yes` fails the run."""
    if dep.fail_if_empty:
        raise unmet(dep, f"nothing resolved for {dep.resolving_name}")
    return f"WARNING: nothing resolved for {dep.resolving_name}" if dep.warn_if_empty else None


def interpolated(dep: Dependency, text: str, flags: dict[str, Any]) -> str:
    """`text` with `${flag}` references filled; an unknown one is an error, as in Guild."""
    from ..project.resolve import FLAG_REF, interpolate

    out = interpolate(text, flags)
    missing = FLAG_REF.search(out)
    if missing:
        raise unmet(dep, f"cannot resolve {text!r}: undefined reference '{missing.group(1)}'")
    return out


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
    given = next((dep_specs[n] for n in dep.run_names() if n in dep_specs), None)
    if given is not None:
        run = _named_run(dep, store, ops, given)
    else:
        newest = store.newest(ops, "completed")
        if not newest:
            raise unmet(dep, "no suitable run")
        run = newest[0]
    allowed = run_roots(store, run)
    files, notes = [], []
    for rel in _select_files(run, dep):
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
    if not files:
        note = nothing_resolved(dep)
        notes += [note] if note else []
    return Resolved(dep, "", run=run, files=files, whole=not dep.select, allowed=allowed, notes=notes)


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


def _select_files(run: Run, dep: Dependency) -> list[str]:
    """Paths of an upstream run to provide: those `select` matches (files or
    directories, anywhere), or by default each file the run generated (as in
    Guild: not its source code, not what its own dependencies placed)."""
    if dep.select:
        return [p.replace("/", os.sep) for p in select_paths(list_tree(run.dir), dep.select)]
    from ..metrics.events import dependency_paths

    source = set(run.get("sourcecode_files") or [])
    placed = dependency_paths(run.dir) or set()
    names = []
    for dirpath, dirnames, filenames in os.walk(run.dir):
        rel_dir = os.path.relpath(dirpath, run.dir)
        if rel_dir != "." and _under(rel_dir, placed):
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not (rel_dir == "." and d in META_DIRS))
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            if rel not in source and rel not in placed:
                names.append(rel)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return names


def _under(rel: str, placed: set[str]) -> bool:
    while rel:
        if rel in placed:
            return True
        rel = os.path.dirname(rel)
    return False


def project_path(dep: Dependency, project: Project) -> str:
    """The real path of the project file `dep` names; it must be inside the project and exist."""
    root = os.path.realpath(project.dir)
    spec = dep.spec
    if not is_inside(root, spec):
        raise DependencyError(
            f"dependency '{dep.name}' of {project.filename} is outside the project directory {root}",
            "Dependencies may only name files inside the project; copy the file into the project.")
    path = os.path.realpath(os.path.join(root, spec))
    if not os.path.exists(path):
        raise unmet(dep, f"{spec} does not exist in {root}")
    if skip_reason(path, root) == "special":  # a FIFO would block the copy forever
        raise unmet(dep, f"{spec} is not a regular file or directory")
    return path


def resolve_file(dep: Dependency, project: Project) -> Resolved:
    """The project file or directory `dep` names (an archive is unpacked when placed)."""
    from .deps_archive import archive_type

    path = project_path(dep, project)
    if dep.sha256 and os.path.isfile(path):
        actual = hash_file(path)
        if actual != dep.sha256:
            raise unmet(dep, f"'{dep.spec}' has an unexpected sha256 (expected {dep.sha256} but got {actual})")
    archive = archive_type(path, dep.archive_type) if dep.unpack and os.path.isfile(path) else None
    # Hashed on demand: a copied file is hashed as it is copied.
    return Resolved(dep, dep.sha256 if dep.sha256 and os.path.isfile(path) else "", source=path, archive=archive)


def resolve_config(dep: Dependency, project: Project) -> Resolved:
    """The project config file `dep` names (rewritten with flag values when placed)."""
    from .deps_config import config_format

    path = project_path(dep, project)
    if not os.path.isfile(path) or config_format(path) is None:
        raise unmet(dep, f"unsupported file type for '{dep.spec}': a config is a .yml, .yaml, .json, .ini or "
                         ".cfg file")
    return Resolved(dep, "", source=path)


def resolve_module(dep: Dependency, project: Project) -> Resolved:
    """Check that Python module `dep.spec` is importable by the run's Python
    (found without running it, in a child process started in the project)."""
    import subprocess
    import sys

    code = ("import importlib.util, sys\n"
            "try:\n    found = importlib.util.find_spec(sys.argv[1]) is not None\n"
            "except Exception:\n    found = False\n"
            "sys.exit(0 if found else 1)\n")
    try:
        p = subprocess.run([sys.executable, "-c", code, dep.spec], cwd=project.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        ok = p.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        raise unmet(dep, f"No module named '{dep.spec}'")
    return Resolved(dep, "")
