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


def test_default_pattern_values_and_non_values():
    text = ("a=inf\nb = -inf\nc:1e5\nd=.5\ne=1.2.3\nf=1-2\ng=0x10\nstep=nan\nh=2\n"
            "loss=0.1 acc=0.2\n  lr :  3e-4  \r\nfoo bar=1\n")
    got = parse(None, text)
    assert got == [("a", float("inf"), 0), ("b", float("-inf"), 0), ("c", 1e5, 0), ("d", 0.5, 0),
                   ("h", 2.0, 0), ("loss", 0.1, 0), ("acc", 0.2, 0), ("lr", 3e-4, 0)]  # several pairs: issue 11


def test_step_lines_set_the_step_and_are_not_scalars():
    got = parse(None, "loss=3\nstep=10\nloss=2\nstep: 11\nloss=1\n")
    assert got == [("loss", 3.0, 0), ("loss", 2.0, 10), ("loss", 1.0, 11)]


def test_list_of_mappings_and_named_step():
    spec = [{"loss": r"loss is (\S+)"}, {"acc": r"acc=(\S+)", "step": r"^epoch (\d+)"},
            r"(?P<key>val_\w+) (?P<value>\S+)"]
    got = parse(spec, "epoch 3\nloss is 0.5 acc=0.75\nval_loss 0.25\nloss is nope\nloss=9\n")
    assert got == [("loss", 0.5, 3), ("acc", 0.75, 3), ("val_loss", 0.25, 3)]


@pytest.mark.parametrize("spec", [{"loss": "(unclosed"}, ["(?P<key>x"], [{"a": "b["}]])
def test_every_invalid_regex_names_its_pattern(spec):
    with pytest.raises(ValueError) as e:
        OutputScalarSpec(spec)
    assert "invalid regex" in str(e.value)
    pattern = next(iter(spec.values())) if isinstance(spec, dict) else spec[0]
    pattern = next(iter(pattern.values())) if isinstance(pattern, dict) else pattern
    assert repr(pattern) in str(e.value)


def test_chunks_split_at_every_byte_give_the_same_scalars(tmp_path):
    text = b"step: 2\nloss=0.5\r\nacc: 0.25\nnoise\nloss = 1e-3\n"
    want = [("loss", 2, 0.5), ("acc", 2, 0.25), ("loss", 2, pytest.approx(1e-3))]
    for cut in range(1, len(text)):
        out_dir = tmp_path / str(cut)
        out = OutputScalars(None, str(out_dir))
        out.feed(text[:cut])
        out.feed(text[cut:])
        out.close()
        (path,) = list(out_dir.iterdir())
        assert read_scalars(str(path)).scalars == want, cut


def test_no_scalars_no_event_file(tmp_path):
    out = OutputScalars(None, str(tmp_path / "ev"))
    out.feed(b"hello world\nprepared data\n")
    out.close()
    assert not (tmp_path / "ev").exists()


def test_scalars_are_flushed_while_feeding(tmp_path, monkeypatch):
    """A running job's scalars reach the event file without close()."""
    import time

    from tracker.metrics import output

    monkeypatch.setattr(output, "FLUSH_SECONDS", 0.2)
    out = OutputScalars(None, str(tmp_path))
    out.feed(b"loss=0.5\n")
    deadline = time.monotonic() + 5
    seen = []
    while time.monotonic() < deadline and not seen:
        time.sleep(0.05)
        out.maybe_flush()
        files = list(tmp_path.iterdir())
        seen = read_scalars(str(files[0])).scalars if files else []
    assert seen == [("loss", 0, 0.5)]
    out.close()


def test_value_beyond_float32_becomes_inf_and_tracking_goes_on(tmp_path):
    out = OutputScalars(None, str(tmp_path))
    out.feed(b"loss=1e39\nloss=-1e39\nacc=0.5\n")
    out.close()
    (path,) = list(tmp_path.iterdir())
    assert read_scalars(str(path)).scalars == [("loss", 0, float("inf")), ("loss", 0, float("-inf")), ("acc", 0, 0.5)]
    assert not OutputScalarSpec(False).enabled and not OutputScalarSpec("no").enabled
