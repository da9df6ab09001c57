"""A Valohai step's command as trk runs it: placeholders, `pass-as`, argv or shell.

Valohai fills `{parameters}` (every parameter as its `pass-as` words),
`{parameter:NAME}` (one parameter's words) and `{parameter-value:NAME}` (its
value alone) and runs the lines through a shell. trk runs a single line with
no shell syntax as an argv list (no shell at all); anything else runs as
`sh -c SCRIPT sh VALUE...`, each placeholder a reference to a positional
argument, so a value is always text to the shell, never code.
"""

from __future__ import annotations

import re
import shlex
import sys
TYPE_CHECKING = False  # annotations only: a cached model imports this module on every run
if TYPE_CHECKING:
    from typing import Any

from ...errors import OpError
from ...records import record
from ..loader import OpDef

PLACEHOLDER = re.compile(r"\{([^{}\s]+)\}")
# Shell syntax trk will not imitate: with any of it, the command runs through `sh -c`.
_SHELL_SYNTAX = re.compile(r"[|&;<>()$`\\*?~\[\]!#\n]")
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@record  # not dataclasses: a cached valohai model is read on every run, and dataclasses costs 7 ms
class Param:
    """One Valohai parameter: how its value reaches the command."""

    name: str
    type: str = "string"
    pass_as: str | None = None
    pass_true_as: str | None = None
    pass_false_as: str | None = None

    def words(self, value: Any) -> list[str]:
        """The words this parameter adds to the command (none for an unset
        value or a false flag), as Valohai's `pass-as` templates make them."""
        if self.type == "flag":
            if self.pass_true_as or self.pass_false_as:
                template = self.pass_true_as if value else self.pass_false_as
            elif not value:
                return []
            else:
                template = self.pass_as or "--{name}"
        elif value is None:
            return []
        else:
            template = self.pass_as or "--{name}={value}"
        if not template:
            return []
        text = value_text(value)
        # Plain replacement, not str.format: a template cannot reach attributes of the value.
        return [w.replace("{name}", self.name).replace("{value}", text).replace("{v}", text)
                for w in template.split()]


def value_text(value: Any) -> str:
    """A parameter value as Valohai writes it in a command (`True`, `0.001`)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


def check_placeholders(lines: list[str], params: dict[str, Param]) -> tuple[str, str] | None:
    """The first `{parameter:NAME}`/`{parameter-value:NAME}` that names no
    parameter, as (placeholder, name); None when all are known. Other braces
    (`${HOME}`, `{a,b}`) are the shell's, left as they are, as Valohai leaves them."""
    for line in lines:
        for m in PLACEHOLDER.finditer(line):
            kind, sep, name = m.group(1).partition(":")
            if sep and kind in ("parameter", "parameter-value") and name not in params:
                return m.group(0), name
    return None


def runs_as_argv(lines: list[str]) -> bool:
    """Whether the command is one line trk can run without a shell."""
    if len(lines) != 1:
        return False
    rest = PLACEHOLDER.sub("", lines[0])
    if _SHELL_SYNTAX.search(rest):
        return False
    try:
        return bool(shlex.split(lines[0]))
    except ValueError:
        return False


class ValohaiOp(OpDef):
    """An operation made from a Valohai step: its `exec:` is the command as
    written (for listings); its argv is built by `build_argv`."""

    lines: list[str]
    params: dict[str, Param]
    url_inputs: dict[str, bool]  # input name -> whether its source is a URL (else a project file)

    def build_argv(self, flags: dict[str, Any], project_dir: str | None = None) -> list[str]:
        """The argv of a run with these flag values (see the module docstring)."""
        self._check_inputs(flags)
        if runs_as_argv(self.lines):
            argv: list[str] = []
            for word in shlex.split(self.lines[0]):
                argv += self._expand_word(word, flags)
            if argv and argv[0] in ("python", "python3"):
                argv[0] = sys.executable
            return argv
        args: list[str] = []
        script = " && ".join(self._shell_line(line, flags, args) for line in self.lines)
        return ["sh", "-c", script, "sh", *args]

    def _words(self, key: str, flags: dict[str, Any]) -> list[str] | None:
        """The words a placeholder stands for; None for one that is not Valohai's."""
        kind, _, name = key.partition(":")
        if key in ("parameters", "params"):
            return [w for p in self.params.values() for w in p.words(flags.get(p.name))]
        if kind == "parameter" and name in self.params:
            return self.params[name].words(flags.get(name))
        if kind == "parameter-value" and name in self.params:
            value = flags.get(name)
            return [] if value is None else [value_text(value)]
        return None

    def _expand_word(self, word: str, flags: dict[str, Any]) -> list[str]:
        m = PLACEHOLDER.fullmatch(word)
        if m:  # a word that is only a placeholder becomes as many argv items as it has words
            words = self._words(m.group(1), flags)
            return [word] if words is None else words

        def fill(m: re.Match) -> str:
            words = self._words(m.group(1), flags)
            return m.group(0) if words is None else " ".join(words)

        return [PLACEHOLDER.sub(fill, word)]

    def _shell_line(self, line: str, flags: dict[str, Any], args: list[str]) -> str:
        """`line` with each placeholder made a reference to a positional argument
        (`"$1"`, or `${1}` inside double quotes), its value appended to `args`:
        the shell expands a value but never reads it as code, whatever quotes
        surround the placeholder. Inside single quotes the text is pasted, escaped."""
        out, state, i = [], "", 0
        while i < len(line):
            c = line[i]
            m = PLACEHOLDER.match(line, i) if c == "{" else None
            words = self._words(m.group(1), flags) if m else None
            if words is not None:
                if state == "'":
                    out.append(" ".join(words).replace("'", "'\\''"))
                elif state == '"':
                    args.append(" ".join(words))
                    out.append(f"${{{len(args)}}}")
                else:
                    refs = []
                    for w in words:
                        args.append(w)
                        refs.append(f'"${{{len(args)}}}"')
                    out.append(" ".join(refs))
                i = m.end()
                continue
            out.append(c)
            if c == "\\" and state != "'":
                out.append(line[i + 1:i + 2])
                i += 1
            elif c == "'" and state != '"':
                state = "" if state == "'" else "'"
            elif c == '"' and state != "'":
                state = "" if state == '"' else '"'
            i += 1
        return "".join(out)

    def _check_inputs(self, flags: dict[str, Any]) -> None:
        """An input given on the command line must be of its default's kind
        (a URL, or a project file): the source kind is fixed when the step is read."""
        for name, is_url in self.url_inputs.items():
            value = flags.get(name)
            if isinstance(value, str) and value and bool(URL.match(value)) != is_url:
                want = "a URL" if is_url else "a project file path"
                raise OpError(f"input '{name}' of {self.fullname} must be {want} (as its default is), "
                              f"not {value!r}", exit_code=2)
