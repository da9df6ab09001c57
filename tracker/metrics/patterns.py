"""Output-scalar patterns: the `output-scalars` config compiled, and output lines matched.

The syntax is Guild's: `\\key`, `\\value`, `\\step` shorthands; a mapping
`NAME: PATTERN` whose one group is the value; a pattern with two unnamed
groups (key, value); named groups (`step`, a `_key`/`_val` or `key`/`value`
pair, or scalars named by their group, `(?P<loss>...)`). The default pattern
is Guild's `key: value` lines, plus trk's `key=value` lines (several on one
line, after an optional leading `epoch N` / `step N`).
"""

from __future__ import annotations

import math
import re

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..records import record
from .events import STEP_MAX, STEP_MIN  # light: events imports protobuf and crc32c only when used

# Guild's shorthands, replaced as plain text before a pattern is compiled.
ALIASES = ((r"\key", r"[^ \t]+"), (r"\value", r"[0-9\.e\-]+"), (r"\step", r"[0-9]+"))
# The named-group pairs giving a scalar's key and value: Guild's, then trk's.
KEY_VALUE_GROUPS = (("_key", "_val"), ("key", "value"))
DISABLED = ("no", "false", "off")

# A value the default pattern takes: a decimal number, nan or inf.
_NUM = rb"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|-?nan|-?inf"
# `key: value` or `key=value` alone on a line; as Guild, a trailing `(step N)`
# or `(N)` sets the step and any other parenthesised remark is ignored. A key
# followed by `: ` may hold `:` or `=` (`train:loss: 0.5`), as in Guild.
_DEFAULT_LINE = re.compile(
    rb"^[ \t]*(?:(\S+):[ \t]+|([^\s:=]+)[ \t]*[:=][ \t]*)(" + _NUM + rb")"
    rb"(?:[ \t]+\((?:step[ \t]+)?([0-9]+)\)|[ \t]+\(.*\))?\s*$")
# Guild's step pattern is not anchored at the line start: `... x: 1 (step 2)`.
_DEFAULT_STEP = re.compile(rb"[^ \t]+: +[0-9.e\-]+\s+\((?:step\s+)?([0-9]+)\)\s*$")
# trk's extension: a line made only of `key=value` pairs (separated by
# spaces, `,`, `;`, `|` or ` - `), after an optional `epoch N` or `step N`.
_PAIR = rb"[A-Za-z_][\w.\-/]*=[^\s,;|=]+"
_SEP = rb"(?:[ \t]*[,;|][ \t]*|[ \t]+(?:-[ \t]+)?)"
_LEAD = rb"(?:[Ee]poch|[Ss]tep)[ \t]*:?[ \t]*([0-9]+)(?:/[0-9]+)?(?:[ \t]*[:,;|\-][ \t]*|[ \t]+)"
_PAIRS_LINE = re.compile(rb"^[ \t]*(?:" + _LEAD + rb")?(" + _PAIR + rb"(?:" + _SEP + _PAIR + rb")*)[,;]?\s*$")
_ONE_PAIR = re.compile(rb"([A-Za-z_][\w.\-/]*)=([^\s,;|=]+)")


@record(frozen=True)
class Pattern:
    """One compiled pattern of an `output-scalars` config."""

    rx: re.Pattern
    source: str  # as written, for messages
    name: str | None = None  # the NAME of a `NAME: PATTERN` mapping entry

    def describe(self) -> str:
        """The pattern as a user wrote it, shortened for a one-line message."""
        text = self.source if len(self.source) <= 60 else self.source[:57] + "…"
        return f"'{text}'" + (f" for {self.name}" if self.name else "")


def is_disabled(config: Any) -> bool:
    """True for `output-scalars: no` (also `[]`, and 'no'/'false'/'off' as text)."""
    if config is False or (isinstance(config, (list, dict)) and not config):
        return True
    return isinstance(config, str) and config.strip().lower() in DISABLED


def compile_config(config: Any) -> list[Pattern]:
    """The patterns of a non-default `output-scalars` config (a string, mapping or list).

    Raises ValueError naming the pattern for an invalid regex, or for a
    pattern whose groups give no scalar (Guild warns at each matching line
    and records nothing; trk says so before the run starts).
    """
    items = config if isinstance(config, list) else [config]
    patterns: list[Pattern] = []
    for item in items:
        if isinstance(item, dict):
            patterns.extend(_compile(pattern, str(name)) for name, pattern in item.items())
        elif isinstance(item, str):
            patterns.append(_compile(item, None))
        else:
            raise ValueError(f"invalid output-scalars entry {item!r}: use a regex string or a mapping of NAME: REGEX")
    return patterns


def _compile(source: Any, name: str | None) -> Pattern:
    where = f"output-scalars pattern for '{name}'" if name else "output-scalars pattern"
    if not isinstance(source, str):
        raise ValueError(f"{where} must be a regex string, not {source!r}")
    try:
        rx = re.compile(expand_aliases(source))
    except re.error as e:
        raise ValueError(f"invalid regex in {where}: '{source}': {e}") from None
    if not rx.groupindex:
        if rx.groups == 0 or rx.groups > 2:
            raise ValueError(f"{where} '{source}' has {rx.groups} groups: use one group for the value "
                             "(with a NAME), two for key and value, or named groups")
        if rx.groups == 1 and name is None:
            raise ValueError(f"{where} '{source}' has one group but no name: "
                             "write it as `NAME: PATTERN`, or add a group for the key")
    return Pattern(rx, source, name)


def expand_aliases(pattern: str) -> str:
    """`\\key`, `\\value` and `\\step` replaced by the regexes they stand for."""
    for alias, regex in ALIASES:
        pattern = pattern.replace(alias, regex)
    return pattern


def as_step(text: str | bytes, current: int) -> int:
    """The step a printed `step` value sets: an integer is taken exactly, a
    float is truncated; NaN, infinities and non-numbers leave `current`.

    A step beyond the int64 range of TensorBoard's steps (`step:
    99999999999999999999`) is clamped to it, so the scalars that follow are
    still recorded, at the largest (or smallest) step an event file holds.
    """
    try:
        n = int(text)
    except ValueError:
        try:
            v = float(text)
        except ValueError:
            return current
        if math.isnan(v) or math.isinf(v):
            return current
        n = int(v)
    return n if STEP_MIN <= n <= STEP_MAX else STEP_MAX if n > 0 else STEP_MIN


def scan_patterns(patterns: list[Pattern], data: bytes, step: int,
                  matched: set[int]) -> tuple[list[tuple[str, float, int]], int]:
    """Scalars (tag, value, step) the patterns find in the whole lines of
    `data`, and the step after them; the index of each pattern that matched
    a line is added to `matched`.

    Each line is matched as Guild matches it: as text without its trailing
    space (so `$` ends it), every match of every pattern, the last value of a
    key winning; the line's `step` applies to its own scalars and those after.
    """
    out: list[tuple[str, float, int]] = []
    finders = [(i, p.rx.finditer, p.name, _key_value_groups(p.rx)) for i, p in enumerate(patterns)]
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and not lines[-1]:
        lines.pop()  # after the last line end
    for line in lines:
        line = line.rstrip()
        vals: dict[str, Any] = {}
        for i, finditer, name, pair in finders:
            for m in finditer(line):
                matched.add(i)
                if pair is None:  # unnamed groups: the value, or the key and the value
                    if name is not None and m.re.groups == 1:
                        _put(vals, name, m.group(1))
                    else:
                        _put(vals, m.group(1), m.group(2))
                elif pair:
                    _put(vals, "step", m.group("step") if "step" in m.re.groupindex else None)
                    _put(vals, m.group(pair[0]), m.group(pair[1]))
                else:  # each named group a scalar
                    for key, text in m.groupdict().items():
                        _put(vals, key, text)
        if vals:
            text = vals.pop("step", None)
            if text is not None:
                step = as_step(text, step)
            out.extend((key, value, step) for key, value in vals.items())
    return out, step


def _key_value_groups(rx: re.Pattern) -> tuple[str, ...] | None:
    # None: no named groups; (KEY, VALUE): the groups naming a scalar and
    # giving its value (with `step` read too); (): each named group a scalar.
    if not rx.groupindex:
        return None
    for pair in KEY_VALUE_GROUPS:
        if pair[0] in rx.groupindex and pair[1] in rx.groupindex:
            return pair
    return ()


def _put(vals: dict[str, Any], key: Any, text: Any) -> None:
    # `step` stays text for `as_step`: a float would round a large step.
    if key is None or text is None:
        return
    if key == "step":
        vals["step"] = text.strip()
        return
    try:
        vals[key] = float(text)
    except ValueError:
        pass


def scan_default(data: bytes, step: int, ignore: Any) -> tuple[list[tuple[str, float, int]], int]:
    """Scalars (tag, value, step) the default pattern finds in the whole lines
    of `data`, and the step after them; keys in `ignore` are skipped."""
    out: list[tuple[str, float, int]] = []
    line_match = _DEFAULT_LINE.match
    for line in data.split(b"\n"):
        if b":" not in line and b"=" not in line:  # most lines are neither: skip them cheaply
            continue
        m = line_match(line)
        if m is not None:
            guild_key, key, value, at = m.groups()
            if at is not None:
                step = as_step(at, step)
            if key is None:
                key = guild_key
            if key == b"step":
                step = as_step(value, step)
            else:
                tag = key.decode("utf-8", "replace")
                if tag not in ignore:
                    out.append((tag, float(value), step))
            continue
        if b")" in line:
            m = _DEFAULT_STEP.search(line)
            if m is not None:  # Guild's `... key: N (step N)`: the step alone
                step = as_step(m.group(1), step)
                continue
        m = _PAIRS_LINE.match(line) if b"=" in line else None
        if m is not None:
            lead, pairs = m.groups()
            found = dict(_ONE_PAIR.findall(pairs))  # the last of a key wins, as in Guild
            text = found.pop(b"step", lead)
            if text is not None:
                step = as_step(text, step)
            for key, text in found.items():
                try:
                    value = float(text)
                except ValueError:
                    continue
                tag = key.decode("utf-8", "replace")
                if tag not in ignore:
                    out.append((tag, value, step))
    return out, step
