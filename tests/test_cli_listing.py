"""`trk runs` and `trk compare` listings: live runs with their elapsed time,
tabulate's formats (`--fmt`), and statuses coloured on a terminal only."""

from __future__ import annotations

import json
import re
import time

import pytest


def on_terminal(trk, *args, cwd=None, **env):
    """Run trk with stdout (and stderr) on a pseudo-terminal; what it drew."""
    return trk.on_terminal(*args, cwd=cwd, TRK_NO_PAGER="1", **env)[2]


@pytest.fixture
def proj(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    (d / "trk.yml").write_text("ok:\n  exec: python ok.py\n"
                               "bad:\n  exec: python -c 'raise SystemExit(3)'\n"
                               "sleep:\n  exec: python -c 'import time; time.sleep(60)'\n")
    (d / "ok.py").write_text("print('loss: 0.25')\n")
    return d


def test_running_runs_show_elapsed_time_until_stopped(trk, proj):
    trk("run", "ok", "-y", cwd=proj)
    trk("run", "sleep", "-y", "--background", cwd=proj)
    deadline = time.time() + 30
    while "running" not in trk("runs", "-s").stdout:
        assert time.time() < deadline, "the background run did not start"
        time.sleep(0.1)
    time.sleep(1.2)
    for args in ((), ("-a",)):  # the 20 newest, and the streamed listing
        lines = trk("runs", *args).stdout.splitlines()
        m = re.match(r"\[1\]  sleep  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  running (\d+):(\d\d):(\d\d)$", lines[0])
        assert m, lines
        assert int(m[2]) * 60 + int(m[3]) >= 1
        # Columns stay aligned: the next line's status starts where `running` does.
        assert lines[1].index("completed") == lines[0].index("running"), lines
    first, second = json.loads(trk("runs", "--json").stdout)
    assert first["status"] == "running" and isinstance(first["elapsed"], int) and first["elapsed"] >= 1
    assert "elapsed" not in second and second["status"] == "completed"
    trk("stop", "-y")
    deadline = time.time() + 30
    while "running" in trk("runs", "-s").stdout:
        assert time.time() < deadline, "the run did not stop"
        time.sleep(0.1)
    line = trk("runs", "-s").stdout.splitlines()[0]
    assert line.split()[-1] == "terminated" and ":" not in line  # no elapsed time once it ended


def test_fmt_lays_tables_out_with_tabulate(trk, proj):
    trk("run", "ok", "-y", cwd=proj)
    trk("run", "bad", "-y", cwd=proj, check=False)
    gh = trk("runs", "-s", "--fmt", "github").stdout.splitlines()
    assert [c.strip() for c in gh[0].split("|")] == ["", "#", "operation", "status", "label", ""]
    assert gh[1].startswith("|-----|") and gh[2].startswith("| [1] | bad ") and "| error " in gh[2]
    assert "| [2] | ok " in gh[3] and "completed" in gh[3]
    latex = trk("runs", "--fmt", "latex").stdout
    assert latex.startswith("\\begin{tabular}") and "\\end{tabular}" in latex
    simple = trk("runs", "-a", "-s", "--fmt", "simple").stdout.splitlines()
    assert simple[0].split() == ["#", "operation", "status", "label"] and set(simple[1]) == {"-", " "}
    # compare: the same table in each format, scalars right-aligned
    cols = ["-cc", ".operation,.status,#loss"]
    gh = trk("compare", "-t", *cols, "--fmt", "github").stdout.splitlines()
    assert gh[0].split("|")[2:-1] == [" operation   ", " status    ", "   loss "]
    assert gh[3].split("|")[2:] == [" ok          ", " completed ", "   0.25 ", ""]
    latex = trk("compare", "-t", *cols, "--fmt", "latex").stdout
    assert "\\begin{tabular}{lllr}" in latex and "& completed &" in latex
    plain = trk("compare", "-t", *cols).stdout
    assert trk("compare", "-t", *cols, "--fmt", "plain").stdout == plain  # the fast path is tabulate's plain
    assert plain.splitlines()[0].split() == ["run", "operation", "status", "loss"]
    p = trk("runs", "--fmt", "html", check=False)
    assert p.returncode == 2 and "github" in p.stderr
    assert "tabulate" in trk("runs", "list", "--help").stdout and "faster" in trk("compare", "--help").stdout


def test_compare_colours_statuses_on_a_terminal_only(trk, proj, tmp_path):
    trk("run", "ok", "-y", cwd=proj)
    trk("run", "bad", "-y", cwd=proj, check=False)
    cols = ["-cc", ".operation,.status,#loss"]
    shown = on_terminal(trk, "compare", *cols)
    assert "\x1b[31merror\x1b[0m" in shown and "\x1b[32mcompleted\x1b[0m" in shown
    plain = re.sub(r"\x1b\[\d+m", "", shown).replace("\r\n", "\n")
    assert plain == trk("compare", "-t", *cols).stdout  # colour changes no column
    assert "\x1b[32mcompleted" in on_terminal(trk, "compare", *cols, "--fmt", "github")
    assert "\x1b[" not in on_terminal(trk, "compare", *cols, "--no-color")
    assert "\x1b[" not in on_terminal(trk, "compare", *cols, NO_COLOR="1")
    assert "\x1b[" not in on_terminal(trk, "compare", *cols, "--fmt", "latex")
    assert "\x1b[" not in on_terminal(trk, "compare", *cols, "--csv", "-")
    assert "\x1b[" not in on_terminal(trk, "compare", *cols, "--json")
    assert "\x1b[" not in trk("compare", "-t", *cols).stdout  # a pipe
    # trk runs --fmt colours on a terminal too, except in LaTeX
    assert "\x1b[31merror" in on_terminal(trk, "runs", "--fmt", "simple")
    assert "\x1b[" not in on_terminal(trk, "runs", "--fmt", "latex")
