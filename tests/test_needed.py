"""`--needed` reuses a run only when flags, source and dependencies match."""

import json

import pytest

from tests.conftest import SAMPLES, copy_sample


@pytest.fixture
def pipeline(tmp_path):
    return copy_sample(tmp_path, "pipeline")


def count(trk, op):
    return sum(1 for r in json.loads(trk("runs", "-a", "--json").stdout) if r["op"] == op)


def test_needed_skips_same_inputs_and_reruns_on_change(trk, pipeline):
    trk("run", "prepare", "-y", cwd=pipeline)
    trk("run", "train", "--needed", "-y", cwd=pipeline)
    p = trk("run", "train", "--needed", "-y", cwd=pipeline)
    assert p.stdout.startswith("Skipping run because a completed run with the same inputs exists: ")
    assert count(trk, "train") == 1
    trk("run", "train", "lr=0.2", "--needed", "-y", cwd=pipeline)  # a flag changed
    assert count(trk, "train") == 2
    (pipeline / "train.py").write_text((pipeline / "train.py").read_text() + "\n# changed\n")
    p = trk("run", "train", "lr=0.2", "--needed", "--explain", "-y", cwd=pipeline)
    assert "source code changed" in p.stdout
    assert count(trk, "train") == 3


def test_needed_never_reuses_a_run_made_from_another_upstream_run(trk, pipeline):
    trk("run", "prepare", "-y", cwd=pipeline)
    trk("run", "train", "--needed", "-y", cwd=pipeline)
    trk("run", "prepare", "-y", cwd=pipeline)  # same flags: Guild would reuse train
    p = trk("run", "train", "--needed", "--explain", "-y", cwd=pipeline)
    assert "dependency operation:prepare resolved to a different run" in p.stdout
    assert count(trk, "train") == 2


def test_needed_notices_changed_file_dependency(trk, pipeline):
    trk("run", "prepare", "--needed", "-y", cwd=pipeline)
    assert "Skipping" in trk("run", "prepare", "--needed", "-y", cwd=pipeline).stdout
    (pipeline / "data" / "raw.csv").write_text("x,y\n9,9\n")
    p = trk("run", "prepare", "--needed", "--explain", "-y", cwd=pipeline)
    assert "changed" in p.stdout and count(trk, "prepare") == 2


def test_explain_says_why_a_run_is_reused(trk, pipeline):
    trk("run", "prepare", "-y", cwd=pipeline)
    p = trk("run", "prepare", "--needed", "--explain", "-y", cwd=pipeline)
    assert "Reusing run" in p.stdout and "same flags, source code and dependencies" in p.stdout


def test_needed_step_sees_only_its_own_pipeline(trk):
    # Guild's isolate-runs: a `--needed` step reuses runs of its own pipeline
    # only, so a second pipeline run makes (and links) its own prepare run.
    steps = SAMPLES / "steps"
    trk("run", "m4:end-to-end", "-y", cwd=steps)
    trk("run", "m4:end-to-end", "-y", cwd=steps)
    runs = json.loads(trk("runs", "-a", "--json").stdout)
    assert sum(1 for r in runs if r["op"] == "m4:prepare") == 2
    parents = [r for r in runs if r["op"] == "m4:end-to-end"]
    import os

    targets = {os.path.realpath(os.path.join(p["dir"], "prepare")) for p in parents}
    assert len(targets) == 2
