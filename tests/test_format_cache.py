"""The formats' models cached like trk.yml (issue 12's overhead bar): every file
a loader reads keys the entry; dvc and Gradient stages run without a second
Python; `dvc.lock` is written and read without PyYAML when trk vouches for it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest
import yaml

from tracker.execution import dvc_lockyaml
from tracker.project import cache
from tracker.project.loader import load

_AGE = [200]


def put(path, text: str) -> None:
    """Write `text` with an mtime in the past (each write a different one), so
    the cache stores entries at once (it skips files modified in the last 2 s)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    _AGE[0] -= 1
    then = time.time() - _AGE[0]
    os.utime(path, (then, then))


def age_dir(path) -> None:
    then = time.time() - 300
    os.utime(path, (then, then))


def formats_entry(proj, cache_dir):
    return cache.cached_entry(os.path.join(str(proj), "") + "\0formats", str(cache_dir))


def loaded(proj, cache_dir):
    """The project loaded with the cache; asserts the formats' entry was stored (or still holds)."""
    project = load(str(proj), cache_dir=str(cache_dir))
    assert formats_entry(proj, cache_dir) is not cache.MISS
    return project


def test_dvc_entry_watches_dvc_yaml_params_and_vars_files(tmp_path):
    proj, c = tmp_path / "p", tmp_path / "cache"
    put(proj / "dvc.yaml", "vars:\n  - conf.yaml\nstages:\n  train:\n    cmd: python train.py ${size}\n"
                           "    params:\n      - lr\n")
    put(proj / "conf.yaml", "size: 1\n")
    age_dir(proj)
    first = loaded(proj, c)
    assert first.models["dvc"].operations["train"].flags == {}  # params.yaml is not there yet
    again = loaded(proj, c)  # from the cache: the same model
    assert again.models["dvc"].operations["train"] == first.models["dvc"].operations["train"]
    put(proj / "params.yaml", "lr: 0.5\n")  # a file the loader looked for and did not find
    assert formats_entry(proj, c) is cache.MISS
    assert loaded(proj, c).models["dvc"].operations["train"].flags["lr"].default == 0.5
    put(proj / "params.yaml", "lr: 0.7\n")
    assert loaded(proj, c).models["dvc"].operations["train"].flags["lr"].default == 0.7
    put(proj / "conf.yaml", "size: 22\n")  # a vars file
    assert "python train.py 22" in loaded(proj, c).models["dvc"].dvc_stages["train"]["cmd"]
    put(proj / "dvc.yaml", "stages:\n  other:\n    cmd: echo hi\n")
    assert list(loaded(proj, c).models["dvc"].dvc_stages) == ["other"]


def test_dstack_entry_watches_workflows_and_variables(tmp_path):
    proj, c = tmp_path / "p", tmp_path / "cache"
    put(proj / ".dstack" / "workflows.yaml", "workflows:\n  - name: w\n    image: python:3.11\n    commands:\n      - echo $model\n")
    put(proj / ".dstack" / "variables.yaml", "variables:\n  global:\n    model: 124M\n")
    first = loaded(proj, c)
    assert first.models["dstack"].operations["w"].flags["model"].default == "124M"
    assert loaded(proj, c).models["dstack"].operations["w"] == first.models["dstack"].operations["w"]
    put(proj / ".dstack" / "variables.yaml", "variables:\n  global:\n    model: 355M\n")
    assert loaded(proj, c).models["dstack"].operations["w"].flags["model"].default == "355M"
    put(proj / ".dstack" / "workflows.yaml", "workflows:\n  - name: v\n    image: python:3.11\n    commands:\n      - echo $model\n")
    assert list(loaded(proj, c).models["dstack"].operations) == ["v"]


def test_valohai_entry_watches_the_file_and_the_scripts(tmp_path):
    proj, c = tmp_path / "p", tmp_path / "cache"
    put(proj / "valohai.yaml", "- step:\n    name: a\n    image: python:3.11\n    command: python a.py\n")
    age_dir(proj)
    assert list(loaded(proj, c).models["valohai"].operations) == ["a"]
    script = ('import tracker\ntracker.prepare(step="fit", default_parameters={"k": %d}, '
              'image="python:3.11")\n')
    put(proj / "fit.py", script % 3)  # a new script with prepare(): the listing of scripts changed
    age_dir(proj)
    ops = loaded(proj, c).models["valohai"].operations
    assert list(ops) == ["a", "fit"] and ops["fit"].flags["k"].default == 3
    put(proj / "fit.py", script % 4)  # a script read by the scan
    assert loaded(proj, c).models["valohai"].operations["fit"].flags["k"].default == 4
    cached = loaded(proj, c).models["valohai"].operations["fit"]
    assert cached.build_argv({"k": 5}) == loaded(proj, c).models["valohai"].operations["fit"].build_argv({"k": 5})
    put(proj / "valohai.yaml", "- step:\n    name: b\n    image: python:3.11\n    command: python b.py\n")
    assert list(loaded(proj, c).models["valohai"].operations) == ["b", "fit"]


def test_prepare_scan_of_a_dvc_project_is_cached_and_watched(tmp_path):
    proj, c = tmp_path / "p", tmp_path / "cache"
    put(proj / "dvc.yaml", "stages:\n  s:\n    cmd: echo hi\n")
    put(proj / "util.py", "print('no steps here')\n")
    age_dir(proj)
    assert set(loaded(proj, c).models) == {"dvc"}
    put(proj / "fit.py", 'import tracker\ntracker.prepare(step="fit", default_parameters={"k": 1})\n')
    age_dir(proj)
    assert set(loaded(proj, c).models) == {"dvc", "valohai"}


def test_gradient_entry_watches_every_workflow_file(tmp_path):
    proj, c = tmp_path / "p", tmp_path / "cache"
    job = "jobs:\n  j:\n    uses: script@v1\n    with:\n      script: echo %s\n"
    put(proj / ".gradient" / "workflows" / "a.yaml", job % "a")
    age_dir(proj / ".gradient" / "workflows")
    assert sorted(loaded(proj, c).models["gradient"].operations) == ["a", "a/j"]
    put(proj / ".gradient" / "workflows" / "b.yml", job % "b")  # a new workflow file
    age_dir(proj / ".gradient" / "workflows")
    assert sorted(loaded(proj, c).models["gradient"].operations) == ["a", "a/j", "b", "b/j"]
    put(proj / ".gradient" / "workflows" / "a.yaml", job % "aa")
    assert "echo aa" in loaded(proj, c).models["gradient"].operations["a/j"].exec


def test_warnings_survive_the_cache(tmp_path):
    proj, c = tmp_path / "p", tmp_path / "cache"
    put(proj / "dvc.yaml", "stages:\n  s:\n    cmd: echo hi\n    colour: red\n")
    age_dir(proj)
    first = loaded(proj, c).warnings
    assert first and "unknown key 'colour'" in first[0] and "line 4" in first[0]
    assert formats_entry(proj, c) is not cache.MISS
    assert load(str(proj), cache_dir=str(c)).warnings == first


def _run_in_process(trk_home, proj, op):
    """`trk run OP -y` in a fresh Python (the console script's path); the
    modules it had imported at the end, and its output."""
    code = ("import sys\nfrom tracker.cli.entry import main\nsys.argv = ['trk', 'run', %r, '-y']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "print('MODULES', sorted(m for m in sys.modules if m == 'yaml' or m.startswith('tracker.execution.')))\n"
            "sys.exit(code)\n") % op
    env = dict(os.environ, TRK_HOME=str(trk_home))
    return subprocess.run([sys.executable, "-c", code], cwd=proj, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("files, op, runtime", [
    ({"dvc.yaml": "stages:\n  s:\n    cmd: echo made > out.txt\n    outs:\n      - out.txt\n"}, "dvc:s",
     "tracker.execution.dvc_stage"),
    ({".gradient/workflows/w.yaml": "jobs:\n  j:\n    uses: script@v1\n    with:\n      script: echo made\n"},
     "gradient:w/j", "tracker.execution.gradient_job"),
    ({".dstack/workflows.yaml": "workflows:\n  - name: w\n    image: python:3.11\n    commands:\n      - echo made\n"}, "dstack:w", None),
    ({"valohai.yaml": "- step:\n    name: s\n    image: python:3.11\n    command: echo made\n"}, "valohai:s", None),
])
def test_a_repeated_run_imports_no_yaml_and_starts_no_second_python(tmp_path, trk_home, files, op, runtime):
    proj = tmp_path / "p"
    for rel, text in files.items():
        put(proj / rel, text)
    age_dir(proj)
    first = _run_in_process(trk_home, proj, op)
    assert first.returncode == 0, first.stderr
    lock = os.stat(proj / "dvc.lock") if op == "dvc:s" else None
    second = _run_in_process(trk_home, proj, op)
    assert second.returncode == 0, second.stderr
    assert "made" in second.stdout or op == "dvc:s"
    modules = second.stdout.split("MODULES ")[1]
    assert "'yaml'" not in modules  # the model, and dvc.lock, came from trk's cache
    if runtime:
        assert f"'{runtime}'" in modules  # run by this process: no `python -m` child
    if op == "dvc:s":
        assert second.stdout.startswith("> echo made > out.txt\n")
        assert second.stdout.endswith("Updating lock file 'dvc.lock'\n" + modules.join(["MODULES ", ""]))
        assert yaml.safe_load((proj / "dvc.lock").read_text())["stages"]["s"]["outs"][0]["path"] == "out.txt"
        again = os.stat(proj / "dvc.lock")  # the same entry: the file is not written again
        assert (again.st_ino, again.st_mtime_ns) == (lock.st_ino, lock.st_mtime_ns)


def test_dvc_stage_failures_read_as_before(tmp_path, trk_home):
    proj = tmp_path / "p"
    put(proj / "dvc.yaml", "stages:\n  one:\n    cmd: echo hi && exit 3\n  two:\n    cmd:\n      - echo a\n"
                           "      - exit 4\n      - echo never\n  dep:\n    cmd: echo x\n    deps:\n      - nothere\n")
    p = _run_in_process(trk_home, proj, "dvc:one")
    assert p.returncode == 3
    assert p.stdout.startswith("> echo hi && exit 3\nhi\n")
    assert "trk: stage 'one': command exited with status 3: echo hi && exit 3" in p.stderr
    p = _run_in_process(trk_home, proj, "dvc:two")
    assert p.returncode == 4 and p.stdout.startswith("> echo a\na\n> exit 4\n") and "never" not in p.stdout
    assert "trk: stage 'two': command exited with status 4: exit 4" in p.stderr
    p = _run_in_process(trk_home, proj, "dvc:dep")
    assert p.returncode == 2
    assert "trk: dvc.yaml, line 12: stages.dep.deps: dependency 'nothere' does not exist" in p.stderr


# -- dvc.lock without PyYAML ------------------------------------------------------

_VALUES = ["python3 -c pass", "python train.py --lr 0.1 --epochs 10", "echo one > o.txt", "2.0", "10", "007", "yes",
           "No", "null", "~", "a: b", "x #y", "-x", "x ", " x", "", "é", "multi\nline",
           "0123456789abcdef0123456789abcdef", "12345678901234567890123456789012",
           "0123456789abcdef0123456789abcdef.dir", "data/prepared", "train@0", "params.yaml", "a" * 100,
           " ".join(["word"] * 30), 1, 0, -5, 10 ** 20, 1.5, 1e17, 1e-7, float("inf"), float("-inf"), True, False,
           None, [], {}, [1, 2], {"a": 1}, ["a", ["b"]], "1_000", "0b101", ".5", "1e5", "on", "Off", "@x", "%x",
           "x,y", "a  b", "_x", "/abs/path", "=x", "x=y", "1.2.3", "it's", '"q"', "tab\there"]


def _safe_dump(data):
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def test_lock_text_is_exactly_pyyamls():
    rng = random.Random(12)

    def value(depth=0):
        r = rng.random()
        if depth < 2 and r < 0.15:
            return {rng.choice(["k", "lr", "a b", "10", "yes", "train@1"]): value(depth + 1) for _ in range(rng.randint(0, 3))}
        if depth < 2 and r < 0.25:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return rng.choice(_VALUES)

    fast = 0
    for _ in range(2000):
        stages = {rng.choice(["noop", "train@0", "prep", "a b", "1"]): {
            "cmd": value(), "deps": [{"path": rng.choice(_VALUES[18:25]), "hash": "md5",
                                      "md5": rng.choice(_VALUES[18:21]), "size": rng.randint(0, 99)}],
            "params": {"params.yaml": {rng.choice(["lr", "e", "x.y"]): value()}}, "outs": [value()]}
            for _ in range(rng.randint(0, 3))}
        data = {"schema": "2.0", "stages": stages}
        assert dvc_lockyaml.dump(data) == _safe_dump(data), data
        try:
            dvc_lockyaml._no_shared(data, set())
            dvc_lockyaml._mapping(data, 0)
            fast += 1
        except dvc_lockyaml._Unsure:
            pass
    assert fast > 300  # the emitter wrote a good share itself (the rest: PyYAML)
    usual = {"schema": "2.0", "stages": {"train@0": {
        "cmd": "python train.py --lr 0.1", "deps": [{"path": "data/raw", "hash": "md5",
                                                      "md5": "0123456789abcdef0123456789abcdef.dir", "size": 12,
                                                      "nfiles": 2}],
        "params": {"params.yaml": {"lr": 0.1, "layers": [32, 64], "name": "resnet", "augment": True}},
        "outs": [{"path": "model.pkl", "hash": "md5", "md5": "fedcba9876543210fedcba9876543210", "size": 3}]}}}
    assert "".join(dvc_lockyaml._mapping(usual, 0)) == _safe_dump(usual)
    shared = [1, 2]  # one list twice: PyYAML writes an anchor and an alias, and so does dump
    data = {"schema": "2.0", "stages": {"s": {"params": {"p.yaml": {"a": shared, "b": shared}}}}}
    assert dvc_lockyaml.dump(data) == _safe_dump(data) and "&id001" in dvc_lockyaml.dump(data)


def test_a_lock_edited_by_hand_is_read_with_yaml(tmp_path, trk_home, monkeypatch):
    from tracker.execution.dvc_lock import read_lock

    proj = tmp_path / "p"
    put(proj / "dvc.yaml", "stages:\n  s:\n    cmd: echo made > out.txt\n    outs:\n      - out.txt\n")
    assert _run_in_process(trk_home, proj, "dvc:s").returncode == 0
    kept = [f for f in os.listdir(trk_home / "index" / "dvc-locks")]
    assert len(kept) == 1
    assert read_lock(str(proj))["s"]["cmd"] == "echo made > out.txt"
    text = (proj / "dvc.lock").read_text()
    (proj / "dvc.lock").write_text(text.replace("cmd: echo made > out.txt", "cmd: edited"))
    assert read_lock(str(proj))["s"]["cmd"] == "edited"
    kept_data = json.loads((trk_home / "index" / "dvc-locks" / kept[0]).read_text())
    assert kept_data["text"] == text  # what trk wrote, used only for exactly that text


@pytest.mark.parametrize("sample", ["dvc", "dstack", "valohai", "gradient"])
def test_cached_sample_models_equal_the_files_read(tmp_path, sample):
    from tests.conftest import copy_sample
    from tracker.project.formats.modelcache import _encode

    proj, c = copy_sample(tmp_path, sample), tmp_path / "cache"
    then = time.time() - 300
    for root, dirs, files in os.walk(proj):
        for name in files + dirs + [""]:
            os.utime(os.path.join(root, name), (then, then))
    fresh = load(str(proj))  # no cache: every file read
    assert formats_entry(proj, c) is cache.MISS
    loaded(proj, c)
    cached = load(str(proj), cache_dir=str(c))
    assert cached.warnings == fresh.warnings
    for name, model in fresh.models.items():
        again = cached.models[name]
        assert again.operations == model.operations and again.sourcecode == model.sourcecode
        assert [type(op) for op in again.operations.values()] == [type(op) for op in model.operations.values()]
        assert _encode(again) == _encode(model)  # every attribute, the formats' own ones too
