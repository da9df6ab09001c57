"""Guild's flags (issue #11, items 4-6): flags imported from scripts, flag
destinations, flag attributes, FLAG_ variables and batch values refused.

Each test runs trk on a copy of sample-projects/guild/flags, whose scripts
print the values they receive, and checks what the program saw.
"""

from __future__ import annotations

import json
import math
import os

import pytest

from tracker.errors import OpError
from tracker.project.flags import FlagDef, parse_value, settle
from tracker.project.flagvalues import cmd_value, is_batch

from .conftest import copy_sample


@pytest.fixture
def proj(tmp_path):
    return copy_sample(tmp_path, "guild/flags")


def seen(trk, proj, *args):
    """The lines the program printed about the values it received."""
    out = trk("run", *args, "-y", cwd=proj).stdout
    return [line for line in out.splitlines()
            if line.split(" ", 1)[0] in ("arg", "env", "global", "param", "config", "argv")]


# -- item 6 and value parsing ---------------------------------------------------

@pytest.mark.parametrize("text,flag_type,value", [
    ("007", "string", "007"), ("1.10", "string", "1.10"), ("007", None, 7), ("1e-3", None, 0.001),
    ("1_000", None, "1_000"), ("1:30", None, "1:30"), ("yes", "boolean", True), ("0", "boolean", False),
    ("5", "float", 5.0), ("5", "number", 5), ("{a: 1}", None, {"a": 1}), ("'[1]'", None, "[1]"),
    ("hello world", None, "hello world"), ("nan", "string", "nan"),
])
def test_values_parse_as_guild_decodes_them(text, flag_type, value):
    got = parse_value(text, flag_type)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text", ["[0.1,0.01]", "range[1:4]", "linspace[0:1:3]", "uniform[0.1:0.5]",
                                  "loguniform[1e-4:1e-1]", "[1:4]", "[1]*3"])
def test_lists_and_flag_functions_are_batches(text):
    assert is_batch(parse_value(text))


@pytest.mark.parametrize("assign,count", [("lr=[0.1,0.01]", 2), ("lr=range[1:4]", 4), ("lr=uniform[0:1]", 20)])
def test_batch_values_preview_their_trials_and_make_no_run(trk, proj, assign, count):
    p = trk("run", "train", assign, "--preview", cwd=proj)
    assert len(p.stdout.splitlines()) == count + 1  # a header, then a line per trial
    assert not (trk.home / "runs").is_dir() or not os.listdir(trk.home / "runs")


def test_cmd_values_are_encoded_as_guild_encodes_them():
    assert [cmd_value(v) for v in (True, False, None, 1.0, 3, "x", [1, "a b"])] == \
        ["1", "", "", "1.0", "3", "x", "1 'a b'"]


# -- item 4: flags-import and flags-dest ------------------------------------------

def test_argparse_flags_are_imported_with_help_types_and_choices(trk, proj):
    out = trk("run", "train", "--help-op", cwd=proj).stdout
    assert "lr          Learning rate (default is 0.1; type float)" in out
    assert "optimizer   Optimizer to use (default is adam; choices: adam, sgd)" in out
    assert "layers      Hidden layer sizes (default is '64 32'; type int)" in out
    assert "verbose     Print more (default is no; choices: yes, no)" in out


def test_argparse_flags_reach_the_script_as_guild_passes_them(trk, proj):
    lines = seen(trk, proj, "train", "lr=0.01", "layers=8 4", "verbose=yes", "no-shuffle=no")
    assert "arg lr 0.01" in lines
    assert "arg layers [8, 4]" in lines  # arg-split: one argument per part
    assert "arg verbose True" in lines  # store_true: --verbose alone
    assert "arg shuffle False" in lines  # store_false: --no-shuffle alone when the value is no
    assert "env FLAG_NO_SHUFFLE ''" in lines and "env FLAG_VERBOSE '1'" in lines


def test_unknown_value_for_an_imported_choice_is_refused(trk, proj):
    p = trk("run", "train", "optimizer=rmsprop", "-y", cwd=proj, check=False)
    assert "invalid value rmsprop for flag 'optimizer' of train: choose from adam, sgd" in p.stderr


def test_flags_import_list_and_skip(trk, proj):
    some = trk("run", "train-some", "--help-op", cwd=proj).stdout
    assert "epochs" in some and "verbose" in some and "optimizer" not in some
    skip = trk("run", "train-skip", "--help-op", cwd=proj).stdout
    assert "optimizer" in skip and "layers" not in skip and "name " not in skip


def test_defined_flags_take_type_and_help_from_the_script(trk, proj):
    out = trk("run", "train-defined", "--help-op", cwd=proj).stdout
    assert "Learning rate (default is 1; type float)" in out  # shown as written
    assert "epochs  Passes over the data (default is 5; type int)" in out
    assert "arg lr 1.0" in seen(trk, proj, "train-defined")  # a float flag's 1 runs as 1.0


def test_flags_import_no_passes_only_defined_flags(trk, proj):
    assert "optimizer" not in trk("run", "train-no-import", "--help-op", cwd=proj).stdout
    assert "arg lr 0.5" in seen(trk, proj, "train-no-import")


def test_import_does_not_run_the_script_past_parse_args(trk, proj):
    text = (proj / "train.py").read_text().replace(
        "    args = parser.parse_args()", "    args = parser.parse_args()\n    open(__file__ + '.trained', 'w').close()")
    (proj / "train.py").write_text("open('made-at-import', 'w').close()\n" + text)
    assert "Learning rate" in trk("run", "train", "--help-op", cwd=proj).stdout
    assert not (proj / "train.py.trained").exists()
    assert not (proj / "made-at-import").exists()  # created in a scratch directory, not in the project


def test_imported_flags_are_cached_by_script_signature(trk, proj):
    trk("run", "train", "--help-op", cwd=proj)
    os.utime(proj / "train.py", (1_000_000_000, 1_000_000_000))  # an old mtime: cacheable
    trk("run", "train", "--help-op", cwd=proj)
    cached = list((trk.home / "index" / "flags").glob("*.json"))
    assert cached
    text = (proj / "train.py").read_text().replace('help="Learning rate"', 'help="Step size"')
    (proj / "train.py").write_text(text)
    os.utime(proj / "train.py", (1_000_000_100, 1_000_000_100))
    assert "Step size" in trk("run", "train", "--help-op", cwd=proj).stdout


def test_globals_dest_sets_module_globals(trk, proj):
    lines = seen(trk, proj, "globals", "lr=0.5", "layers=1 2", "debug=yes", "name=x")
    assert lines[:6] == ["global lr 0.5", "global epochs 5", "global name 'x'", "global layers [1, 2]",
                         "global debug True", "global dropout None"]
    assert "env FLAG_LAYERS '1 2'" in lines


def test_forced_flag_of_a_globals_script_is_a_global_not_an_argument(trk, proj):
    lines = seen(trk, proj, "globals", "extra=3", "--force-flags")
    assert "global extra 3" in lines
    cmd = json.loads((next((trk.home / "runs").iterdir()) / ".trk" / "attrs" / "cmd").read_text())
    assert "--extra" not in cmd


def test_dict_dest_sets_items_of_the_global_dict(trk, proj):
    lines = seen(trk, proj, "dict", "model.layers=4", "lr=0.5")
    assert lines == ["param epochs 5", "param lr 0.5", "param model {'activation': 'relu', 'layers': 4}"]
    assert "param lr 0.2" in seen(trk, proj, "global-name", "lr=0.2")


@pytest.mark.parametrize("op,expected", [
    ("config-yaml", "epochs: 5\nlr: 0.01\nmodel:\n  activation: relu\n  layers: 3"),
    ("config-json", '{"epochs": 5, "lr": 0.01, "model": {"activation": "relu", "layers": 3}}'),
    ("config-ini", ("[DEFAULT]\nepochs = 5\nlr = 0.01\n\n[model]\nactivation = relu\nepochs = 5\nlayers = 3\n"
                    "lr = 0.1\n\n")),
])
def test_config_dest_writes_the_run_config(trk, proj, op, expected):
    trk("run", op, "lr=0.01", "model.layers=3", "-y", cwd=proj)
    run_dir = next((trk.home / "runs").iterdir())
    name = {"config-yaml": "config.yml"}.get(op, "config." + op.split("-")[1])
    assert (run_dir / name).read_text() == expected
    assert (proj / name).read_text() != expected  # the project's file is left alone


# -- item 5: flag attributes ------------------------------------------------------

def test_every_attribute_reaches_the_program_as_in_guild(trk, proj):
    lines = seen(trk, proj, "attrs", "needed=1", "model=large", "text=007", "sizes=4 5", "csv=x,y", "switch=yes",
                 "quiet=no", "plain=no", "color=blue")
    argv = [line[5:].strip("'") for line in lines if line.startswith("argv")]
    assert argv == ["--big", "12300.0", "--bounded", "5", "--color", "blue", "--count", "3", "--csv", "x", "y",
                    "--home", "here", "--layers", "8", "--lazy", "", "--model", "large-model", "--needed", "1",
                    "--plain", "", "--quiet", "--rate", "1.0", "--ratio", "0.5", "--other-name", "x",
                    "--sizes", "4", "5", "--switch", "--text", "007"]
    assert "env MY_HOME 'here'" in lines and not any(line.startswith("env FLAG_HOME") for line in lines)
    assert "env FLAG_HIDDEN 'secret'" in lines  # arg-skip: no argument, still in the environment
    assert "env FLAG_MAYBE ''" in lines


@pytest.mark.parametrize("assign,message", [
    ("bounded=11", "invalid value 11 for flag 'bounded' of attrs: out of range (greater than max 10)"),
    ("bounded=0", "invalid value 0 for flag 'bounded' of attrs: out of range (less than min 1)"),
    ("count=1.5", "invalid value 1.5 for flag 'count' of attrs: expected int"),
    ("model=huge", "invalid value huge for flag 'model' of attrs: choose from small, large"),
    ("needed=", "missing required flag 'needed' for attrs"),
])
def test_attribute_checks(trk, proj, assign, message):
    args = ["needed=1", assign] if not assign.startswith("needed") else [assign]
    p = trk("run", "attrs", *args, "-y", cwd=proj, check=False)
    assert p.returncode == 1 and message in p.stderr


def test_path_flags_resolve_against_the_project(trk, proj, tmp_path):
    lines = seen(trk, proj, "paths")
    assert f"argv '{proj / 'out' / 'model.bin'}'" in lines
    p = trk("run", "paths", "cfg=nope.yml", "-y", cwd=proj, check=False)
    assert f"{proj / 'nope.yml'} does not exist" in p.stderr


def test_exec_commands_get_guild_encoded_values(trk, proj):
    assert seen(trk, proj, "echo", "loud=no", "msg=1.50")[:2] == ["argv '1.5'", "argv ''"]


def test_settle_applies_choice_alias_and_flags():
    model = FlagDef("model", default="small", choices=["small", "large"])
    model.choice_defs[1].alias, model.choice_defs[1].value = "large", "large-model"
    model.choice_defs[1].flags = {"layers": 8}
    defs = {"model": model, "layers": FlagDef("layers", default=1, type="int")}
    assert settle(defs, {"model": "large"}) == {"model": "large-model", "layers": 8}
    assert settle(defs, {"model": "large", "layers": 3}) == {"model": "large-model", "layers": 3}
    with pytest.raises(OpError, match="choose from small, large"):
        settle(defs, {"model": "huge"})
    assert math.isclose(settle({"x": FlagDef("x", default=1, type="float")}, {})["x"], 1.0)
