"""dstack workflows (issue 12, item 2): `.dstack/workflows.yaml` and
`.dstack/variables.yaml` run as trk operations, through `trk` itself."""

import os
import textwrap

import pytest

import tracker
from tests.conftest import by_op, copy_sample


def dstack_project(d, workflows, variables=None):
    """A project with the given `.dstack/` files (each dedented)."""
    (d / ".dstack").mkdir(parents=True, exist_ok=True)
    (d / ".dstack" / "workflows.yaml").write_text(textwrap.dedent(workflows))
    if variables is not None:
        (d / ".dstack" / "variables.yaml").write_text(textwrap.dedent(variables))
    return d


@pytest.fixture
def gpt2(tmp_path):
    return copy_sample(tmp_path, "dstack")


def test_pipeline_runs_depends_on_first_and_links_artifacts(trk, gpt2):
    p = trk("run", "dstack:finetune-model", "learning_rate=0.0001", "-y", cwd=gpt2)
    order = [line.split("running ")[1].split(":")[0] for line in p.stderr.splitlines() if "running " in line]
    assert order == ["download-model", "encode-dataset", "finetune-model"]
    runs = by_op(tracker.runs())
    parent = runs["dstack:finetune-model"]
    assert parent.status == "completed"
    assert sorted(n for n in os.listdir(parent.dir) if n != ".trk") == ["download-model", "encode-dataset", "finetune-model"]
    encode = runs["dstack:encode-dataset/commands"]
    # download-model's artifact `models/$model` arrives where dstack mounts it
    assert os.path.isfile(os.path.join(encode.dir, "models", "124M", "encoder.json"))
    train = runs["dstack:finetune-model/commands"]
    assert os.path.isfile(os.path.join(train.dir, "input.npz"))
    # $run_name is the dstack run: the pipeline run
    assert os.path.isfile(os.path.join(train.dir, "checkpoint", parent.id, "model.ckpt"))
    assert train.flags["learning_rate"] == 0.0001 and train.flags["model"] == "124M"
    assert train.get("image") == "tensorflow/tensorflow:1.15.0-py3"
    assert train.get("artifacts") == ["checkpoint/$run_name", "samples/$run_name"]
    assert "loss" in str(tracker.scalars(train))


def test_repo_include_limits_the_source_snapshot(trk, gpt2):
    trk("run", "dstack:download-model", "-y", cwd=gpt2)
    run = tracker.runs()[0]
    assert sorted(run.get("sourcecode_files")) == ["download_model.py", "requirements.txt"]


def test_operations_lists_workflows(trk, gpt2):
    out = trk("operations", cwd=gpt2).stdout
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["dstack:download-model", "dstack:encode-dataset", "dstack:encode-dataset/commands",
                     "dstack:finetune-model", "dstack:finetune-model/commands"]


VARS_WF = """
workflows:
  - name: show
    image: python:3.11
    commands:
      - echo "model=$model MODEL=$MODEL lr=${lr} job=$job_id run=$run_name"
      - python3 -c 'import sys; print(sys.argv[1:])' $variables_as_args
      - echo second
"""
VARS = """
variables:
  global:
    model: 124M
  show:
    lr: 0.1
    note: a b
"""


def test_variables_are_flags_and_environment(trk, tmp_path):
    d = dstack_project(tmp_path / "p", VARS_WF, VARS)
    out = trk("run", "dstack:show", "model=355M", "note=x; touch pwned", "-y", cwd=d).stdout
    run = tracker.runs()[0]
    lines = out.splitlines()
    # upper-case environment variables too; job_id is the run, run_name the run too (no pipeline)
    assert lines[0] == f"model=355M MODEL=355M lr=0.1 job={run.id} run={run.id}"
    # $variables_as_args: the workflow's own variables, each value one argument
    assert lines[1] == "['--lr', '0.1', '--note', 'x; touch pwned']"
    assert lines[2] == "second"
    assert not os.path.exists(os.path.join(run.dir, "pwned"))
    assert run.flags == {"model": "355M", "lr": 0.1, "note": "x; touch pwned"}


def test_commands_stop_at_the_first_failure(trk, tmp_path):
    d = dstack_project(tmp_path / "p", """
        workflows:
          - name: w
            image: x
            commands: [echo one, "false", echo never]
        """)
    p = trk("run", "dstack:w", "-y", cwd=d, check=False)
    assert p.returncode == 1 and "one" in p.stdout and "never" not in p.stdout
    assert tracker.runs()[0].status == "error"


def test_unknown_key_warns_with_file_and_line(trk, tmp_path):
    d = dstack_project(tmp_path / "p", """
        workflows:
          - name: w
            image: x
            provider: bash
            commands: [echo hi]
        """)
    p = trk("run", "dstack:w", "-y", cwd=d)
    assert "trk: warning: .dstack/workflows.yaml, line 5: workflows[0].provider: unknown key in workflow ignored" \
        in p.stderr


def refused(trk, cwd, op="dstack:w"):
    p = trk("run", op, "-y", cwd=cwd, check=False)
    assert "Traceback" not in p.stderr, p.stderr
    errors = [line for line in p.stderr.splitlines() if not line.startswith("trk: warning:")]
    assert p.returncode == 2 and len(errors) == 1, p.stderr
    assert not (trk.home / "runs").exists() or os.listdir(trk.home / "runs") == []
    return errors[0]


W = "workflows:\n  - name: w\n    image: x\n    commands: [echo hi]\n"

BROKEN = [
    ("workflows: {w: 1}\n", None,
     "trk: .dstack/workflows.yaml, line 1: workflows: must be a list of workflows, not dict"),
    ("workflows:\n  - name: w\n    commands: [echo hi]\n", None,
     "trk: .dstack/workflows.yaml, line 2: workflows[0]: workflow is missing required key 'image'"),
    ("workflows:\n  - name: w\n    image: x\n    commands: echo hi\n", None,
     "trk: .dstack/workflows.yaml, line 4: workflows[0].commands: must be a non-empty list of strings"),
    (W + "    depends-on:\n      workflows: [nope]\n", None,
     ("trk: .dstack/workflows.yaml, line 6: workflows[0].depends-on.workflows[0]: unknown workflow 'nope' "
      "(workflows: w)")),
    (W + "    depends-on: {workflows: [v]}\n  - name: v\n    image: x\n    commands: [echo]\n"
         "    depends-on: {workflows: [w]}\n", None,
     ("trk: .dstack/workflows.yaml, line 9: workflows[1].depends-on: workflows depend on each other in a cycle: "
      "w -> v -> w")),
    ("workflows:\n  - name: w\n    image: x\n    commands: [echo $nope]\n", None,
     ("trk: .dstack/workflows.yaml, line 4: workflows[0].commands[0]: $nope names no variable of workflow 'w' "
      "(define it in .dstack/variables.yaml)")),
    (W + "    artifacts: [out/$nope]\n", None,
     "trk: .dstack/workflows.yaml, line 5: workflows[0].artifacts[0]: $nope names no variable of workflow 'w'"),
    (W + "    artifacts: [../up]\n", None,
     "trk: .dstack/workflows.yaml, line 5: workflows[0].artifacts[0]: artifact '../up' is outside the run directory"),
    (W, "variables:\n  global:\n    lr: [1, 2]\n",
     "trk: .dstack/variables.yaml, line 3: variables.global.lr: must be a string or a number, not list"),
    (W, "variables: [a]\n",
     "trk: .dstack/variables.yaml, line 1: variables: must be a mapping of sections, not list"),
    (W + "    depends-on:\n      variables: [lr]\n", "variables:\n  global: {x: 1}\n",
     ("trk: .dstack/workflows.yaml, line 6: workflows[0].depends-on.variables[0]: variable 'lr' is not defined "
      "in .dstack/variables.yaml")),
    ("workflows:\n  - name: w\n    image: x\n    commands: [echo hi\n", None,
     "trk: .dstack/workflows.yaml, line 5: "),
]


@pytest.mark.parametrize("workflows,variables,message", BROKEN)
def test_broken_files_are_one_line_exit_2_no_run(trk, tmp_path, workflows, variables, message):
    d = dstack_project(tmp_path / "p", workflows, variables)
    assert refused(trk, d).startswith(message)


def test_variables_section_naming_no_workflow_warns(trk, tmp_path):
    d = dstack_project(tmp_path / "p", W, "variables:\n  global: {}\n  wf: {a: 1}\n")
    p = trk("run", "dstack:w", "-y", cwd=d)
    assert ("trk: warning: .dstack/variables.yaml, line 3: variables.wf: no workflow is named 'wf'; "
            "its variables are ignored") in p.stderr
