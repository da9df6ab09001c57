"""A source's `post-process:` command, run where the source was staged.

Guild runs the command through a shell, once per unpack directory. trk
runs it in the directory where it staged the source for this run (the
unpacked archive, or a copy of the file), before the source is placed, so
every run gets the same result and no shared cache is changed. The command
is the project's own text (no flag values are put into it); it runs as an
argv list, and through `/bin/sh -c` only when it uses shell syntax (pipes,
redirections, `&&`, variables, globs...). `$(project-src PATH)` becomes the
shell-quoted path of a file of the project, as in Guild.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from typing import Callable

from ..errors import DependencyError
from ..fsutil import is_inside

_PROJECT_SRC = re.compile(r"\$\(project-src (.*?)\)")
_SHELL_CHARS = set("|&;<>()$`*?[]{}~#\\\n")


def post_process_argv(cmd: str, project_dir: str) -> list[str]:
    """The argv that runs `cmd`: its words, or `/bin/sh -c CMD` for shell syntax."""
    cmd = cmd.strip().replace("\n", " ")
    cmd = _PROJECT_SRC.sub(lambda m: shlex.quote(_project_src(m.group(1), project_dir)), cmd)
    try:
        words = shlex.split(cmd)
    except ValueError:
        words = []
    if not words or _needs_shell(cmd) or "=" in words[0]:
        return ["/bin/sh", "-c", cmd]
    if words[0] in ("python", "python3"):  # the Python trk runs `main:` and `exec: python` with
        words[0] = sys.executable
    return words


def _needs_shell(cmd: str) -> bool:
    """Whether `cmd` uses shell syntax outside quotes (`$` and backquotes count inside double quotes)."""
    quote = None
    for ch in cmd:
        if quote == "'":
            quote = None if ch == "'" else quote
        elif quote == '"':
            if ch == '"':
                quote = None
            elif ch in "$`\\":
                return True
        elif ch in "'\"":
            quote = ch
        elif ch in _SHELL_CHARS:
            return True
    return False


def _project_src(arg: str, project_dir: str) -> str:
    words = shlex.split(arg)
    path = words[0] if words else ""
    full = os.path.join(project_dir, path)
    if not path or not is_inside(project_dir, path) or not os.path.exists(full):
        raise DependencyError(f"project-src failed: could not find '{path}' in {project_dir}")
    return os.path.realpath(full)


def post_process(cmd: str, cwd: str, project_dir: str, what: str, say: Callable[[str], None]) -> None:
    """Run `cmd` in `cwd`; its output goes to the run's output; a failure fails the run."""
    argv = post_process_argv(cmd, project_dir)
    say(f"Post processing {what} resource: {cmd.strip()!r}")
    try:
        p = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    except OSError as e:
        raise DependencyError(f"error post processing {what} resource: {e.strerror or e}: {argv[0]}") from None
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        say(line)
    if p.returncode != 0:
        raise DependencyError(f"error post processing {what} resource: {cmd.strip()!r} exited with "
                              f"status {p.returncode}")
