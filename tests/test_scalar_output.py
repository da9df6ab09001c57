"""Output scalars: printed metric lines become scalars."""

import os

import pytest

from tracker.metrics.events import read_scalars
from tracker.metrics.output import OutputScalars, OutputScalarSpec, parse_lines


def parse(spec, text):
    return parse_lines(OutputScalarSpec(spec), text.encode(), 0)[0]


def test_default_pattern():
    text = ("loss=1.0\nacc: 0.5\n  val_loss = -1.2e-3\nx=nan\nhello world\nprepared data\n"
            "Resolving operation:prepare\nUsing run abc for operation:prepare\n"
            "INFO: [trk] running step-1: m1:step-1\nstep: 3\nloss=0.5\nname=abc\n")
    got = parse(None, text)
    assert [(t, s) for t, _, s in got] == [("loss", 0), ("acc", 0), ("val_loss", 0), ("x", 0), ("loss", 3)]
    assert got[2][1] == pytest.approx(-1.2e-3)


def test_mapping_and_named_patterns():
    assert parse({"loss": r"loss is (\S+)", "step": r"epoch (\d+)"}, "epoch 2\nloss is 0.25\n") == [("loss", 0.25, 2)]
    assert parse([r"(?P<key>\w+)=(?P<value>\S+)"], "a=1 b=2\n") == [("a", 1.0, 0), ("b", 2.0, 0)]


def test_invalid_pattern_is_a_clear_error():
    with pytest.raises(ValueError, match="invalid regex"):
        OutputScalarSpec({"loss": "loss=(.+"})


def test_feed_split_chunks_writes_events(tmp_path):
    out = OutputScalars(None, str(tmp_path))
    for chunk in (b"step: 1\nlo", b"ss=0.5\nacc", b"=0.25\n", b"loss=0.1"):
        out.feed(chunk)
    out.close()
    (path,) = list(tmp_path.iterdir())
    assert read_scalars(str(path)).scalars == [("loss", 1, 0.5), ("acc", 1, 0.25), ("loss", 1, pytest.approx(0.1))]


def test_disabled_writes_nothing(tmp_path, project, trk):
    (project / "trk.yml").write_text("train:\n  main: train\n  output-scalars: no\n")
    trk("run", "train", "-y", cwd=project)
    (run_dir,) = (trk.home / "runs").iterdir()
    assert not [p for p in (run_dir / ".trk").iterdir() if "tfevents" in p.name]


def test_running_job_scalars_are_visible(trk, tmp_path):
    """Output scalars are flushed every few seconds while the program runs."""
    import json
    import subprocess
    import time

    proj = tmp_path / "live"
    proj.mkdir()
    (proj / "trk.yml").write_text("slow:\n  exec: python slow.py\n")
    (proj / "slow.py").write_text(
        "import os, time\nprint('loss=0.5', flush=True)\n"
        "while not os.path.exists('stop'):\n    time.sleep(0.1)\n")
    proc = trk.popen("run", "slow", "-y", cwd=proj, stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()
        deadline = time.time() + 15
        seen = None
        while time.time() < deadline:
            info = json.loads(trk("runs", "info", "--json").stdout)
            seen = info.get("scalars")
            if seen:
                break
            time.sleep(0.5)
        assert info["status"] == "running"
        assert seen == {"loss": "0.5 (step 0)"}
    finally:
        run_dir = json.loads(trk("runs", "info", "--json").stdout)["run_dir"]
        open(os.path.join(run_dir, "stop"), "w").close()
        proc.wait(timeout=20)
