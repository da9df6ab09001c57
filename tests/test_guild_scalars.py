"""Guild's output-scalars syntax (issue 11, items 7-9): patterns, the default
pattern and trk's `key=value` extension, and the warning for a pattern that
matched no line."""

from __future__ import annotations

import json

import pytest

from tracker.metrics.events import read_scalars
from tracker.metrics.output import OutputScalars, OutputScalarSpec, parse_lines

from .conftest import copy_sample


def parse(spec, text, ignore=()):
    return parse_lines(OutputScalarSpec(spec, ignore), text.encode(), 0)[0]


# -- 7. Guild's pattern syntax ----------------------------------------------------

def test_shorthands_stand_for_guilds_regexes():
    assert parse([r"(\key)... (\value)"], "loss... 2\n") == [("loss", 2.0, 0)]
    assert parse([r"iter (?P<step>\step)", r"(\key) -> (\value)"], "iter 4\nval/acc -> 1e-3\n") == [
        ("val/acc", 1e-3, 4)]
    # \value is Guild's [0-9.e-]+: a sign or `nan` is not part of it
    assert parse([r"(\key)=(\value)$"], "a=+1\nb=nan\nc=-2.5e-1\n") == [("c", -0.25, 0)]


def test_step_group_sets_the_step_of_its_own_line_and_the_next():
    spec = [r"\key: +\value \((?P<step>\step)\)", r"(\key): +(\value)"]
    assert parse(spec, "loss: 1 (10)\nacc:  2 (10)\nloss: 3 (20)\nacc: 4\n") == [
        ("loss", 1.0, 10), ("acc", 2.0, 10), ("loss", 3.0, 20), ("acc", 4.0, 20)]


def test_two_unnamed_groups_are_key_and_value():
    assert parse(r"(\S+):\s+([\d.eE+-]+)", "loss: 1.5\nacc: 0.5\nfoo: bar\n") == [("loss", 1.5, 0), ("acc", 0.5, 0)]
    # in a mapping too: the first group names the scalar, as in Guild
    assert parse({"ignored": r"(\w+) is (\S+)"}, "acc is 0.75\n") == [("acc", 0.75, 0)]


def test_named_groups_are_scalars_and_step_sets_the_step():
    spec = [r"Epoch (?P<step>\d+): loss=(?P<loss>\S+) acc=(?P<acc>\S+)"]
    assert parse(spec, "Epoch 1: loss=0.5 acc=0.25\nEpoch 2: loss=0.25 acc=oops\n") == [
        ("loss", 0.5, 1), ("acc", 0.25, 1), ("loss", 0.25, 2)]


@pytest.mark.parametrize("pattern", [r"(?P<_val>[\d.]+) \((?P<_key>\w+)\)", r"(?P<value>[\d.]+) \((?P<key>\w+)\)"])
def test_key_and_value_groups_name_the_scalar(pattern):
    assert parse(pattern, "0.5 (loss)\n0.75 (acc)\n") == [("loss", 0.5, 0), ("acc", 0.75, 0)]


def test_a_value_group_alone_is_a_scalar_named_value():
    assert parse(r"score (?P<value>\S+)", "score 3\n") == [("value", 3.0, 0)]


def test_mapping_of_names_to_one_group_patterns():
    spec = {"step": r"step (\d+):", "loss": r"loss: (\S+)", "acc": r"acc: (\S+)"}
    assert parse(spec, "Training...\nstep 1:\nloss: 1.5 - acc: 0.25\nstep 2:\nloss: 0.5 - acc: 0.75\n") == [
        ("loss", 1.5, 1), ("acc", 0.25, 1), ("loss", 0.5, 2), ("acc", 0.75, 2)]


def test_the_last_match_of_a_key_on_a_line_wins():
    line = "x=1 y=1 - x=2 y=2 - x=3 y=3\n"
    assert parse({"x": r"x=(\d+)"}, line) == [("x", 3.0, 0)]
    assert parse([r"(\w+)=(\d+)"], line) == [("x", 3.0, 0), ("y", 3.0, 0)]


def test_a_list_mixes_mappings_and_patterns_and_a_step_key_sets_the_step():
    spec = [{"step": r"round (\step)"}, r"(?P<lr_used>[\d.]+) was the learning rate", r"(\key)=(\value)"]
    text = "round 1\n0.01 was the learning rate\nloss=0.5 acc=0.25\nstep=7\nloss=0.125\n"
    assert parse(spec, text) == [("lr_used", 0.01, 1), ("loss", 0.5, 1), ("acc", 0.25, 1), ("loss", 0.125, 7)]


def test_patterns_see_the_line_without_trailing_space():
    assert parse({"loss": r"loss=(\S+)$"}, "loss=0.5   \r\n") == [("loss", 0.5, 0)]


@pytest.mark.parametrize("config", [False, "no", [], {}])
def test_output_scalars_no_turns_them_off(config):
    assert not OutputScalarSpec(config).enabled
    assert OutputScalarSpec(None).enabled


@pytest.mark.parametrize("config, message", [
    ({"done": "Training done"}, "has 0 groups"),
    ([r"(a)(b)(c)"], "has 3 groups"),
    ([r"loss=(\S+)"], "has one group but no name"),
    ({"loss": 5}, "must be a regex string"),
    ({"loss": r"loss=(\S+"}, "invalid regex"),
    ([["nested"]], "invalid output-scalars entry"),
])
def test_patterns_that_cannot_give_a_scalar_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        OutputScalarSpec(config)


# -- 8. the default pattern -----------------------------------------------------

def test_default_reads_guilds_key_colon_value_lines_and_their_steps():
    text = "x: 1 (step 1)\nx: 3 (3)\nx: 2 (step 2)\nx: 4\nx: 5 (5)\nx: 6 (not a step)\ndone: 3 items\n"
    assert parse(None, text) == [("x", 1.0, 1), ("x", 3.0, 3), ("x", 2.0, 2), ("x", 4.0, 2), ("x", 5.0, 5),
                                 ("x", 6.0, 5)]
    # Guild's step pattern is not anchored: a `(step N)` after other text still sets it
    assert parse(None, "epoch done, val: 0.5 (step 8)\nacc: 1\n") == [("acc", 1.0, 8)]


def test_default_skips_flag_names_but_still_reads_step():
    got = parse(None, "lr: 0.1\nepochs: 2\nstep: 3\nloss: 0.5\nlr=0.2 acc=0.75\n", ignore=["lr", "epochs", "step"])
    assert got == [("loss", 0.5, 3), ("acc", 0.75, 3)]


def test_explicit_patterns_do_not_skip_flag_names():
    assert parse({"lr": r"lr: (\S+)"}, "lr: 0.1\n", ignore=["lr"]) == [("lr", 0.1, 0)]


def test_default_reads_several_key_value_pairs_after_a_leading_epoch_or_step():
    text = ("epoch 5 loss=0.31 acc=0.92\nloss: 0.25\n"
            "Epoch 6/10 - loss=0.2 - val/acc=0.95\nstep 7: loss=0.1, acc=0.96\nloss=0.05 name=abc\n")
    assert parse(None, text) == [("loss", 0.31, 5), ("acc", 0.92, 5), ("loss", 0.25, 5), ("loss", 0.2, 6),
                                 ("val/acc", 0.95, 6), ("loss", 0.1, 7), ("acc", 0.96, 7), ("loss", 0.05, 7)]


@pytest.mark.parametrize("line", ["Namespace(lr=0.1, batch=32)", "Using lr=0.1 for training", "foo bar=1",
                                  "epoch 5", "epoch=5x loss", "a = 1 b = 2", "INFO: [trk] running step-1: m1:step-1"])
def test_other_text_on_a_line_makes_it_no_scalar_line(line):
    assert parse(None, line + "\n") == []


# -- 9. a pattern that matched no line ---------------------------------------------

def _close(spec, text, tmp_path):
    out = OutputScalars(spec, str(tmp_path / "events"))
    out.feed(text.encode())
    return out, out.close()


def test_each_pattern_that_matched_no_line_gives_one_warning(tmp_path):
    spec = [{"loss": r"loss=(\value)", "val_acc": r"val_acc=(\value)"}, r"(?P<key>\w+) -> (?P<value>\S+)"]
    out, warnings = _close(spec, "loss=0.5\nloss=0.25\n", tmp_path)
    assert warnings == [r"output-scalars: pattern 'val_acc=(\value)' for val_acc matched no line",
                        r"output-scalars: pattern '(?P<key>\w+) -> (?P<value>\S+)' matched no line"]
    assert out.warnings == warnings
    (path,) = (tmp_path / "events").iterdir()
    assert read_scalars(str(path)).scalars == [("loss", 0, 0.5), ("loss", 0, 0.25)]


def test_a_pattern_that_matched_without_a_number_is_not_warned_about(tmp_path):
    _, warnings = _close({"loss": r"loss=(\S+)"}, "loss=oops\n", tmp_path)
    assert warnings == []


def test_the_default_pattern_never_warns(tmp_path):
    _, warnings = _close(None, "hello\n", tmp_path)
    assert warnings == []


def test_a_long_pattern_is_shortened_in_the_warning(tmp_path):
    _, (warning,) = _close({"x": "x" * 80 + r"(\d)"}, "nothing\n", tmp_path)
    assert warning == "output-scalars: pattern '" + "x" * 57 + "…' for x matched no line"


# -- the sample project, run by trk ---------------------------------------------------

@pytest.fixture
def sample(tmp_path):
    return copy_sample(tmp_path, "guild/scalars")


def scalars_of(trk):
    info = json.loads(trk("runs", "info", "--json").stdout)
    return info.get("scalars") or {}


def test_no_match_warns_once_at_the_end_of_the_run(trk, sample):
    p = trk("run", "no-match", "-y", cwd=sample)
    warning = r"WARNING: output-scalars: pattern 'val_acc=(\value)' for val_acc matched no line"
    assert p.stdout.splitlines() == ["loss=0.5", "done", warning]
    assert scalars_of(trk) == {"loss": "0.5 (step 0)"}
    run_dir = trk("select", "--path").stdout.strip()
    with open(f"{run_dir}/.trk/output") as f:
        assert f.read().splitlines()[-1] == warning


def test_quiet_run_keeps_the_warning_in_its_output(trk, sample):
    p = trk("run", "no-match", "-y", "-q", cwd=sample)
    assert "WARNING" not in p.stdout + p.stderr
    run_dir = trk("select", "--path").stdout.strip()
    with open(f"{run_dir}/.trk/output") as f:
        assert "matched no line" in f.read()


def test_default_op_skips_its_flags_and_reads_step_remarks(trk, sample):
    p = trk("run", "default", "-y", cwd=sample)
    assert "WARNING" not in p.stdout
    assert scalars_of(trk) == {"acc": "0.667 (step 2)", "loss": "0.5 (step 2)", "val_acc": "0.8 (step 11)",
                               "val_loss": "0.25 (step 10)"}


def test_pairs_op_reads_several_pairs_a_line(trk, sample):
    trk("run", "pairs", "-y", cwd=sample)
    assert scalars_of(trk) == {"acc": "0.75 (step 3)", "final_loss": "0.2 (step 3)", "loss": "0.33 (step 3)"}


def test_a_pattern_without_a_scalar_fails_before_the_run_starts(trk, sample):
    (sample / "guild.yml").write_text("op:\n  main: no_match\n  output-scalars: 'loss=(\\S+)'\n")
    p = trk("run", "op", "-y", cwd=sample, check=False)
    assert p.returncode == 1 and "has one group but no name" in p.stderr
    assert "Traceback" not in p.stderr
