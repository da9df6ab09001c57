"""Shell completion (click's protocol, `_TRK_COMPLETE`): commands, operations,
flags and choice values, runs; `trk completion SHELL` prints the script."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import SAMPLES


def complete(trk, words: str, cwd=None) -> list[str]:
    env = dict(trk.env(), _TRK_COMPLETE="bash_complete", COMP_WORDS=words,
               COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    p = subprocess.run([sys.executable, "-m", "tracker"], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return [line.split(",", 1)[1] for line in p.stdout.splitlines() if "," in line]


def test_completion_of_commands_operations_flags_and_runs(trk, tmp_path):
    steps = SAMPLES / "steps"
    assert "compare" in complete(trk, "trk comp") and "completion" in complete(trk, "trk comp")
    assert complete(trk, "trk run m1:he", cwd=steps) == ["m1:hello"]
    assert complete(trk, "trk run m1:hello m", cwd=steps) == ["msg="]
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("train:\n  exec: python -c pass\n  flags:\n    opt:\n      default: sgd\n"
                                  "      choices: [sgd, adam]\n")
    assert complete(trk, "trk run train opt=a", cwd=proj) == ["opt=adam"]
    assert complete(trk, "trk run nothing x", cwd=tmp_path) == []  # no project: nothing, and no traceback
    trk("run", "train", "-y", cwd=proj)
    short = trk("select", "--short-id").stdout.strip()
    items = complete(trk, "trk runs info ")
    assert "1" in items and short in items
    assert complete(trk, f"trk cat {short[:3]}") == [short]


def test_completion_prints_each_shells_script(trk):
    assert "_trk_completion" in trk("completion", "bash").stdout
    assert trk("completion", "zsh").stdout.startswith("#compdef trk")
    assert "complete --no-files --command trk" in trk("completion", "fish").stdout
    assert trk("completion", "tcsh", check=False).returncode == 2
