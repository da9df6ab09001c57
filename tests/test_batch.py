"""Batch trials: grids, random search, batch files, the batch run and its trials."""

from __future__ import annotations

import json

import pytest

from tests.conftest import copy_sample
from tracker.errors import OpError
from tracker.project.trials import Dist, dimension, expand, read_batch_file


@pytest.fixture
def proj(tmp_path):
    return copy_sample(tmp_path, "batch")


def _runs(trk, *args):
    return json.loads(trk("runs", "-a", "--json", *args).stdout)


# -- trial expansion (no runs) ------------------------------------------------

@pytest.mark.parametrize("text,values", [
    ("range[1:4]", [1, 2, 3, 4]),  # Guild's range includes its end
    ("range[0:1:0.25]", [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("range[3]", [0, 1, 2]),
    ("linspace[0:1:3]", [0.0, 0.5, 1.0]),
    ("logspace[-3:-1:3]", [0.001, 0.01, 0.1]),
])
def test_sequence_functions_expand_as_guild_expands_them(text, values):
    assert dimension("x", text) == values


def test_search_dimensions_and_bad_functions():
    assert dimension("x", "uniform[0:1]") == Dist("uniform", 0, 1, None, "uniform[0:1]")
    assert dimension("x", "[0.1:0.5]").kind == "uniform"
    assert dimension("x", 3) is None
    for bad in ("foo[1:2]", "uniform[2:1]", "loguniform[0:1]", "range[a:b]"):
        with pytest.raises(OpError):
            dimension("x", bad)


def test_grid_is_the_product_in_flag_name_order_and_max_trials_samples_it():
    opt, trials = expand({"b": [1, 2], "a": ["x", "y"], "c": 0}, None, None, None, 1)
    assert opt == "grid"
    assert [(t["a"], t["b"]) for t in trials] == [("x", 1), ("x", 2), ("y", 1), ("y", 2)]
    _, some = expand({"b": [1, 2, 3, 4, 5, 6]}, None, None, 3, 7)
    assert len(some) == 3 and some == sorted(some, key=lambda t: t["b"])  # sampled, order kept
    assert expand({"b": [1, 2, 3, 4, 5, 6]}, None, None, 3, 7) == ("grid", some)  # same seed, same sample


def test_random_search_is_reproducible_with_its_seed():
    opt, trials = expand({"lr": "loguniform[1e-4:1e-1]", "bs": [16, 32]}, None, None, 5, 42)
    assert opt == "random" and len(trials) == 5
    assert all(1e-4 <= t["lr"] <= 1e-1 and t["bs"] in (16, 32) for t in trials)
    assert expand({"lr": "loguniform[1e-4:1e-1]", "bs": [16, 32]}, None, None, 5, 42)[1] == trials
    assert expand({"lr": "loguniform[1e-4:1e-1]", "bs": [16, 32]}, None, None, 5, 43)[1] != trials
    assert len(expand({"n": "uniform[1:9]"}, None, "random", None, 1)[1]) == 20  # Guild's default
    assert all(isinstance(t["n"], int) for t in expand({"n": "uniform[1:9]"}, None, None, 10, 1)[1])
    with pytest.raises(OpError, match="at least one flag"):
        expand({"lr": 0.1}, None, "random", 3, 1)


def test_batch_files_merge_under_command_line_values(tmp_path):
    (tmp_path / "t.csv").write_text("lr,epochs\n0.1,1\n0.2,2\n")
    (tmp_path / "t.json").write_text('[{"lr": 0.3}]')
    (tmp_path / "t.yml").write_text("- {lr: 0.4, epochs: [5, 6]}\n")
    rows = read_batch_file(str(tmp_path / "t.csv")) + read_batch_file(str(tmp_path / "t.json")) + \
        read_batch_file(str(tmp_path / "t.yml"))
    assert rows[0] == {"lr": 0.1, "epochs": 1}
    _, trials = expand({"epochs": 9}, rows, None, None, 1)
    assert [(t["lr"], t["epochs"]) for t in trials] == [(0.1, 9), (0.2, 9), (0.3, 9), (0.4, 9)]
    _, trials = expand({}, rows, None, None, 1)
    assert [t.get("epochs") for t in trials] == [1, 2, None, 5, 6]  # a list in a row is a grid too
    (tmp_path / "bad.yml").write_text("lr: 1\n")
    with pytest.raises(OpError, match="list of flag mappings"):
        read_batch_file(str(tmp_path / "bad.yml"))


# -- batch runs -----------------------------------------------------------------

def test_grid_batch_makes_a_parent_linked_to_its_trials(trk, proj):
    p = trk("run", "train", "lr=[0.1,0.01]", "epochs=range[1:2]", "-y", cwd=proj)
    assert "Batch " in p.stdout and "4/4 completed" in p.stdout
    assert p.stderr.count("Running trial") == 4
    runs = _runs(trk)
    batch = next(r for r in runs if r["op"] == "train+")
    trials = [r for r in runs if r["op"] == "train"]
    assert {(t["flags"]["lr"], t["flags"]["epochs"]) for t in trials} == {(0.1, 1), (0.1, 2), (0.01, 1), (0.01, 2)}
    assert all(t["parent"] == batch["id"] and t["status"] == "completed" for t in trials)
    assert batch["batch"]["trials"] == 4 and batch["batch"]["optimizer"] == "grid"
    links = sorted(p.name for p in (trk.home / "runs" / batch["id"]).iterdir() if p.is_symlink())
    assert links == sorted(t["id"] for t in trials)  # linked by trial id, as Guild links them
    listing = trk("runs").stdout
    assert "train+" in listing and "(4/4 completed)" in listing


def test_preview_prints_trials_and_runs_none(trk, proj):
    p = trk("run", "train", "lr=[0.1,0.01]", "optimizer=[sgd,adam]", "--preview", cwd=proj)
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["#", "epochs", "lr", "optimizer"]
    assert [line.split()[2:] for line in lines[1:]] == [["0.1", "sgd"], ["0.1", "adam"], ["0.01", "sgd"],
                                                         ["0.01", "adam"]]
    assert not (trk.home / "runs").exists() or not list((trk.home / "runs").iterdir())


def test_a_bad_trial_value_stops_the_batch_before_any_run(trk, proj):
    p = trk("run", "train", "optimizer=[sgd,rmsprop]", "-y", cwd=proj, check=False)
    assert p.returncode != 0 and "rmsprop" in p.stderr
    assert not (trk.home / "runs").exists() or not list((trk.home / "runs").iterdir())


def test_random_search_with_seed_and_max_trials(trk, proj):
    args = ("run", "train", "lr=uniform[0.01:0.1]", "--max-trials", "3", "--random-seed", "5")
    first = trk(*args, "--preview", cwd=proj).stdout
    assert first == trk(*args, "--preview", cwd=proj).stdout
    trk(*args, "-y", "-q", cwd=proj)
    runs = _runs(trk)
    assert [r["op"] for r in runs].count("train+random") == 1
    lrs = sorted(r["flags"]["lr"] for r in runs if r["op"] == "train")
    assert lrs == sorted(float(line.split()[2]) for line in first.splitlines()[1:])


def test_batch_files_with_flag_lists(trk, proj):
    p = trk("run", "train", "@trials.csv", "@trials.yml", "optimizer=[adam]", "--preview", cwd=proj)
    rows = [line.split()[1:] for line in p.stdout.splitlines()[1:]]
    assert rows == [["1", "0.01", "adam"], ["3", "0.05", "adam"], ["2", "0.02", "adam"], ["2", "0.04", "adam"]]
    p = trk("run", "train", "@missing.csv", "-y", cwd=proj, check=False)
    assert p.returncode == 2 and "cannot read batch file missing.csv" in p.stderr


def test_failed_trials_and_fail_on_trial_error(trk, proj):
    p = trk("run", "fail-on", "x=[1,2,3]", "-y", "-q", cwd=proj)
    assert "2/3 completed, 1 error" in p.stdout  # as in Guild, the batch goes on and completes
    # The line counts the trials as the batch saw them end; the index agrees.
    assert "(2/3 completed, 1 error)" in trk("runs", "-n", "1", "-o", "fail-on+").stdout
    p = trk("run", "fail-on", "x=[2,3,2,4]", "-y", "-q", "-j", "2", cwd=proj)
    assert "2/4 completed, 2 error" in p.stdout
    assert "(2/4 completed, 2 error)" in trk("runs", "-n", "1", "-o", "fail-on+").stdout
    p = trk("run", "fail-on", "x=[1,2,3]", "-y", "-q", "--fail-on-trial-error", cwd=proj, check=False)
    assert p.returncode == 1 and "stopping batch because a trial failed" in p.stderr
    batches = [r for r in _runs(trk) if r["op"] == "fail-on+"]
    assert sorted(b["status"] for b in batches) == ["completed", "completed", "error"]
    newest = batches[0]
    assert sorted(r["flags"]["x"] for r in _runs(trk, "--batch", newest["id"][:8])) == [1, 2]  # x=3 never ran


def test_parallel_trials_print_progress(trk, proj):
    p = trk("run", "train", "lr=[0.1,0.2,0.3,0.4]", "-j", "2", "-y", cwd=proj)
    assert "4/4 trials: 4 done, 0 running, 0 failed" in p.stderr
    assert "4/4 completed" in p.stdout
    assert all(r["status"] == "completed" for r in _runs(trk))


def test_batch_of_a_stepped_operation_runs_one_pipeline_per_trial(trk, proj):
    trk("run", "pipeline", "lr=[0.1,0.2]", "-y", "-q", cwd=proj)
    runs = _runs(trk)
    batch = next(r for r in runs if r["op"] == "pipeline+")
    pipelines = [r for r in runs if r["op"] == "pipeline"]
    assert sorted(p["flags"]["lr"] for p in pipelines) == [0.1, 0.2]
    assert all(p["parent"] == batch["id"] for p in pipelines)
    trains = [r for r in runs if r["op"] == "train"]
    assert sorted((r["flags"]["lr"], next(p["flags"]["lr"] for p in pipelines if p["id"] == r["parent"]))
                  for r in trains) == [(0.1, 0.1), (0.2, 0.2)]


def test_compare_and_runs_over_a_batch(trk, proj):
    trk("run", "train", "lr=[0.1,0.01]", "-y", "-q", cwd=proj)
    trk("run", "train", "lr=0.5", "-y", "-q", cwd=proj)  # not in the batch
    batch = next(r for r in _runs(trk) if r["op"] == "train+")
    rows = json.loads(trk("compare", "--batch", batch["id"][:8], "--json").stdout)
    assert sorted(r["lr"] for r in rows) == [0.01, 0.1]
    assert sorted(r["loss"] for r in rows) == [1.0, 1.1]
    listed = trk("runs", "--batch", batch["id"][:8]).stdout.splitlines()
    assert len(listed) == 2 and all("train " in line for line in listed)


def test_stage_trials_then_start_one(trk, proj):
    p = trk("run", "train", "lr=[0.1,0.01]", "--stage-trials", "-y", cwd=proj)
    assert "staged 2 trial(s)" in p.stdout
    assert "(0/2 completed, 2 staged)" in trk("runs").stdout
    trial = next(r for r in _runs(trk) if r["op"] == "train")
    trk("run", "--start", trial["id"][:8], "-q")
    assert "(1/2 completed, 1 staged)" in trk("runs").stdout
    batch = next(r for r in _runs(trk) if r["op"] == "train+")
    p = trk("run", "--restart", batch["id"][:8], "-y", check=False)
    assert p.returncode != 0 and "is a batch" in p.stderr
