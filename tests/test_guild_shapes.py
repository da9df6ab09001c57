"""Guild's project file shapes (issue #11, items 1-3): the anonymous model,
operation-only files, configs with `extends`/`params`, `include:` and
`$include`, `operation-defaults`, default models and operations, the default
`main:`, `${flag_args}`/`${project_dir}`, and label templates."""

import os
import textwrap
from pathlib import Path

import pytest

from tracker import project as projmod
from tracker.errors import OpError, ProjectError
from tracker.execution.command import command_argv
from tracker.project.resolve import render_label, resolve, resolve_flags

SHAPES = Path(__file__).resolve().parent.parent / "sample-projects" / "guild" / "shapes"


def write(d: Path, text: str, name: str = "guild.yml") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / name).parent.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(textwrap.dedent(text))
    return d


def ops(p) -> dict:
    return {op.fullname: op for m in p.models.values() for op in m.operations.values()}


# -- item 1: top-level forms ---------------------------------------------------

def test_entry_without_model_is_the_anonymous_model(tmp_path):
    p = projmod.load(write(tmp_path, """
    - operations:
        hello: {exec: echo hi}
    - model: m
      operations:
        hello: {exec: echo m}
    """))
    assert sorted(p.models) == ["", "m"]
    assert resolve(p, "hello").fullname == "hello" and resolve(p, "hello").model == ""
    assert resolve(p, "m:hello").exec == "echo m"


def test_entry_of_no_type_is_an_error_naming_its_line(tmp_path):
    write(tmp_path, "- model: m\n- description: stray\n")
    with pytest.raises(ProjectError, match=r"guild.yml, line 2: entry must define 'model: NAME'"):
        projmod.load(tmp_path)
    write(tmp_path, "- model: m\n  config: c\n")
    with pytest.raises(ProjectError, match="only one of model, config"):
        projmod.load(tmp_path)


def test_operation_string_is_its_main_and_no_main_runs_the_operation_name(tmp_path):
    p = projmod.load(write(tmp_path, """
    train: train --epochs 2
    prepare-data: {}
    evaluate.py:
      flags: {n: 1}
    """))
    assert resolve(p, "train").main == "train --epochs 2"
    assert resolve(p, "prepare-data").main == "prepare_data"
    assert resolve(p, "evaluate.py").main == "evaluate"


def test_configs_and_packages_are_not_models(tmp_path):
    p = projmod.load(write(tmp_path, """
    - package: pkg
    - config: c
      operations: {op: {exec: echo}}
    - model: m
    """))
    assert list(p.models) == ["m"]


# -- item 2: configs, extends, includes, defaults ------------------------------

EXTENDS = """
- config: base
  description: Base for {{name}}
  params: {name: base, lr: 0.1, script: train}
  operations:
    train:
      description: Train {{name}}
      main: "{{script}} --name {{name}}"
      flags:
        lr: {default: "{{lr}}", description: Learning rate}
        epochs: 2
- config: more
  params: {lr: 0.5}
  operations:
    test: {exec: echo test}
- model: a
  extends: base
  params: {name: a}
- model: b
  extends: [more, base]
  operations:
    train:
      flags:
        epochs: 3
"""


def test_extends_merges_parents_and_substitutes_params(tmp_path):
    p = projmod.load(write(tmp_path, EXTENDS))
    assert sorted(p.models) == ["a", "b"]
    a, b = p.models["a"], p.models["b"]
    assert a.description == "Base for a"
    assert a["train"].main == "train --name a" and a["train"].description == "Train a"
    assert a["train"].flags["lr"].default == 0.1  # `"{{lr}}"` takes the param's type
    assert b["train"].flags["lr"].default == 0.5  # the first parent wins
    assert b["train"].flags["lr"].description == "Learning rate"  # kept under the child's value
    assert b["train"].flags["epochs"].default == 3
    assert sorted(b.operations) == ["test", "train"]


@pytest.mark.parametrize("text, message", [
    ("- model: a\n  extends: b\n- model: b\n  extends: a\n", r"line 2: cycle in 'extends' \(b -> a -> b\)"),
    ("- model: a\n  extends: nothere\n", "line 2: undefined model or config 'nothere'"),
    ("- model: a\n  extends: pkg/base\n", "line 2: cannot extend 'pkg/base': trk does not read Guild packages"),
])
def test_bad_extends_names_the_line(tmp_path, text, message):
    with pytest.raises(ProjectError, match=message):
        projmod.load(write(tmp_path, text))


def test_child_exec_replaces_a_parents_main(tmp_path):
    p = projmod.load(write(tmp_path, """
    - config: c
      operations: {op: {main: train}}
    - model: m
      extends: c
      operations:
        op: {exec: python train.py}
    """))
    assert p.models["m"]["op"].exec == "python train.py" and p.models["m"]["op"].main is None


def test_dollar_include_of_operations_and_flags(tmp_path):
    p = projmod.load(write(tmp_path, """
    - config: flags
      flags:
        lr: {default: 0.1, description: Learning rate}
        batch: 32
    - config: ops
      operations:
        train: {main: train, description: From ops}
        test: {exec: echo}
    - model: tools
      operations:
        fetch:
          exec: echo
          flags: {retries: 3, timeout: 10}
    - model: m
      operations:
        $include: ops
        train:
          flags:
            $include: [flags, 'tools:fetch#retries']
            lr: 0.01
    """))
    train = p.models["m"]["train"]
    assert train.main == "train" and train.description == "From ops"
    assert {n: f.default for n, f in train.flags.items()} == {"lr": 0.01, "batch": 32, "retries": 3}
    assert train.flags["lr"].description == "Learning rate"
    assert sorted(p.models["m"].operations) == ["test", "train"]
    assert p.where(p.models["m"]["test"].keypath) == "guild.yml, line 9"  # where `ops` defines it


def test_bad_dollar_include_is_an_error(tmp_path):
    write(tmp_path, "- model: m\n  operations:\n    op:\n      exec: echo\n      flags:\n        $include: nope\n")
    with pytest.raises(ProjectError, match="invalid include reference 'nope': cannot find target"):
        projmod.load(tmp_path)


def test_include_brings_in_another_files_entries(tmp_path):
    write(tmp_path, """
    - config: shared
      operations:
        train: {main: train}
        bad: {main: x, exec: y}
    """, "shared/common.yml")
    write(tmp_path, "- include: shared/common.yml\n- model: m\n  extends: shared\n")
    with pytest.raises(ProjectError, match=r"^shared/common.yml, line 5: operation 'bad' defines both"):
        projmod.load(tmp_path)
    (tmp_path / "shared/common.yml").write_text("- config: shared\n  operations:\n    train: {main: train}\n")
    assert projmod.load(tmp_path).models["m"]["train"].main == "train"


@pytest.mark.parametrize("files, message", [
    ({"guild.yml": "- include: a.yml\n", "a.yml": "- include: guild.yml\n"},
     r"a.yml, line 1: cycle in 'include' \(guild.yml -> a.yml -> guild.yml\)"),
    ({"guild.yml": "- model: m\n- include: missing.yml\n"}, "guild.yml, line 2: cannot find include 'missing.yml'"),
    ({"guild.yml": "- include: ../outside.yml\n"}, "include '../outside.yml' is outside the project directory"),
    ({"guild.yml": "- include: a.yml\n", "a.yml": "- model: [\n"}, "^a.yml, line 2: "),
])
def test_bad_include_is_an_error(tmp_path, files, message):
    (tmp_path / "outside.yml").write_text("- model: x\n")
    for name, text in files.items():
        write(tmp_path / "p", text, name)
    with pytest.raises(ProjectError, match=message):
        projmod.load(tmp_path / "p")


def test_cache_sees_a_change_to_an_included_file(tmp_path):
    proj = write(tmp_path / "p", "- include: inc.yml\n- model: m\n  extends: c\n")
    write(proj, "- config: c\n  operations: {op: {exec: echo one}}\n", "inc.yml")
    cache = str(tmp_path / "cache")
    old = 1_600_000_000
    for name in ("guild.yml", "inc.yml"):
        os.utime(proj / name, (old, old))  # not "modified just now": cacheable
    assert projmod.load(proj, cache_dir=cache).models["m"]["op"].exec == "echo one"
    assert os.listdir(os.path.join(cache, "projects"))  # cached
    assert projmod.load(proj, cache_dir=cache).models["m"]["op"].exec == "echo one"
    (proj / "inc.yml").write_text("- config: c\n  operations: {op: {exec: echo two}}\n")  # same size
    os.utime(proj / "inc.yml", (old + 5, old + 5))
    assert projmod.load(proj, cache_dir=cache).models["m"]["op"].exec == "echo two"
    (proj / "inc.yml").unlink()
    with pytest.raises(ProjectError, match="cannot find include 'inc.yml'"):
        projmod.load(proj, cache_dir=cache)


def test_operation_defaults_fill_what_an_operation_lacks(tmp_path):
    p = projmod.load(write(tmp_path, """
    - model: m
      operation-defaults:
        description: A default description
        flags: {seed: 1}
      operations:
        a: {main: a}
        b: {main: b, description: Own, flags: {lr: 0.1}}
    """))
    a, b = p.models["m"]["a"], p.models["m"]["b"]
    assert a.description == "A default description" and list(a.flags) == ["seed"]
    assert b.description == "Own" and list(b.flags) == ["lr"]  # Guild copies only missing attributes


def test_descriptions_references_and_resources_are_kept(tmp_path):
    p = projmod.load(write(tmp_path, """
    - config: res
      resources:
        data: [{file: data.csv}]
    - model: m
      description: |
        The model
        More text
      references: [https://example.com]
      resources:
        $include: res
        other: [{file: other.csv}]
      operations:
        op: {exec: echo}
    """))
    m = p.models["m"]
    assert m.description == "The model\nMore text" and m.references == ["https://example.com"]
    assert sorted(m.resources) == ["data", "other"]


def test_default_model_and_operation(tmp_path):
    p = projmod.load(write(tmp_path, """
    - model: a
      operations: {train: {exec: echo a}, _private: {exec: echo}}
    - model: b
      default: yes
      operations:
        train: {exec: echo b}
        test: {exec: echo, default: yes}
    """))
    assert p.default_model.name == "b"
    assert resolve(p, None).fullname == "b:test"
    assert resolve(p, "train").fullname == "b:train"  # a bare OP is the default model's
    assert p.models["a"].default_operation.name == "train"  # the only public one
    p = projmod.load(write(tmp_path, "- model: a\n  operations: {x: {exec: echo}}\n- model: b\n"))
    with pytest.raises(OpError, match="cannot find a default operation"):
        resolve(p, "")
    p = projmod.load(write(tmp_path, "x: {exec: echo}\ny: {exec: echo}\n"))
    with pytest.raises(OpError, match="a default operation is not defined for this project"):
        resolve(p, None)


def test_step_flags_dollar_include(tmp_path):
    p = projmod.load(write(tmp_path, """
    - config: step-flags
      flags: {lr: {default: 0.2}, epochs: 4}
    - model: m
      operations:
        train: {exec: echo}
        pipe:
          steps:
            - run: train
              flags: {$include: step-flags}
    """))
    assert p.models["m"]["pipe"].steps[0]["flags"] == {"lr": 0.2, "epochs": 4}


# -- item 3: commands and labels -----------------------------------------------

def test_flag_args_and_project_dir_in_exec(tmp_path):
    p = projmod.load(write(tmp_path, """
    op:
      exec: prog ${project_dir}/x --mode a ${flag_args}
      flags: {msg: 'a b; rm -rf /', n: 1, mode: z, none: null}
    """))
    op = resolve(p, "op")
    flags, _ = resolve_flags(op, {})
    assert command_argv(op, flags, str(tmp_path)) == [
        "prog", f"{tmp_path}/x", "--mode", "a", "--msg", "a b; rm -rf /", "--n", "1"]


def test_render_label_as_guild():
    flags = {"lr": 0.123456789, "i": 12, "s": "hello there", "b": True, "p": "data/x/train.csv", "z": None}
    assert render_label("lr=${lr} i=${i} ${s} ${b}", flags, "") == "lr=0.12345 i=12 'hello there' yes"
    assert render_label("a-${missing}-${z}-c", flags, "") == "a---c"
    assert render_label("${lr|%.2f} ${i|%05d} ${p|basename} ${z|default:none}", flags, "") == "0.12 00012 train.csv none"
    assert render_label("[${default_label}]", flags, "i=12") == "[i=12]"
    with pytest.raises(OpError, match="unsupported label filter 'upper'"):
        render_label("${s|upper}", flags, "")


def test_label_templates_on_runs(trk, tmp_path):
    write(tmp_path, """
    train:
      exec: python -c pass
      label: lr=${lr} ${opt}
      flags: {lr: 0.1, opt: sgd}
    """)
    trk("run", "train", "-y", cwd=tmp_path)
    trk("run", "train", "lr=0.01", "--label", "x ${opt} ${nothing}${lr}", "-y", cwd=tmp_path)
    trk("run", "lr=0.2", "-y", cwd=tmp_path)  # Guild's shift: a flag of the default operation
    out = trk("runs", "-s", cwd=tmp_path).stdout.splitlines()
    assert [line.split("completed")[1].strip() for line in out] == ["lr=0.2 sgd", "x sgd 0.01", "lr=0.1 sgd"]


def test_models_and_operations_listings(trk):
    proj = SHAPES / "anonymous"
    assert trk("models", cwd=proj).stdout == "other  A named model next to the anonymous one\n"
    assert trk("operations", cwd=proj).stdout.splitlines() == [
        "hello         Say hello",
        "prepare-data  No main, exec or steps - runs the module prepare_data",
        "other:hello",
    ]
    assert trk("operations", "OTHER", cwd=proj).stdout == "other:hello\n"
    proj = SHAPES / "ops-only"
    assert "_private" not in trk("operations", cwd=proj).stdout
    assert "_private" in trk("operations", "-a", cwd=proj).stdout


def test_anonymous_operation_by_colon_and_its_restart(trk, tmp_path):
    write(tmp_path, """
    - operations:
        hello: {exec: python -c "print('anonymous')"}
    - model: m
      default: yes
      operations:
        hello: {exec: python -c "print('m')"}
    """)
    assert trk("run", "hello", "-y", cwd=tmp_path).stdout == "m\n"  # as Guild: the default model's
    assert trk("run", ":hello", "-y", cwd=tmp_path).stdout == "anonymous\n"
    assert trk("run", "--restart", "1", "-y", cwd=tmp_path).stdout == "anonymous\n"


def test_every_shapes_sample_runs_without_a_traceback(trk, tmp_path):
    """Each operation of each sample project under sample-projects/guild/shapes."""
    import shutil

    for sample in sorted(SHAPES.iterdir()):
        proj = tmp_path / sample.name
        shutil.copytree(sample, proj)
        listed = trk("operations", "-a", cwd=proj).stdout.split("\n")
        names = [line.split()[0] for line in listed if line.strip()]
        assert names, sample.name
        for name in names:
            p = trk("run", name, "-y", cwd=proj, check=False)
            assert "Traceback" not in p.stdout + p.stderr, (sample.name, name, p.stderr)
            assert p.returncode == 0, (sample.name, name, p.stdout, p.stderr)
    assert len(trk("runs", "-a").stdout.splitlines()) >= 10
