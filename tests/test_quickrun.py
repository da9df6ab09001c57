"""`trk run`'s click-free path for its plain form (issue 10's start-up bar),
and `tracker.records`, the data classes that keep `inspect` off that path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tracker.cli.quickrun import parse
from tracker.records import field, fields, record, replace


def _imported(trk, project, *args) -> tuple[subprocess.CompletedProcess, set[str]]:
    env = trk.env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "tracker", *args], cwd=project, env=env,
                       capture_output=True, text=True, timeout=60)
    mods = {line.rsplit("|", 1)[1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    return p, mods


def test_plain_run_imports_neither_click_nor_inspect(trk, project):
    (project / ".gitignore").unlink()  # a .gitignore brings in `pathspec` for the source snapshot
    trk("run", "echo", "-y", cwd=project)  # the first run reads trk.yml (YAML); later ones its cache
    p, mods = _imported(trk, project, "run", "echo", "msg=quick", "-y")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "[quick]\n[1]\n"
    assert not {"click", "inspect", "dataclasses", "typing", "uuid", "yaml"} & mods, \
        sorted({"click", "inspect", "dataclasses", "typing", "uuid", "yaml"} & mods)
    run = trk("runs", "info", cwd=project).stdout
    assert "msg: quick" in run and "status: completed" in run


def test_the_output_scalar_parser_waits_for_output(trk, project):
    # A program that prints nothing never needs the parser: it is not even imported.
    (project / "trk.yml").write_text((project / "trk.yml").read_text() + "\nquiet:\n  exec: python -c pass\n"
                                  "talk:\n  exec: python -c \"print('loss=0.5')\"\n")
    trk("run", "quiet", "-y", cwd=project)
    p, mods = _imported(trk, project, "run", "quiet", "-y")
    assert p.returncode == 0, p.stderr
    assert "tracker.metrics.output" not in mods
    # One that prints gets its scalars, as ever.
    p, mods = _imported(trk, project, "run", "talk", "-y")
    assert p.returncode == 0 and "tracker.metrics.output" in mods
    assert "loss" in trk("compare", "-t", "-n", "1", cwd=project).stdout.splitlines()[0]


def test_other_options_take_the_click_path(trk, project):
    p, mods = _imported(trk, project, "run", "train", "-y", "-l", "mine", "-t", "x")
    assert p.returncode == 0, p.stderr
    assert "click" in mods
    info = trk("runs", "info", cwd=project).stdout
    assert "label: mine" in info and "x" in info


@pytest.mark.parametrize("args", [["run", "nope", "-y"], ["run", "train", "bogus=1", "-y"],
                                  ["run", "train", "lr=abc", "-y"]])
def test_errors_read_as_the_click_path_s(trk, project, args):
    quick = trk(*args, cwd=project, check=False)
    full = trk(*args, "-q", "-l", "x", cwd=project, check=False)  # -l: not the quick path
    assert quick.returncode == full.returncode != 0
    assert quick.stderr == full.stderr and quick.stderr.startswith("trk: ")
    assert not os.path.exists(trk.home / "runs") or not os.listdir(trk.home / "runs")


def test_exit_code_of_a_failing_program(trk, project):
    p = trk("run", "fail", "-y", cwd=project, check=False)
    full = trk("run", "fail", "-y", "-l", "x", cwd=project, check=False)
    assert p.returncode == full.returncode != 0


def test_parse_accepts_only_the_plain_form():
    assert parse(["train", "lr=1", "-y"]) == ("train", ["lr=1"], False, None)
    assert parse(["-y", "-q", "a=b"]) == (None, ["a=b"], True, None)
    assert parse(["train", "lr=1"]) is None  # asks for confirmation: click's prompt
    assert parse(["train", "-y", "--label", "x"]) is None
    assert parse(["train", "-y", "@trials.csv"]) is None
    assert parse(["train", "other", "-y"]) is None
    assert parse(["--start", "1a2b", "-q"]) == (None, [], True, "1a2b")
    assert parse(["--start=1a2b"]) == (None, [], False, "1a2b")
    assert parse(["--start"]) is None and parse(["--start", "-q"]) is None
    assert parse(["train", "--start", "1a2b"]) is None  # click: OPERATION cannot be used with --start
    assert parse(["--start", "1a2b", "lr=2"]) is None  # restart-style flag changes: click's path


def test_start_a_staged_run_without_click(trk, project):
    (project / ".gitignore").unlink()
    trk("run", "echo", "msg=staged", "--stage", "-y", cwd=project)
    run_id = trk("select", cwd=project).stdout.strip()
    p, mods = _imported(trk, project, "run", "--start", run_id[:8], "-q")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and "click" not in mods
    assert trk("cat", run_id[:8], "--output", cwd=project).stdout == "[staged]\n[1]\n"
    again = trk("run", "--start", run_id[:8], cwd=project, check=False)
    full = trk("run", "--start", run_id[:8], "--max-parallel", "1", cwd=project, check=False)  # click's path
    assert again.returncode == full.returncode != 0
    assert again.stderr == full.stderr and "not staged" in again.stderr


@record
class _Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list)
    hidden: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.y = self.y or self.x


@record(frozen=True)
class _Key:
    a: str
    b: int = 1


def test_record_init_defaults_eq_repr():
    p = _Point(2)
    assert (p.x, p.y, p.tags, p.hidden) == (2, 2, [], None)
    assert _Point(1).tags is not _Point(1).tags  # a factory per instance
    assert _Point(1, 5, ["t"], hidden="h") == _Point(x=1, y=5, tags=["t"])  # `hidden` is not compared
    assert _Point(1) != _Point(2)
    assert repr(_Point(1, 2)) == "_Point(x=1, y=2, tags=[])"
    assert fields(_Point) == ("x", "y", "tags", "hidden")
    moved = replace(_Point(1, 5, ["t"]), y=7)
    assert (moved.x, moved.y, moved.tags) == (1, 7, ["t"])
    with pytest.raises(TypeError):
        _Point()
    with pytest.raises(TypeError):
        hash(_Point(1))


def test_record_frozen_is_hashable_and_immutable():
    k = _Key("a")
    assert {k: 1}[_Key("a", 1)] == 1
    with pytest.raises(AttributeError):
        k.a = "b"


def test_record_rejects_a_required_field_after_a_default():
    with pytest.raises(TypeError):
        @record
        class _Bad:
            a: int = 1
            b: int
