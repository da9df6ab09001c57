"""Flag definitions and how an operation's flag values are settled.

A `FlagDef` holds Guild's flag attributes (type, choices with aliases and
per-choice flags, min/max, arg-name/-skip/-switch/-split, env-name,
null-label...); `settle` turns defaults and assigned values into a run's
flag values as Guild does: aliases, defaults, types, checks, choice values.
Value text (parsing, formatting, argv encoding) is in `flagvalues`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..records import field, record
from ..errors import OpError
from .flagvalues import (  # noqa: F401  (re-exported: the names other modules use)
    arg_value,
    batch_error,
    cmd_value,
    format_value,
    is_batch,
    join_split,
    parse_value,
    split_value,
)

FLAG_TYPES = ("int", "float", "number", "bool", "boolean", "string", "str", "path", "existing-path", "auto")
_KNOWN = {"default", "type", "choices", "required", "description", "arg-name", "alias", "arg-skip", "arg-switch",
          "arg-split", "allow-other", "env-name", "null-label", "min", "max", "arg-encoding", "env-encoding"}


def format_assigns(flags: dict[str, Any]) -> str:
    """Flags as `name=value` words, in order, values quoted as needed."""
    return " ".join(f"{k}={format_value(v)}" for k, v in sorted(flags.items()))


def split_assign(arg: str) -> tuple[str, str]:
    """Split `NAME=VALUE`; raise OpError when there is no `=`."""
    name, sep, value = arg.partition("=")
    if not sep or not name:
        raise OpError(f"invalid flag assignment '{arg}': expected NAME=VALUE")
    return name, value


@record
class FlagChoice:
    """One of a flag's `choices`: its value, the alias a user may type
    instead, and the flags choosing it sets."""

    value: Any
    alias: Any = None
    description: str = ""
    flags: dict[str, Any] = field(default_factory=dict)


@record
class FlagDef:
    """One flag of an operation, from the project file or imported from its script."""

    name: str
    default: Any = None
    type: str | None = None
    choices: list[Any] | None = None  # the values a user types (an alias where a choice has one)
    required: bool = False
    description: str = ""
    arg_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    alias: str | None = None
    arg_skip: bool | None = None
    arg_switch: Any = None
    arg_split: Any = None
    allow_other: bool = False
    env_name: str | None = None
    null_label: str | None = None
    min: Any = None
    max: Any = None
    arg_encoding: dict | None = None
    env_encoding: dict | None = None
    choice_defs: list[FlagChoice] = field(default_factory=list)
    base_dir: str | None = None  # where relative `path` values start (the project)

    def __post_init__(self):
        if self.choices is not None and not self.choice_defs:
            self.choice_defs = [FlagChoice(c) for c in self.choices]

    def coerce(self, value: Any, opname: str = "") -> Any:
        """Check and convert a value for this flag's type, choices and range."""
        value = self.coerce_type(value, opname)
        self.check(value, opname)
        return value

    def coerce_type(self, value: Any, opname: str = "") -> Any:
        """Convert a value to this flag's type, as Guild does (an int default
        of a float flag becomes a float, a relative path absolute)."""
        if value is None or self.type in (None, "auto") or is_batch(value):
            return value
        if self.arg_split is not None and not isinstance(value, list):
            parts = [self._typed(p, opname) for p in split_value(value, self.arg_split)]
            return join_split(parts, self.arg_split)
        return self._typed(value, opname)

    def _typed(self, value: Any, opname: str) -> Any:
        t = self.type
        try:
            if t == "int":
                if isinstance(value, (bool, float)):
                    raise ValueError
                return int(value)
            if t == "float":
                if isinstance(value, bool):
                    raise ValueError
                return float(value)
            if t == "number":
                if isinstance(value, bool):
                    raise ValueError
                if isinstance(value, (int, float)):
                    return value
                try:
                    return int(value)
                except ValueError:
                    return float(value)
            if t in ("bool", "boolean"):
                if isinstance(value, str):
                    value = parse_value(value, "boolean")
                if not isinstance(value, (bool, int, float)):
                    raise ValueError
                return bool(value)
            if t in ("string", "str"):
                return value if isinstance(value, str) else str(value)
            if t in ("path", "existing-path"):
                path = os.path.expanduser(str(value))
                if path and not os.path.isabs(path):
                    path = os.path.abspath(os.path.join(self.base_dir or os.getcwd(), path))
                return path
        except (TypeError, ValueError, OverflowError):  # int([1]): a list is no int either
            raise OpError(f"invalid value {format_value(value)} for flag '{self.name}'"
                          + (f" of {opname}" if opname else "") + f": expected {t}") from None
        return value

    def check(self, value: Any, opname: str = "") -> None:
        """Check a typed value against choices, `existing-path` and min/max."""
        if self.arg_split is not None and isinstance(value, str) and value:
            for part in split_value(value, self.arg_split):
                self._check_one(parse_value(part), opname)
        elif isinstance(value, list):
            for item in value:
                self._check_one(item, opname)
        else:
            self._check_one(value, opname)

    def _check_one(self, value: Any, opname: str) -> None:
        of = f"'{self.name}'" + (f" of {opname}" if opname else "")
        if value is None or is_batch(value):
            return
        if value and self.choice_defs and not self.allow_other and self.choice_for(value) is None:
            raise OpError(f"invalid value {format_value(value)} for flag {of}: choose from "
                          + ", ".join(format_value(c.alias if c.alias is not None else c.value)
                                      for c in self.choice_defs))
        if self.type == "existing-path" and value and not os.path.exists(str(value)):
            raise OpError(f"invalid value {format_value(value)} for flag {of}: {value} does not exist")
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and _is_number(self.min) and value < self.min:
            raise OpError(f"invalid value {format_value(value)} for flag {of}: "
                          f"out of range (less than min {format_value(self.min)})")
        if number and _is_number(self.max) and value > self.max:
            raise OpError(f"invalid value {format_value(value)} for flag {of}: "
                          f"out of range (greater than max {format_value(self.max)})")

    def choice_for(self, value: Any) -> FlagChoice | None:
        """The choice `value` names, by its alias or its value."""
        for c in self.choice_defs:
            if (c.alias is not None and value == c.alias) or c.value == value:
                return c
        return None


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def normalize_aliases(defs: dict[str, FlagDef], assigned: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """`assigned` with flag aliases (`alias:`) renamed to their flag's name."""
    out = dict(assigned)
    for fdef in defs.values():
        if not fdef.alias or fdef.alias == fdef.name or fdef.alias not in out:
            continue
        if fdef.name in out:
            if force:
                continue
            raise OpError(f"flag '{fdef.name}' is given both by its name and by its alias '{fdef.alias}'",
                          "Give it once.")
        out[fdef.name] = out.pop(fdef.alias)
    return out


def settle(defs: dict[str, FlagDef], assigned: dict[str, Any], force: bool = False,
           opname: str = "") -> dict[str, Any]:
    """The values of an operation's defined flags, as Guild settles them.

    Assigned values (names already normalized) override defaults; every
    value is converted to its flag's type and, unless `force`, checked
    (choices, range, existing paths, required). A choice given by its alias
    becomes its value, and a choice's `flags` set the flags the user left
    unassigned.
    """
    values: dict[str, Any] = {}
    for name, fdef in defs.items():
        value = assigned.get(name, fdef.default)
        try:
            values[name] = fdef.coerce_type(value, opname)
        except OpError:
            if not force:
                raise
            values[name] = value
    if not force:
        for name, fdef in defs.items():
            fdef.check(values[name], opname)
        missing = [n for n, d in defs.items() if d.required and values.get(n) in (None, "")]
        if missing:
            raise OpError(
                f"missing required flag{'s' if len(missing) > 1 else ''} "
                + ", ".join(f"'{m}'" for m in missing) + (f" for {opname}" if opname else ""),
                f"Set {'them' if len(missing) > 1 else 'it'} with NAME=VALUE, or see 'trk run {opname} --help-op'.",
            )
    for name, fdef in defs.items():
        choice = fdef.choice_for(values[name]) if values[name] is not None and fdef.choice_defs else None
        if choice is None:
            continue
        values[name] = choice.value
        for flag, value in choice.flags.items():
            if assigned.get(flag) is None:
                values[flag] = value
    return values


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
        defs[name] = flagdef_from_config(name, spec, where)
    return defs


def flagdef_from_config(name: str, spec: Any, where: str) -> FlagDef:
    """One flag definition: a mapping of attributes, or a bare default value."""
    if not isinstance(spec, dict):
        if has_nul(spec):
            raise FlagConfigError(f"{where}: flag '{name}' has a NUL byte in {spec!r}: {NUL_FIX}", (name,), 2)
        return FlagDef(name, default=spec)
    t = spec.get("type")
    if t is not None and t not in FLAG_TYPES:
        raise FlagConfigError(
            f"{where}: flag '{name}' has unknown type '{t}' (expected one of {', '.join(FLAG_TYPES)})")
    for key in ("default", "choices"):
        if has_nul(spec.get(key)):
            raise FlagConfigError(
                f"{where}: flag '{name}' has a NUL byte in its {key} {spec[key]!r}: {NUL_FIX}", (name, key), 2)
    choice_defs = _choices(name, spec.get("choices"), where)
    arg_split = spec.get("arg-split")
    fdef = FlagDef(
        name,
        default=spec.get("default"),
        type=t,
        choices=[c.alias if c.alias is not None else c.value for c in choice_defs] if choice_defs else None,
        required=bool(spec.get("required", False)),
        description=str(spec.get("description") or ""),
        arg_name=_opt_str(spec.get("arg-name")),
        extra={k: v for k, v in spec.items() if k not in _KNOWN},
        alias=_opt_str(spec.get("alias")),
        arg_skip=None if spec.get("arg-skip") is None else bool(spec.get("arg-skip")),
        arg_switch=spec.get("arg-switch"),
        arg_split=None if arg_split is None or arg_split is False else arg_split,
        allow_other=bool(spec.get("allow-other", False)),
        env_name=_opt_str(spec.get("env-name")),
        null_label=_opt_str(spec.get("null-label")),
        min=spec.get("min"),
        max=spec.get("max"),
        arg_encoding=spec.get("arg-encoding") if isinstance(spec.get("arg-encoding"), dict) else None,
        env_encoding=spec.get("env-encoding") if isinstance(spec.get("env-encoding"), dict) else None,
        choice_defs=choice_defs,
    )
    _check_default_type(fdef, where)
    return fdef


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _choices(name: str, data: Any, where: str) -> list[FlagChoice]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise FlagConfigError(f"{where}: flag '{name}': 'choices' must be a list", (name, "choices"))
    out = []
    for i, c in enumerate(data):
        if not isinstance(c, dict):
            out.append(FlagChoice(c))
            continue
        if "value" not in c:
            raise FlagConfigError(f"{where}: flag '{name}': choice {i + 1} has no 'value'", (name, "choices", i))
        flags = c.get("flags") or {}
        if not isinstance(flags, dict):
            raise FlagConfigError(f"{where}: flag '{name}': the 'flags' of choice {c['value']!r} must be a mapping",
                                  (name, "choices", i, "flags"))
        out.append(FlagChoice(c["value"], c.get("alias"), str(c.get("description") or ""), dict(flags)))
    return out


def _check_default_type(fdef: FlagDef, where: str) -> None:
    """Refuse a default its own `type:` rejects: every run without the flag
    would otherwise fail, or pass the program a value of the wrong type."""
    t = fdef.type
    if t is None or fdef.default is None or t in ("path", "existing-path", "auto"):
        return
    try:
        fdef.coerce_type(fdef.default)
    except OpError:
        raise FlagConfigError(
            f"{where}: flag '{fdef.name}' has type {t}, so its default must be {_A_TYPE.get(t, t)}, "
            f"not {format_value(fdef.default)}",
            (fdef.name, "default"), 2,
        ) from None
