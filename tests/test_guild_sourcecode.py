"""`sourcecode:` with Guild 0.9's semantics, on sample-projects/guild/sourcecode.

Real runs through `trk`; the expected file sets are those Guild 0.9 copies
(checked with guild-compare), except where trk deliberately differs:
`.gitignore` always applies and git's own files are left out (as Guild does
inside a git repository), and the 100-file limit counts only the files the
default rule selects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import SAMPLES, copy_sample

DEFAULT_TOP = ["README.md", "guild.yml", "train.py", "config/keep.csv", "config/params.yml"]


@pytest.fixture
def proj(tmp_path):
    """A copy of the sample, with the files its .gitignore ignores (git does not keep them)."""
    dest = copy_sample(tmp_path, "guild/sourcecode", symlinks=True)
    (dest / "results" / "metrics.csv").write_text("step,loss\n1,0.5\n")
    (dest / "util" / "nested").mkdir(exist_ok=True)
    (dest / "util" / "nested" / "deep.csv").write_text("a,b\n1,2\n")
    return dest


def last_run(trk):
    return json.loads(trk("runs", "-a", "--json").stdout)[0]


def files_in(run_dir):
    out = []
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = [d for d in dirs if d != ".trk"]
        out += [os.path.relpath(os.path.join(root, f), run_dir) for f in files]
    return sorted(out)


def run_op(trk, proj, op, *args):
    p = trk("run", op, "-y", *args, cwd=proj)
    run = last_run(trk)
    assert sorted(run["sourcecode_files"]) == files_in(run["dir"])  # the record is what the run holds
    return p, run


def test_default_rules_stop_at_100_files_and_say_so(trk, proj):
    p, run = run_op(trk, proj, "default")
    files = run["sourcecode_files"]
    assert len(files) == 100
    # Guild's walk order: top-level files, then directories in name order.
    assert files[:5] == DEFAULT_TOP and files[5] == "data/sample-000.txt" and files[-1] == "data/sample-094.txt"
    for left_out in (".gitignore", "big.txt", "logo.png", "results/metrics.csv", "util/nested/deep.csv", ".hidden/secret.txt",
                     "env/bin/activate", "util/helpers.py"):
        assert left_out not in files
    out = p.stdout + p.stderr
    assert "WARNING: more than 100 source files: only the first 100 were copied (28 left out" in out
    assert "WARNING: source file big.txt (1.05 MB) not copied: larger than 1 MB" in out
    assert "add '- include: big.txt' to sourcecode of default in guild.yml" in out
    with open(os.path.join(run["dir"], ".trk", "output")) as f:
        assert "WARNING: more than 100 source files" in f.read()  # kept in the run's output too


def test_limits_follow_guilds_environment_variables(trk, proj, monkeypatch):
    monkeypatch.setenv("MAX_DEFAULT_SOURCECODE_COUNT", "5")
    monkeypatch.setenv("MAX_DEFAULT_SOURCECODE_FILE_SIZE", str(2 << 20))
    p, run = run_op(trk, proj, "default")
    assert run["sourcecode_files"] == ["README.md", "big.txt", "guild.yml", "train.py", "config/keep.csv"]
    out = p.stdout + p.stderr
    assert "more than 5 source files: only the first 5 were copied" in out and "big.txt" not in out


def test_include_and_exclude_mappings_add_to_the_defaults(trk, proj):
    p, run = run_op(trk, proj, "with-png")
    # `- exclude: data` (a directory: its files) keeps data out of the limit,
    # so the sources after it are copied (Guild counts the excluded data files
    # against its limit and silently drops docs/, results/ and util/).
    assert run["sourcecode_files"] == [
        "README.md", "guild.yml", "logo.png", "train.py", "config/keep.csv", "config/params.yml",
        "docs/README.md", "results/summary.txt", "util/helpers.py"]
    assert "more than 100" not in p.stdout + p.stderr


def test_bare_patterns_replace_the_defaults_and_a_leading_slash_anchors(trk, proj):
    _, run = run_op(trk, proj, "only-py")
    assert run["sourcecode_files"] == ["README.md", "guild.yml", "train.py", "util/helpers.py"]


def test_typed_rules_and_an_explicit_include_of_a_big_file(trk, proj):
    _, run = run_op(trk, proj, "typed")
    assert run["sourcecode_files"] == [
        "README.md", "big.txt", "guild.yml", "logo.png", "train.py", "config/keep.csv", "config/params.yml",
        "docs/README.md"]


def test_root_select_and_dest_put_modules_where_python_finds_them(trk, proj):
    p, run = run_op(trk, proj, "rooted")
    assert run["sourcecode_files"] == ["src/helpers.py"]
    assert "helpers running from src" in p.stdout


def test_sourcecode_no_copies_nothing(trk, proj):
    _, run = run_op(trk, proj, "none")
    assert run["sourcecode_files"] == []


def test_test_sourcecode_shows_rules_and_reasons_and_runs_nothing(trk, proj):
    out = trk("run", "default", "--test-sourcecode", cwd=proj).stdout
    lines = out.splitlines()
    assert lines[:4] == ["Copying from the current directory", "Rules:", "  exclude dir .*",
                         "  exclude dir * containing .guild-nocopy"]
    assert "  include text * size < 1048577, max match 100" in lines
    assert lines[11:13] == ["  exclude .gitignore matches", "  exclude .git*"]
    selected = lines[lines.index("Selected for copy:") + 1:lines.index("Skipped:")]
    assert [s.strip() for s in selected[:5]] == DEFAULT_TOP and len(selected) == 100
    skipped = {s.split()[0]: s.split(None, 1)[1] for s in lines[lines.index("Skipped:") + 1:]}
    assert skipped[".hidden/"] == "(excluded by 'exclude dir .*')"
    assert skipped[".gitignore"] == "(excluded by 'exclude .git*')"
    assert skipped["env/"] == "(excluded by 'exclude dir * containing bin/activate')"
    assert skipped["big.txt"] == "(larger than 1 MB)"
    assert skipped["logo.png"] == "(not a text file)"
    assert skipped["results/metrics.csv"] == "(ignored by .gitignore: **/*.csv)"
    assert skipped["util/helpers.py"] == "(over the limit of 100 files)"
    assert json.loads(trk("runs", "-a", "--json").stdout) == []
    out = trk("run", "none", "--test-sourcecode", cwd=proj).stdout
    assert out.splitlines()[1:] == ["Rules:", "  exclude *", "Source code copy disabled"]
    out = trk("run", "rooted", "--test-sourcecode", cwd=proj).stdout
    assert "Copying from 'util' to 'src' in the run directory" in out and "  util/helpers.py\n" in out


GITIGNORE_TREE = {
    ".gitignore": "**/*.csv\n!keep.csv\nout/\n/top.log\n*.tmp\n",
    "top.log": "x\n", "sub/top.log": "x\n", "a.csv": "1\n", "keep.csv": "1\n", "sub/keep.csv": "1\n",
    "sub/deep/b.csv": "1\n", "out/r.txt": "x\n", "sub/out/r.txt": "x\n", "out.txt": "x\n", "x.tmp": "x\n",
    "sub/.gitignore": "!x.tmp\nlocal.txt\n", "sub/x.tmp": "x\n", "sub/local.txt": "x\n", "local.txt": "x\n",
    "main.py": "print(1)\n",
}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_follows_git_itself(trk, tmp_path):
    proj = tmp_path / "gi"
    for rel, text in GITIGNORE_TREE.items():
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text(text)
    (proj / "guild.yml").write_text("op:\n  exec: python -c pass\n")
    trk("run", "op", "-y", cwd=proj)
    copied = set(last_run(trk)["sourcecode_files"])
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    ignored = subprocess.run(["git", "ls-files", "-oi", "--exclude-standard"], cwd=proj, check=True,
                             capture_output=True, text=True).stdout.split()
    git_kept = {rel for rel in list(GITIGNORE_TREE) + ["guild.yml"]
                if rel not in ignored and not os.path.basename(rel).startswith(".git")}
    assert copied == git_kept
    assert "keep.csv" in copied and "sub/keep.csv" in copied and "sub/x.tmp" in copied and "sub/top.log" in copied


def test_pathspec_is_imported_only_for_a_project_with_a_gitignore(tmp_path):
    code = ("import sys\nfrom tracker.project.sourcecode import copy_source, parse_spec\n"
            "copy_source(sys.argv[1], None, parse_spec(None))\nprint('pathspec' in sys.modules)\n")
    (tmp_path / "main.py").write_text("print(1)\n")
    check = lambda: subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                                   check=True).stdout.strip()
    assert check() == "False"
    (tmp_path / ".gitignore").write_text("*.csv\n")
    assert check() == "True"


MODELS_YML = """
- model: m
  sourcecode:
    - exclude: '*.md'
  operations:
    a: train
    c:
      main: train
      sourcecode:
        - include: '*.png'
- model: quiet
  sourcecode: no
  operations:
    d: train
    e:
      main: train
      sourcecode: ['*.py']
"""


def test_a_models_sourcecode_applies_to_its_operations(trk, tmp_path):
    proj = tmp_path / "models"
    proj.mkdir()
    (proj / "guild.yml").write_text(MODELS_YML)
    (proj / "train.py").write_text("print('ok')\n")
    (proj / "notes.md").write_text("# notes\n")
    shutil.copy(SAMPLES / "guild" / "sourcecode" / "logo.png", proj)
    expected = {"m:a": ["guild.yml", "train.py"], "m:c": ["guild.yml", "logo.png", "train.py"],
                "quiet:e": ["train.py"]}  # (Guild 0.9 copies the same)
    for op, files in expected.items():
        _, run = run_op(trk, proj, op)
        assert run["sourcecode_files"] == files, op
    assert "Source code copy disabled" in trk("run", "quiet:d", "--test-sourcecode", cwd=proj).stdout


def test_model_rules_come_first_and_the_operations_extend_or_disable_them():
    from tracker.project.sourcecode import parse_spec

    spec = parse_spec([{"include": "*.png"}], {"root": "src", "dest": "code", "select": [{"exclude": "*.md"}]})
    assert [str(r) for r in spec.rules] == ["exclude *.md", "include *.png"]
    assert (spec.root, spec.dest, spec.enabled) == ("src", "code", True)
    assert not parse_spec(None, False).enabled  # the model's `no` ...
    assert parse_spec(["*.py"], False).enabled  # ... unless the operation has rules of its own
    assert [str(r) for r in parse_spec("*.py").rules] == ["exclude *", "include *.py"]
    assert [str(r) for r in parse_spec(["a", {"exclude": {"dir": "b"}}]).rules] == ["include a", "exclude dir b"]
    assert not parse_spec([]).enabled and not parse_spec({"select": []}).enabled


@pytest.mark.parametrize("rules, message", [
    ("[{include: a, exclude: b}]",
     "guild.yml, line 4: operation op: sourcecode rule {'include': 'a', 'exclude': 'b'} has both include and exclude"),
    ("[{include: {pdf: a}}]", "expected patterns, or one of dir, text, binary"),
    ("{dest: ../up}", "sourcecode dest '../up' is outside the run directory"),
    ("{dest: .trk/src}", "sourcecode dest '.trk/src' is inside the run's .trk metadata directory"),
    ("7", "invalid sourcecode 7: expected a list of rules, a pattern, or no"),
])
def test_malformed_rules_name_the_file_and_operation(trk, tmp_path, rules, message):
    (tmp_path / "guild.yml").write_text(f"op:\n  exec: python -c pass\n\n  sourcecode: {rules}\n")
    for args in (["-y"], ["--test-sourcecode"]):
        p = trk("run", "op", *args, cwd=tmp_path, check=False)
        assert p.returncode == 1 and message in p.stderr, p.stderr
    assert json.loads(trk("runs", "-a", "--json").stdout) == []


def test_a_skipped_file_does_not_change_the_digest(tmp_path):
    from tracker.project.sourcecode import copy_source, parse_spec

    (tmp_path / "main.py").write_text("print(1)\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n")
    digest = lambda: copy_source(str(tmp_path), None, parse_spec(None))[1]
    before = digest()
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\nchanged")
    assert digest() == before
    (tmp_path / "main.py").write_text("print(2)\n")
    assert digest() != before
