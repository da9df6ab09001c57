"""Run one `dvc.yaml` stage inside a trk run: `python -m tracker.execution.dvc_stage PROJECT STAGE`.

This is the program of a `dvc:STAGE` operation, so the stage runs through
trk's one run lifecycle. It runs the stage's commands in order in its
`wdir`, each through the shell as DVC runs them (the command is the user's
own text from `dvc.yaml`; no flag value is put into it), then copies the
outs into the run directory, writes the numbers of metrics and plots files
as the run's scalars, updates `dvc.lock` and stores cached outs in DVC's cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any


def main(argv: list[str]) -> int:
    """Run stage argv[1] of the project in argv[0]; return the exit code."""
    from ..errors import TrkError
    from ..project.formats.dvc import read_pipeline

    project_dir, name = argv
    run_dir = os.environ.get("TRK_RUN_DIR") or os.getcwd()
    try:
        pipeline = read_pipeline(project_dir)
        stage = pipeline.stages.get(name)
        if stage is None:
            raise TrkError(f"there is no stage '{name}' in dvc.yaml any more", exit_code=2)
        _check_flags(pipeline, stage, run_dir)
        return _run(pipeline, stage, run_dir)
    except TrkError as e:
        print(f"trk: {e.message}", file=sys.stderr, flush=True)
        return e.exit_code


def _check_flags(pipeline, stage, run_dir: str) -> None:
    """Refuse flag values that differ from the params files: the stage reads the files."""
    import json

    from ..errors import TrkError
    from ..fsutil import load_attr
    from ..project.formats.dvc import stage_flags

    try:
        with open(os.path.join(run_dir, ".trk", "attrs", "flags"), encoding="utf-8") as f:
            flags = load_attr(f.read()) or {}
    except (OSError, ValueError):
        return
    for key, spec in stage_flags(pipeline, stage).items():
        if key in flags and json.dumps(flags[key]) != json.dumps(spec["default"]):
            raise TrkError(f"flag {key}={flags[key]!r} differs from the parameters file ({spec['default']!r}): "
                           "a DVC stage reads its parameters from the file; edit the file instead", exit_code=2)


def _run(pipeline, stage, run_dir: str) -> int:
    from ..errors import TrkError
    from .dvc_lock import missing_deps, store_outs, update_lock

    missing = missing_deps(pipeline, stage, set())
    if missing:
        i, path = missing[0]
        raise TrkError(f"{pipeline.where(stage.keypath + ('deps', i))}: stages.{stage.name}.deps: dependency "
                       f"'{path}' does not exist", exit_code=2)
    for out in stage.outs:
        if not out.persist:
            _remove(os.path.join(pipeline.dir, out.file))  # DVC removes outs before it runs a stage
    cwd = os.path.join(pipeline.dir, stage.wdir)
    shell = os.environ.get("SHELL") or "/bin/sh"
    for cmd in stage.commands:
        print(f"> {cmd}", flush=True)
        code = subprocess.call(cmd, shell=True, cwd=cwd, executable=shell)
        if code != 0:
            print(f"trk: stage '{stage.name}': command exited with status {code}: {cmd}", file=sys.stderr,
                  flush=True)
            return code if code > 0 else 128 - code
    for out in stage.outs:
        if not os.path.exists(os.path.join(pipeline.dir, out.file)):
            raise TrkError(f"stage '{stage.name}' did not write its {out.kind[:-1] if out.kind == 'outs' else out.kind}"
                           f" '{out.path}'", exit_code=1)
    for out in stage.outs:
        _copy_into_run(os.path.join(pipeline.dir, out.file), os.path.join(run_dir, out.file))
    _write_scalars(pipeline, stage, run_dir)
    update_lock(pipeline, stage)
    store_outs(pipeline, stage)
    print("Updating lock file 'dvc.lock'", flush=True)
    return 0


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _copy_into_run(src: str, dest: str) -> None:
    """A copy of an out in the run directory (the workspace keeps its own)."""
    _remove(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.isdir(src):
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest)


def _write_scalars(pipeline, stage, run_dir: str) -> None:
    """The numbers of the stage's metrics files (step 0) and plots files (a
    series per column, by row) as TensorBoard scalars in the run's `.trk/`."""
    from ..metrics.events import EventWriter
    from .dvc_metrics import read_metrics, read_plots

    scalars: list[tuple[str, float, int]] = []
    for out in stage.outs:
        path = os.path.join(pipeline.dir, out.file)
        if out.kind == "metrics" and os.path.isfile(path):
            scalars += [(tag, value, 0) for tag, value in read_metrics(path).items()]
        elif out.kind == "plots" and os.path.isfile(path):
            scalars += read_plots(path)
    if scalars:
        writer = EventWriter(os.path.join(run_dir, ".trk"))
        writer.add_scalars(scalars)
        writer.close()


def _entry() -> Any:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    _entry()
