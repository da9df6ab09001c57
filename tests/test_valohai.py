"""Valohai's valohai.yaml and prepare() steps as trk operations (issue 12, items 3, 5, bad input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

STEP = """\
- step:
    name: train
    image: python:3.11
    command: python train.py {parameters}
    parameters:
      - name: lr
        type: float
        default: 0.1
      - name: epochs
        type: integer
        default: 2
      - name: note
        default: hi
      - name: fast
        type: flag
"""

PRINT_ARGV = "import json, sys\nprint(json.dumps(sys.argv[1:]))\n"


def _project(tmp_path, yaml_text: str, **files: str):
    proj = tmp_path / "proj"
    proj.mkdir(exist_ok=True)
    (proj / "valohai.yaml").write_text(textwrap.dedent(yaml_text))
    for name, text in files.items():
        path = proj / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return proj


def _runs(trk, proj) -> str:
    return trk("runs", cwd=proj).stdout


def test_parameters_are_typed_flags_passed_as_valohai_passes_them(trk, tmp_path):
    proj = _project(tmp_path, STEP, **{"train.py": PRINT_ARGV})
    p = trk("run", "train", "lr=0.5", "fast=yes", "-y", cwd=proj)
    # argv, no shell: `--name=value`, a true flag as `--fast`; `python` is this interpreter
    assert json.loads(p.stdout.strip().splitlines()[-1]) == ["--lr=0.5", "--epochs=2", "--note=hi", "--fast"]
    cmd = json.loads(trk("cat", "1", "--path", ".trk/attrs/cmd", cwd=proj).stdout)
    assert cmd[0] == sys.executable and "sh" not in cmd
    p = trk("run", "valohai:train", "epochs=1.5", "-y", cwd=proj, check=False)
    assert p.returncode != 0 and "epochs" in p.stderr
    assert "valohai:train" in trk("operations", cwd=proj).stdout


def test_shell_commands_get_values_as_text_never_code(trk, tmp_path):
    proj = _project(tmp_path, """\
        - step:
            name: say
            image: alpine
            command:
              - echo "note is {parameter-value:note}" > said.txt
              - python show.py {parameter:note} '{parameter-value:note}'
            parameters:
              - name: note
                type: string
                default: hi
        """, **{"show.py": PRINT_ARGV})
    marker = tmp_path / "pwned"
    value = f"x; rm -rf {proj}; $(touch {marker}) `touch {marker}` 'q\"s"
    p = trk("run", "say", f"note={value}", "-y", cwd=proj)
    assert json.loads(p.stdout.strip().splitlines()[-1]) == [f"--note={value}", value]
    run_dir = trk("select", "--path", "1", cwd=proj).stdout.strip()
    with open(os.path.join(run_dir, "said.txt")) as f:
        assert f.read() == f"note is {value}\n"
    assert not marker.exists() and proj.exists()
    cmd = json.loads(trk("cat", "1", "--path", ".trk/attrs/cmd", cwd=proj).stdout)
    assert cmd[:2] == ["sh", "-c"] and value not in cmd[2]  # the script refers to the value, never holds it


def test_pass_as_and_flag_pass_true_false(trk, tmp_path):
    proj = _project(tmp_path, """\
        - step:
            name: t
            image: python:3
            command: python t.py {parameters} -- {parameter-value:n}
            parameters:
              - {name: n, type: integer, default: 3, pass-as: '-n {v}'}
              - {name: gpu, type: flag, default: false, pass-true-as: --gpu=yes, pass-false-as: --gpu=no}
              - {name: opt, type: string, optional: true}
        """, **{"t.py": PRINT_ARGV})
    out = trk("run", "t", "-y", cwd=proj).stdout.strip().splitlines()[-1]
    assert json.loads(out) == ["-n", "3", "--gpu=no", "--", "3"]
    out = trk("run", "t", "gpu=yes", "opt=a b", "-y", cwd=proj).stdout.strip().splitlines()[-1]
    assert json.loads(out) == ["-n", "3", "--gpu=yes", "--opt=a b", "--", "3"]


def test_inputs_land_in_inputs_name_and_can_be_overridden(trk, tmp_path):
    proj = _project(tmp_path, """\
        - step:
            name: read
            image: python:3
            command: python read.py
            inputs:
              - name: data
                default: data/a.csv
        """, **{"read.py": "import os\nd = os.path.join(os.environ['VH_INPUTS_DIR'], 'data')\n"
                           "print(sorted(os.listdir(d)), open(os.path.join(d, os.listdir(d)[0])).read())\n",
                "data__a.csv": "A", "data__b.csv": "B"})
    assert "['a.csv'] A" in trk("run", "read", "-y", cwd=proj).stdout
    assert "['b.csv'] B" in trk("run", "read", "data=data/b.csv", "-y", cwd=proj).stdout
    p = trk("run", "read", "data=https://example.com/x.csv", "-y", cwd=proj, check=False)
    assert p.returncode == 2
    assert p.stderr.startswith("trk: input 'data' of valohai:read must be a project file path (as its default is)")
    assert trk("runs", cwd=proj).stdout.count("valohai:read") == 2  # no run for the refused one


def test_prepare_parses_overrides_typed_like_defaults(tmp_path):
    (tmp_path / "inputs" / "training-set").mkdir(parents=True)
    (tmp_path / "inputs" / "training-set" / "set.zip").write_text("z")
    script = textwrap.dedent("""\
        import json, tracker
        v = tracker.prepare(step="train", default_parameters={"learning-rate": 0.001, "epochs": 2,
                            "name": "a", "fast": False},
                            default_inputs={"training-set": "http://example.com/training_set.zip",
                                            "extra": "local.txt"})
        print(json.dumps(v))
        """)
    (tmp_path / "train.py").write_text(script)
    env = dict(os.environ)
    env.pop("VH_INPUTS_DIR", None)
    p = subprocess.run([sys.executable, "train.py", "--learning-rate=.002", "--epochs", "3", "--fast",
                        "--extra=other.txt", "--unknown=1"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    v = json.loads(p.stdout)
    assert v == {"learning-rate": 0.002, "epochs": 3, "name": "a", "fast": True,
                 "training-set": str(tmp_path / "inputs" / "training-set" / "set.zip"),
                 "extra": str(tmp_path / "other.txt")}
    p = subprocess.run([sys.executable, "train.py", "--epochs=2.5"], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert p.returncode == 2 and "--epochs" in p.stderr and "integer" in p.stderr


def test_a_prepare_step_is_an_operation_without_any_yaml(trk, tmp_path):
    proj = tmp_path / "code"
    proj.mkdir()
    (proj / "data.csv").write_text("x\n")
    (proj / "train.py").write_text(textwrap.dedent("""\
        import tracker
        params = {"learning-rate": 0.001}
        v = tracker.prepare(step="train", default_parameters=params, default_inputs={"training-set": "data.csv"},
                            image="tensorflow/tensorflow:gpu")
        print("lr", v["learning-rate"], "set", open(v["training-set"]).read().strip())
        """))
    p = trk("run", "train", "learning-rate=0.3", "-y", cwd=proj)
    assert "lr 0.3 set x" in p.stdout
    assert "valohai:train" in trk("operations", cwd=proj).stdout
    info = trk("runs", "info", "1", cwd=proj).stdout
    assert "learning-rate: 0.3" in info


def test_trk_yaml_step_writes_and_refuses_non_literals(trk, tmp_path):
    proj = tmp_path / "code"
    proj.mkdir()
    (proj / "valohai.yaml").write_text("# my steps\n" + STEP)
    (proj / "train.py").write_text(PRINT_ARGV)
    (proj / "fit.py").write_text(
        'import sys\nimport tracker as valohai\nvalohai.prepare(step="fit", default_parameters={"k": 3}, '
        'image="python:3")\nprint(sys.argv[1:])\n')
    assert trk("yaml", "step", "fit.py", cwd=proj).stdout == "Added step 'fit' in valohai.yaml\n"
    text = (proj / "valohai.yaml").read_text()
    assert text.startswith("# my steps\n") and "command: python ./fit.py {parameters}" in text
    assert "--k=3" in trk("run", "fit", "-y", cwd=proj).stdout
    (proj / "fit.py").write_text(
        'import sys\nimport tracker as valohai\nvalohai.prepare(step="fit", default_parameters={"k": 4}, '
        'image="python:3")\nprint(sys.argv[1:])\n')
    assert trk("yaml", "step", "fit.py", cwd=proj).stdout == "Updated step 'fit' in valohai.yaml\n"
    assert "--k=4" in trk("run", "fit", "-y", cwd=proj).stdout
    (proj / "bad.py").write_text('import valohai\ndomain = "x"\nvalohai.prepare(\n    step="bad",\n'
                                 '    default_inputs={"d": f"http://{domain}/a.zip"},\n)\n')
    p = trk("yaml", "step", "bad.py", cwd=proj, check=False)
    assert p.returncode == 2
    assert p.stderr.startswith("trk: bad.py, line 5: argument 'default_inputs' of prepare() is not a literal")
    # when loading, the unreadable script is left out with a warning naming its line
    p = trk("operations", cwd=proj)
    assert "bad.py, line 5" in p.stderr and "valohai:bad" not in p.stdout


def test_pipeline_runs_nodes_as_steps_feeding_outputs_to_inputs(trk, tmp_path):
    proj = _project(tmp_path, """\
        - step:
            name: make
            image: python:3
            command: python make.py {parameters}
            parameters: [{name: n, type: integer, default: 2}]
        - step:
            name: use
            image: python:3
            command: python use.py {parameters}
            parameters: [{name: m, type: integer, default: 0}]
            inputs: [{name: model, default: fallback.txt}]
        - pipeline:
            name: flow
            nodes:
              - {name: a, type: execution, step: make}
              - {name: b, type: execution, step: use}
            edges:
              - [a.output.*.txt, b.input.model]
              - [a.parameter.n, b.parameter.m]
        """, **{"make.py": "import os, sys\nos.makedirs('outputs')\nopen('outputs/model.txt', 'w').write(sys.argv[1])\n",
                "use.py": "import os, sys\nprint(sys.argv[1], os.listdir('inputs/model'), "
                          "open('inputs/model/model.txt').read())\n",
                "fallback.txt": "no"})
    p = trk("run", "flow", "-y", cwd=proj)
    assert "--m=2 ['model.txt'] --n=2" in p.stdout
    runs = _runs(trk, proj)
    assert "valohai:flow" in runs and "valohai:_flow.b" in runs and "valohai:make" in runs


BAD = [
    ("- step:\n    name: t\n    image: i\n    command: python t.py {parameters}\n    parameters:\n"
     "      - {name: lr, type: real}\n", "valohai.yaml, line 6: parameter 'lr' of step 't' has unknown type 'real'"),
    ("- step:\n    name: t\n    image: i\n    command: python t.py {parameter:lr}\n",
     "valohai.yaml, line 4: {parameter:lr} in the command of step 't' names no parameter"),
    ("- step:\n    name: t\n    image: i\n    command: x\n    parameters:\n      - name: n\n        type: integer\n"
     "        default: ten\n", "valohai.yaml, line 8: the default of parameter 'n' must be of type integer"),
    ("- step:\n    name: t\n    command: x\n", "valohai.yaml, line 2: a step has no 'image' (it is required)"),
    ("- step:\n    name: t\n    image: i\n    command: x\n    inputs: data.csv\n",
     "valohai.yaml, line 5: 'inputs' must be a list, not text"),
    ("steps: []\n", "valohai.yaml, line 1: valohai.yaml must be a list"),
    ("- step: {name: t, image: i, command: x}\n- pipeline:\n    name: p\n    nodes:\n"
     "      - {name: a, step: t}\n      - {name: b, step: t}\n    edges:\n      - [a.output.x, c.input.y]\n",
     "valohai.yaml, line 8: edge 'c.input.y' names no node of the pipeline"),
    ("- step: {name: t, image: i, command: x}\n- pipeline:\n    name: p\n    nodes:\n"
     "      - {name: a, step: t}\n      - {name: b, step: t}\n    edges:\n"
     "      - [a.metadata.x, b.metadata.y]\n      - [b.metadata.x, a.metadata.y]\n",
     "valohai.yaml, line 8: the edges of pipeline 'p' make a cycle: "),
    ("- step: {name: t, image: i, command: x}\n- pipeline:\n    name: p\n    nodes:\n"
     "      - {name: a, step: nope}\n    edges: []\n",
     "valohai.yaml, line 5: node 'a' of pipeline 'p' names no step: 'nope'"),
    ("- step:\n    name: t\n    image: i\n    command: [x\n", "valohai.yaml, line 5: "),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_input_is_one_line_with_file_and_line_exit_2_no_run(trk, tmp_path, text, message):
    proj = tmp_path / "bad"
    proj.mkdir()
    (proj / "valohai.yaml").write_text(text)
    p = trk("run", "valohai:t", "-y", cwd=proj, check=False)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("trk: " + message), p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) <= 2
    assert _runs(trk, proj).strip() == ""


def test_unknown_keys_warn_with_file_and_line(trk, tmp_path):
    proj = _project(tmp_path, STEP.replace("    image: python:3.11\n", "    image: python:3.11\n    colour: red\n")
                    + "- endpoint: {name: e}\n", **{"train.py": PRINT_ARGV})
    p = trk("operations", cwd=proj)
    assert "trk: warning: valohai.yaml, line 4: unknown key 'colour' in a step ignored" in p.stderr
    assert "valohai.yaml, line 17: a Valohai endpoint is not run by trk; ignored" in p.stderr
    # the image is recorded with the run
    trk("run", "train", "-y", cwd=proj)
    run_dir = trk("select", "--path", "1", cwd=proj).stdout.strip()
    with open(os.path.join(run_dir, ".trk", "attrs", "image")) as f:
        assert json.loads(f.read()) == "python:3.11"
