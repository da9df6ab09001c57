"""Shared fixtures: a temporary TRK_HOME per test and a `trk` runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-projects"


@pytest.fixture(autouse=True)
def trk_home(tmp_path, monkeypatch):
    home = tmp_path / "trk-home"
    monkeypatch.setenv("TRK_HOME", str(home))
    return home


def copy_sample(tmp_path: Path, name: str, dest: str | None = None, symlinks: bool = False) -> Path:
    """A copy of sample-projects/NAME (`guild/deps`...) under `tmp_path`, as
    DEST (default: NAME's last part), that a test may change."""
    to = tmp_path / (dest or name.rsplit("/", 1)[-1])
    shutil.copytree(SAMPLES / name, to, symlinks=symlinks)
    return to


def wait_for(cond, timeout: float = 30, what: str = "condition"):
    """`cond()`'s first true value, asked every 50 ms; AssertionError after `timeout` s."""
    end = time.time() + timeout
    while time.time() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def by_op(runs: list[dict]) -> dict:
    """`trk runs --json` rows by operation (the newest of each)."""
    return {r.get("op"): r for r in runs}


@pytest.fixture
def project(tmp_path):
    """A copy of sample-projects/basics that a test may change."""
    return copy_sample(tmp_path, "basics")


class Trk:
    def __init__(self, home: Path):
        self.home = home

    def env(self) -> dict:
        env = dict(os.environ, TRK_HOME=str(self.home))
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        return env

    def __call__(self, *args: str, cwd=None, check: bool = True, timeout: float = 60, input: str | None = None):
        p = subprocess.run(
            [sys.executable, "-m", "tracker", *args], cwd=cwd, env=self.env(), input=input,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
        )
        if check and p.returncode != 0:
            raise AssertionError(f"trk {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def popen(self, *args: str, cwd=None, **kw) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tracker", *args], cwd=cwd, env=self.env(), **kw)

    def on_terminal(self, *args: str, cwd=None, stdout_too: bool = True, timeout: float = 60,
                    **env: str) -> tuple[int, str, str]:
        """Run trk with stderr (and, with `stdout_too`, stdout) on a pseudo-terminal:
        (exit code, stdout when not on the terminal, what the terminal showed)."""
        import pty
        import tempfile

        master, slave = pty.openpty()
        with tempfile.TemporaryFile() as out:
            p = subprocess.Popen([sys.executable, "-m", "tracker", *args], stdout=slave if stdout_too else out,
                                 stderr=slave, stdin=subprocess.DEVNULL, cwd=cwd, env=dict(self.env(), **env))
            os.close(slave)
            drawn = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the terminal closed
                    break
                if not chunk:
                    break
                drawn += chunk
            p.wait(timeout=timeout)
            os.close(master)
            out.seek(0)
            return p.returncode, out.read().decode(), drawn.decode()


@pytest.fixture
def trk(trk_home):
    return Trk(trk_home)
