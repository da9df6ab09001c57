"""How a resolved operation becomes a command: an argv list, never a shell string.

`main` runs a Python module with its flags where `flags-dest` says: as
`--name value` arguments (`args`), as module globals or items of a global
dict (`globals`, `global:NAME`, `dict:NAME`, through
`tracker.execution.pymain`), or only in a config file (`config:FILE`, a
dependency). `exec` runs a program, `${flag}` interpolated into single argv
items. Values are encoded as Guild encodes them (True is `1`, False empty),
and every flag is in the environment as `FLAG_NAME` (see `flag_env`).
"""

from __future__ import annotations

import os
import re
import shlex
import sys

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..errors import OpError
from ..project.flags import cmd_value, parse_value, split_value
from ..project.loader import OpDef
from ..project.resolve import FLAG_REF, interpolate

_SHELLS = {"sh", "bash", "zsh", "dash", "ksh"}

_GLOBALS_DESTS = ("global:", "dict:", "namespace:")


def flags_dest(op: OpDef, project_dir: str | None) -> str:
    """Where a `main` module gets its flags: `args`, `globals`, `global:NAME`,
    `dict:NAME` or `config:FILE`.

    As in Guild: `flags-dest` when given (or settled by `flagsimport.prepare`,
    which `resolve` runs); otherwise `args` when the main module imports
    argparse or click, else `globals`.
    """
    dest = op.config.get("flags-dest")
    if isinstance(dest, str) and dest:
        return dest
    if not op.main or project_dir is None or op.config.get("flags-import") in (False, [], "no"):
        return "args"
    from ..project.flagsimport import find_main_script, script_info

    script = find_main_script(project_dir, shlex.split(op.main)[0])
    if script is None:
        return "args"
    return "args" if {"argparse", "click"} & set(script_info(script, None)["imports"]) else "globals"


def command_argv(op: OpDef, flags: dict[str, Any], project_dir: str | None = None) -> list[str]:
    """Build the argv list for a `main` or `exec` operation (see `_argv`);
    OpError (exit 2) when an item holds a NUL byte, which argv cannot carry."""
    build = getattr(op, "build_argv", None)  # a format's own command form (Valohai's `pass-as`, issue 12)
    argv = build(flags, project_dir) if build is not None else _argv(op, flags, project_dir)
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
        tmpl = [_project_dir(w, project_dir) for w in _split(op.exec, "exec", op)]
        argv = []
        shell = os.path.basename(tmpl[0]) in _SHELLS
        for i, item in enumerate(tmpl):
            if item == "${flag_args}":
                # Guild's flag arguments, each its own argv item; a flag the command
                # already passes as --NAME is left out, as Guild leaves it out.
                argv += _flag_args(op, dict(sorted(flags.items())), shadowed={w[2:] for w in tmpl if w[:2] == "--"})
                continue
            is_script = shell and i > 0 and tmpl[i - 1].startswith("-") and "c" in tmpl[i - 1]
            argv.append(interpolate(item, _encoded(flags), quote=is_script))
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        return argv
    if op.main is not None:
        parts = _split(op.main, "main", op)
        module = parts[0].replace("/", ".")
        args = [interpolate(_project_dir(a, project_dir), _encoded(flags)) for a in parts[1:]]
        referenced = set(FLAG_REF.findall(op.main))
        dest = flags_dest(op, project_dir)
        if dest == "globals" or dest.startswith(_GLOBALS_DESTS):
            import json

            values = _global_values(op, {k: v for k, v in flags.items() if k not in referenced})
            # default=str: a value JSON has no type for reaches the program as its text, as in args.
            values_json = json.dumps(values, default=str)
            dest_args = [] if dest == "globals" else ["--dest", dest]
            return [sys.executable, "-u", "-m", "tracker.execution.pymain"] + dest_args + [values_json, module] + args
        if dest != "args" and not dest.startswith("args:"):
            return [sys.executable, "-u", "-m", module] + args  # config:FILE: the flags are in the file
        return [sys.executable, "-u", "-m", module] + args + _flag_args(op, dict(sorted(flags.items())), referenced,
                                                                         shadowed={a[2:] for a in args if a[:2] == "--"})
    raise OpError(f"operation {op.fullname} defines neither main, exec nor steps")


def _flag_args(op: OpDef, flags: dict[str, Any], skip: set[str] = frozenset(),
               shadowed: set[str] = frozenset()) -> list[str]:
    """Flags as `--NAME VALUE` argv items (a `main:` module's arguments, `${flag_args}`),
    but for the flags in `skip` and those whose argument is in `shadowed`.

    As Guild passes them: `arg-name` renames, `arg-skip` leaves out, an
    `arg-switch` flag is `--NAME` alone when its value is the switch value
    (else nothing), an `arg-split` value is one item per part, and a null
    value is left out.
    """
    argv: list[str] = []
    for name, value in flags.items():
        fdef = op.flags.get(name)
        if value is None or name in skip or _arg_skip(op, fdef):
            continue
        arg_name = fdef.arg_name if fdef and fdef.arg_name else name
        if arg_name in shadowed:
            continue
        if fdef is not None and fdef.arg_switch is not None:
            argv += [f"--{arg_name}"] if value == fdef.arg_switch else []
        elif fdef is not None and fdef.arg_split is not None and not isinstance(value, list):
            parts = split_value(value, fdef.arg_split)
            argv += [f"--{arg_name}"] + parts if parts else []
        else:
            argv += [f"--{arg_name}", _encode(value, fdef, "arg_encoding")]
    return argv


def _arg_skip(op: OpDef, fdef) -> bool:
    if fdef is not None and fdef.arg_skip is not None:
        return fdef.arg_skip
    return bool(op.config.get("default-flag-arg-skip"))


def _encode(value: Any, fdef, encoding: str) -> str:
    """A value as argv or env text: its `arg-encoding`/`env-encoding` entry, else Guild's encoding."""
    table = getattr(fdef, encoding, None) if fdef is not None else None
    try:
        if table and value in table:
            return str(table[value])
    except TypeError:  # a list or dict value is no key
        pass
    return cmd_value(value, fdef.arg_split if fdef is not None else None)


def _encoded(flags: dict[str, Any]) -> dict[str, str]:
    """Flag values as `${flag}` in a command gets them (Guild's encoding: True is `1`)."""
    return {k: cmd_value(v) for k, v in flags.items()}


def _global_values(op: OpDef, flags: dict[str, Any]) -> dict[str, Any]:
    """The values a `globals`/`dict:` module gets, as Guild passes them:
    null and `arg-skip` flags left out, an `arg-split` value as the list of
    its parts, an `arg-switch` flag only when set to its switch value."""
    values: dict[str, Any] = {}
    for name, value in sorted(flags.items()):
        fdef = op.flags.get(name)
        if value is None or _arg_skip(op, fdef):
            continue
        key = fdef.arg_name if fdef and fdef.arg_name else name
        if fdef is not None and fdef.arg_switch is not None:
            if value == fdef.arg_switch:
                values[key] = True
        elif fdef is not None and fdef.arg_split is not None and not isinstance(value, list):
            values[key] = [parse_value(p) for p in split_value(value, fdef.arg_split)]
        else:
            values[key] = value
    return values


def flag_env(op: OpDef, flags: dict[str, Any]) -> dict[str, str]:
    """The environment every run's program gets for its flags, as in Guild:
    `FLAG_NAME` (upper case, other characters `_`) or the flag's `env-name`,
    the value encoded as in argv (True `1`, False and null empty)."""
    env: dict[str, str] = {}
    for name, value in flags.items():
        fdef = op.flags.get(name)
        key = fdef.env_name if fdef and fdef.env_name else "FLAG_" + re.sub(r"[^A-Z0-9_]", "_", name.upper())
        env[key] = _encode(value, fdef, "env_encoding")
    return env


def _project_dir(word: str, project_dir: str | None) -> str:
    """`${project_dir}` in a command word is the project's directory, as in Guild."""
    return word.replace("${project_dir}", project_dir) if project_dir else word
