"""Runs a Python module with flag values set as its globals (Guild's
`flags-dest: globals`), for scripts that take no command-line arguments:

    lr = 0.1          # becomes lr = 0.2 with `trk run train lr=0.2`

The first top-level assignment of each flag's name is rewritten in the
module's syntax tree before it runs; nothing else in the script changes.
Invoked as `python -m tracker.pymain FLAGS_JSON MODULE [ARG...]`.
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


def rewrite_globals(tree: ast.Module, flags: dict) -> set[str]:
    """Set the first top-level `NAME = value` of each flag; return names set."""
    done: set[str] = set()
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            targets = [node.targets[0].id]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            targets = [node.target.id]
        for name in targets:
            if name in flags and name not in done:
                node.value = ast.copy_location(literal(flags[name]), node.value)
                done.add(name)
    ast.fix_missing_locations(tree)  # the items of a dict or list value need positions too
    return done


def main(argv: list[str]) -> None:
    """Run MODULE as `__main__` with FLAGS_JSON set as its globals."""
    import importlib.util
    import runpy

    flags = json.loads(argv[0])
    module = argv[1]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        # A package or compiled module: no source to rewrite; run it plainly.
        sys.argv = [module] + argv[2:]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    path = spec.origin
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    done = rewrite_globals(tree, flags)
    code = compile(tree, path, "exec")
    globs = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__, "__spec__": None}
    globs.update({k: v for k, v in flags.items() if k not in done})
    sys.argv = [path] + argv[2:]
    exec(code, globs)


if __name__ == "__main__":
    main(sys.argv[1:])
