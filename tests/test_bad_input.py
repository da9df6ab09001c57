"""Bad input gets one clear line naming file, line and fix, exit 2 and no
run; never a traceback. Also: pipelines that include themselves, and step
links that survive `--restart` and a moved store."""

import json
import os
import textwrap

import pytest

import tracker
from tracker.errors import OpError
from tracker.project import loader


def write(d, *parts, name="trk.yml"):
    """Write a project file made of `parts` (each dedented on its own)."""
    d.mkdir(exist_ok=True)
    (d / name).write_text("".join(textwrap.dedent(part) for part in parts))
    return d


def run_entries(home):
    """Everything in the store's runs dir, half-made runs included."""
    runs = home / "runs"
    return sorted(os.listdir(runs)) if runs.is_dir() else []


def refused(trk, cwd, *args):
    """Run `trk run ARGS -y`, expecting exit 2, one error line, no run; the line."""
    p = trk("run", *args, "-y", cwd=cwd, check=False)
    assert "Traceback" not in p.stderr, p.stderr
    errors = [line for line in p.stderr.splitlines() if not line.startswith("trk: warning:")]
    assert len(errors) == 1 and errors[0].startswith("trk: "), p.stderr
    assert p.returncode == 2, p.stderr
    assert run_entries(trk.home) == []
    return errors[0]


HELLO = """
hello:
  exec: python -c "print('hello ${msg}')"
  flags: {msg: world}
"""


# -- 13. bad input ---------------------------------------------------------


def test_needs_must_be_step_names(trk, tmp_path):
    proj = write(tmp_path / "p", HELLO, """
    pipe:
      steps:
        - run: hello
          name: a
        - run: hello
          needs: 5
    """)
    assert refused(trk, proj, "pipe") == (
        "trk: trk.yml, line 11: needs must be a step name or a list of step names, not 5")
    (proj / "trk.yml").write_text((proj / "trk.yml").read_text().replace("needs: 5", "needs: [a, {b: 1}]"))
    assert "line 11: needs must be a step name or a list of step names, not ['a', {'b': 1}]" in refused(
        trk, proj, "pipe", "--preview")
    (proj / "trk.yml").write_text((proj / "trk.yml").read_text().replace("needs: [a, {b: 1}]", "needs: [a]"))
    trk("run", "pipe", "-y", cwd=proj)


def test_nul_in_flag_default_names_its_line(trk, tmp_path):
    proj = write(tmp_path / "p", """
    hello:
      exec: python -c "print('hello ${msg}')"
      flags:
        n: 1
        msg:
          default: "a\\0b"
    """)
    line = refused(trk, proj, "hello")
    assert line.startswith("trk: trk.yml, line 7: operation 'hello': flag 'msg' has a NUL byte in its default")
    assert "remove it" in line
    (proj / "trk.yml").write_text('hello:\n  exec: echo ${msg}\n  flags: {msg: "\\0"}\n')
    assert refused(trk, proj, "hello").startswith("trk: trk.yml, line 3: operation 'hello': flag 'msg' has a NUL")


def test_nul_in_step_flag_names_its_line(trk, tmp_path):
    proj = write(tmp_path / "p", HELLO, """
    pipe:
      steps:
        - run: hello
          flags:
            msg: "a\\0b"
        - run: "hello msg=c\\0d"
    """)
    line = refused(trk, proj, "pipe")
    assert line.startswith("trk: trk.yml, line 10: flag 'msg' of step 'hello' has a NUL byte in 'a\\x00b'"), line
    (proj / "trk.yml").write_text((proj / "trk.yml").read_text().replace('msg: "a\\0b"', "msg: ok"))
    assert refused(trk, proj, "pipe").startswith("trk: trk.yml, line 11: flag 'msg' of step 'hello' has a NUL")


def test_nul_in_flag_value_through_the_api(trk, tmp_path, monkeypatch):
    proj = write(tmp_path / "p", HELLO)
    monkeypatch.chdir(proj)
    with pytest.raises(OpError) as e:
        tracker.run("hello", {"msg": "a\0b"})
    assert e.value.exit_code == 2
    assert str(e.value).startswith("flag 'msg' of hello has a NUL byte in 'a\\x00b': remove it")
    with pytest.raises(OpError):
        tracker.run("hello", {"msg": ["ok", {"k": "a\0b"}]}, force_flags=True)
    assert run_entries(trk.home) == []


def test_flag_default_of_the_wrong_type(trk, tmp_path):
    proj = write(tmp_path / "p", """
    train:
      exec: python -c "print(${epochs})"
      flags:
        epochs:
          type: int
          default: abc
    """)
    assert refused(trk, proj, "train") == (
        "trk: trk.yml, line 7: operation 'train': flag 'epochs' has type int, so its default must be an int, not abc")
    for good in ("3", "null", "'7'"):
        (proj / "trk.yml").write_text((proj / "trk.yml").read_text().rsplit("default:", 1)[0] + f"default: {good}\n")
        trk("operations", cwd=proj)
    (proj / "trk.yml").write_text("op:\n  exec: echo\n  flags:\n    fast: {type: bool, default: maybe}\n")
    assert "flag 'fast' has type bool, so its default must be yes or no, not maybe" in refused(trk, proj, "op")


def test_list_value_for_an_int_flag_is_an_error_not_a_traceback(trk, tmp_path):
    proj = write(tmp_path / "p", """
    count:
      exec: echo ${n}
      flags: {n: {type: int, default: 1}}
    pipe:
      steps:
        - run: count
          flags: {n: [1, 2]}
    """)
    p = trk("run", "pipe", "-y", cwd=proj, check=False)
    assert "Traceback" not in p.stderr
    # A list in a step's flags would be a batch of trials in Guild; trk runs
    # batches from the command line only, and says so.
    assert "trk: a batch value cannot be used here: n=[1, 2]" in p.stderr
    assert p.returncode == 2


PIPE = HELLO + """
pipe:
  steps:
    - hello
"""


def test_label_with_a_line_break_on_the_command_line(trk, tmp_path):
    proj = write(tmp_path / "p", PIPE)
    assert refused(trk, proj, "pipe", "--label", "a\nb") == (
        "trk: --label must be one line of text, not 'a\\nb': use spaces instead of line breaks")
    trk("run", "pipe", "--label", "a b", "-y", cwd=proj)


def test_label_with_a_line_break_for_a_plain_operation(trk, tmp_path):
    proj = write(tmp_path / "p", HELLO)
    assert refused(trk, proj, "hello", "--label", "a\nb").startswith("trk: --label must be one line")


def test_label_with_a_line_break_in_a_step(trk, tmp_path):
    proj = write(tmp_path / "p", HELLO, """
    pipe:
      steps:
        - run: hello
        - run: "hello --label 'a\\nb'"
    """)
    assert refused(trk, proj, "pipe") == (
        "trk: trk.yml, line 9: the label of step 'hello' must be one line of text, not 'a\\nb': "
        "use spaces instead of line breaks")


def test_duplicate_keys_warn_naming_both_lines_and_the_last_wins(trk, tmp_path):
    proj = write(tmp_path / "p", """
    - model: m
      operations:
        train:
          exec: python -c "print('lr', ${lr})"
          flags:
            lr: 0.1
            epochs: 2
            lr: 0.2
    """, name="guild.yml")
    warning = "trk: warning: guild.yml, line 9: duplicate key 'lr' (first at line 7); the last one wins"
    p = trk("run", "m:train", "-y", cwd=proj)
    assert p.stderr.splitlines() == [warning]
    assert p.stdout == "lr 0.2\n"
    # Parsed projects are cached once the file is a few seconds old: the
    # warning must come from the cache too.
    os.utime(proj / "guild.yml", (1_000_000_000, 1_000_000_000))
    for _ in range(2):
        p = trk("run", "m:train", "-y", cwd=proj)
        assert p.stderr.splitlines() == [warning] and p.stdout == "lr 0.2\n"


@pytest.mark.parametrize("c_loader", [True, False])
def test_duplicate_keys_found_by_both_yaml_loaders(tmp_path, monkeypatch, c_loader):
    import yaml

    if c_loader and not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    if not c_loader:
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    monkeypatch.setattr(loader, "_LOADER", None)
    expected_base = yaml.CSafeLoader if c_loader else yaml.SafeLoader
    assert expected_base in loader._loader_class().__mro__
    write(tmp_path, """
    base: &base
      exec: echo
      flags: {x: 1}
    a:
      <<: *base
      exec: echo a
      description: one
      description: two
    """)
    p = loader.load(tmp_path)
    assert p.warnings == ["trk.yml, line 9: duplicate key 'description' (first at line 8); the last one wins"]
    assert p.models[""]["a"].config["exec"] == "echo a" and p.models[""]["a"].description == "two"


def test_dict_flag_value_reaches_a_globals_script_as_a_dict(trk, tmp_path, monkeypatch):
    proj = write(tmp_path / "p", """
    train:
      main: train
      flags:
        cfg:
          default: {a: 1, b: [2.5, {c: null}]}
        day: 2020-01-02
    """)
    (proj / "train.py").write_text("cfg = {}\nday = None\nprint(type(cfg).__name__, cfg, repr(day))\n")
    p = trk("run", "train", "-y", cwd=proj)
    assert p.stdout == "dict {'a': 1, 'b': [2.5, {'c': None}]} '2020-01-02'\n"
    p = trk("run", "train", "day=today", "-y", cwd=proj)
    assert p.stdout == "dict {'a': 1, 'b': [2.5, {'c': None}]} 'today'\n"
    monkeypatch.chdir(proj)
    result = tracker.run("train", {"cfg": {"x": [1, {"y": "z"}]}})
    assert result.exit_code == 0
    with open(result.run.output_path) as f:
        assert f.read() == "dict {'x': [1, {'y': 'z'}]} '2020-01-02'\n"


# -- 14. pipelines that include themselves ---------------------------------


SELF_YML = """
- model: p
  operations:
    hello:
      exec: python -c "print('hello')"
    all:
      steps:
        - hello
        - sub
    sub:
      steps:
        - hello
        - run: all
    me:
      steps:
        - run: me
    outer:
      steps:
        - me
"""


def test_pipeline_including_itself_is_refused_before_any_run(trk, tmp_path):
    proj = write(tmp_path / "p", SELF_YML, name="guild.yml")
    line = refused(trk, proj, "p:all")
    assert "pipeline p:all includes itself: p:all → p:sub → p:all" in line
    assert line.startswith("trk: guild.yml, line 13: ")
    assert "pipeline p:sub includes itself: p:sub → p:all → p:sub" in refused(trk, proj, "p:sub")
    assert "line 16: pipeline p:me includes itself: p:me → p:me" in refused(trk, proj, "p:me")
    assert "pipeline p:me includes itself: p:me → p:me" in refused(trk, proj, "p:outer")
    assert "pipeline p:all includes itself" in refused(trk, proj, "p:all", "--preview")
    trk("run", "p:hello", "-y", cwd=proj)


def test_restart_of_a_pipeline_including_itself_is_refused(trk, tmp_path):
    proj = write(tmp_path / "p", SELF_YML.replace("- run: all", "- run: hello"), name="guild.yml")
    trk("run", "p:all", "-y", cwd=proj)
    (proj / "guild.yml").write_text(SELF_YML)
    before = run_entries(trk.home)
    parent = next(r for r in json.loads(trk("runs", "-a", "--json").stdout) if r["op"] == "p:all")
    p = trk("run", "--restart", parent["id"][:8], "-y", cwd=proj, check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "pipeline p:all includes itself: p:all → p:sub → p:all" in p.stderr
    assert run_entries(trk.home) == before


# -- 15. step links after --restart and after moving the store ---------------


RESTART_YML = """
ok:
  exec: python -c "print('ok')"
flaky:
  exec: python -c "import os, sys; sys.exit(0 if os.path.exists('${marker}') else 1)"
  flags: {marker: /nonexistent}
pipe:
  flags: {marker: /nonexistent}
  steps:
    - ok
    - flaky marker=${marker}
    - run: ok
      name: third
"""


def check_links(store_runs, parent_id):
    """Every link in the parent dir is relative and resolves to the run of its step."""
    pdir = os.path.join(store_runs, parent_id)
    links = sorted(n for n in os.listdir(pdir) if os.path.islink(os.path.join(pdir, n)))
    for name in links:
        path = os.path.join(pdir, name)
        assert not os.path.isabs(os.readlink(path)), (name, os.readlink(path))
        assert os.path.isdir(path), f"link {name} -> {os.readlink(path)} dangles"
        with open(os.path.join(path, ".trk", "attrs", "step")) as f:
            assert json.loads(f.read()) == name
    return links


def test_restart_relinks_steps_and_links_survive_a_moved_store(trk, tmp_path):
    from tests.conftest import Trk

    proj = write(tmp_path / "p", RESTART_YML)
    marker = tmp_path / "marker"
    p = trk("run", "pipe", f"marker={marker}", "-y", cwd=proj, check=False)
    assert p.returncode == 1
    parent = [e for e in run_entries(trk.home)
              if os.path.exists(os.path.join(trk.home, "runs", e, ".trk", "attrs", "step_flags"))][0]
    runs = str(trk.home / "runs")
    assert check_links(runs, parent) == ["flaky", "ok"]
    marker.write_text("")
    trk("run", "--restart", parent[:8], "-y", cwd=proj)
    assert check_links(runs, parent) == ["flaky", "ok", "third"]
    trk("run", "--restart", parent[:8], "-y", cwd=proj)  # all reused: links still good
    assert check_links(runs, parent) == ["flaky", "ok", "third"]
    moved = tmp_path / "moved-home"
    os.rename(trk.home, moved)
    assert check_links(str(moved / "runs"), parent) == ["flaky", "ok", "third"]
    p = Trk(moved)("run", "--restart", parent[:8], "-y", cwd=proj)
    assert p.stderr.count("reusing") == 3
