"""DVC's templating in `dvc.yaml`: `vars`, `${}` expressions and `foreach`/`do`.

Values come from `params.yaml` (always loaded first when present), then the
top-level `vars:` (params files, `FILE:key1,key2`, or mappings), then a
stage's own `vars:`. `${a.b[0]}` reads nested keys and list items; a string
that is one whole `${}` keeps the value's type; inside `cmd` a mapping is
unpacked into `--key value` arguments as DVC does; `\\${` is a literal `${`.
Errors carry the key path of the bad value, so messages name file and line.
"""

from __future__ import annotations

import os
import re
import shlex

TYPE_CHECKING = False  # annotations only: on `trk run dvc:STAGE`'s path
if TYPE_CHECKING:
    from typing import Any

from .dvc_params import flatten, read_params_file

# `${...}` not preceded by a backslash (DVC's own pattern).
_EXPR = re.compile(r"(?<!\\)\$\{(?P<inner>.*?)\}")
_PART = re.compile(r"\[([^\]]*)\]")
_PRIMITIVES = (str, int, float, bool)


class TemplateError(Exception):
    """A templating problem at a key path of `dvc.yaml` (turned into a message naming its line)."""

    def __init__(self, keypath: tuple, message: str):
        super().__init__(message)
        self.keypath = keypath
        self.message = message


def merge(into: dict, new: dict, keypath: tuple, source: str) -> None:
    """Merge `new` into `into` as DVC merges vars: mappings merge key by
    key; redefining any other value is an error."""
    for k, v in new.items():
        if k in into and isinstance(into[k], dict) and isinstance(v, dict):
            merge(into[k], v, keypath, source)
        elif k in into:
            raise TemplateError(keypath, f"cannot redefine '{k}' from '{source}': it is already defined")
        else:
            into[k] = v


def load_vars(context: dict, entries: Any, base_dir: str, root: str, keypath: tuple) -> None:
    """Add a `vars:` list (params files, `FILE:keys`, mappings) to `context`."""
    if entries is None:
        return
    if not isinstance(entries, list):
        raise TemplateError(keypath, f"'vars' must be a list of files or mappings, not {_kind(entries)}")
    for i, entry in enumerate(entries):
        at = keypath + (i,)
        if isinstance(entry, dict):
            merge(context, entry, at, "vars")
        elif isinstance(entry, str):
            path, _, keys = entry.partition(":")
            data = read_vars_file(base_dir, path, root, at)
            if keys:
                picked = {}
                for key in (k.strip() for k in keys.split(",")):
                    if key not in data:
                        raise TemplateError(at, f"'{key}' is not defined in '{path}'")
                    picked[key] = data[key]
                data = picked
            merge(context, data, at, path)
        else:
            raise TemplateError(at, f"a 'vars' entry must be a file name or a mapping, not {_kind(entry)}")


def read_vars_file(base_dir: str, path: str, root: str, keypath: tuple) -> dict:
    """A params file named in `vars:` (relative to `base_dir`, inside `root`)."""
    from ...fsutil import is_inside

    from .modelcache import note_file

    full = os.path.join(base_dir, path)
    note_file(full)
    if not is_inside(root, full):
        raise TemplateError(keypath, f"vars file '{path}' is outside the project directory")
    if not os.path.isfile(full):
        raise TemplateError(keypath, f"vars file '{path}' does not exist")
    return read_params_file(full, os.path.relpath(full, root))


def lookup(context: dict, expr: str, keypath: tuple) -> Any:
    """The value `a.b[0].c` names in `context`; TemplateError when none."""
    expr = expr.strip()
    if not expr:
        raise TemplateError(keypath, "empty expression '${}'")
    node: Any = context
    done = []
    for part in _PART.sub(r".\1", expr).split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            where = f" in '{'.'.join(done)}'" if done else ""
            raise TemplateError(keypath, f"'${{{expr}}}' names no variable: '{part}' is not defined{where}")
        done.append(part)
    return node


def interpolate(value: Any, context: dict, keypath: tuple, in_cmd: bool = False) -> Any:
    """`value` with every `${}` in its strings (and mapping keys) replaced."""
    if isinstance(value, str):
        return _string(value, context, keypath, in_cmd)
    if isinstance(value, list):
        return [interpolate(v, context, keypath + (i,), in_cmd) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _to_str(_string(k, context, keypath + (k,), False)) if isinstance(k, str) else k
            out[key] = interpolate(v, context, keypath + (k,), in_cmd)
        return out
    return value


def _string(text: str, context: dict, keypath: tuple, in_cmd: bool) -> Any:
    matches = list(_EXPR.finditer(text))
    if not matches:
        return text.replace("\\${", "${")
    if len(matches) == 1 and matches[0].span() == (0, len(text)):
        value = lookup(context, matches[0].group("inner"), keypath)
        if in_cmd and isinstance(value, dict):
            return _unpack(value, keypath)
        return value  # a whole `${}` keeps its type (a foreach list, a number)

    def repl(m: re.Match) -> str:
        value = lookup(context, m.group("inner"), keypath)
        if in_cmd and isinstance(value, dict):
            return _unpack(value, keypath)
        if not isinstance(value, _PRIMITIVES) and value is not None:
            raise TemplateError(keypath, f"cannot interpolate {_kind(value)} '${{{m.group('inner')}}}' into "
                                         "a string" + ("" if in_cmd else " (a mapping is unpacked only in 'cmd')"))
        return _to_str(value)

    return _EXPR.sub(repl, text).replace("\\${", "${")


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unpack(mapping: dict, keypath: tuple) -> str:
    """A mapping as DVC passes it in `cmd`: `--key value` per leaf, nested keys
    dotted, true booleans as `--key`, lists as `--key a b` (strings quoted)."""
    parts = []
    for k, v in flatten(mapping).items():
        if isinstance(v, bool):
            if v:
                parts.append(f"--{k}")
        elif isinstance(v, str):
            parts.append(f"--{k} {shlex.quote(v)}")
        elif isinstance(v, list):
            items = []
            for item in v:
                if isinstance(item, (list, dict)):
                    raise TemplateError(keypath, f"cannot unpack nested list in '{k}'")
                items.append(shlex.quote(item) if isinstance(item, str) else _to_str(item))
            parts.append(" ".join([f"--{k}"] + items))
        else:
            parts.append(f"--{k} {v}")
    return " ".join(parts)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), f"a {type(value).__name__}")


def expand_foreach(name: str, stage: dict, context: dict, keypath: tuple) -> list[tuple[str, dict, dict]]:
    """The stages a `foreach`/`do` entry stands for: (name@suffix, `do` body, context
    with `item` (and `key`)). Lists of plain values are named by value, lists
    of mappings by index, mappings by key."""
    if "do" not in stage:
        raise TemplateError(keypath, f"foreach stage '{name}' has no 'do'")
    if not isinstance(stage["do"], dict):
        raise TemplateError(keypath + ("do",), f"'do' of stage '{name}' must be a mapping, not {_kind(stage['do'])}")
    for key in stage:
        if key not in ("foreach", "do"):
            raise TemplateError(keypath + (key,), f"foreach stage '{name}' may only have 'foreach' and 'do', "
                                                  f"not '{key}' (put it under 'do')")
    items = interpolate(stage["foreach"], context, keypath + ("foreach",))
    if isinstance(items, dict):
        pairs = [(str(k), {"key": k, "item": v}) for k, v in items.items()]
    elif isinstance(items, list):
        simple = all(isinstance(v, _PRIMITIVES) for v in items)
        pairs = [(_to_str(v) if simple else str(i), {"item": v}) for i, v in enumerate(items)]
    else:
        raise TemplateError(keypath + ("foreach",), f"foreach of stage '{name}' must be a list or a mapping, "
                                                    f"not {_kind(items)}")
    out = []
    for suffix, extra in pairs:
        for var in extra:
            if var in context:
                raise TemplateError(keypath + ("foreach",), f"foreach of stage '{name}' cannot set '{var}': "
                                                            "a variable of that name is already defined")
        out.append((f"{name}@{suffix}", stage["do"], {**context, **extra}))
    return out
