"""Guild's inheritance between the entries of a project file: what a model
takes from the configs and models it `extends:`, and `{{name}}` references to
`params:` resolved in everything it ends up with.
"""

from __future__ import annotations

import copy
import re

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

# What a model takes from the configs and models it extends (Guild's list).
INHERITABLE = ("description", "extra", "flags", "operation-defaults", "operations", "params",
               "references", "resources", "sourcecode")

_PARAM = re.compile(r"({{.*?}})")


def apply_parent(parent: Any, child: Any, attrs=None) -> None:
    """Give `child` what `parent` has and it lacks, recursively through mappings."""
    if not isinstance(parent, dict) or not isinstance(child, dict):
        return
    for name, value in parent.items():
        if attrs is not None and name not in attrs:
            continue
        if name in child:
            apply_parent(value, child[name])
        else:
            child[name] = copy.deepcopy(value)


def params_of(data: dict) -> dict:
    """The `params:` of a (merged) entry, each resolved against the others."""
    params = data.get("params")
    if not isinstance(params, dict):
        return {}
    return {name: _resolve_param(name, params) for name in params}


def _resolve_param(name: str, params: dict) -> Any:
    """A param's value with `{{other}}` params in it resolved (stops at a cycle)."""
    value = params[name]
    seen = {repr(value)}
    for _ in range(100):
        if not isinstance(value, str):
            return value
        value = _resolve_str(value, params)
        if repr(value) in seen:
            return value
        seen.add(repr(value))
    return value


def resolve_params(value: Any, params: dict) -> Any:
    """`value` with `{{name}}` references to `params` resolved in every string inside it."""
    if not params:
        return value
    if isinstance(value, dict):
        return {k: resolve_params(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_params(v, params) for v in value]
    if isinstance(value, str):
        return _resolve_str(value, params)
    return value


def _resolve_str(s: str, params: dict) -> Any:
    """`{{name}}` replaced by the param; a string that is one reference takes the param's type."""
    parts = [p for p in _PARAM.split(s) if p != ""]
    resolved = [params.get(p[2:-2].strip(), p) if p.startswith("{{") and p.endswith("}}") else p for p in parts]
    if len(resolved) == 1:
        return resolved[0]
    return "".join(str(p) for p in resolved)
