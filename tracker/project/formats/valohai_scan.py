"""Steps defined in code: `prepare()` calls found by parsing scripts, never running them.

As Valohai's `vh yaml step` does, a script's `valohai.prepare(...)` (or
`tracker.prepare(...)`) call is found in its syntax tree and its arguments
read as literals (a name bound at module level to a literal works too; an
f-string or a call does not). Only the project's top-level `*.py` files are
looked at, and only those whose text contains `prepare(` are parsed, so a
scan costs a directory listing and a read of each script.
"""

from __future__ import annotations

import ast
import os
from typing import Any

from ...errors import ProjectError

MODULES = ("valohai", "tracker")
ARGS = ("step", "image", "default_parameters", "default_inputs", "environment")
_TYPES = ((bool, "flag"), (int, "integer"), (float, "float"), (str, "string"))


class NotLiteral(Exception):
    """A `prepare()` argument the parser cannot read without running the script."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


class ScriptReader:
    """Messages about a step defined in a script name the script and the call's line."""

    def __init__(self, project_dir: str, path: str, line: int):
        self.project_dir = project_dir
        self.name = os.path.relpath(path, project_dir)
        self.line = line
        self.warnings: list[str] = []

    def where(self, keypath: tuple = ()) -> str:
        """`FILE, line N` of the `prepare()` call."""
        return f"{self.name}, line {self.line}"

    def error(self, keypath: tuple, message: str) -> ProjectError:
        """Bad input (exit 2) naming the script and line."""
        return ProjectError(f"{self.where()}: {message}", exit_code=2)

    def warn(self, keypath: tuple, message: str) -> None:
        """A warning naming the script and line."""
        self.warnings.append(f"{self.where()}: {message}")

    def mapping(self, data, keypath, what, known, required, ignored=frozenset()):
        """`data` as it is: a step made from a call has only the keys trk wrote."""
        return data


def candidate_scripts(project_dir: str) -> list[str]:
    """Top-level scripts whose text mentions `prepare(`, sorted."""
    from .modelcache import note_file, note_listing

    found = []
    note_listing(project_dir, (".py",))
    try:
        names = sorted(os.listdir(project_dir))
    except OSError:
        return []
    for name in names:
        if name.endswith(".py"):
            path = os.path.join(project_dir, name)
            note_file(path)
            try:
                with open(path, "rb") as f:
                    if b"prepare(" in f.read():
                        found.append(path)
            except OSError:
                continue
    return found


def has_prepare_call(project_dir: str) -> bool:
    """Whether a top-level script calls `prepare()` (cheap: only text is read first)."""
    return any(find_call(path)[0] is not None for path in candidate_scripts(project_dir))


def find_call(path: str) -> tuple[ast.Call | None, ast.Module | None]:
    """The script's `valohai.prepare(...)`/`tracker.prepare(...)` call and its tree."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None, None
    imported = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module in MODULES for a in node.names if a.name == "prepare"}
    modules = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for a in node.names if a.name in MODULES} | set(MODULES)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if (isinstance(f, ast.Attribute) and f.attr == "prepare" and isinstance(f.value, ast.Name)
                and f.value.id in modules) or (isinstance(f, ast.Name) and f.id in imported):
            return node, tree
    return None, None


def call_args(call: ast.Call, tree: ast.Module) -> dict[str, Any]:
    """The call's arguments as values; NotLiteral naming the line of one that is not a literal."""
    if call.args:
        raise NotLiteral(call.lineno, "prepare() takes keyword arguments only (step=..., default_parameters=...)")
    out = {}
    for kw in call.keywords:
        if kw.arg not in ARGS:
            raise NotLiteral(kw.value.lineno, f"prepare() has no argument {kw.arg or '**'!r}")
        out[kw.arg] = _literal(kw.value, tree, call.lineno, kw.arg)
    if not isinstance(out.get("step"), str) or not out["step"].strip():
        raise NotLiteral(call.lineno, "prepare() needs step='NAME'")
    return out


def _literal(node: ast.AST, tree: ast.Module, before: int, arg: str) -> Any:
    if isinstance(node, ast.Name):  # a module-level `params = {...}` above the call
        bound = [n.value for n in tree.body if isinstance(n, ast.Assign) and n.lineno < before
                 and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) and n.targets[0].id == node.id]
        if bound:
            return _literal(bound[-1], tree, before, arg)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise NotLiteral(getattr(node, "lineno", before),
                         f"argument '{arg}' of prepare() is not a literal ({ast.unparse(node)}): the step is "
                         "read without running the script, so write the value itself") from None


def step_data(project_dir: str, path: str, args: dict[str, Any], line: int) -> dict[str, Any]:
    """A valohai.yaml step (as `vh yaml step` writes it) from a call's arguments."""
    rel = os.path.relpath(path, project_dir).replace(os.sep, "/")
    step: dict[str, Any] = {"name": args["step"].strip(), "image": args.get("image") or "python:3",
                            "command": f"python ./{rel} {{parameters}}"}
    params = args.get("default_parameters") or {}
    inputs = args.get("default_inputs") or {}
    for what, value in (("default_parameters", params), ("default_inputs", inputs)):
        if not isinstance(value, dict):
            raise NotLiteral(line, f"argument '{what}' of prepare() must be a dict")
    if params:
        step["parameters"] = [_param(name, value, line) for name, value in params.items()]
    if inputs:
        step["inputs"] = [{"name": str(name), "default": value, "optional": False} for name, value in inputs.items()]
    return step


def _param(name: Any, value: Any, line: int) -> dict[str, Any]:
    vtype = next((t for py, t in _TYPES if isinstance(value, py)), None)
    if vtype is None:
        raise NotLiteral(line, f"the default of parameter '{name}' must be a number, text or a boolean, "
                               f"not {value!r}")
    out = {"name": str(name), "default": value, "optional": False, "type": vtype}
    if vtype == "flag":
        out.pop("optional")
    return out


def scan_steps(project_dir: str) -> tuple[list[tuple[dict[str, Any], ScriptReader]], list[str]]:
    """The steps the project's top-level scripts define, and warnings: a
    script whose call cannot be read is left out with a warning naming its line."""
    steps, warnings = [], []
    for path in candidate_scripts(project_dir):
        call, tree = find_call(path)
        if call is None:
            continue
        reader = ScriptReader(project_dir, path, call.lineno)
        try:
            steps.append((step_data(project_dir, path, call_args(call, tree), call.lineno), reader))
        except NotLiteral as e:
            reader.line = e.line
            warnings.append(f"{reader.where()}: {e}; the step this script defines is left out")
    return steps, warnings


def write_step(project_dir: str, script: str) -> tuple[str, str, bool]:
    """`trk yaml step SCRIPT`: add or update the script's step in valohai.yaml;
    return (file, step name, whether it was new). ProjectError (exit 2) naming
    the line of an argument that is not a literal, or when there is no call."""
    import yaml

    from ...fsutil import atomic_write
    from .valohai import FILES, find_file

    path = os.path.abspath(os.path.join(project_dir, script))
    rel = os.path.relpath(path, project_dir)
    if not os.path.isfile(path):
        raise ProjectError(f"{script}: no such file", exit_code=2)
    call, tree = find_call(path)
    if call is None:
        raise ProjectError(f"{rel}: no call to valohai.prepare() or tracker.prepare() found",
                           "Call prepare(step=..., default_parameters=..., default_inputs=...) in the script.",
                           exit_code=2)
    try:
        step = step_data(project_dir, path, call_args(call, tree), call.lineno)
    except NotLiteral as e:
        raise ProjectError(f"{rel}, line {e.line}: {e}", exit_code=2) from None
    yaml_path = find_file(project_dir) or os.path.join(project_dir, FILES[0])
    text = ""
    if os.path.isfile(yaml_path):
        with open(yaml_path, encoding="utf-8") as f:
            text = f.read()
    span, old = _step_span(text, step["name"], os.path.basename(yaml_path))
    if old is not None:
        # What the call defines is replaced; what the user added (command, description...) stays.
        for key in ("parameters", "inputs"):
            old.pop(key, None)
        old.update({k: v for k, v in step.items() if k != "command" or "command" not in old})
        step = old
    item = yaml.safe_dump([{"step": step}], sort_keys=False, default_flow_style=False)
    lines = text.splitlines(keepends=True)
    if span is None:  # appended: the file's comments and layout stay as they are
        sep = "" if not text or text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
        text = text + sep + item
    else:
        text = "".join(lines[:span[0]]) + item + "".join(lines[span[1]:])
    atomic_write(yaml_path, text)
    return os.path.basename(yaml_path), step["name"], old is None


def _step_span(text: str, name: str, filename: str) -> tuple[tuple[int, int] | None, dict | None]:
    """The lines [start, end) of valohai.yaml's `- step:` named `name`, and its data."""
    import yaml

    from ..loader import _loader_class

    if not text.strip():
        return None, None
    try:
        root = yaml.compose(text, Loader=_loader_class())
        data = yaml.load(text, Loader=_loader_class())
    except yaml.YAMLError as e:
        raise ProjectError(f"{filename}: not valid YAML ({e}); fix it before adding a step", exit_code=2) from None
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise ProjectError(f"{filename}: must be a list of '- step:' items", exit_code=2)
    for node, item in zip(root.value, data):
        old = item.get("step") if isinstance(item, dict) else None
        if isinstance(old, dict) and old.get("name") == name:
            end = node.end_mark.line + (1 if node.end_mark.column else 0)
            return (node.start_mark.line, end), old
    return None, None
