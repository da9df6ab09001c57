"""DVC parameters files: YAML, JSON, TOML or Python, read into nested dicts.

DVC reads a stage's `params:` from these files (`params.yaml` by default),
and `vars:` may load them for `${}` templating. Keys are dot-separated paths
into the tree (`train.lr`); a Python file contributes its top-level literal
assignments and the literal attributes of its top-level classes, as DVC's
own Python params reader does.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # annotations only: on `trk run dvc:STAGE`'s path
if TYPE_CHECKING:
    from typing import Any

from ...errors import ProjectError

DEFAULT_PARAMS = "params.yaml"

_MISSING = object()


def read_params_file(path: str, name: str | None = None) -> dict[str, Any]:
    """The parameters in `path` as a nested dict; ProjectError (exit 2) naming
    the file when it cannot be read or is not a mapping."""
    import copy

    from .modelcache import note_file

    name = name or path
    note_file(path)
    try:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError as e:
        raise ProjectError(f"{name}: cannot read parameters file: {e.strerror or e}", exit_code=2) from None
    if key not in _CACHE:  # every stage of a pipeline reads params.yaml: parse it once
        _CACHE[key] = _read(path, name)
    return copy.deepcopy(_CACHE[key])  # callers merge into what they get


_CACHE: dict[tuple, dict] = {}


def _read(path: str, name: str) -> dict[str, Any]:
    ext = os.path.splitext(path)[1].lower()
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ProjectError(f"{name}: cannot read parameters file: {e.strerror or e}", exit_code=2) from None
    try:
        if ext in (".yaml", ".yml"):
            data = _yaml(raw)
        elif ext == ".json":
            import json

            data = json.loads(raw)
        elif ext == ".toml":
            data = _toml(raw)
        elif ext == ".py":
            data = _python(raw.decode("utf-8"))
        else:
            raise ValueError(f"unsupported parameters file type '{ext or name}' (use YAML, JSON, TOML or Python)")
    except ProjectError:
        raise
    except Exception as e:  # every parser has its own error type; the message is what matters
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f", line {line + 1}" if line is not None else ""
        raise ProjectError(f"{name}{at}: invalid parameters file: {_first_line(e)}", exit_code=2) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProjectError(f"{name}: a parameters file must hold a mapping, not {type(data).__name__}",
                           exit_code=2)
    return data


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _yaml(raw: bytes) -> Any:
    import yaml

    return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _toml(raw: bytes) -> Any:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(raw.decode("utf-8"))


def _python(text: str) -> dict[str, Any]:
    """Top-level `NAME = literal` assignments, and `Class.NAME` for literal class attributes."""
    import ast

    def assigns(body: list, prefix: str, out: dict) -> None:
        for node in body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    continue  # not a literal: not a parameter
                for t in targets:
                    if isinstance(t, ast.Name):
                        out[prefix + t.id] = value
            elif isinstance(node, ast.ClassDef) and not prefix:
                inner: dict[str, Any] = {}
                assigns(node.body, "", inner)
                out[node.name] = inner

    out: dict[str, Any] = {}
    assigns(ast.parse(text).body, "", out)
    return out


def get_key(data: Any, key: str) -> Any:
    """The value at dotted path `key` (list items by number), or `_MISSING`."""
    node = data
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def is_missing(value: Any) -> bool:
    """True for what `get_key` returns when a key is absent."""
    return value is _MISSING


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values of a nested dict under dotted keys (lists stay values)."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
