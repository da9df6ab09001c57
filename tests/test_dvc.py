"""dvc.yaml as the `dvc` model: templating, foreach, `trk repro`, dvc.lock, DVC's cache, bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

import pytest
import yaml

from .conftest import copy_sample


def _write(root, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _runs(trk_home) -> list[str]:
    runs = trk_home / "runs"
    return sorted(os.listdir(runs)) if runs.exists() else []


@pytest.fixture
def sample(tmp_path):
    return copy_sample(tmp_path, "dvc")


def test_operations_foreach_and_templating(tmp_path, trk):
    _write(tmp_path, {
        "params.yaml": """
            models: {us: {threshold: 10, filename: model-us.txt}}
            lists: {sizes: [4, 8]}
            mydict: {foo: foo bar, bar: 1, bool: true, off: false, nested: {baz: bar}, list: [2, 3, qux]}
            """,
        "extra.json": '{"clean": {"name": "clean.txt"}, "other": {"x": 1}}',
        "dvc.yaml": r"""
            vars:
              - extra.json:clean
              - desc: Reusable
            stages:
              cleanups:
                foreach: [raw1, labels1]
                do:
                  cmd: echo "${item}"
              train:
                foreach:
                  - {epochs: 3, thresh: 10}
                  - {epochs: 10, thresh: 15}
                do:
                  cmd: echo ${item.epochs} ${item.thresh}
              build:
                foreach: ${models}
                do:
                  cmd: echo '${key}' ${item.threshold} ${lists.sizes[1]} ${clean.name}
              unpack:
                desc: ${desc}
                cmd: echo ${mydict} \${literal}
            """,
    })
    out = trk("operations", cwd=tmp_path).stdout
    for name in ("dvc:cleanups@raw1", "dvc:cleanups@labels1", "dvc:train@0", "dvc:train@1", "dvc:build@us",
                 "dvc:unpack", "dvc:repro"):
        assert name in out
    assert "echo 10 15" in out
    assert "echo 'us' 10 8 clean.txt" in out
    assert "dvc:unpack            Reusable" in out
    from tracker.project.formats.dvc import read_pipeline

    cmd = read_pipeline(str(tmp_path)).stages["unpack"].cmd
    assert cmd == "echo --foo 'foo bar' --bar 1 --bool --nested.baz bar --list 2 3 qux ${literal}"


BROKEN = [
    ("stages:\n  a:\n    cmd: echo\n    deps: data.txt\n", "dvc.yaml, line 4: stages.a.deps: 'deps' of stage 'a' must be a list"),
    ("stages:\n  a:\n    deps: [x]\n", "dvc.yaml, line 3: stages.a: stage 'a' has no 'cmd'"),
    ("stages:\n  a:\n    cmd: echo ${nope.x}\n", "dvc.yaml, line 3: stages.a.cmd: '${nope.x}' names no variable: 'nope'"),
    ("stages:\n  a:\n    foreach: 3\n    do:\n      cmd: echo\n",
     "dvc.yaml, line 3: stages.a.foreach: foreach of stage 'a' must be a list or a mapping, not a number"),
    ("stages:\n  a:\n    cmd: cp b a\n    deps: [b]\n    outs: [a]\n  b:\n    cmd: cp a b\n    deps: [a]\n    outs: [b]\n",
     "stages form a cycle"),
    ("stages:\n  a:\n    cmd: echo\n    frozen: maybe\n", "dvc.yaml, line 4: stages.a.frozen: 'frozen' of stage 'a' must be true or false"),
    ("stages:\n  a:\n    cmd: echo\n    outs: [../escape]\n", "dvc.yaml, line 4: stages.a.outs.0: outs '../escape' is outside"),
    ("stages: [a, b]\n", "dvc.yaml, line 1: stages: 'stages' must be a mapping"),
    ("stages:\n  a:\n    cmd: [echo, 3]\n", "dvc.yaml, line 3: stages.a.cmd: 'cmd' of stage 'a' must be a command"),
]


@pytest.mark.parametrize("text,message", BROKEN)
def test_bad_input_is_one_line_exit_2_no_run(tmp_path, trk, trk_home, text, message):
    (tmp_path / "dvc.yaml").write_text(text)
    for args in (("repro",), ("run", "dvc:a", "-y"), ("dag",)):
        p = trk(*args, cwd=tmp_path, check=False)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) <= 2 and message in lines[0], (args, p.stderr)
        assert "Traceback" not in p.stderr
    assert _runs(trk_home) == []


def test_missing_dependency_and_unknown_target(tmp_path, trk, trk_home):
    (tmp_path / "dvc.yaml").write_text("stages:\n  a:\n    cmd: echo\n    deps:\n      - nothing.txt\n")
    p = trk("repro", cwd=tmp_path, check=False)
    assert p.returncode == 2
    assert "dvc.yaml, line 5: stages.a.deps: dependency 'nothing.txt' does not exist and no stage writes it" \
        in p.stderr
    p = trk("repro", "zzz", cwd=tmp_path, check=False)
    assert p.returncode == 2 and "there is no stage 'zzz' in dvc.yaml" in p.stderr
    assert _runs(trk_home) == []


def test_unknown_key_warns_with_line(tmp_path, trk):
    (tmp_path / "dvc.yaml").write_text("stages:\n  a:\n    cmd: echo hi\n    colour: blue\n")
    p = trk("operations", cwd=tmp_path)
    assert "dvc.yaml, line 4: unknown key 'colour' in stage 'a' ignored" in p.stderr


def test_repro_skips_unchanged_and_says_why(sample, trk, trk_home):
    first = trk("repro", cwd=sample)
    assert "Running stage 'cleanups@raw1': it is not in dvc.lock" in first.stdout
    assert "Running stage 'featurize': upstream stage 'cleanups@raw1' runs" in first.stdout
    lock = yaml.safe_load((sample / "dvc.lock").read_text())
    assert lock["schema"] == "2.0"
    entry = lock["stages"]["build-us"]
    assert entry["cmd"] == "python train.py --thresh 10 --out model-us.txt"
    assert entry["params"]["params.yaml"] == {"models.us.threshold": 10}
    assert entry["params"]["config.json"]["optimizer"] == {"name": "sgd", "momentum": 0.9}
    dep = next(d for d in entry["deps"] if d["path"] == "train.py")
    import hashlib

    assert dep["md5"] == hashlib.md5((sample / "train.py").read_bytes()).hexdigest() and dep["hash"] == "md5"
    assert (sample / "report.txt").read_text().splitlines()[1] == "escaped ${report.top}"
    n = len(_runs(trk_home))
    assert n == 9  # the pipeline run and its eight stages

    again = trk("repro", cwd=sample)
    assert "Stage 'report' didn't change, skipping" in again.stdout
    assert "Data and pipelines are up to date." in again.stdout
    assert len(_runs(trk_home)) == n  # nothing run, no run made

    params = sample / "params.yaml"
    params.write_text(params.read_text().replace("threshold: 10", "threshold: 12"))
    third = trk("repro", cwd=sample)
    assert "Running stage 'build-us': parameter 'models.us.threshold' changed (10 -> 12)" in third.stdout
    assert "Running stage 'report': upstream stage 'build-us' runs" in third.stdout
    assert "Stage 'build@uk' didn't change, skipping" in third.stdout
    assert "--thresh 12" in third.stdout

    (sample / "fit.py").write_text((sample / "fit.py").read_text() + "\n# changed\n")
    only = trk("repro", "build@uk", cwd=sample)
    assert "Running stage 'build@uk': dependency 'fit.py' changed" in only.stdout
    assert "build@us" not in only.stdout and "report" not in only.stdout


def test_stage_run_records_outs_flags_and_scalars(sample, trk):
    trk("repro", "build-us", cwd=sample)
    run_dir = trk("select", "--path", "-o", "dvc:build-us", cwd=sample).stdout.strip()
    for name in ("model-us.txt", "accuracy.json", "auc.json"):
        assert os.path.isfile(os.path.join(run_dir, name)) and (sample / name).is_file()
    info = trk("runs", "info", "-o", "dvc:build-us", cwd=sample).stdout
    assert "models.us.threshold: 10" in info and "config.json:optimizer.name: sgd" in info
    assert "accuracy: 0.75 (step 0)" in info and "loss.val: 0.625 (step 0)" in info
    assert "tpr: 1.0 (step 2)" in info  # a plots file: one step per row
    p = trk("run", "dvc:build-us", "models.us.threshold=99", "-y", cwd=sample, check=False)
    assert p.returncode == 2 and "differs from the parameters file" in p.stderr


def test_list_cmd_runs_in_order_and_stops_on_failure(tmp_path, trk):
    _write(tmp_path, {"dvc.yaml": """
        stages:
          steps:
            cmd:
              - echo one >> log.txt
              - "false"
              - echo three >> log.txt
            outs: [log.txt]
        """})
    p = trk("repro", cwd=tmp_path, check=False)
    assert p.returncode == 1
    assert (tmp_path / "log.txt").read_text() == "one\n"
    assert not (tmp_path / "dvc.lock").exists()


def test_frozen_always_changed_persist_and_dag(tmp_path, trk):
    _write(tmp_path, {"dvc.yaml": """
        stages:
          a:
            cmd: echo a >> a.txt
            outs:
              - a.txt:
                  persist: true
          b:
            cmd: cat a.txt > b.txt
            deps: [a.txt]
            outs: [b.txt]
            frozen: true
          c:
            cmd: date > c.txt
            always_changed: true
            deps: [a.txt]
            outs: [c.txt]
        """})
    trk("repro", "a", cwd=tmp_path)
    out = trk("repro", cwd=tmp_path).stdout
    assert "Stage 'a' didn't change, skipping" in out
    assert "Stage 'b' is frozen, skipping" in out
    assert "Running stage 'c': it is always_changed" in out
    trk("repro", "-f", "a", cwd=tmp_path)
    assert (tmp_path / "a.txt").read_text() == "a\na\n"  # persist: not removed before the stage runs
    assert trk("dag", cwd=tmp_path).stdout.splitlines() == ["a", "b (frozen) <- a", "c <- a"]
    assert '"a" -> "b";' in trk("dag", "--dot", cwd=tmp_path).stdout


def _dvc() -> str | None:
    return shutil.which("dvc") or (shutil.which("dvc", path=os.path.dirname(__import__("sys").executable)))


@pytest.mark.skipif(_dvc() is None, reason="DVC is not installed (pip install 'trk[test]' installs it)")
def test_dvc_itself_reads_trk_lock_and_cache(sample, tmp_path, trk):
    dvc = _dvc()
    # A directory out too: DVC's md5 of a directory is that of its listing.
    text = (sample / "dvc.yaml").read_text() + textwrap.indent(textwrap.dedent("""
        shards:
          cmd: mkdir -p shards/sub && echo a > shards/a.txt && echo b > shards/sub/b.txt
          outs:
            - shards
        """), "  ")
    (sample / "dvc.yaml").write_text(text)
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=sample, check=True, env=env)
    trk("repro", cwd=sample)
    assert list((sample / ".dvc" / "cache" / "files" / "md5").glob("*/*.dir"))
    p = subprocess.run([dvc, "status"], cwd=sample, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "Data and pipelines are up to date." in p.stdout, p.stdout
    # And trk reads what DVC writes: after `dvc repro -f` trk has nothing to do.
    subprocess.run([dvc, "repro", "-f", "-q"], cwd=sample, env=env, check=True, capture_output=True)
    assert "Data and pipelines are up to date." in trk("repro", cwd=sample).stdout
