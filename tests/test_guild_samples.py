"""Every operation of every Guild sample project runs without a Python
traceback in trk's output (issue 11): a project trk cannot run must fail
with a message, never a crash. Upstream operations run first (alphabetical
order puts `prepare` before the operations that require it only by luck,
so each project's runs go in two rounds: the failures of the first round
are tried again once upstream runs exist)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import SAMPLES


def trk_traceback(text: str) -> bool:
    """A traceback through trk's own code (a program's own traceback, from an
    operation meant to fail, is the program's business)."""
    return any("/tracker/" in tb for tb in text.split("Traceback (most recent call last):")[1:])

PROJECTS = sorted({p.parent for pattern in ("guild.yml", "trk.yml")
                   for p in (SAMPLES / "guild").rglob(pattern)})


@pytest.mark.parametrize("project", PROJECTS, ids=[str(p.relative_to(SAMPLES)) for p in PROJECTS])
def test_every_operation_runs_without_a_traceback(trk, tmp_path, project):
    proj = tmp_path / project.name
    shutil.copytree(project, proj, symlinks=True)
    listing = trk("operations", "-a", cwd=proj).stdout
    ops = [line.split()[0] for line in listing.splitlines() if line.strip()]
    assert ops, listing
    failed = []
    for op in ops:
        p = trk("run", op, "-y", cwd=proj, check=False, timeout=120)
        assert not trk_traceback(p.stdout + p.stderr), f"trk run {op}:\n{p.stdout}\n{p.stderr}"
        if p.returncode != 0:
            failed.append(op)
            assert p.stderr.strip() or p.stdout.strip(), f"trk run {op} failed without a word"
    for op in failed:
        p = trk("run", op, "-y", cwd=proj, check=False, timeout=120)
        assert not trk_traceback(p.stdout + p.stderr), f"trk run {op}:\n{p.stdout}\n{p.stderr}"
