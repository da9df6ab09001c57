"""Flag definitions and values: parsing `NAME=VALUE`, typing, formatting.

Values typed as Guild types them: `1` int, `1.0` float, `yes`/`no`/`true`/
`false` bool, anything else a string; a value wrapped in quotes stays a string.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import OpError

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(
    r"^[-+]?(?:[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)$"
)
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf}
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}
_NULL = {"null", "~"}
_NEEDS_QUOTE = re.compile(r"[\s'\"#;&|<>()$`\\*?!{}\[\],]")

FLAG_TYPES = ("int", "float", "number", "bool", "boolean", "string", "str", "path")


def parse_value(s: str) -> Any:
    """Parse a command-line flag value into int, float, bool, None or str."""
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    if _INT.match(s):
        return int(s)
    if _FLOAT.match(s):
        return float(s)
    low = s.lower()
    if low in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[low]
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    if low in _NULL:
        return None
    return s


def format_value(value: Any) -> str:
    """Format a flag value so that `parse_value` reads it back unchanged.

    Strings that contain spaces or shell characters, or that would parse as
    another type, are single-quoted, as Guild shows them (`msg='hello world'`).
    """
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (int, float)):
        return str(value)
    s = str(value)
    if s == "" or _NEEDS_QUOTE.search(s) or parse_value(s) != s:
        return "'" + s.replace("'", "'\"'\"'") + "'"
    return s


def arg_value(value: Any) -> str:
    """The string a program receives for a flag value (no quoting)."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return ""
    if isinstance(value, float):
        return format_value(value)
    return str(value)


def format_assigns(flags: dict[str, Any]) -> str:
    """Flags as `name=value` words, in order, values quoted as needed."""
    return " ".join(f"{k}={format_value(v)}" for k, v in sorted(flags.items()))


def split_assign(arg: str) -> tuple[str, str]:
    """Split `NAME=VALUE`; raise OpError when there is no `=`."""
    name, sep, value = arg.partition("=")
    if not sep or not name:
        raise OpError(f"invalid flag assignment '{arg}': expected NAME=VALUE")
    return name, value


@dataclass
class FlagDef:
    """One flag of an operation, from the project file."""

    name: str
    default: Any = None
    type: str | None = None
    choices: list[Any] | None = None
    required: bool = False
    description: str = ""
    arg_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def coerce(self, value: Any, opname: str = "") -> Any:
        """Check and convert a value for this flag's type and choices."""
        value = self.coerce_type(value, opname)
        if value is not None and self.choices is not None and value not in self.choices:
            raise OpError(
                f"invalid value {format_value(value)} for flag '{self.name}'"
                + (f" of {opname}" if opname else "")
                + ": choose from "
                + ", ".join(format_value(c) for c in self.choices)
            )
        return value

    def coerce_type(self, value: Any, opname: str = "") -> Any:
        """Check and convert a value for this flag's type (not its choices)."""
        if value is None:
            return None
        t = self.type
        try:
            if t == "int":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                value = int(value) if not isinstance(value, str) else int(value, 10)
            elif t == "float":
                if isinstance(value, bool):
                    raise ValueError
                value = float(value)
            elif t == "number":
                if isinstance(value, bool):
                    raise ValueError
                if isinstance(value, str):
                    parsed = parse_value(value)
                    if not isinstance(parsed, (int, float)) or isinstance(parsed, bool):
                        raise ValueError
                    value = parsed
            elif t in ("bool", "boolean"):
                if isinstance(value, str):
                    parsed = parse_value(value)
                    if not isinstance(parsed, bool):
                        raise ValueError
                    value = parsed
                elif not isinstance(value, bool):
                    raise ValueError
            elif t in ("string", "str", "path"):
                value = value if isinstance(value, str) else arg_value(value)
        except (TypeError, ValueError, OverflowError):  # e.g. int([1]): a list is no int either
            raise OpError(
                f"invalid value {format_value(value)} for flag '{self.name}'"
                + (f" of {opname}" if opname else "")
                + f": expected {t}"
            ) from None
        return value


def has_nul(value: Any) -> bool:
    """True when a flag value (or any string inside a dict or list value)
    holds a NUL byte, which no program can receive in argv or env."""
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_nul(v) for v in value)
    return False


NUL_FIX = "remove it: programs get flag values as C strings, which end at a NUL"

_A_TYPE = {"int": "an int", "float": "a float", "number": "a number", "bool": "yes or no", "boolean": "yes or no"}


class FlagConfigError(ValueError):
    """A flag definition is invalid; `keypath` leads from `flags:` to the culprit."""

    def __init__(self, message: str, keypath: tuple = (), exit_code: int | None = None):
        super().__init__(message)
        self.keypath = keypath
        self.exit_code = exit_code


def flagdefs_from_config(data: Any, where: str) -> dict[str, FlagDef]:
    """Build flag definitions from an operation's `flags:` mapping."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FlagConfigError(f"{where}: 'flags' must be a mapping of flag names")
    defs: dict[str, FlagDef] = {}
    for name, spec in data.items():
        name = str(name)
        if name.startswith("$"):  # Guild's $include and friends: not flags
            continue
        if not isinstance(spec, dict):
            if has_nul(spec):
                raise FlagConfigError(f"{where}: flag '{name}' has a NUL byte in {spec!r}: {NUL_FIX}", (name,), 2)
            defs[name] = FlagDef(name, default=spec)
            continue
        t = spec.get("type")
        if t is not None and t not in FLAG_TYPES:
            raise FlagConfigError(
                f"{where}: flag '{name}' has unknown type '{t}' (expected one of {', '.join(FLAG_TYPES)})"
            )
        for key in ("default", "choices"):
            if has_nul(spec.get(key)):
                raise FlagConfigError(
                    f"{where}: flag '{name}' has a NUL byte in its {key} {spec[key]!r}: {NUL_FIX}", (name, key), 2)
        choices = spec.get("choices")
        if choices is not None:
            if not isinstance(choices, list):
                raise FlagConfigError(f"{where}: flag '{name}': 'choices' must be a list")
            choices = [c.get("value") if isinstance(c, dict) else c for c in choices]
        known = {"default", "type", "choices", "required", "description", "arg-name"}
        _check_default_type(name, t, spec.get("default"), where)
        defs[name] = FlagDef(
            name,
            default=spec.get("default"),
            type=t,
            choices=choices,
            required=bool(spec.get("required", False)),
            description=str(spec.get("description") or ""),
            arg_name=spec.get("arg-name"),
            extra={k: v for k, v in spec.items() if k not in known},
        )
    return defs


def _check_default_type(name: str, t: str | None, default: Any, where: str) -> None:
    """Refuse a default its own `type:` rejects: every run without the flag
    would otherwise fail, or pass the program a value of the wrong type."""
    if t is None or default is None:
        return
    try:
        FlagDef(name, type=t).coerce_type(default)
    except OpError:
        raise FlagConfigError(
            f"{where}: flag '{name}' has type {t}, so its default must be {_A_TYPE.get(t, t)}, "
            f"not {format_value(default)}",
            (name, "default"), 2,
        ) from None
