"""Gradient workflows (issue 12, item 4): `.gradient/workflows/*.yaml` run as
stepped trk runs, datasets versioned under $TRK_HOME/datasets, through `trk`."""

import os
import subprocess
import textwrap

import pytest

import tracker
from tests.conftest import by_op, copy_sample


def gradient_project(d, text, name="wf.yaml"):
    (d / ".gradient" / "workflows").mkdir(parents=True, exist_ok=True)
    (d / ".gradient" / "workflows" / name).write_text(textwrap.dedent(text))
    return d


@pytest.fixture
def stylegan(tmp_path):
    return copy_sample(tmp_path, "gradient")


def test_workflow_runs_jobs_as_steps_with_datasets(trk, stylegan):
    # One job at a time, as doctests/gradient.md runs it. (Parallel steps that
    # resolve `requires: operation` once missed a finished sibling in the run
    # index; RunIndex now serializes its writes across step threads.)
    trk("run", "gradient:stylegan2", "--max-parallel", "1", "-y", cwd=stylegan)
    runs = by_op(tracker.runs())
    parent = runs["gradient:stylegan2"]
    assert parent.status == "completed"
    assert parent.get("on") == {"github": {"branches": {"only": "main"}}}
    gen = runs["gradient:stylegan2/generateCatImagesPretrainedModel"]
    # other jobs' outputs arrive as inputs/NAME; its own outputs are in outputs/NAME
    assert os.path.isfile(os.path.join(gen.dir, "inputs", "repo", "run_generator.py"))
    assert os.path.isfile(os.path.join(gen.dir, "inputs", "pretrainedNetwork", "stylegan2-cat-config-f.pkl"))
    assert sorted(os.listdir(os.path.join(gen.dir, "outputs", "generatedImages"))) == [
        f"seed{s}.png" for s in range(6600, 6606)]
    assert gen.get("image") == "tensorflow/tensorflow:1.14.0-gpu-py3"
    assert gen.get("instance-type") == "P4000"
    assert gen.get("datasets") == {"generatedImages": "stylegan2-wsp-cats-generated:1"}
    version = trk.home / "datasets" / "stylegan2-wsp-cats-generated" / "1"
    assert sorted(os.listdir(version)) == [f"seed{s}.png" for s in range(6600, 6606)]


def test_each_run_is_a_new_dataset_version_used_as_input(trk, tmp_path):
    d = gradient_project(tmp_path / "p", """
        inputs:
          data:
            type: dataset
            with: {ref: numbers}
        jobs:
          count:
            uses: script@v1
            inputs:
              data: workflow.inputs.data
            outputs:
              out: {type: dataset, with: {ref: numbers}}
            with:
              script: |-
                n=$(cat /inputs/data/n 2>/dev/null || echo 0)
                echo $((n + 1)) > /outputs/out/n
                echo "n=$((n + 1))"
        """)
    assert "WARNING: dataset numbers has no version yet: inputs/data is empty" in \
        trk("run", "gradient:wf", "-y", cwd=d).stdout
    out = trk("run", "gradient:wf", "-y", cwd=d).stdout
    assert "Using version 1 of dataset numbers as inputs/data" in out and "n=2" in out
    assert "Saved outputs/out as version 2 of dataset numbers" in out
    assert (trk.home / "datasets" / "numbers" / "2" / "n").read_text() == "2\n"


def test_string_inputs_are_flags_and_needs_is_a_dag(trk, tmp_path):
    d = gradient_project(tmp_path / "p", """
        defaults:
          env: {GREETING: hello, TOKEN: "secret:token"}
          resources: {instance-type: C4}
        inputs:
          echo:
            type: string
            with: {value: hello world}
        jobs:
          job-1:
            uses: container@v1
            inputs: {echo: workflow.inputs.echo}
            outputs: {echo2: {type: string}}
            env: {TSTVAR: test}
            with:
              args: [bash, -c, 'cat /inputs/echo > /outputs/echo2; echo "$GREETING $TSTVAR [$TOKEN]"']
              image: bash:5
          job-2:
            needs: [job-1]
            uses: container@v1
            inputs: {text: job-1.outputs.echo2}
            with:
              args: [cat, /inputs/text]
        """)
    out = trk("run", "gradient:wf", "echo=hi; rm -rf x", "-y", cwd=d, check=True).stdout
    assert "[job-1] hello test []" in out
    assert "[job-2] hi; rm -rf x" in out
    runs = by_op(tracker.runs())
    assert runs["gradient:wf/job-1"].get("instance-type") == "C4"
    assert runs["gradient:wf/job-1"].flags == {"echo": "hi; rm -rf x"}


def test_git_checkout_clones_a_repository(trk, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hello.txt").write_text("hi\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["-C", str(repo), "add", "."], check=True)
    subprocess.run(git + ["-C", str(repo), "commit", "-qm", "x"], check=True)
    d = gradient_project(tmp_path / "p", f"""
        jobs:
          clone:
            uses: git-checkout@v1
            outputs: {{repo: {{type: volume}}}}
            with: {{url: "{repo}"}}
          show:
            needs: [clone]
            inputs: {{repo: clone.outputs.repo}}
            uses: script@v1
            with: {{script: cat /inputs/repo/hello.txt}}
        """)
    assert "[show] hi" in trk("run", "gradient:wf", "-y", cwd=d).stdout


def test_a_job_runs_alone_with_its_upstream_outputs(trk, stylegan):
    trk("run", "gradient:stylegan2", "--max-parallel", "1", "-y", cwd=stylegan)
    out = trk("run", "gradient:stylegan2/generateCarImagesPretrainedModel", "-y", cwd=stylegan).stdout
    assert "Saved outputs/generatedImages as version 2 of dataset stylegan2-wsp-cars-generated" in out


def refused(trk, cwd, op="gradient:wf"):
    p = trk("run", op, "-y", cwd=cwd, check=False)
    assert "Traceback" not in p.stderr, p.stderr
    errors = [line for line in p.stderr.splitlines() if not line.startswith("trk: warning:")]
    assert p.returncode == 2 and len(errors) == 1, p.stderr
    assert not (trk.home / "runs").exists() or os.listdir(trk.home / "runs") == []
    return errors[0]


J = "jobs:\n  a:\n    uses: script@v1\n    with: {script: echo a}\n"
BROKEN = [
    ("jobs: [a]\n", "trk: .gradient/workflows/wf.yaml, line 1: jobs: must be a mapping of job names to jobs"),
    ("on: {}\n", "trk: .gradient/workflows/wf.yaml, line 1: (top level): the workflow is missing required key 'jobs'"),
    ("jobs:\n  a:\n    with: {script: x}\n",
     "trk: .gradient/workflows/wf.yaml, line 2: jobs.a: job is missing required key 'uses'"),
    ("jobs:\n  a:\n    uses: script@v1\n    with: {image: x}\n",
     "trk: .gradient/workflows/wf.yaml, line 4: jobs.a.with: script@v1 'with' is missing required key 'script'"),
    (J + "    needs: [b]\n", "trk: .gradient/workflows/wf.yaml, line 5: jobs.a.needs[0]: unknown job 'b' (jobs: a)"),
    (J + "    needs: [b]\n  b:\n    uses: script@v1\n    with: {script: x}\n    needs: [a]\n",
     "trk: .gradient/workflows/wf.yaml, line 9: jobs.b.needs: jobs need each other in a cycle: a -> b -> a"),
    (J + "    inputs: {x: b.outputs.y}\n",
     "trk: .gradient/workflows/wf.yaml, line 5: jobs.a.inputs.x: unknown job 'b' (jobs: a)"),
    (J + "    inputs: {x: workflow.inputs.nope}\n",
     "trk: .gradient/workflows/wf.yaml, line 5: jobs.a.inputs.x: the workflow has no input 'nope'"),
    (J + "    outputs: {x: {type: dataset}}\n",
     "trk: .gradient/workflows/wf.yaml, line 5: jobs.a.outputs.x: a dataset output is missing required key 'with.ref'"),
    (J + "    outputs: {x: {type: table}}\n",
     "trk: .gradient/workflows/wf.yaml, line 5: jobs.a.outputs.x.type: unknown type 'table'"),
    (J + "    outputs: {x: {type: dataset, with: {ref: ../up}}}\n",
     "trk: .gradient/workflows/wf.yaml, line 5: jobs.a.outputs.x.with.ref: invalid dataset name '../up'"),
    (J + "  b:\n    uses: script@v1\n    with: {script: x}\n    inputs: {x: a.outputs.y}\n",
     "trk: .gradient/workflows/wf.yaml, line 8: jobs.b.inputs.x: job 'a' must be in this job's needs"),
    ("jobs:\n  a:\n    uses: container@v1\n    with: {args: echo}\n",
     "trk: .gradient/workflows/wf.yaml, line 4: jobs.a.with.args: must be a non-empty list of strings"),
    ("jobs:\n  a: {uses: script@v1\n", "trk: .gradient/workflows/wf.yaml, line 3: "),
]


@pytest.mark.parametrize("text,message", BROKEN)
def test_broken_files_are_one_line_exit_2_no_run(trk, tmp_path, text, message):
    d = gradient_project(tmp_path / "p", text)
    assert refused(trk, d).startswith(message)


def test_unknown_keys_warn_and_unsupported_actions_fail_the_job(trk, tmp_path):
    d = gradient_project(tmp_path / "p", """
        jobs:
          a:
            uses: gradient/actions/create-model@v1
            retries: 3
        """)
    p = trk("run", "gradient:wf", "-y", cwd=d, check=False)
    assert "trk: warning: .gradient/workflows/wf.yaml, line 5: jobs.a.retries: unknown key in job ignored" in p.stderr
    assert ("trk: warning: .gradient/workflows/wf.yaml, line 4: jobs.a.uses: action "
            "'gradient/actions/create-model@v1' is not supported locally") in p.stderr
    assert p.returncode != 0 and "is not supported locally" in p.stdout
