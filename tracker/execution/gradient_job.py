"""The program of a Gradient job's run: `python -m tracker.execution.gradient_job SPEC`.

SPEC (JSON, from `project.formats.gradient`) says the job's action and its
inputs and outputs. In the run directory this places dataset and string
inputs at `inputs/NAME` (inputs from other jobs are already there: trk's
`requires:`), makes `outputs/NAME`, runs the action as an argv list (a
script through bash, as Gradient runs it), and, when it succeeds, saves each
dataset output as a new version of its dataset. Paths the job names as
Gradient's `/inputs/...` and `/outputs/...` are those in the run directory.
`execute` does the same inside the supervising trk (no second Python): the
placing before, the saving after, the action itself as the run's program.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
TYPE_CHECKING = False  # annotations only: trk imports this module to run a job
if TYPE_CHECKING:
    from typing import Any

# `/inputs/x` or `/outputs` starting a path (after a space, quote, `=`...),
# not inside another path (`a/inputs`) or a variable (`$x/inputs`).
_GRADIENT_PATH = re.compile(r"(?<![\w.~/$}-])/(inputs|outputs)(?![\w.-])")


def local_paths(text: str, run_dir: str) -> str:
    """`text` with Gradient's `/inputs` and `/outputs` paths made the run directory's."""
    return _GRADIENT_PATH.sub(lambda m: os.path.join(run_dir, m.group(1)), text)


def main(argv: list[str]) -> int:
    """Run one job in the current directory (its run directory); return its exit code."""
    spec = json.loads(argv[0])
    run_dir = os.getcwd()
    from ..store import Run, RunStore

    datasets_root = RunStore().datasets_dir
    run = Run(os.environ.get("TRK_RUN_ID", os.path.basename(run_dir)), run_dir)
    _prepare(spec, run_dir, datasets_root, os.environ, _say)
    code = _run_action(spec, run_dir, run)
    if code != 0:
        return code
    _save_outputs(spec, run, datasets_root, _say)
    return 0


def execute(run, project, op, cmd: list[str], env: dict[str, str], sinks, on_start) -> int | None:
    """The job of `cmd` (`python -m tracker.execution.gradient_job SPEC`) run by
    this process: its action is the run's program. None for an action that is
    not a program (`git-checkout@v1`): `cmd` runs as it is."""
    if len(cmd) != 4 or cmd[1:3] != ["-m", __name__]:
        return None
    spec = json.loads(cmd[3])
    if spec["action"] not in ("script@v1", "container@v1"):
        return None
    from ..store import RunStore
    from .lifecycle import say_for
    from .process import run_process

    say = say_for(run, sinks)
    root = RunStore().datasets_dir
    try:
        _prepare(spec, run.dir, root, env, say)
    except OSError as e:  # the program's traceback would have said it: the run fails, trk goes on
        run.start()
        say(f"trk: cannot place the job's inputs: {e}")
        run.finish(1)
        return 1

    def after(code: int) -> int:
        if code == 0:
            try:
                _save_outputs(spec, run, root, say)
            except OSError as e:
                say(f"trk: cannot save the job's outputs: {e}")
                return 1
        return code

    return run_process(run, _action_argv(spec, run.dir), env, sinks, op.config.get("output-scalars"),
                       on_start=on_start, after=after)


def _prepare(spec: dict[str, Any], run_dir: str, root: str, env, say) -> None:
    """The job's inputs placed and its outputs made in the run directory."""
    for name, entry in spec["inputs"].items():
        _place_input(run_dir, root, name, entry, env, say)
    for name, entry in spec["outputs"].items():
        if entry["type"] in ("dataset", "volume"):
            os.makedirs(os.path.join(run_dir, "outputs", name), exist_ok=True)
        else:
            os.makedirs(os.path.join(run_dir, "outputs"), exist_ok=True)


def _save_outputs(spec: dict[str, Any], run, datasets_root: str, say) -> None:
    """Each dataset output saved as a new version of its dataset (the job succeeded)."""
    run_dir = run.dir
    saved = {}
    for name, entry in spec["outputs"].items():
        if entry["type"] == "dataset":
            from .datasets import commit

            ref = entry["ref"].partition(":")[0]
            version = commit(datasets_root, ref, os.path.join(run_dir, "outputs", name))
            saved[name] = f"{ref}:{version}"
            say(f"Saved outputs/{name} as version {version} of dataset {ref}")
    if saved:
        run.write_attr("datasets", saved)


def _say(line: str) -> None:
    print(line, flush=True)


def _place_input(run_dir: str, root: str, name: str, entry: dict[str, Any], env, say) -> None:
    from .datasets import version_dir

    dest = os.path.join(run_dir, "inputs", name)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    kind = entry["type"]
    if kind == "upstream":
        if not os.path.exists(dest):
            os.makedirs(dest)  # the upstream job wrote nothing there
    elif kind == "string":
        value = env.get(entry["flag"]) if entry.get("flag") else None  # the program's environment
        value = str(entry.get("value") if value is None else value)
        with open(dest, "w", encoding="utf-8") as f:
            f.write(value)
    elif kind == "volume":
        os.makedirs(dest, exist_ok=True)
    elif kind == "dataset":
        found = version_dir(root, entry["ref"])
        if found is None:
            say(f"WARNING: dataset {entry['ref']} has no version yet: inputs/{name} is empty")
            os.makedirs(dest, exist_ok=True)
            return
        version, path = found
        import shutil

        shutil.copytree(path, dest, symlinks=True, dirs_exist_ok=True)
        say(f"Using version {version} of dataset {entry['ref'].partition(':')[0]} as inputs/{name}")


def _action_argv(spec: dict[str, Any], run_dir: str) -> list[str]:
    """The argv of a `script@v1` (through bash, as Gradient runs it) or `container@v1` action."""
    if spec["action"] == "script@v1":
        return ["bash", "-c", local_paths(spec["script"], run_dir)]
    return [local_paths(a, run_dir) for a in spec["args"]]


def _run_action(spec: dict[str, Any], run_dir: str, run) -> int:
    action = spec["action"]
    if action in ("script@v1", "container@v1"):
        argv = _action_argv(spec, run_dir)
    elif action == "git-checkout@v1":
        return _checkout(spec, run_dir, run)
    else:
        _say(f"trk: action '{action}' is not supported locally (script@v1, container@v1, git-checkout@v1)")
        return 2
    try:
        return subprocess.call(argv, cwd=run_dir)
    except OSError as e:
        _say(f"trk: cannot run {argv[0]}: {e.strerror}")
        return 127


def _checkout(spec: dict[str, Any], run_dir: str, run) -> int:
    """`git-checkout@v1`: the repository into the job's volume output. A
    `context.*` URL (the repository that triggered the workflow on Gradient)
    is the project itself: the run's source snapshot."""
    import shutil

    dest = os.path.join(run_dir, "outputs", spec["checkout"])
    url = spec["url"]
    if url.startswith("context."):
        files = run.get("sourcecode_files") or []
        for rel in files:
            target = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(run_dir, rel), target)
        _say(f"Checked out the project ({len(files)} files) to outputs/{spec['checkout']}")
        return 0
    shutil.rmtree(dest, ignore_errors=True)
    shallow = [] if os.path.isdir(url) else ["--depth", "1"]  # git ignores --depth for a local path, and says so
    argv = ["git", "clone", "--quiet"] + shallow + (["--branch", spec["ref"]] if spec.get("ref") else [])
    return subprocess.call(argv + ["--", url, dest], cwd=run_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
