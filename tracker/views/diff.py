"""What differs between two runs: flags, source files, dependencies, scalars."""

from __future__ import annotations

import difflib
import os

from ..project.flags import format_value
from ..store import Run, RunStore


def _source_files(run: Run) -> list[str]:
    files = run.get("sourcecode_files")
    return list(files) if isinstance(files, list) else []


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _source_diff(a: Run, b: Run, rel: str) -> list[str]:
    """Unified diff of one source file; one line for binary files."""
    xa, xb = _read(os.path.join(a.dir, rel)), _read(os.path.join(b.dir, rel))
    if xa == xb:
        return []
    binary = [f"Binary files {a.short_id}/{rel} and {b.short_id}/{rel} differ"]
    if any(x and b"\0" in x[:8192] for x in (xa, xb)):  # git's test for binary
        return binary
    try:
        la = xa.decode("utf-8").splitlines(keepends=True) if xa is not None else []
        lb = xb.decode("utf-8").splitlines(keepends=True) if xb is not None else []
    except UnicodeDecodeError:
        return binary
    return [line.rstrip("\n") for line in difflib.unified_diff(
        la, lb, f"{a.short_id}/{rel}" if xa is not None else "/dev/null",
        f"{b.short_id}/{rel}" if xb is not None else "/dev/null")]


def diff_runs(store: RunStore, a: Run, b: Run) -> list[str]:
    """Lines describing how run `b` differs from run `a`."""
    out = [f"--- {a.short_id} {a.opspec}", f"+++ {b.short_id} {b.opspec}"]
    upstream = upstream_flag_diff(store, a, b)
    if upstream:
        out += ["upstream flags:"] + upstream
    flags = []
    for name in sorted(set(a.flags) | set(b.flags)):
        va, vb = a.flags.get(name), b.flags.get(name)
        if va != vb or name not in a.flags or name not in b.flags:
            flags.append(f"  {name}: {format_value(va) if name in a.flags else '(none)'} -> "
                         f"{format_value(vb) if name in b.flags else '(none)'}")
    out += ["flags:"] + (flags or ["  (same)"])
    src = []
    if a.get("sourcecode_digest") != b.get("sourcecode_digest"):
        for rel in sorted(set(_source_files(a)) | set(_source_files(b))):
            src += _source_diff(a, b, rel)
    out += ["source:"] + ([f"  {l}" for l in src] or ["  (same)"])
    deps = []
    da = {d.get("name"): d for d in a.get("deps") or []}
    db = {d.get("name"): d for d in b.get("deps") or []}
    for name in sorted(set(da) | set(db)):
        x, y = da.get(name) or {}, db.get(name) or {}
        if (x.get("run"), x.get("sha256")) != (y.get("run"), y.get("sha256")):
            deps.append(f"  {name}: {_dep(x)} -> {_dep(y)}")
    out += ["dependencies:"] + (deps or ["  (same)"])
    scalars = []
    try:
        from ..display import format_cell
        from .info import run_scalars

        sa, sb = run_scalars(a, store), run_scalars(b, store)
        for key in sorted(set(sa) | set(sb)):
            x, y = sa.get(key), sb.get(key)
            vx = format_cell(x.last, "scalar") if x else "(none)"
            vy = format_cell(y.last, "scalar") if y else "(none)"
            if vx != vy:
                p, t = key
                scalars.append(f"  {p + '#' if p else ''}{t}: {vx} -> {vy}")
    except Exception as e:  # scalars are best effort here: the rest is still useful
        scalars.append(f"  (scalars unavailable: {e})")
    out += ["scalars:"] + (scalars or ["  (same)"])
    return out


def _dep(d: dict) -> str:
    if not d:
        return "(none)"
    if d.get("run"):
        return f"run {d['run'][:8]}"
    return f"sha256 {str(d.get('sha256'))[:12]}"


def upstream_flag_diff(store: RunStore, a: Run, b: Run) -> list[str]:
    """`  prep.k: 2 -> 3` for each flag of an upstream run (found by
    dependency name, through every `requires: operation`) that differs."""
    from ..store.record import RunRecord
    from .lineage import Lineage, dep_names

    lineage = Lineage(store)

    def by_name(run: Run) -> dict[str, RunRecord]:
        out: dict[str, RunRecord] = {}
        for _, up in lineage.tree(RunRecord.of(run)):
            if up.record is not None:
                name = up.alias or min(dep_names(up.name), key=len)  # `operation:m:prep` -> `prep`
                out.setdefault(name, up.record)
        return out

    ua, ub = by_name(a), by_name(b)
    lines = []
    for name in sorted(set(ua) | set(ub)):
        fa = ua[name].flags if name in ua else {}
        fb = ub[name].flags if name in ub else {}
        for flag in sorted(set(fa) | set(fb)):
            if fa.get(flag) != fb.get(flag) or (flag in fa) != (flag in fb):
                lines.append(f"  {name}.{flag}: {format_value(fa[flag]) if flag in fa else '(none)'} -> "
                             f"{format_value(fb[flag]) if flag in fb else '(none)'}")
    return lines
