"""How a resolved operation becomes a command: an argv list, never a shell string.

`main` runs a Python module (flags as `--name value`, or as module globals
through `tracker.execution.pymain`); `exec` runs a program, `${flag}`
interpolated into single argv items.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from typing import Any

from ..errors import OpError
from ..project.flags import arg_value
from ..project.loader import OpDef
from ..project.resolve import FLAG_REF, interpolate

_SHELLS = {"sh", "bash", "zsh", "dash", "ksh"}

_ARG_PARSERS = re.compile(
    r"^\s*(import|from)\s+(argparse|click|absl|fire|typer|docopt|optparse|hydra)\b|\bsys\.argv\b", re.M)


def flags_dest(op: OpDef, project_dir: str | None) -> str:
    """`args` (flags as --name value) or `globals` (flags set as module globals).

    As in Guild: `flags-dest` when given; otherwise `args` when the main
    module imports an argument parser or reads sys.argv, else `globals`.
    """
    dest = op.config.get("flags-dest")
    if dest in ("args", "globals"):
        return dest
    if not op.flags or not op.main or project_dir is None:
        return "args"
    module = shlex.split(op.main)[0].replace(".", "/")
    for candidate in (f"{module}.py", f"{module}/__main__.py"):
        path = os.path.join(project_dir, candidate)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return "args" if _ARG_PARSERS.search(f.read()) else "globals"
        except OSError:
            continue
    return "args"


def command_argv(op: OpDef, flags: dict[str, Any], project_dir: str | None = None) -> list[str]:
    """Build the argv list for a `main` or `exec` operation (see `_argv`);
    OpError (exit 2) when an item holds a NUL byte, which argv cannot carry."""
    argv = _argv(op, flags, project_dir)
    for item in argv:
        if "\0" in item:
            raise OpError(f"the command of {op.fullname} has a NUL byte in {item!r}: remove it from its "
                          f"{'exec' if op.exec is not None else 'main'} or flag values", exit_code=2)
    return argv


def _split(template: str, key: str, op: OpDef) -> list[str]:
    """Split an `exec:`/`main:` template into words, as a shell would (no expansion)."""
    try:
        words = shlex.split(template)
    except ValueError as e:
        raise OpError(f"invalid {key} for {op.fullname}: {e}") from None
    if not words:
        raise OpError(f"empty {key} for {op.fullname}")
    return words


def _argv(op: OpDef, flags: dict[str, Any], project_dir: str | None) -> list[str]:
    """Build the argv list for a `main` or `exec` operation.

    Flag values are interpolated into single argv items. Where an item is the
    script of `sh -c` / `bash -c`, values are shell-quoted, so a value with
    spaces, quotes or `;` stays one literal word. A `main` module that parses
    no arguments gets its flags as globals (see `tracker.execution.pymain`).
    """
    if op.exec is not None:
        tmpl = _split(op.exec, "exec", op)
        argv = []
        shell = os.path.basename(tmpl[0]) in _SHELLS
        for i, item in enumerate(tmpl):
            is_script = shell and i > 0 and tmpl[i - 1].startswith("-") and "c" in tmpl[i - 1]
            argv.append(interpolate(item, flags, quote=is_script))
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        return argv
    if op.main is not None:
        parts = _split(op.main, "main", op)
        module, args = parts[0].replace("/", "."), [interpolate(a, flags) for a in parts[1:]]
        referenced = set(FLAG_REF.findall(op.main))
        if flags_dest(op, project_dir) == "globals":
            import json

            values = {k: v for k, v in flags.items() if k not in referenced}
            # default=str: a value JSON has no type for reaches the program as its text, as in args.
            values_json = json.dumps(values, default=str)
            return [sys.executable, "-u", "-m", "tracker.execution.pymain", values_json, module] + args
        argv = [sys.executable, "-u", "-m", module] + args
        for name, value in flags.items():
            if value is None or name in referenced:
                continue
            fdef = op.flags.get(name)
            arg_name = fdef.arg_name if fdef and fdef.arg_name else name
            argv += [f"--{arg_name}", arg_value(value)]
        return argv
    raise OpError(f"operation {op.fullname} defines neither main, exec nor steps")
