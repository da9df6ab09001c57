"""Flag values as Guild reads and encodes them.

`parse_value` reads `NAME=VALUE` text as Guild's flag decoder does (ints,
floats, YAML for the rest, a flag's type first); `cmd_value` is the text a
program gets in its argv or environment (`True` is `1`, `False` is empty);
`batch_error` refuses lists and `range[...]`-style functions where one
value is needed (a step's flags, `--restart`): on `trk run`'s command line
they start a batch of trials (`trials.py`).
"""

from __future__ import annotations

import math
import re

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..errors import OpError

_NEEDS_QUOTE = re.compile(r"[\s'\"#;&|<>()$`\\*?!{}\[\],]")
# A word YAML reads as itself: no need to load YAML for it.
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {form for w in ("yes", "no", "true", "false", "on", "off", "null")
               for form in (w, w.capitalize(), w.upper())}
# Guild's flag functions: `range[1:4]`, `uniform[0:1]`, and anonymous `[1:4]`.
_NAMED_FUNCTION = re.compile(r"([a-zA-Z0-9_\-\.]+)\[(.*)\]")
_LIST_CONCAT = re.compile(r"(\[.*\])\s*\*\s*([0-9]+)$")
STRING_TYPES = ("string", "str", "path", "existing-path")


def parse_value(s: str, flag_type: str | None = None) -> Any:
    """Parse a command-line flag value as Guild does.

    A `string` or `path` flag keeps the text exactly (`007` stays `007`);
    an `int`/`float`/`number` flag tries its type first; otherwise an int,
    a float, then YAML (`yes` is True, `[1, 2]` a list, `'1'` the string 1).
    Numbers written with `_` or `:` stay text, as in Guild.
    """
    value = _decode(s, flag_type)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and "!!" not in s and (
            "_" in s or ":" in s):
        return s
    return value


def _decode(s: str, flag_type: str | None) -> Any:
    if s == "":
        return s
    if flag_type in STRING_TYPES and s[:1] not in ("[", "'", '"', "{"):
        return s
    if flag_type in ("int", "float", "number"):
        for f in ((int,) if flag_type == "int" else (float,) if flag_type == "float" else (int, float)):
            try:
                return f(s)
            except ValueError:
                pass
    if flag_type in ("bool", "boolean"):
        value = _yaml(s)
        return bool(value) if isinstance(value, (bool, int, float)) else value
    for f in (int, float):
        try:
            return f(s)
        except ValueError:
            pass
    if is_flag_function(s):
        return s
    m = _LIST_CONCAT.match(s.strip())
    if m:
        items = _decode(m.group(1), None)
        if isinstance(items, list):
            return items * int(m.group(2))
    if _PLAIN.match(s) and s not in _YAML_WORDS:
        return s
    return _yaml(s)


def _yaml(s: str) -> Any:
    """`s` as YAML reads it; the text itself when YAML cannot read it, or
    reads it as a type flag values do not have (a date stays its text)."""
    import yaml

    try:
        value = yaml.safe_load(s)
    except yaml.YAMLError:
        return s
    return value if _is_value(value) else s


def _is_value(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, list):
        return all(_is_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int, float, bool)) and _is_value(v) for k, v in value.items())
    return False


def is_flag_function(value: Any) -> bool:
    """True for Guild's flag functions: `NAME[ARGS]` (`range[1:4]`,
    `uniform[0.1:0.5]`) and anonymous `[START:END]` ranges."""
    if not isinstance(value, str):
        return False
    if _NAMED_FUNCTION.match(value):
        return True
    if value[:1] == "[" and value[-1:] == "]" and ":" in value:
        import yaml

        try:
            items = yaml.safe_load(value)
        except yaml.YAMLError:
            return True
        return isinstance(items, list) and len(items) == 1 and isinstance(items[0], (str, int))
    return False


def is_batch(value: Any) -> bool:
    """True for a value Guild runs as a batch of trials: a list or a flag function."""
    return isinstance(value, list) or is_flag_function(value)


def batch_error(name: str, text: str) -> OpError:
    """The error for a batch value (`lr=[0.1,0.01]`, `lr=range[1:4]`) where one value is needed."""
    return OpError(f"a batch value cannot be used here: {name}={text}",
                   "Lists and range[...] values start a batch only on the command line of 'trk run OP'; "
                   "a pipeline step or --restart takes one value per flag.", exit_code=2)


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
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{format_value(k)}: {format_value(v)}" for k, v in sorted(value.items(), key=str)) + "}"
    s = str(value)
    if s == "" or _NEEDS_QUOTE.search(s) or parse_value(s) != s:
        return "'" + s.replace("'", "'\"'\"'") + "'"
    return s


def arg_value(value: Any) -> str:
    """A flag value as text in a label or a step's `${flag}` (yes/no for booleans)."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return ""
    if isinstance(value, float):
        return format_value(value)
    return str(value)


def cmd_value(value: Any, arg_split: Any = None) -> str:
    """The text a program gets for a flag value in its argv, `${flag}` in a
    command, or a FLAG_ variable, as Guild encodes it: True is `1`, False and
    None are empty, a list is its items joined (by `arg-split`, or as shell words)."""
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return join_split(value, arg_split)
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, dict):
        import pprint

        return pprint.pformat(value)
    return str(value)


def encode_item(value: Any) -> str:
    """One item of a list as Guild writes it (YAML-style: yes/no, null)."""
    if isinstance(value, str):
        return value
    return format_value(value)


def join_split(values: list, arg_split: Any = None) -> str:
    """Items joined as an `arg-split` flag's value: by the separator, or as shell words."""
    import shlex

    items = [encode_item(v) for v in values]
    if isinstance(arg_split, str) and arg_split != "shlex":
        return arg_split.join(items)
    return " ".join(shlex.quote(x) for x in items)


def split_value(value: Any, arg_split: Any) -> list[str]:
    """An `arg-split` flag's value as its parts: shell words (`arg-split: yes`)
    or split at the separator (`arg-split: ","`), empty parts dropped."""
    import shlex

    text = value if isinstance(value, str) else encode_item(value)
    if arg_split is True or arg_split == "shlex":
        try:
            return shlex.split(text)
        except ValueError:
            return text.split()
    return [p for p in text.split(str(arg_split)) if p]
