"""Run one `dvc.yaml` stage inside a trk run: `python -m tracker.execution.dvc_stage PROJECT STAGE`.

This is the program of a `dvc:STAGE` operation, so the stage runs through
trk's one run lifecycle. It runs the stage's commands in order in its
`wdir`, each through the shell as DVC runs them (the command is the user's
own text from `dvc.yaml`; no flag value is put into it), then copies the
outs into the run directory, writes the numbers of metrics and plots files
as the run's scalars, updates `dvc.lock` and stores cached outs in DVC's cache.

`execute` does the same inside the supervising trk, from the stage as the
(cached) `dvc` model holds it: no second Python and no YAML. The checks come
before the program starts, the lock after it exits; the stage's command is
the run's program (one command through the shell, or a small `sh` script
running several in order, as this module's `main` does).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # annotations only: trk imports this module to run a stage
if TYPE_CHECKING:
    from typing import Any

# Runs each command ($3...) in order through the shell $1 for stage $2, as
# `_run` does: commands arrive as positional parameters, never as script text.
_SCRIPT = """shell=$1; name=$2; shift 2
for c do
  printf '> %s\\n' "$c"
  "$shell" -c "$c"
  s=$?
  if [ "$s" -ne 0 ]; then
    printf "trk: stage '%s': command exited with status %s: %s\\n" "$name" "$s" "$c" >&2
    exit "$s"
  fi
done
"""


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


def execute(run, project, op, cmd: list[str], env: dict[str, str], sinks, on_start) -> int | None:
    """Run the stage of `cmd` (`python -m tracker.execution.dvc_stage DIR STAGE`)
    as `main` would, its commands the run's program; None when the project's
    `dvc` model does not hold the stage (then `cmd` runs as it is)."""
    from ..errors import TrkError
    from ..project.formats.dvc_stages import pipeline_from
    from .process import run_process

    model = project.models.get(op.model) if project is not None else None
    stages = getattr(model, "dvc_stages", None)
    if len(cmd) != 5 or cmd[1:3] != ["-m", __name__] or not isinstance(stages, dict) or cmd[4] not in stages:
        return None
    pipeline = pipeline_from(cmd[3], stages)
    stage = pipeline.stages[cmd[4]]
    say = _sayer(run, sinks)
    try:
        _check_flags(pipeline, stage, run.dir)
        _before(pipeline, stage)
    except (TrkError, OSError) as e:  # as main says it: in the run's output, and the run fails with its code
        run.start()
        say(f"trk: {_message(e)}", err=True)
        run.finish(getattr(e, "exit_code", 1))
        return getattr(e, "exit_code", 1)
    commands = stage.commands
    shell = env.get("SHELL") or "/bin/sh"
    cwd = os.path.join(pipeline.dir, stage.wdir)
    if len(commands) == 1:
        say(f"> {commands[0]}")
        argv = plain_argv(commands[0], env) or [shell, "-c", commands[0]]
        if argv[0] != shell:
            env = dict(env, PWD=cwd)  # as the shell would have set it
    else:
        argv = ["/bin/sh", "-c", _SCRIPT, "dvc-stage", shell, stage.name] + commands

    def after(code: int) -> int:
        if code != 0:
            if len(commands) == 1:
                say(f"trk: stage '{stage.name}': command exited with status {code}: {commands[0]}", err=True)
            return code if code > 0 else 128 - code
        try:
            _after(pipeline, stage, run.dir)
        except (TrkError, OSError) as e:
            say(f"trk: {_message(e)}", err=True)
            return getattr(e, "exit_code", 1)
        say("Updating lock file 'dvc.lock'")
        return 0

    return run_process(run, argv, env, sinks, op.config.get("output-scalars"), on_start=on_start, cwd=cwd,
                       after=after)


# Characters of a command a shell would run as it is: words of these, split
# at spaces, need no shell (no quotes, variables, globs, redirections, `~`, `#`).
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:,@%+=- ")
# Words a shell runs itself, whatever a program of that name on PATH would do.
_SHELL_WORDS = frozenset({".", "alias", "bg", "break", "case", "cd", "command", "continue", "declare", "eval", "exec",
                          "exit", "export", "fg", "for", "function", "hash", "if", "jobs", "let", "local", "read",
                          "readonly", "return", "select", "set", "shift", "source", "time", "times", "trap", "type",
                          "ulimit", "umask", "unalias", "unset", "until", "wait", "while"})


def plain_argv(command: str, env: dict[str, str]) -> list[str] | None:
    """`command` as an argv to run without a shell, when a shell would only
    split it at spaces and run its first word from PATH (`python train.py
    --lr 0.1`): the stage's program then starts without a shell starting
    first. None: it needs the shell (DVC runs every command through one)."""
    words = command.split(" ")
    if not set(command) <= _PLAIN or "" in words or "=" in words[0] or words[0] in _SHELL_WORDS:
        return None
    if "/" in words[0]:
        return None  # a path: left to the shell, which resolves it from the stage's directory
    for d in env.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(d or ".", words[0])
        if d and os.path.isfile(path) and os.access(path, os.X_OK):
            return words
    return None


def _message(e: Exception) -> str:
    """A TrkError's message; an OSError's, naming its file (the program's traceback would have)."""
    message = getattr(e, "message", None)
    if message is None:
        message = f"{e.strerror or e}: {e.filename}" if getattr(e, "filename", None) else str(e)
    return message


def _sayer(run, sinks):
    """Writes a line into the run's output and echoes it (to stderr with `err`), as the program's would be."""

    def say(line: str, err: bool = False) -> None:
        with open(run.output_path, "ab") as f:
            f.write(line.encode() + b"\n")
        out = None if sinks is None else sinks.stderr if err else sinks.stdout
        if out is not None:
            try:
                out.write(sinks.prefix + line.encode() + b"\n")
                out.flush()
            except (OSError, ValueError):
                pass  # the reader went away: the run goes on

    return say


def _check_flags(pipeline, stage, run_dir: str) -> None:
    """Refuse flag values that differ from the params files: the stage reads the files."""
    import json

    from ..errors import TrkError
    from ..fsutil import load_attr
    from ..project.formats.dvc_stages import stage_flags

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
    import subprocess

    _before(pipeline, stage)
    cwd = os.path.join(pipeline.dir, stage.wdir)
    shell = os.environ.get("SHELL") or "/bin/sh"
    for cmd in stage.commands:
        print(f"> {cmd}", flush=True)
        code = subprocess.call(cmd, shell=True, cwd=cwd, executable=shell)
        if code != 0:
            print(f"trk: stage '{stage.name}': command exited with status {code}: {cmd}", file=sys.stderr,
                  flush=True)
            return code if code > 0 else 128 - code
    _after(pipeline, stage, run_dir)
    print("Updating lock file 'dvc.lock'", flush=True)
    return 0


def _before(pipeline, stage) -> None:
    """Refuse to run with a dependency missing; remove the outs, as DVC does."""
    from ..errors import TrkError
    from .dvc_lock import missing_deps

    missing = missing_deps(pipeline, stage, set())
    if missing:
        i, path = missing[0]
        raise TrkError(f"{pipeline.where(stage.keypath + ('deps', i))}: stages.{stage.name}.deps: dependency "
                       f"'{path}' does not exist", exit_code=2)
    for out in stage.outs:
        if not out.persist:
            _remove(os.path.join(pipeline.dir, out.file))  # DVC removes outs before it runs a stage


def _after(pipeline, stage, run_dir: str) -> None:
    """The outs checked and copied into the run, metrics as scalars, `dvc.lock` and DVC's cache updated."""
    from ..errors import TrkError
    from .dvc_lock import store_outs, update_lock

    for out in stage.outs:
        if not os.path.exists(os.path.join(pipeline.dir, out.file)):
            raise TrkError(f"stage '{stage.name}' did not write its {out.kind[:-1] if out.kind == 'outs' else out.kind}"
                           f" '{out.path}'", exit_code=1)
    for out in stage.outs:
        _copy_into_run(os.path.join(pipeline.dir, out.file), os.path.join(run_dir, out.file))
    _write_scalars(pipeline, stage, run_dir)
    update_lock(pipeline, stage)
    store_outs(pipeline, stage)


def _remove(path: str) -> None:
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _copy_into_run(src: str, dest: str) -> None:
    """A copy of an out in the run directory (the workspace keeps its own)."""
    import shutil

    _remove(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.isdir(src):
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest)


def _write_scalars(pipeline, stage, run_dir: str) -> None:
    """The numbers of the stage's metrics files (step 0) and plots files (a
    series per column, by row) as TensorBoard scalars in the run's `.trk/`."""
    if not any(out.kind in ("metrics", "plots") for out in stage.outs):
        return
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
