"""Placing resolved dependencies into a new run, and recording how they arrived.

Every destination stays inside the run directory and out of its `.trk`
metadata: `target-path` and each file's path are checked with
`fsutil.is_inside`, and nothing is written through a link already there.
As in Guild, a path lands under its base name (after `rename`) in the
dependency's `target-path`, and a destination that exists is kept with a
warning (unless it is the run's own copy of that project file, or
`replace-existing: yes`).

Upstream runs are read-only to downstream runs. By default (`target-type:
copy`) the run gets its own copy of each upstream file, so a program that
appends to or rewrites its input changes its own run only. Copies are
copy-on-write clones where the file system supports them (btrfs, XFS), so
they cost no time or space until written; elsewhere they are plain copies.
Linking to a file made read-only would not do: chmod changes the upstream
run, and root writes through it anyway; a hard link shares the very bytes.
`target-type: link` gives the old symlink to the upstream file, for inputs
too large to copy, and with it the duty not to write to them. Archives are
unpacked (and `post-process:` run) in a staging directory inside the run,
so their members are always copies. The run's `deps` attr records each
dependency's `target_type` and the digest of what the run received.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable

from ..errors import DependencyError
from ..fsutil import atomic_write, copy_hashed, is_inside
from ..project.loader import OpDef, Project
from ..store import Run
from .deps_resolve import Resolved, describe_skip, nothing_resolved
from .deps_select import dest_rel, list_tree, select_paths
from .deps_url import UNVERIFIED_SCHEMES, scheme, url_basename

Say = Callable[[str], None]


class DepsPlan:
    """An operation's dependencies, resolved; `apply` places them in a run."""

    def __init__(self, op: OpDef, project: Project, resolved: list[Resolved], flags: dict[str, Any] | None = None):
        self.op = op
        self.project = project
        self.resolved = resolved
        self.flags = flags or {}

    def label_parts(self) -> list[tuple[str, str]]:
        """(dependency name, run id) of each upstream run, for the default label."""
        return [(r.dep.resolving_name, r.run.id) for r in self.resolved if r.run is not None]

    def digests(self) -> dict[str, dict[str, Any]]:
        """What identifies each dependency's input, for `--needed`."""
        return {r.dep.name: {"run": r.run.id if r.run else None, "sha256": r.digest(self.project.dir)}
                for r in self.resolved if r.skipped is None}

    def apply(self, run: Run, say: Say) -> None:
        """Copy or link every dependency into `run`; record them in attr `deps`."""
        records = []
        entry = None
        for r in self.resolved:
            if r.dep.entry != entry:  # Guild names each `requires:` entry once
                entry = r.dep.entry
                say(f"Resolving {r.dep.resource}")
            if r.skipped:
                say(r.skipped)
                continue
            if r.run is not None:
                say(f"Using run {r.run.id} for {r.dep.resolving_name}")
            for note in r.dep.notes + r.notes:
                say(note)
            try:
                records.append(self._place(run, r, say))
            except OSError as e:  # a full disk, a file where a directory must go...
                where = f": {e.filename}" if e.filename else ""
                raise DependencyError(f"could not place {r.dep.name} in run {run.short_id}: "
                                      f"{e.strerror or e}{where}") from None
            except DependencyError:
                if not r.dep.optional:
                    raise
                say(f"Could not resolve {r.dep.resolving_name} - skipping because dependency is optional")
        run.write_attr("deps", records)

    def _place(self, run: Run, r: Resolved, say: Say) -> dict:
        kind = r.dep.kind
        if kind == "module":
            return {"name": r.dep.name, "kind": "module", "sha256": r.digest(self.project.dir)}
        _check_target(run, r)
        if kind == "operation":
            return self._operation(run, r, say)
        if kind == "config":
            return self._config(run, r, say)
        if r.archive or r.dep.post_process:
            return self._staged(run, r, say)
        if kind == "url":
            return self._url(run, r, say)
        return self._file(run, r, say)

    def _claim(self, run: Run, dest: str, r: Resolved, say: Say, origin: str) -> bool:
        """Whether `dest` may be written: free, or to be replaced. As in Guild,
        an existing path is kept with a warning; but the run's own source
        copy of a project file is that file's place (Guild leaves it out of
        the source), and `replace-existing: yes` replaces anything."""
        if not os.path.lexists(dest):
            return True
        rel = os.path.relpath(dest, run.dir)
        if r.dep.replace_existing or (r.dep.kind != "operation" and _own_source(run, rel)):
            if os.path.isdir(dest) and not os.path.islink(dest):
                shutil.rmtree(dest)
            else:
                os.unlink(dest)
            return True
        # The run's own source, or an earlier dependency's file: not replaced.
        say(f"WARNING: {rel} already exists, not {'linking' if r.dep.link else 'copying'} it from {origin}")
        return False

    def _operation(self, run: Run, r: Resolved, say: Say) -> dict:
        placed = []
        for rel in r.files:
            to = dest_rel(r.dep, rel.replace(os.sep, "/"), self.flags, keep_dirs=r.whole)
            dest = os.path.join(run.dir, to)
            _check_dest(run, dest, r)  # first: nothing is removed through a link leading out
            if not self._claim(run, dest, r, say, f"run {r.run.short_id}"):
                continue
            src = os.path.join(r.run.dir, rel)
            if r.dep.link:
                _symlink(os.path.realpath(src), dest)
            else:
                r.file_digests[rel] = copy_hashed(src, dest, r.run.dir, r.allowed,
                                                  _skipped(say, run, dest, f"run {r.run.short_id}"))
            placed.append(to)
        record = {"name": r.dep.name, "kind": "operation", "run": r.run.id, "sha256": r.digest(self.project.dir),
                  "files": placed, "target_type": r.dep.target_type}
        if r.dep.alias:  # the dependency's `name:`, by which compare columns reach the run (`=model.lr`)
            record["alias"] = r.dep.alias
        return record

    def _file(self, run: Run, r: Resolved, say: Say) -> dict:
        spec = os.path.normpath(r.dep.spec)
        if r.dep.select and os.path.isdir(r.source):
            chosen = select_paths(list_tree(r.source), r.dep.select)
            items = [(os.path.join(r.source, p), p, os.path.join(spec, p)) for p in chosen]
            _say_empty(r, items, say)
        else:
            name = os.path.basename(os.path.abspath(os.path.join(self.project.dir, spec)))
            items = [(r.source, name, spec)]
        placed, digest = [], None
        for src, rel, origin in items:
            to = dest_rel(r.dep, rel, self.flags, origin_rel=origin)
            dest = os.path.join(run.dir, to)
            _check_dest(run, dest, r)  # first: nothing is removed through a link leading out
            if not self._claim(run, dest, r, say, "the project"):
                continue
            if r.dep.link:
                _symlink(src, dest)
            else:
                # The digest of what the run received; links out of the project are left out.
                digest = copy_hashed(src, dest, self.project.dir, (), _skipped(say, run, dest, "the project"))
            placed.append(to)
        if digest and len(items) == 1 and not r.dep.select:
            r.sha256 = digest  # the whole source was copied: its digest is the copy's
        record = {"name": r.dep.name, "kind": "file", "path": placed[0] if placed else None, "files": placed,
                  "sha256": r.digest(self.project.dir)}
        if r.dep.link:
            record["source"] = r.source  # where the links may lead (see runlinks)
        record.update(link=r.dep.link, target_type=r.dep.target_type)
        return record

    def _url(self, run: Run, r: Resolved, say: Say) -> dict:
        if scheme(r.dep.spec) in UNVERIFIED_SCHEMES and not r.dep.sha256:
            say(f"WARNING: {r.dep.spec} is fetched over plain {scheme(r.dep.spec)} without a sha256, so its "
                f"content is not verified; add 'sha256: {r.sha256}' to the dependency to pin it")
        to = dest_rel(r.dep, url_basename(r.dep.spec), self.flags)
        dest = os.path.join(run.dir, to)
        placed = []
        digest = r.sha256  # the cache entry was verified as it was resolved
        _check_dest(run, dest, r)
        if self._claim(run, dest, r, say, r.dep.spec):
            if r.dep.link:
                _symlink(r.source, dest)
            else:
                digest = copy_hashed(r.source, dest)
            placed.append(to)
        return {"name": r.dep.name, "kind": "url", "url": r.dep.spec, "sha256": digest,
                "path": placed[0] if placed else None, "files": placed, "target_type": r.dep.target_type}

    def _config(self, run: Run, r: Resolved, say: Say) -> dict:
        from .deps_config import render_config

        arg_names = {name: fd.arg_name for name, fd in self.op.flags.items() if fd.arg_name}
        text = render_config(r.source, r.dep.params, self.flags, arg_names)
        spec = os.path.normpath(r.dep.spec)
        to = dest_rel(r.dep, os.path.basename(spec), self.flags, origin_rel=spec)
        dest = os.path.join(run.dir, to)
        placed = []
        _check_dest(run, dest, r)
        if self._claim(run, dest, r, say, "the project"):
            atomic_write(dest, text)  # a regular file, whatever target-type says: it is the run's own
            placed.append(to)
        return {"name": r.dep.name, "kind": "config", "path": placed[0] if placed else None, "files": placed,
                "sha256": r.digest(self.project.dir), "target_type": r.dep.target_type}

    def _staged(self, run: Run, r: Resolved, say: Say) -> dict:
        """An archive unpacked, or a source given a `post-process:`, in a
        staging directory inside the run; then its selected paths are copied into place."""
        import tempfile

        from .deps_archive import unpack

        url = r.dep.kind == "url"
        spec = "" if url else os.path.normpath(r.dep.spec)
        name = url_basename(r.dep.spec) if url else os.path.basename(os.path.abspath(
            os.path.join(self.project.dir, spec)))
        stage = tempfile.mkdtemp(prefix="deps-", dir=os.path.join(run.dir, ".trk"))
        placed = []
        try:
            base = stage
            if r.archive:
                say(f"Unpacking {r.dep.spec}")
                unpack(r.source, r.archive, stage)
                paths = list_tree(stage)
                items = (select_paths(paths, r.dep.select) if r.dep.select
                         else sorted({p.split("/")[0] for p in paths if not p.startswith(".guild")}))
            else:
                copy_hashed(r.source, os.path.join(stage, name), None if url else self.project.dir)
                if r.dep.select and os.path.isdir(os.path.join(stage, name)):
                    base = os.path.join(stage, name)
                    items = select_paths(list_tree(base), r.dep.select)
                else:
                    items = [name]
            _say_empty(r, items, say)
            if r.dep.post_process:
                from .deps_post import post_process

                post_process(r.dep.post_process, stage, self.project.dir, r.dep.resource, say)
            origin = f"{r.dep.spec}" if url else f"the project's {name}"
            for p in items:
                src = os.path.join(base, p)
                if not os.path.lexists(src):
                    continue  # removed by post-process
                to = dest_rel(r.dep, p, self.flags, origin_rel=os.path.join(os.path.dirname(spec), p))
                dest = os.path.join(run.dir, to)
                _check_dest(run, dest, r)  # first: nothing is removed through a link leading out
                if not self._claim(run, dest, r, say, origin):
                    continue
                copy_hashed(src, dest, stage, (), _skipped(say, run, dest, "the archive"))
                placed.append(to)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        record = {"name": r.dep.name, "kind": r.dep.kind, "path": placed[0] if placed else None, "files": placed,
                  "sha256": r.digest(self.project.dir), "target_type": r.dep.target_type}
        if url:
            record["url"] = r.dep.spec
        return record


def _say_empty(r: Resolved, items: list, say: Say) -> None:
    if not items:
        note = nothing_resolved(r.dep)
        if note:
            say(note)


def _own_source(run: Run, rel: str) -> bool:
    """Whether `rel` in the run is its own source copy (a file, or a directory of nothing else)."""
    source = set(run.get("sourcecode_files") or [])
    if rel in source:
        return True
    full = os.path.join(run.dir, rel)
    if not os.path.isdir(full) or os.path.islink(full):
        return False
    files = [os.path.relpath(os.path.join(d, f), run.dir) for d, _, fs in os.walk(full) for f in fs]
    return bool(files) and all(f in source for f in files)


def _check_target(run: Run, r: Resolved) -> None:
    """The dependency's `target-path` may not leave the run directory nor enter its `.trk` metadata."""
    target = r.dep.target_path
    where = f"target-path '{target}' of {r.dep.name}"
    if not is_inside(run.dir, target):
        raise DependencyError(f"{where} is outside the run directory",
                              "target-path is relative to the run directory: drop any leading '/' and '..'.")
    if _in_meta(run, os.path.realpath(os.path.join(run.dir, target))):
        raise DependencyError(f"{where} is inside the run's .trk metadata directory",
                              "Choose another target-path: .trk holds the run's attrs and output.")


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


def _skipped(say: Say, run: Run, dest: str, where: str) -> Callable[[str, str], None]:
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
