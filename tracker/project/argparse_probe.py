"""Reads a script's argparse arguments by running it up to its first
`parse_args`, as Guild does: run in a subprocess by `flagsimport`.

    python -m tracker.project.argparse_probe SCRIPT OUT [BASE_ARG...]

`ArgumentParser.parse_known_args` (which `parse_args` calls) is patched to
write the parser's options to OUT as JSON and stop the script there, so
what the script does after parsing its arguments (training) never runs.
`--help` ends the argv, so a script that parses them some other way prints
its help and exits instead of running.
"""

from __future__ import annotations

import argparse
import json
import sys

_FLAG_ACTIONS = ("_StoreAction", "_StoreTrueAction", "_StoreFalseAction", "BooleanOptionalAction")
_TYPES = {str: "string", float: "float", int: "int", bool: "boolean"}


class _Collected(BaseException):
    """Stops the script once its arguments are read (a BaseException, so a
    script's `except Exception` does not catch it)."""


def flag_attrs(action: argparse.Action, warnings: list[str]) -> dict | None:
    """Guild's flag attributes for one argparse option, or None for an
    action that is no flag (positional, help, count, append...)."""
    name = next((o[2:] for o in action.option_strings if o.startswith("--")), None)
    if not name or type(action).__name__ not in _FLAG_ACTIONS:
        return None
    attrs: dict = {}
    if action.help and action.help is not argparse.SUPPRESS:
        attrs["description"] = action.help
    if action.default is not None and action.default is not argparse.SUPPRESS:
        attrs["default"] = _json_value(action.default, name, warnings)
    if action.choices:
        attrs["choices"] = _json_value(list(action.choices), name, warnings)
    if action.required:
        attrs["required"] = True
    if action.type is not None:
        t = _TYPES.get(action.type)
        if t is None:
            warnings.append(f"unsupported type {getattr(action.type, '__name__', action.type)} "
                            f"for flag {name}: its values are not converted")
        else:
            attrs["type"] = t
    kind = type(action).__name__
    if kind in ("_StoreTrueAction", "_StoreFalseAction"):
        attrs["arg-switch"] = kind == "_StoreTrueAction"
        attrs["choices"] = [True, False]
    elif kind == "BooleanOptionalAction" and len(action.option_strings) == 2:
        attrs["choices"] = [True, False]
        on, off = (o[2:] for o in action.option_strings)
        attrs["arg-name"], attrs["arg-switch"] = (off, False) if action.default else (on, True)
    if action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1):
        attrs["arg-split"] = True
        if isinstance(attrs.get("default"), list):
            # (`-m tracker.project.argparse_probe` has imported the project package already)
            from .flagvalues import join_split

            attrs["default"] = join_split(attrs["default"], True)
    return {"name": name, "attrs": attrs}


def _json_value(value, name: str, warnings: list[str]):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        warnings.append(f"cannot serialize value {value!r} for flag {name}: using its text")
        return str(value)


def main(argv: list[str]) -> int:
    """Run SCRIPT as `__main__` until it parses its arguments; write them to OUT."""
    import runpy

    script, out, base_args = argv[0], argv[1], argv[2:]
    original = argparse.ArgumentParser.parse_known_args

    def collect(parser, *args, **kw):
        argparse.ArgumentParser.parse_known_args = original  # only the first parser the script parses with
        warnings: list[str] = []
        flags = {}
        for action in parser._actions:
            found = flag_attrs(action, warnings)
            if found:
                flags[found["name"]] = found["attrs"]
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"flags": flags, "warnings": warnings}, f)
        raise _Collected()

    argparse.ArgumentParser.parse_known_args = collect
    sys.argv = [script] + base_args + ["--help"]
    try:
        runpy.run_path(script, run_name="__main__")
    except _Collected:
        return 0
    except SystemExit as e:  # exited before parsing arguments: it has none to import
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
