"""A DVC stage whose command is plain words runs without a shell (execution/dvc_stage.plain_argv);
anything a shell would expand still runs through one, as DVC runs it."""

from __future__ import annotations

import json
import os

from tracker.execution.dvc_stage import plain_argv

SHOW = """import os, sys
parent = open(f"/proc/{os.getppid()}/comm").read().strip()
print("parent", parent, "pwd", os.environ.get("PWD") == os.getcwd(), "args", sys.argv[1:])
"""


def test_plain_words_need_no_shell():
    env = {"PATH": os.environ["PATH"]}
    assert plain_argv("python train.py --lr 0.1 out=model.pkl", env) == ["python", "train.py", "--lr", "0.1",
                                                                          "out=model.pkl"]
    for needs_shell in ("python -c 'pass'", "python train.py > log", "echo $HOME", "ls *.py", "cd sub",
                        "LR=1 python train.py", "python a.py && python b.py", "~/bin/x", "python  two-spaces",
                        "./run.sh", "time python train.py", "no-such-program-here x", "python x # note"):
        assert plain_argv(needs_shell, env) is None, needs_shell


def test_a_plain_stage_command_runs_without_a_shell(trk, tmp_path):
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / "sub" / "show.py").write_text(SHOW)
    (proj / "dvc.yaml").write_text("stages:\n"
                                   "  plain:\n    wdir: sub\n    cmd: python show.py a=1 b\n"
                                   "  shelled:\n    wdir: sub\n    cmd: python show.py \"$HOME\" > shown.txt\n")
    out = trk("run", "dvc:plain", "-y", cwd=proj).stdout
    assert "parent python" in out or "parent trk" in out, out  # the supervising trk, no shell between
    assert "pwd True" in out and "args ['a=1', 'b']" in out
    trk("run", "dvc:shelled", "-y", cwd=proj)
    shown = (proj / "sub" / "shown.txt").read_text()
    assert f"args ['{os.environ['HOME']}']" in shown and "pwd True" in shown
    assert "parent python" not in shown and "parent trk" not in shown  # its parent was the shell
    runs = json.loads(trk("runs", "--json", cwd=proj).stdout)
    assert {r["status"] for r in runs} == {"completed"}
