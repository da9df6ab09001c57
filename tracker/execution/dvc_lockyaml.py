"""`dvc.lock`'s text without importing YAML for the usual lock: an exact emitter and a remembered parse.

`dump` writes exactly what `yaml.safe_dump(data, sort_keys=False,
default_flow_style=False, allow_unicode=True)` writes, for the values it
can vouch for (plain names, paths, md5s, numbers, short commands); for any
other value it asks PyYAML. `load` parses the text trk wrote last time from
a JSON copy kept under `$TRK_HOME` (used only while the file's text is
exactly that), else with PyYAML. PyYAML costs a stage run 11 ms to import.
"""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False  # annotations only: on `trk run dvc:STAGE`'s path
if TYPE_CHECKING:
    from typing import Any

WIDTH = 80  # PyYAML folds a plain scalar at a space past this column
# Text PyYAML writes plain and reads back as the same text: a letter, `_` or
# `/` first (no indicator, number, `.inf`...), then printable ASCII but `:`
# and `#`, words apart by single spaces; and not a YAML 1.1 bool or null.
_PLAIN = re.compile(r'[A-Za-z_/][!"$-9;-~]*(?: [!"$-9;-~]+)*')
_NUMBERLIKE = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # written single-quoted ('2.0'), as PyYAML does
_MD5 = re.compile(r"[0-9a-f]{32}(?:\.dir)?")
_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}  # YAML 1.1's bools and null, any case


class _Unsure(Exception):
    """A value this emitter does not vouch for: PyYAML writes the file."""


def dump(data: dict[str, Any]) -> str:
    """The YAML text of `data`, as PyYAML's safe_dump writes it (see the module docstring)."""
    try:
        _no_shared(data, set())
        return "".join(_mapping(data, 0))
    except _Unsure:
        import yaml

        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _no_shared(value: Any, seen: set[int]) -> None:
    """Refuse a list or mapping met twice: PyYAML writes it once, with an anchor (`&id001`)."""
    if isinstance(value, (dict, list)):
        if id(value) in seen:
            raise _Unsure
        seen.add(id(value))
        for v in value.values() if isinstance(value, dict) else value:
            _no_shared(v, seen)


def _mapping(data: dict, indent: int, first_prefix: str | None = None) -> list[str]:
    if not data:
        raise _Unsure  # `{}` at the top or under `- `: leave it to PyYAML
    out = []
    for i, (key, value) in enumerate(data.items()):
        if not isinstance(key, str):
            raise _Unsure
        lead = first_prefix if i == 0 and first_prefix is not None else " " * indent
        head = f"{lead}{_scalar(key, len(lead))}:"
        out += _value(value, head, indent)
    return out


def _value(value: Any, head: str, indent: int) -> list[str]:
    """`head` (`key:` or `-`) followed by `value`, its block nested under `indent`."""
    if isinstance(value, dict):
        if not value:
            return [f"{head} {{}}\n"]
        return [head + "\n"] + _mapping(value, indent + 2)
    if isinstance(value, list):
        if not value:
            return [f"{head} []\n"]
        if head.endswith("-"):
            raise _Unsure  # a list in a list
        out = [head + "\n"]
        for item in value:  # a mapping's list is not indented, as PyYAML writes it
            lead = " " * indent + "- "
            if isinstance(item, dict) and item:
                out += _mapping(item, indent + 2, first_prefix=lead)
            else:
                out += _value(item, lead[:-1], indent + 2)
        return out
    return [f"{head} {_scalar(value, len(head) + 1)}\n"]


def _scalar(value: Any, column: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text
    if not isinstance(value, str):
        raise _Unsure
    if _MD5.fullmatch(value) and not value.isdigit():
        return value
    if _NUMBERLIKE.fullmatch(value):
        return f"'{value}'"
    if not _PLAIN.fullmatch(value) or value.lower() in _WORDS or (" " in value and column + len(value) > WIDTH):
        raise _Unsure
    return value


# -- the remembered parse --------------------------------------------------------


def load(text: str, cache_dir: str | None, project_dir: str) -> tuple[Any, bool]:
    """The data of the lock `text`: the copy kept when trk wrote exactly this text (and True), else PyYAML's parse."""
    import json

    if cache_dir:
        try:
            with open(_copy_path(cache_dir, project_dir), encoding="utf-8") as f:
                kept = json.load(f)
            if kept.get("dir") == project_dir and kept.get("text") == text:
                return kept["data"], True
        except (OSError, ValueError, AttributeError, KeyError):
            pass
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), False


def remember(text: str, data: Any, cache_dir: str | None, project_dir: str) -> None:
    """Keep `data` as the parse of the lock `text` trk just wrote (when JSON holds it exactly)."""
    if not cache_dir:
        return
    import json

    from ..fsutil import atomic_write

    try:
        encoded = json.dumps({"dir": project_dir, "text": text, "data": data})
        if json.loads(encoded)["data"] != data:
            return
        os.makedirs(os.path.join(cache_dir, "dvc-locks"), exist_ok=True)
        atomic_write(_copy_path(cache_dir, project_dir), encoded)
    except (TypeError, ValueError, OSError):
        pass


def _copy_path(cache_dir: str, project_dir: str) -> str:
    import zlib

    key = project_dir.encode()
    return os.path.join(cache_dir, "dvc-locks", f"{zlib.crc32(key):08x}{zlib.adler32(key):08x}.json")
