"""Runs a Python module with flag values set as its globals (Guild's
`flags-dest: globals`), for scripts that take no command-line arguments:

    lr = 0.1          # becomes lr = 0.2 with `trk run train lr=0.2`

The first assignment of each flag's name at the top level (or in a
top-level `if`, as Guild looks there too) is rewritten in the module's
syntax tree before it runs; nothing else in the script changes. With
`--dest dict:NAME` (or `global:NAME`) the flags are items of the global
dict NAME, dotted names (`model.layers`) nested, merged into the dict the
script assigns first (Guild replaces that dict; trk keeps its other keys).
Invoked as `python -m tracker.execution.pymain [--dest DEST] FLAGS_JSON MODULE [ARG...]`.
"""

from __future__ import annotations

import ast
import json
import sys


def literal(value) -> ast.expr:
    """The expression for a JSON-decoded flag value: a dict or list value is
    passed as that dict or list (as Guild does), not as its text."""
    if isinstance(value, dict):
        return ast.Dict(keys=[literal(k) for k in value], values=[literal(v) for v in value.values()])
    if isinstance(value, list):
        return ast.List(elts=[literal(v) for v in value], ctx=ast.Load())
    return ast.Constant(value)


def rewrite_globals(tree: ast.Module, flags: dict, merge: bool = False) -> set[str]:
    """Set the first `NAME = value` of each flag (at the top level or in a
    top-level `if`); return the names set. With `merge`, the value becomes
    the assigned dict updated with the flag's (see `_merged`)."""
    done: set[str] = set()

    def visit(body: list) -> None:
        for node in body:
            targets = []
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                targets = [node.targets[0].id]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                targets = [node.target.id]
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            for name in targets:
                if name in flags and name not in done:
                    new = literal(flags[name])
                    if merge:
                        new = ast.Call(ast.Name("__trk_merged__", ast.Load()), [node.value, new], [])
                    node.value = ast.copy_location(new, node.value)
                    done.add(name)

    visit(tree.body)
    ast.fix_missing_locations(tree)  # the items of a dict or list value need positions too
    return done


def _merged(base, values):
    """`values` (flags, in Guild's sorted order) with the keys of `base` (a
    dict) that they do not set after them, nested dicts merged."""
    if not isinstance(base, dict):
        return values
    out = {k: _merged(base.get(k), v) if isinstance(v, dict) else v for k, v in values.items()}
    out.update({k: v for k, v in base.items() if k not in out})
    return out


def nested(flags: dict) -> dict:
    """Dotted flag names as nested dicts: {"model.layers": 2} -> {"model": {"layers": 2}}."""
    out: dict = {}
    for name, value in sorted(flags.items()):
        parts = name.split(".")
        cur = out
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
            if not isinstance(cur, dict):
                break
        else:
            cur[parts[-1]] = value
    return out


def dest_globals(dest: str, flags: dict) -> dict:
    """The globals to set for a flags dest: the flags (`globals`), or one
    global dict holding them (`dict:NAME`, `global:NAME`; a dotted NAME nests)."""
    if dest == "globals":
        return flags
    name = dest.partition(":")[2]
    head, *rest = name.split(".")
    value = nested(flags)
    for part in reversed(rest):
        value = {part: value}
    return {head: value}


def main(argv: list[str]) -> None:
    """Run MODULE as `__main__` with FLAGS_JSON set as its globals."""
    import importlib.util
    import runpy

    dest = "globals"
    if argv[:1] == ["--dest"]:
        dest, argv = argv[1], argv[2:]
    flags = dest_globals(dest, json.loads(argv[0]))
    module = argv[1]
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.submodule_search_locations is not None:
        spec = importlib.util.find_spec(module + ".__main__")  # a package runs as its __main__, as with -m
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        # A package or compiled module: no source to rewrite; run it plainly.
        sys.argv = [module] + argv[2:]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    path = spec.origin
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    done = rewrite_globals(tree, flags, merge=dest != "globals")
    code = compile(tree, path, "exec")
    globs = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__, "__spec__": None}
    if dest != "globals":
        globs["__trk_merged__"] = _merged
    globs.update({k: v for k, v in flags.items() if k not in done})
    sys.argv = [path] + argv[2:]
    exec(code, globs)


if __name__ == "__main__":
    main(sys.argv[1:])
