"""Runs and steps as Guild runs them, and Guild's command names (issue 11,
items 12 and 13): isolated steps, `--needed` and `--restart NAME=VALUE` for
pipelines, `--background`, `main: guild.pass`, one compare column per
header, and `trk runs WORD` that is neither a command nor a run."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.conftest import copy_sample


@pytest.fixture
def proj(tmp_path):
    return copy_sample(tmp_path, "guild/runs")


def runs_json(trk, *args):
    return json.loads(trk("runs", "-a", "--json", *args).stdout)


def newest(trk, op):
    return next(r for r in runs_json(trk) if r["op"] == op)


def data_of(run):
    with open(os.path.join(run["dir"], "data.txt")) as f:
        return f.read().strip()


# -- 12. steps run isolated -------------------------------------------------


def test_a_step_sees_only_the_runs_of_its_pipeline(trk, proj):
    trk("run", "prepare", "-y", cwd=proj)
    p = trk("run", "train-alone", "-y", cwd=proj, check=False)
    assert p.returncode == 1
    assert "no suitable run" in p.stderr and "isolate-runs" in p.stderr
    # isolate-runs: no, the step sees every run, as in Guild.
    trk("run", "train-shared", "-y", cwd=proj)
    assert newest(trk, "train")["status"] == "completed"


def test_a_step_uses_its_own_pipelines_step_not_a_newer_run(trk, proj):
    trk("run", "pipeline", "-y", cwd=proj)
    parent = newest(trk, "pipeline")
    trk("run", "prepare", "size=99", "-y", cwd=proj)  # newer, outside the pipeline
    trk("run", "--restart", parent["id"][:8], "lr=0.3", "-y", cwd=proj)
    train = newest(trk, "train")
    assert train["flags"] == {"lr": 0.3} and train["parent"] == parent["id"]
    assert data_of(train) == "size=5"


def test_a_needed_step_reuses_a_run_of_its_own_pipeline_only(trk, proj):
    trk("run", "pipeline", "-y", cwd=proj)
    trk("run", "pipeline", "-y", cwd=proj)
    assert sum(r["op"] == "prepare" for r in runs_json(trk)) == 2  # each pipeline its own
    parent = newest(trk, "pipeline")["id"][:8]
    trk("run", "--restart", parent, "size=7", "-y", cwd=proj)
    p = trk("run", "--restart", parent, "size=5", "-y", cwd=proj)  # its first prepare has size=5
    assert "Skipping run because a completed run with the same inputs exists" in p.stdout
    assert sum(r["op"] == "prepare" for r in runs_json(trk)) == 3
    link = os.path.realpath(os.path.join(newest(trk, "pipeline")["dir"], "prepare"))
    assert json.load(open(os.path.join(link, ".trk", "attrs", "flags"))) == {"size": 5}


def test_a_run_linked_into_the_pipeline_is_the_pipelines(trk, proj):
    # A `--needed` step that may look outside (isolate-runs: no) links a run
    # of elsewhere; the isolated steps after it see that run, as in Guild.
    with open(proj / "guild.yml", "a") as f:
        f.write("\nreuse:\n  steps:\n    - run: prepare --needed\n      isolate-runs: no\n    - train\n")
    trk("run", "prepare", "-y", cwd=proj)
    outside = runs_json(trk)[0]["id"]
    p = trk("run", "reuse", "-y", cwd=proj)
    assert f"Skipping run because a completed run with the same inputs exists: {outside}" in p.stdout
    train = newest(trk, "train")
    assert train["status"] == "completed" and train["deps"][0]["run"] == outside


# -- 12. --needed and --restart of a pipeline --------------------------------


def test_needed_skips_a_pipeline_with_the_same_flags(trk, proj):
    trk("run", "pipeline", "-y", cwd=proj)
    first = newest(trk, "pipeline")["id"]
    p = trk("run", "pipeline", "--needed", "-y", cwd=proj)
    assert p.stdout.strip() == f"Skipping run because a completed run with the same inputs exists: {first}"
    assert len(runs_json(trk)) == 3
    trk("run", "pipeline", "size=6", "--needed", "-y", cwd=proj)
    trk("run", "pipeline", "train:lr=0.5", "--needed", "-y", cwd=proj)  # a step's flag is a flag too
    assert sum(r["op"] == "pipeline" for r in runs_json(trk)) == 3


def test_restart_of_a_pipeline_applies_new_flags(trk, proj):
    trk("run", "pipeline", "-y", cwd=proj)
    parent = newest(trk, "pipeline")
    p = trk("run", "--restart", parent["id"][:8], "size=7", "-y", cwd=proj)
    assert "running prepare: prepare --needed size=7" in p.stderr
    assert "running train" in p.stderr  # its upstream step ran again: so does it
    again = newest(trk, "pipeline")
    assert again["id"] == parent["id"] and again["flags"] == {"lr": 0.2, "size": 7}
    assert again["label"] == "lr=0.2 size=7"
    train = os.path.realpath(os.path.join(parent["dir"], "train"))
    assert open(os.path.join(train, "data.txt")).read().strip() == "size=7"
    # Unchanged flags: the completed steps are kept.
    p = trk("run", "--restart", parent["id"][:8], "-y", cwd=proj)
    assert "reusing prepare" in p.stderr and "reusing train" in p.stderr
    # A step's flag (STEP:FLAG=VALUE) is the pipeline's too.
    p = trk("run", "--restart", parent["id"][:8], "train:lr=0.5", "-y", cwd=proj)
    assert "reusing prepare" in p.stderr and "running train: train lr=0.5" in p.stderr
    assert newest(trk, "pipeline")["step_flags"] == {"train:lr": 0.5}


def test_restart_of_a_run_with_new_flags(trk, proj):
    trk("run", "prepare", "size=2", "-y", cwd=proj)
    trk("run", "prepare", "size=3", "--label", "mine", "-y", cwd=proj)
    mine, other = runs_json(trk)
    p = trk("run", "--restart", other["id"][:8], "size=4", "-y", cwd=proj)
    assert p.stdout == "prepared size=4\n"
    run = next(r for r in runs_json(trk) if r["id"] == other["id"])
    assert run["flags"] == {"size": 4} and run["label"] == "size=4" and run["env"]["FLAG_SIZE"] == "4"
    trk("run", "--restart", mine["id"][:8], "size=5", "-y", cwd=proj)
    assert next(r for r in runs_json(trk) if r["id"] == mine["id"])["label"] == "mine"  # the user's label stays
    trk("run", "--restart", mine["id"][:8], "--label", "new ${size}", "-y", cwd=proj)
    assert next(r for r in runs_json(trk) if r["id"] == mine["id"])["label"] == "new 5"


def test_restart_refuses_bad_flags_and_an_operation(trk, proj):
    trk("run", "prepare", "-y", cwd=proj)
    run_id = runs_json(trk)[0]["id"][:8]
    p = trk("run", "--restart", run_id, "nope=1", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "unsupported flag 'nope'" in p.stderr
    assert runs_json(trk)[0]["flags"] == {"size": 10}  # nothing changed
    p = trk("run", "prepare", "--restart", run_id, "-y", cwd=proj, check=False)
    assert p.returncode == 2 and "OPERATION cannot be used with --restart" in p.stderr


# -- 12. main: guild.pass ------------------------------------------------------


def test_guild_pass_is_a_no_op(trk, proj):
    p = trk("run", "group", "note=hi", "-y", cwd=proj)
    assert "guild" not in p.stdout + p.stderr
    run = runs_json(trk)[0]
    assert run["status"] == "completed" and run["flags"] == {"note": "hi"}
    assert "program_pid" not in run  # no program started
    assert os.path.isfile(os.path.join(run["dir"], "notes.txt"))


# -- 12. --background ---------------------------------------------------------


def wait_finished(trk, run_id, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = next(r for r in runs_json(trk) if r["id"] == run_id)
        if run["status"] != "running":
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still running after {timeout}s")


def test_background_run_detaches_and_records_its_output(trk, proj):
    t0 = time.time()
    p = trk("run", "sleep", "seconds=2", "--background", "-y", cwd=proj)
    assert time.time() - t0 < 2  # trk returned while the program runs
    words = p.stdout.split()
    assert words[:4] == ["sleep", "started", "in", "background"] and words[4] == "as"
    run_id = words[5]
    assert runs_json(trk)[0]["id"] == run_id and runs_json(trk)[0]["status"] == "running"
    run = wait_finished(trk, run_id)
    assert run["status"] == "completed"
    assert trk("cat", "--output", run_id[:8]).stdout == "tick 1\ntick 2\ndone\n"


def test_background_restart_and_stop(trk, proj):
    trk("run", "sleep", "--bg", "-y", cwd=proj)
    run_id = runs_json(trk)[0]["id"]
    wait_finished(trk, run_id)
    p = trk("run", "--restart", run_id[:8], "seconds=30", "--bg", "-y", cwd=proj)
    assert run_id in p.stdout
    assert runs_json(trk)[0]["status"] == "running"
    trk("stop", run_id[:8], "-y", "--timeout", "5")
    run = wait_finished(trk, run_id)
    assert run["status"] == "terminated" and run["flags"] == {"seconds": 30}


def test_background_errors_are_reported_by_the_parent(trk, proj):
    p = trk("run", "prepare", "bad=1", "--bg", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "unsupported flag 'bad'" in p.stderr
    p = trk("run", "sleep", "--stage", "--bg", "-y", cwd=proj, check=False)
    assert p.returncode == 2 and "--stage and --background cannot both be used" in p.stderr
    assert runs_json(trk) == []
    # An unmet dependency fails the run once made (as in the foreground, and in Guild).
    p = trk("run", "train", "--bg", "-y", cwd=proj)
    run = wait_finished(trk, p.stdout.split()[5])
    assert run["status"] == "error" and "no suitable run" in run["error"]


# -- 12. compare: one column per header -----------------------------------------


def test_compare_merges_a_flag_and_a_scalar_of_one_name(trk, proj):
    trk("run", "prepare", "-y", cwd=proj)
    trk("run", "train", "-y", cwd=proj)
    rows = json.loads(trk("compare", "-o", "train", "--json").stdout)
    assert rows[0]["lr"] == 0.1 and rows[0]["loss"] == pytest.approx(0.9)  # the flag's value, not the scalar's 0.2
    header = trk("compare", "-o", "train", "-t").stdout.splitlines()[0].split()
    assert header.count("lr") == 1
    header = trk("compare", "-o", "train", "-t", "-cc", "=lr,lr,loss").stdout.splitlines()[0].split()
    assert header == ["run", "lr", "loss"]


# -- 13. Guild's command names ----------------------------------------------------


def test_guild_command_names(trk, proj):
    trk("run", "prepare", "size=1", "-y", cwd=proj)
    trk("run", "prepare", "size=2", "-y", cwd=proj)
    assert "prepare" in trk("ops", cwd=proj).stdout
    assert trk("runs", "list", "-s").stdout.count("prepare") == 2
    assert trk("runs", "-Fo", "prep", "-Sc", "-Fl", "size=1", "-s").stdout.split()[-1] == "size=1"  # Guild's filters
    trk("label", "-s", "first", "2", "-y")
    trk("tag", "-a", "t1", "2", "-y")
    assert trk("runs", "-s", "-t", "t1").stdout.split()[-2:] == ["t1", "first"]
    assert "flags" in trk("runs", "diff", "1", "2").stdout
    assert trk("runs", "stop", "-y").stdout.strip() == "Nothing to stop."
    assert trk("runs", "delete", "1", "-y").stdout.strip() == "Deleted 1 run(s)"
    assert "size=2" in trk("runs", "-d", "-s").stdout
    assert "size=2" in trk("runs", "list", "--deleted", "-s").stdout
    assert "rm, delete" in trk("runs", "--help").stdout


def test_trk_runs_word_is_a_command_or_a_run_spec(trk, proj):
    trk("run", "prepare", "size=1", "-y", cwd=proj)
    trk("run", "prepare", "size=2", "-y", cwd=proj)
    run_id = runs_json(trk)[1]["id"]
    assert "size=1" in trk("runs", "2").stdout
    assert trk("runs", "1:2").stdout.count("prepare") == 2
    assert "size=1" in trk("runs", run_id[:6]).stdout
    p = trk("runs", "lst", check=False)
    assert p.returncode == 2 and "No such command 'lst'. Did you mean 'list'?" in p.stderr
    word = "dead" if not run_id.startswith("dead") else "beef"
    p = trk("runs", word, check=False)
    assert p.returncode == 1
    assert f"no run has an id starting with '{word}', and 'trk runs {word}' is not a command" in p.stderr
    p = trk("runs", "mark", check=False)
    assert p.returncode == 2 and "'mark' is a Guild command that trk does not have" in p.stderr


def test_unknown_top_level_command(trk):
    p = trk("compre", check=False)
    assert p.returncode == 2 and "Did you mean 'compare'" in p.stderr
    p = trk("comment", check=False)
    assert p.returncode == 2 and "'comment' is a Guild command that trk does not have" in p.stderr
