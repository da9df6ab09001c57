"""Behaviour of `trk run` and `trk runs` through real subprocesses."""

import json
import os
import signal
import subprocess

import pytest


def listing(trk, *args):
    return trk("runs", *args).stdout.splitlines()


def test_run_records_attrs_output_and_source(trk, project, trk_home):
    p = trk("run", "train", "lr=0.5", "-y", cwd=project)
    assert "trained with sgd" in p.stdout
    (run_dir,) = (trk_home / "runs").iterdir()
    attrs = run_dir / ".trk" / "attrs"
    for name in ("id", "op", "flags", "cmd", "env", "label", "tags", "started", "stopped", "exit_status",
                 "sourcecode_digest", "host", "pid"):
        assert (attrs / name).exists(), name
    assert json.loads((attrs / "flags").read_text()) == {"lr": 0.5, "epochs": 3, "optimizer": "sgd", "verbose": False}
    assert (run_dir / "train.py").exists() and (run_dir / "trk.yml").exists()
    assert not (run_dir / ".gitignore").exists()
    assert "trained with sgd" in (run_dir / ".trk" / "output").read_text()
    assert listing(trk, "-s") == ["[1]  train  completed  epochs=3 lr=0.5 optimizer=sgd verbose=no"]


def test_source_copy_honours_gitignore_and_binaries(trk, project, trk_home):
    (project / "notes.log").write_text("ignored")
    (project / "data").mkdir()
    (project / "data" / "x.txt").write_text("ignored dir")
    (project / "blob.bin").write_bytes(b"\0\1\2")
    (project / "big.txt").write_text("x" * (1024 * 1024 + 1))
    (project / "pkg").mkdir()
    (project / "pkg" / "mod.py").write_text("A = 1\n")
    trk("run", "echo", "-y", cwd=project)
    (run_dir,) = (trk_home / "runs").iterdir()
    names = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if ".trk" not in p.parts}
    assert names == {"echo.py", "train.py", "trk.yml", "pkg", "pkg/mod.py"}


def test_flag_values_reach_program_as_single_arguments(trk, project, trk_home):
    p = trk("run", "echo", "msg=a b; echo 'pwned' \"x\"", "n=$(id)", "-y", cwd=project)
    assert p.stdout.splitlines() == ["[a b; echo 'pwned' \"x\"]", "[$(id)]"]
    p = trk("run", "shell", "msg=x; echo pwned", "-y", cwd=project)
    assert p.stdout.splitlines() == ["msg=[x; echo pwned]"]


def test_quiet_records_output_without_showing_it(trk, project):
    p = trk("run", "echo", "-q", "-y", cwd=project)
    assert p.stdout == ""
    assert trk("cat", "--output").stdout == "[hello]\n[1]\n"


def test_exit_code_is_the_programs(trk, project):
    p = trk("run", "fail", "code=7", "-y", cwd=project, check=False)
    assert p.returncode == 7
    assert "failing" in p.stdout
    assert listing(trk, "-s") == ["[1]  fail  error  code=7"]


def test_unsupported_flag_and_undefined_op(trk, project):
    p = trk("run", "train", "nope=1", "-y", cwd=project, check=False)
    assert p.returncode == 1
    assert p.stderr == ("trk: unsupported flag 'nope'\nTry 'trk run train --help-op' for a list of flags or use\n"
                        "--force-flags to skip this check.\n")
    p = trk("run", "nothing", "-y", cwd=project, check=False)
    assert p.returncode == 1 and "cannot find operation 'nothing'" in p.stderr
    p = trk("run", "train", "epochs=many", "-y", cwd=project, check=False)
    assert p.returncode == 1 and "invalid value many for flag 'epochs'" in p.stderr
    p = trk("run", "need", "-y", cwd=project, check=False)
    assert p.returncode == 1 and "missing required flag 'x'" in p.stderr
    assert listing(trk) == []


def test_confirmation_prompt(trk, project):
    p = trk("run", "train", cwd=project, input="n\n", check=False)
    assert "You are about to run train" in p.stdout and "lr: 0.1" in p.stdout
    assert p.returncode == 1 and listing(trk) == []
    trk("run", "train", cwd=project, input="\n")
    assert len(listing(trk)) == 1


def test_label_tags_and_filters(trk, project):
    trk("run", "train", "--label", "lr is ${lr}", "-t", "a", "-t", "b", "-y", cwd=project)
    trk("run", "echo", "-y", cwd=project)
    trk("run", "fail", "-y", cwd=project, check=False)
    assert listing(trk, "-s", "-t", "a") == ["[1]  train  completed  a b lr is 0.1"]
    assert [l.split()[1] for l in listing(trk, "-s", "--error")] == ["fail"]
    assert [l.split()[1] for l in listing(trk, "-s", "-o", "ech")] == ["echo"]
    assert [l.split()[1] for l in listing(trk, "-s", "-l", "lr is")] == ["train"]
    data = json.loads(trk("runs", "--json").stdout)
    assert [d["op"] for d in data] == ["fail", "echo", "train"]
    trk("runs", "label", "1", "--set", "broken")
    trk("runs", "tag", "1", "--add", "x")
    assert listing(trk, "-s", "1") == ["[1]  fail  error  x broken"]


def test_specs_index_range_and_prefix(trk, project):
    for _ in range(3):
        trk("run", "echo", "-y", cwd=project)
    ids = [trk("select", str(i)).stdout.strip() for i in (1, 2, 3)]
    assert len(set(ids)) == 3
    assert trk("select", ids[1][:6]).stdout.strip() == ids[1]
    assert len(listing(trk, "2:3")) == 2
    p = trk("select", "9", check=False)
    assert p.returncode == 1 and "no run at index 9" in p.stderr
    assert trk("select", "1", "--path").stdout.strip() == os.path.realpath(trk.home / "runs" / ids[0])


def test_ls_and_cat(trk, project):
    trk("run", "train", "-y", cwd=project)
    names = trk("ls", "1", "-n").stdout.splitlines()
    assert names == sorted(["echo.py", "train.py", "trk.yml"])
    # Without RUN, `trk ls` lists the latest run.
    (project / "added.py").write_text("")
    trk("run", "echo", "-y", cwd=project)
    assert trk("ls", "-n").stdout.splitlines() == ["added.py", "echo.py", "train.py", "trk.yml"]
    assert trk("ls", "2", "-n").stdout.splitlines() == names
    assert ".trk/" in trk("ls", "1", "-n", "-a").stdout.splitlines()
    assert "trained with sgd" in trk("cat", "2", "--output").stdout
    assert trk("cat", "1", "-p", "echo.py").stdout.startswith('"""Prints')


def test_delete_restore_purge(trk, project, trk_home):
    trk("run", "train", "-y", cwd=project)
    trk("run", "echo", "-y", cwd=project)
    run_id = trk("select", "1").stdout.strip()
    files_before = sorted(str(p.relative_to(trk_home / "runs" / run_id)) for p in (trk_home / "runs" / run_id).rglob("*"))
    assert trk("runs", "rm", "1", "-y").stdout == "Deleted 1 run(s)\n"
    assert [l.split()[1] for l in listing(trk, "-s")] == ["train"]
    assert len(trk("runs", "deleted", "-s").stdout.splitlines()) == 1
    assert trk("runs", "restore", "1", "-y").stdout == "Restored 1 run(s)\n"
    files_after = sorted(str(p.relative_to(trk_home / "runs" / run_id)) for p in (trk_home / "runs" / run_id).rglob("*"))
    assert files_after == files_before
    assert trk("runs", "rm", "-y").stdout == "Deleted 2 run(s)\n"
    assert trk("runs", "purge", "-y").stdout == "Purged 2 run(s)\n"
    assert listing(trk) == [] and trk("runs", "deleted").stdout == ""


def test_running_run_cannot_be_deleted_without_force(trk, project):
    proc = trk.popen("run", "sleep", "seconds=30", "-y", cwd=project, stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()  # "sleeping": the program has started
        assert listing(trk, "-s")[0].split()[2] == "running"
        p = trk("runs", "rm", "-y", check=False)
        assert p.returncode == 1 and "cannot delete running run" in p.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert listing(trk, "-s")[0].split()[2] == "terminated"


def test_kill_9_leaves_run_terminated(trk, project):
    proc = trk.popen("run", "sleep", "seconds=30", "-y", cwd=project, stdout=subprocess.PIPE)
    proc.stdout.readline()
    assert listing(trk, "-s")[0].split()[2] == "running"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert listing(trk, "-s")[0].split()[2] == "terminated"


def test_twenty_concurrent_runs(trk, project):
    procs = [trk.popen("run", "echo", f"msg=m{i}", "-y", cwd=project, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE) for i in range(20)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, errors
    lines = listing(trk, "-s", "-a")
    assert len(lines) == 20
    assert all(l.split()[2] == "completed" for l in lines)
    assert sorted(l.split()[3] for l in lines) == sorted(f"msg=m{i}" for i in range(20))


def test_corrupt_and_missing_attrs_are_reported_not_fatal(trk, project, trk_home):
    for _ in range(3):
        trk("run", "echo", "-y", cwd=project)
    runs = sorted((trk_home / "runs").iterdir())
    (runs[0] / ".trk" / "attrs" / "flags").write_text("{not: [valid")
    import shutil

    shutil.rmtree(runs[1] / ".trk")
    p = trk("runs", "-s")
    lines = p.stdout.splitlines()
    assert len(lines) == 3
    assert sorted(l.split()[2] for l in lines) == ["completed", "error", "error"]
    warnings = p.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("trk: warning: run ") for w in warnings)


def test_stage_and_run_dir(trk, project, tmp_path):
    p = trk("run", "echo", "--stage", "-y", cwd=project)
    assert "staged as" in p.stdout
    assert listing(trk, "-s") == ["[1]  echo  staged  msg=hello n=1"]
    p = trk("run", "--start", "1", cwd=project)
    assert p.stdout.splitlines() == ["[hello]", "[1]"]
    assert listing(trk, "-s")[0].split()[2] == "completed"
    target = tmp_path / "custom"
    trk("run", "echo", "--run-dir", str(target), "-y", cwd=project)
    assert (target / "echo.py").exists()
    assert trk("select", "1", "--path").stdout.strip() == str(target.resolve())


def test_help_everywhere(trk):
    for cmd in (["--help"], ["run", "--help"], ["runs", "--help"], ["runs", "rm", "--help"], ["ls", "--help"],
                ["select", "--help"], ["cat", "--help"], ["models", "--help"], ["operations", "--help"],
                ["runs", "info", "--help"], ["runs", "purge", "--help"], ["runs", "restore", "--help"]):
        assert "Usage:" in trk(*cmd).stdout


def test_help_op(trk, project):
    out = trk("run", "train", "--help-op", cwd=project).stdout
    assert "Train a toy model" in out
    assert "lr         Learning rate (default is 0.1; type float)" in out


def test_short_number_is_always_an_index(trk, project, trk_home):
    from tracker.store.select import select
    from tracker.store import Run

    runs = [Run("9" * 32, "/x", {"id": "9" * 32}), Run("1234567" + "a" * 25, "/y", {"id": "x"})]
    assert select(runs, ["2"]) == [runs[1]]
    with pytest.raises(Exception, match="no run at index 9"):
        select(runs, ["9"])
    assert select(runs, ["123456"]) == [runs[1]]


def test_flags_as_globals_for_scripts_without_argument_parser(trk, tmp_path):
    """Guild's flags-dest globals: `lr = 0.1` in the script takes the flag value."""
    proj = tmp_path / "g"
    proj.mkdir()
    (proj / "guild.yml").write_text("- model: m\n  operations:\n    train:\n      main: train\n"
                                    "      flags: {lr: 0.1, steps: 10, name: x}\n")
    (proj / "train.py").write_text("lr = 0.1\nsteps: int = 10\nname = 'x'\nlr = lr * 2\n"
                                   "print(lr, steps, name, __name__)\n")
    p = trk("run", "m:train", "lr=0.5", "steps=3", "name=a b", "-y", cwd=proj)
    assert p.stdout == "1.0 3 a b __main__\n"  # only the first assignment is replaced
    (proj / "args.py").write_text("import argparse\np = argparse.ArgumentParser()\np.add_argument('--lr')\n"
                                  "print(p.parse_args().lr)\n")
    (proj / "guild.yml").write_text("- model: m\n  operations:\n    a:\n      main: args\n      flags: {lr: 0.1}\n"
                                    "    forced:\n      main: train\n      flags-dest: args\n      flags: {lr: 0.1}\n")
    assert trk("run", "m:a", "lr=0.3", "-y", cwd=proj).stdout == "0.3\n"
    (proj / "show.py").write_text("import sys\nprint(sys.argv[1:])\n")
    (proj / "guild.yml").write_text("- model: m\n  operations:\n    forced:\n      main: show\n"
                                    "      flags-dest: globals\n      flags: {lr: 0.1}\n"
                                    "    plain:\n      main: show\n      flags: {lr: 0.1}\n")
    assert trk("run", "m:forced", "lr=0.3", "-y", cwd=proj).stdout == "[]\n"
    # As in Guild: a script that imports neither argparse nor click gets its flags as globals,
    # even when it reads sys.argv.
    assert trk("run", "m:plain", "lr=0.3", "-y", cwd=proj).stdout == "[]\n"


def test_malformed_project_file_names_file_and_line(trk, tmp_path):
    proj = tmp_path / "bad"
    proj.mkdir()
    (proj / "trk.yml").write_text("train:\n  main: train\n  flags:\n    lr:\n      type: real\n")
    p = trk("run", "train", "-y", cwd=proj, check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("trk: trk.yml, line 4: operation 'train': flag 'lr' has unknown type 'real'")
    (proj / "trk.yml").write_text("train:\n  main: train\n   bad indent: [\n")
    p = trk("operations", cwd=proj, check=False)
    assert p.returncode == 1 and p.stderr.startswith("trk: trk.yml, line 3: ")
    p = trk("run", "train", "-y", cwd=tmp_path, check=False)
    assert p.returncode == 1 and "no project file in" in p.stderr


def test_python_programs_leave_no_bytecode_cache_in_the_run(trk, project):
    import subprocess
    import sys

    env = trk.env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    p = subprocess.run([sys.executable, "-m", "tracker", "run", "train", "-y"], cwd=project, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 0, p.stderr
    run_dir = trk("select", "--path").stdout.strip()
    assert not os.path.exists(os.path.join(run_dir, "__pycache__"))


def test_large_compare_tables_keep_tabulates_layout():
    import random

    from tracker.cli.compare import _plain_table, table_lines

    rng = random.Random(7)
    headers = ["run", "operation", "label", "lr", "loss", "é"]
    kinds = ["attr", "attr", "attr", "flag", "scalar", "scalar"]
    words = ["", "a", "train", "evaluate-long", "x y", "0.1", "12.25", "-3e-05", "漢字", "é" * 9]
    for n in (1, 5, 40):  # (large tables are never empty)
        columns = [[rng.choice(words) for _ in range(n)] for _ in headers]
        assert list(_plain_table(headers, columns, kinds)) == list(table_lines(headers, columns, kinds)), n


def test_listing_says_when_empty_or_cut_and_keeps_indexes_aligned(trk, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("op:\n  exec: python -c pass\n")
    p = trk("runs")
    assert p.stdout == "" and "no runs yet: start one with 'trk run OP'" in p.stderr
    for _ in range(22):
        trk("run", "op", "-y", cwd=proj)
    p = trk("runs", "-s")
    lines = p.stdout.splitlines()
    assert len(lines) == 20 and p.stderr.strip() == "(20 of 22 runs shown; -a for all)"
    assert lines[8].startswith("[9]   op") and lines[9].startswith("[10]  op")  # aligned past [9]
    streamed = trk("runs", "-a", "-s").stdout.splitlines()
    assert streamed[8].startswith("[9]   op") and streamed[21].startswith("[22]  op")
    assert trk("runs", "-n", "5").stderr == ""  # asked for 5: no count
    assert "no runs match" in trk("runs", "-o", "nothing").stderr


def test_mistakes_get_a_suggestion(trk):
    import os

    steps = os.path.join(os.path.dirname(os.path.dirname(__file__)), "sample-projects", "steps")
    p = trk("run", "m1:hello", "--msg", "hi", "-y", cwd=steps, check=False)
    assert p.returncode == 2 and "No such option '--msg'. Flags are NAME=VALUE: did you mean msg=hi?" in p.stderr
    p = trk("run", "m1:hello", "--msg=hi", "-y", cwd=steps, check=False)
    assert "did you mean msg=hi?" in p.stderr
    p = trk("run", "m1:hello", "mgs=hi", "-y", cwd=steps, check=False)
    assert p.returncode == 1 and "unsupported flag 'mgs': did you mean 'msg'?" in p.stderr
    p = trk("run", "m1:helo", "-y", cwd=steps, check=False)
    assert "operation 'helo' is not defined for model 'm1': did you mean 'hello'?" in p.stderr
    p = trk("run", "prepar", "-y", cwd=steps, check=False)
    assert "cannot find operation 'prepar' in guild.yml: did you mean 'prepare'?" in p.stderr
    p = trk("run", "m1:hello", "-x", cwd=steps, check=False)
    assert p.returncode == 2 and "Flags are NAME=VALUE" not in p.stderr  # a short option: click's own message


def test_runs_colour_statuses_on_a_terminal_only(trk, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("ok:\n  exec: python -c pass\nbad:\n  exec: python -c 'raise SystemExit(3)'\n")
    trk("run", "ok", "-y", cwd=proj)
    trk("run", "bad", "-y", cwd=proj, check=False)
    assert "\x1b[" not in trk("runs").stdout  # a pipe: plain text

    def on_terminal(*args, **env):
        return trk.on_terminal(*args, timeout=30, **env)[2]

    coloured = on_terminal("runs", "-s")
    assert "\x1b[31merror" in coloured and "\x1b[32mcompleted" in coloured
    assert "\x1b[" in on_terminal("runs", "-a", "-s")
    assert "\x1b[" not in on_terminal("runs", "-s", "--no-color")
    assert "\x1b[" not in on_terminal("runs", "-s", NO_COLOR="1")


def test_runs_json_has_iso_times_and_scalars(trk, tmp_path):
    import datetime
    import json

    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("op:\n  exec: python log.py\n")
    (proj / "log.py").write_text("print('loss: 0.1')\n")
    trk("run", "op", "-y", cwd=proj)
    (r,) = json.loads(trk("runs", "--json").stdout)
    started = datetime.datetime.fromisoformat(r["started"])
    assert started.tzinfo is not None and abs(started.timestamp() - datetime.datetime.now().timestamp()) < 120
    assert r["stopped"] >= r["started"] and r["scalars"] == {"loss": 0.1} and r["index"] == 1
    assert r["op"] == "op" and r["status"] == "completed" and r["exit_status"] == 0


def test_compare_json_has_typed_times(trk, tmp_path):
    import datetime
    import json

    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("op:\n  exec: python -c pass\n")
    trk("run", "op", "-y", cwd=proj)
    (row,) = json.loads(trk("compare", "--json", "-cc", ".started,.time,.status").stdout)
    assert datetime.datetime.fromisoformat(row["started"]).tzinfo is not None
    assert isinstance(row["time"], int) and row["time"] >= 0 and row["status"] == "completed"
