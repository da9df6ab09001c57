"""Placing resolved dependencies into a new run, and recording how they arrived.

Every destination stays inside the run directory and out of its `.trk`
metadata: `target-path` and each file's path are checked with
`fsutil.is_inside`, and nothing is written through a link already there.

Upstream runs are read-only to downstream runs. By default (`target-type:
copy`) the run gets its own copy of each upstream file, so a program that
appends to or rewrites its input changes its own run only. Copies are
copy-on-write clones where the file system supports them (btrfs, XFS), so
they cost no time or space until written; elsewhere they are plain copies.
Linking to a file made read-only would not do: chmod changes the upstream
run, and root writes through it anyway; a hard link shares the very bytes.
`target-type: link` gives the old symlink to the upstream file, for inputs
too large to copy, and with it the duty not to write to them. The run's
`deps` attr records each dependency's `target_type` and the digest of what
the run received.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable

from ..errors import DependencyError
from ..fsutil import copy_hashed, is_inside
from ..project.loader import OpDef, Project
from ..store import Run
from .deps_resolve import Resolved, describe_skip
from .deps_url import UNVERIFIED_SCHEMES, scheme, url_basename


class DepsPlan:
    """An operation's dependencies, resolved; `apply` places them in a run."""

    def __init__(self, op: OpDef, project: Project, resolved: list[Resolved]):
        self.op = op
        self.project = project
        self.resolved = resolved

    def label_parts(self) -> list[tuple[str, str]]:
        """(dependency name, run id) of each upstream run, for the default label."""
        return [(r.dep.name, r.run.id) for r in self.resolved if r.run is not None]

    def digests(self) -> dict[str, dict[str, Any]]:
        """What identifies each dependency's input, for `--needed`."""
        return {r.dep.name: {"run": r.run.id if r.run else None, "sha256": r.digest(self.project.dir)}
                for r in self.resolved}

    def apply(self, run: Run, say: Callable[[str], None]) -> None:
        """Copy or link every dependency into `run`; record them in attr `deps`."""
        records = []
        for r in self.resolved:
            say(f"Resolving {r.dep.name}")
            if r.run is not None:
                say(f"Using run {r.run.id} for {r.dep.name}")
            for note in r.notes:
                say(note)
            try:
                target_dir = _target_dir(run, r)
                if r.run is not None:
                    records.append(self._operation(run, r, target_dir, say))
                elif r.dep.kind == "url":
                    records.append(self._url(run, r, target_dir, say))
                else:
                    records.append(self._file(run, r, target_dir, say))
            except OSError as e:  # a full disk, a file where a directory must go...
                where = f": {e.filename}" if e.filename else ""
                raise DependencyError(f"could not place {r.dep.name} in run {run.short_id}: "
                                      f"{e.strerror or e}{where}") from None
        run.write_attr("deps", records)

    def _operation(self, run: Run, r: Resolved, target_dir: str, say: Callable[[str], None]) -> dict:
        placed = []
        for rel in r.files:
            dest = os.path.join(target_dir, rel)
            if os.path.lexists(dest):
                # The run's own source, or an earlier dependency's file: not replaced.
                say(f"WARNING: {os.path.relpath(dest, run.dir)} already exists, "
                    f"not {'linking' if r.dep.link else 'copying'} it from run {r.run.short_id}")
                continue
            _check_dest(run, dest, r)
            src = os.path.join(r.run.dir, rel)
            if r.dep.link:
                _symlink(os.path.realpath(src), dest)
            else:
                r.file_digests[rel] = copy_hashed(src, dest, r.run.dir, r.allowed,
                                                  _skipped(say, run, dest, f"run {r.run.short_id}"))
            placed.append(os.path.relpath(dest, run.dir))
        return {"name": r.dep.name, "kind": "operation", "run": r.run.id, "sha256": r.digest(self.project.dir),
                "files": placed, "target_type": r.dep.target_type}

    def _url(self, run: Run, r: Resolved, target_dir: str, say: Callable[[str], None]) -> dict:
        if scheme(r.dep.spec) in UNVERIFIED_SCHEMES and not r.dep.sha256:
            say(f"WARNING: {r.dep.spec} is fetched over plain {scheme(r.dep.spec)} without a sha256, so its "
                f"content is not verified; add 'sha256: {r.sha256}' to the dependency to pin it")
        dest = os.path.join(target_dir, url_basename(r.dep.spec))
        _check_dest(run, dest, r)
        if r.dep.link:
            _symlink(r.source, dest)
            digest = r.sha256  # the cache entry was verified as it was resolved
        else:
            digest = copy_hashed(r.source, dest)
        return {"name": r.dep.name, "kind": "url", "url": r.dep.spec, "sha256": digest,
                "path": os.path.relpath(dest, run.dir), "target_type": r.dep.target_type}

    def _file(self, run: Run, r: Resolved, target_dir: str, say: Callable[[str], None]) -> dict:
        dest = os.path.join(target_dir, os.path.basename(r.source.rstrip(os.sep)))
        _check_dest(run, dest, r)
        record = {"name": r.dep.name, "kind": "file", "path": os.path.relpath(dest, run.dir)}
        if r.dep.link:
            _symlink(r.source, dest)
            record["sha256"] = r.digest(self.project.dir)
            record["source"] = r.source  # where the link may lead (see runlinks)
        else:
            # The digest of what the run received; links out of the project are left out.
            record["sha256"] = copy_hashed(r.source, dest, self.project.dir, (),
                                           _skipped(say, run, dest, "the project"))
        record.update(link=r.dep.link, target_type=r.dep.target_type)
        return record


def _target_dir(run: Run, r: Resolved) -> str:
    """The dependency's `target-path` in the run, made; it may not leave the
    run directory nor enter its `.trk` metadata."""
    target = r.dep.target_path
    where = f"target-path '{target}' of {r.dep.name}"
    if not is_inside(run.dir, target):
        raise DependencyError(f"{where} is outside the run directory",
                              "target-path is relative to the run directory: drop any leading '/' and '..'.")
    path = os.path.realpath(os.path.join(run.dir, target))
    if _in_meta(run, path):
        raise DependencyError(f"{where} is inside the run's .trk metadata directory",
                              "Choose another target-path: .trk holds the run's attrs and output.")
    os.makedirs(path, exist_ok=True)
    return path


def _check_dest(run: Run, dest: str, r: Resolved) -> None:
    """Refuse a destination whose directory leads out of the run (through a
    link an earlier dependency placed) or that lands in `.trk`."""
    parent = os.path.dirname(dest)
    rel = os.path.relpath(dest, run.dir)
    if not is_inside(run.dir, parent):
        raise DependencyError(
            f"cannot place '{rel}' of {r.dep.name}: '{os.path.relpath(parent, run.dir)}' leads outside the run "
            "directory", "An earlier dependency placed a link there; give this one another target-path.")
    if _in_meta(run, os.path.join(os.path.realpath(parent), os.path.basename(dest))):
        raise DependencyError(f"cannot place '{rel}' of {r.dep.name} in the run's .trk metadata directory",
                              "Give the dependency a target-path.")
    os.makedirs(parent, exist_ok=True)


def _in_meta(run: Run, path: str) -> bool:
    return is_inside(os.path.join(run.dir, ".trk"), path)


def _skipped(say: Callable[[str], None], run: Run, dest: str, where: str) -> Callable[[str, str], None]:
    """A `skipped` callback for copy_hashed: one warning line per file left out."""
    base = os.path.relpath(dest, run.dir)

    def warn(rel: str, why: str) -> None:
        path = os.path.join(base, rel) if rel else base
        say(f"WARNING: {path} {describe_skip(why, where)}; not copied")

    return warn


def _symlink(target: str, link: str) -> None:
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.lexists(link):
        if os.path.isdir(link) and not os.path.islink(link):
            shutil.rmtree(link)
        else:
            os.unlink(link)
    os.symlink(target, link)
