"""Long work draws a progress bar on a terminal (stderr a pseudo-terminal)
and nothing when stderr is not one: source snapshots of many files, URL
downloads, run-index rebuilds and scalar indexing of many runs."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest


def stderr_on_terminal(trk, *args, cwd=None) -> tuple[int, str, str]:
    """Run trk with stderr on a pseudo-terminal; (exit code, stdout, what stderr drew)."""
    return trk.on_terminal(*args, cwd=cwd, stdout_too=False, timeout=120)


def assert_bar(drawn: str, label: str) -> None:
    assert label in drawn, drawn
    assert "100%" in drawn and "[#" in drawn, drawn  # click's bar, drawn to its end


def test_big_source_snapshot_shows_a_bar_on_a_terminal_only(trk, tmp_path):
    proj = tmp_path / "p"
    (proj / "src").mkdir(parents=True)
    for i in range(600):
        (proj / "src" / f"m{i}.py").write_text(f"x = {i}\n")
    (proj / "trk.yml").write_text("op:\n  exec: python -c pass\n  sourcecode:\n    - 'src/*'\n"
                                  "small:\n  exec: python -c pass\n  sourcecode:\n    - 'src/m1.py'\n")
    code, _, drawn = stderr_on_terminal(trk, "run", "op", "-y", cwd=proj)
    assert code == 0
    assert_bar(drawn, "Copying source files")
    assert len(os.listdir(trk.home / "runs" / os.listdir(trk.home / "runs")[0] / "src")) == 600
    p = trk("run", "op", "-y", cwd=proj)  # stderr a pipe: no bar
    assert p.stderr == ""
    code, _, drawn = stderr_on_terminal(trk, "run", "small", "-y", cwd=proj)  # small work: no bar
    assert code == 0 and "Copying" not in drawn


def test_download_shows_a_bar_on_a_terminal_only(trk, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "big.bin").write_bytes(os.urandom(12 * 2**20))
    (proj / "trk.yml").write_text("op:\n  exec: python -c pass\n  requires:\n    - url: file:big.bin\n")
    code, _, drawn = stderr_on_terminal(trk, "run", "op", "-y", cwd=proj)
    assert code == 0
    assert_bar(drawn, "Downloading big.bin")
    shutil.rmtree(trk.home / "cache")  # downloaded again, to a pipe
    p = trk("run", "op", "-y", cwd=proj)
    assert "Downloading" not in p.stderr and "\r" not in p.stderr


@pytest.fixture
def many_runs(trk, tmp_path):
    """1,001 finished runs with scalars: one real run, copied under new ids."""
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("op:\n  exec: python log.py\n")
    (proj / "log.py").write_text("print('loss: 0.5')\n")
    trk("run", "op", "-y", cwd=proj)
    runs = trk.home / "runs"
    (first,) = os.listdir(runs)
    for _ in range(1000):
        new = uuid.uuid4().hex
        shutil.copytree(runs / first, runs / new)
        (runs / new / ".trk" / "attrs" / "id").write_text(f'"{new}"\n')
    return proj


def test_reindex_and_scalar_indexing_of_many_runs_show_bars(trk, many_runs):
    code, out, drawn = stderr_on_terminal(trk, "check", "--reindex")
    assert code == 0 and out.startswith("1001 run(s), 0 deleted")
    assert_bar(drawn, "Reading runs")
    code, out, drawn = stderr_on_terminal(trk, "compare", "-t", "-cc", "#loss")
    assert code == 0 and len(out.splitlines()) == 1002
    assert_bar(drawn, "Indexing scalars")
    code, out, drawn = stderr_on_terminal(trk, "compare", "-t", "-cc", "#loss")
    assert "Indexing" not in drawn  # indexed: nothing to do
    # Not on a terminal: nothing on stderr.
    p = trk("check", "--reindex")
    assert p.stderr == "" and p.stdout.startswith("1001 run(s)")
    os.remove(trk.home / "index" / "scalars.sqlite")
    p = trk("compare", "-t", "-cc", "#loss")
    assert p.stderr == "" and len(p.stdout.splitlines()) == 1002
