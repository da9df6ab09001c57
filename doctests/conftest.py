"""Runs `doctests/*.md` as executable transcripts, each with a fresh TRK_HOME.

Examples are `>>> run("trk runs -s")` and friends; `run` prints the command's
combined output and `<exit N>` (an expected output without `<exit ...>` also
accepts `<exit 0>`). `...` in expected output matches anything.
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WINDOWS = doctest.register_optionflag("WINDOWS")
WINDOWS_ONLY = doctest.register_optionflag("WINDOWS_ONLY")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


class Session:
    """State of one transcript: its TRK_HOME and current project."""

    def __init__(self, home: str, scratch: str):
        self.home = home
        self.scratch = scratch
        self.cwd = ROOT
        self.env = dict(os.environ)
        self.env.update(TRK_HOME=home, COLUMNS="200", TRK_NO_PAGER="1")
        self.env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + self.env.get("PATH", "")
        self.env.pop("PYTHONSTARTUP", None)

    def use_project(self, name: str) -> None:
        path = name if os.path.isabs(name) else os.path.join(ROOT, "sample-projects", name)
        if not os.path.isdir(path):
            raise ValueError(f"no sample project {path}")
        self.cwd = path

    def _exec(self, cmd: str, timeout: float):
        p = subprocess.run(
            ["bash", "-c", cmd], cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout,
        )
        return p.stdout.decode("utf-8", "replace"), p.returncode

    def run(self, cmd: str, timeout: float = 120) -> None:
        out, code = self._exec(cmd, timeout)
        out = out.rstrip()
        print(f"{out}\n<exit {code}>" if out else f"<exit {code}>")

    def run_capture(self, cmd: str, timeout: float = 120) -> str:
        out, code = self._exec(cmd, timeout)
        if code != 0:
            raise RuntimeError(f"{cmd} exited {code}:\n{out}")
        return out.strip()

    def write(self, path: str, text: str) -> None:
        path = os.path.join(self.cwd, path)
        with open(path, "w") as f:
            f.write(text)

    def load_project(self, dir: str = "."):
        from tracker import project

        return project.load(os.path.join(self.cwd, dir))

    def globs(self) -> dict:
        return {
            "load_project": self.load_project,
            # The seed transcript's name for loading a project file:
            "guildfile": type("guildfile", (), {"for_dir": staticmethod(self.load_project)}),
            "run": self.run,
            "run_capture": self.run_capture,
            "use_project": self.use_project,
            "project_dir": lambda: self.cwd,  # the directory use_project chose
            "path": os.path.join,
            "realpath": os.path.realpath,
            "exists": os.path.exists,
            "islink": os.path.islink,
            "scratch": self.scratch,
            "write": self.write,
            "TRK_HOME": self.home,
            "os": os,
        }


class ExitChecker(doctest.OutputChecker):
    _EXIT0 = re.compile(r"\n?<exit 0>\n$")

    def check_output(self, want, got, optionflags):
        if "<exit" not in want:
            got = self._EXIT0.sub("\n", got)
            if got == "\n":
                got = ""
        return super().check_output(want, got, optionflags)

    def output_difference(self, example, got, optionflags):
        if "<exit" not in example.want:
            got = self._EXIT0.sub("\n", got)
        return super().output_difference(example, got, optionflags)


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".md" and file_path.parent.name == "doctests":
        return MarkdownFile.from_parent(parent, path=file_path)


class MarkdownFile(pytest.File):
    def collect(self):
        yield MarkdownItem.from_parent(self, name=self.path.name)


class MarkdownItem(pytest.Item):
    def runtest(self):
        text = self.path.read_text()
        tmp = tempfile.mkdtemp(prefix="trk-doctest-")
        try:
            home = os.path.join(tmp, "home")
            scratch = os.path.join(tmp, "scratch")
            os.makedirs(scratch)
            session = Session(home, scratch)
            test = doctest.DocTestParser().get_doctest(text, session.globs(), self.path.name, str(self.path), 0)
            test.examples = [e for e in test.examples if not e.options.get(WINDOWS_ONLY)]
            runner = doctest.DocTestRunner(checker=ExitChecker(), optionflags=OPTIONS)
            out: list[str] = []
            runner.run(test, out=out.append)
            if runner.failures:
                raise DoctestFailure("".join(out))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, DoctestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"doctest: {self.name}"


class DoctestFailure(Exception):
    pass
