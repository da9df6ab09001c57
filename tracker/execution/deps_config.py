"""`config:` dependencies: a project config file rewritten with the run's flag values.

As in Guild, the file (YAML, JSON or INI/CFG; a trailing `.in` is ignored
when telling which) is read, the source's `params` and then the run's flag
values (those not null, under their `arg-name`) are set in it, a dotted
name (`model.layers`) setting a nested key, and the result is written in
the same format (keys sorted) where the dependency lands in the run.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import DependencyError

YAML_EXT = (".yml", ".yaml")
JSON_EXT = (".json",)
CFG_EXT = (".cfg", ".ini")


def config_format(path: str) -> str | None:
    """`yaml`, `json` or `cfg` for a config file's name, else None."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".in":
        return config_format(path[:-3])
    if ext in YAML_EXT:
        return "yaml"
    if ext in JSON_EXT:
        return "json"
    if ext in CFG_EXT:
        return "cfg"
    return None


def render_config(path: str, params: dict[str, Any], flags: dict[str, Any], arg_names: dict[str, str]) -> str:
    """The text of config file `path` with `params`, then `flags`, applied."""
    fmt = config_format(path)
    name = os.path.basename(path)
    if fmt is None:
        raise DependencyError(f"unsupported file type for config dependency '{name}'",
                              "A config: source is a .yml, .yaml, .json, .ini or .cfg file.")
    try:
        config = _load(path, fmt)
    except Exception as e:  # OSError, and json's, yaml's and configparser's own errors
        raise DependencyError(f"error loading config from {name}: {e}") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise DependencyError(f"config dependency '{name}' must hold a mapping, not {type(config).__name__}")
    values = {arg_names.get(k) or k: v for k, v in flags.items() if v is not None}
    try:
        nested(params, config)
        nested(values, config)
    except ValueError as e:
        raise DependencyError(f"cannot apply flags to config '{name}': {e}") from None
    return _encode(config, fmt)


def nested(values: dict[str, Any], config: dict) -> dict:
    """Set each `a.b.c` in `values` as config['a']['b']['c'] (names in sorted order)."""
    for name, value in sorted(values.items()):
        parts = str(name).split(".")
        cur = config
        for i, part in enumerate(parts[:-1]):
            cur = cur.setdefault(part, {})
            if not isinstance(cur, dict):
                raise ValueError(f"{name!r} cannot be nested: {'.'.join(parts[:i + 1])!r} is {cur!r}")
        cur[parts[-1]] = value
    return config


def _load(path: str, fmt: str) -> Any:
    with open(path, encoding="utf-8") as f:
        if fmt == "yaml":
            import yaml

            return yaml.safe_load(f)
        if fmt == "json":
            return json.load(f)
    import configparser

    parser = configparser.ConfigParser()
    parser.read(path, encoding="utf-8")
    flat = dict(parser.defaults())
    for section in parser.sections():
        for option in parser.options(section):
            flat[f"{section}.{option}"] = parser.get(section, option)
    return nested(flat, {})


def _encode(config: dict, fmt: str) -> str:
    if fmt == "yaml":
        import yaml

        text = yaml.safe_dump(config, default_flow_style=False, indent=2).strip()
        return text.removesuffix("\n...")
    if fmt == "json":
        return json.dumps(config, sort_keys=True)
    import configparser
    import io

    parser = configparser.ConfigParser()
    for key, value in sorted(config.items()):
        if isinstance(value, dict):
            parser.add_section(key)
            for option, v in sorted(value.items()):
                parser.set(key, option, str(v))
        else:
            parser.set("DEFAULT", key, str(value))
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()
