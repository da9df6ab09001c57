"""`trk run --docker`: operations with `image:` run in that image, against a real Docker engine.

The engine is the one DOCKER_HOST names (`.ci/run` starts one); without it,
a private `dockerd` is started for the session when this machine has one
(as root). No image can be pulled here, so the session builds one with
`docker import` from a root filesystem holding only a static busybox. With
no engine, the tests skip, or fail when CI is set.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import copy_sample

IMAGE = "trk-test/busybox:1"  # the name sample-projects/docker uses
BUSYBOX_APPLETS = ("sh", "echo", "sleep", "cat", "ls", "env", "pwd", "true", "false", "tr")


# -- the engine and the image ------------------------------------------------

def _ping(url: str, timeout: float = 2.0) -> str | None:
    """None when an engine answers at `url`, else why not."""
    import docker

    try:
        docker.DockerClient(base_url=url, timeout=timeout).ping()
        return None
    except Exception as e:
        return str(e)


class Dockerd:
    """A `dockerd` of our own: data root, exec root and socket under a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="trk-dockerd-", dir="/tmp")  # short: socket paths are limited
        self.url = f"unix://{self.dir}/docker.sock"
        d = self.dir
        self.log = open(os.path.join(d, "log"), "wb")
        self.proc = subprocess.Popen(
            ["dockerd", "--iptables=false", "--bridge=none", "--data-root", f"{d}/data", "--exec-root", f"{d}/exec",
             "--pidfile", f"{d}/pid", "-H", self.url], stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while (why := _ping(self.url)) is not None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockerd did not start: {why}\n{self.tail()}")
            time.sleep(0.1)

    def tail(self) -> str:
        with open(os.path.join(self.dir, "log"), "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def terminate(self) -> None:
        """Stop the engine (by its pid) and wait for it to end."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        """Stop the engine and remove everything it made (its network namespace mount too)."""
        self.terminate()
        self.log.close()
        with open("/proc/mounts", encoding="utf-8") as f:
            mounts = [line.split()[1] for line in f]
        for path in sorted((m for m in mounts if m.startswith(self.dir + "/")), reverse=True):
            subprocess.run(["umount", "-l", path], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def _docker(url: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], env=dict(os.environ, DOCKER_HOST=url), check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _rootfs_tar(dest: Path) -> Path:
    """A tar of a root filesystem with a static busybox and its applets as links."""
    busybox = shutil.which("busybox")
    assert busybox, "busybox is needed to build the test image (apt-get install busybox-static)"
    root = dest / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "tmp").mkdir()
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    tar = dest / "rootfs.tar"
    subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
    return tar


def import_image(url: str, tar: Path) -> None:
    """`docker import` the root filesystem as IMAGE."""
    with open(tar, "rb") as f:
        _docker(url, "import", "-", IMAGE, stdin=f)


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    """(url, rootfs tar) of a reachable engine holding IMAGE; checks no container is left at the end."""
    url = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    own = None
    why = _ping(url)
    if why is not None and shutil.which("dockerd") and os.geteuid() == 0:
        own = Dockerd()
        url, why = own.url, None
    if why is not None:
        msg = f"no Docker engine at {url}: {why}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    tar = _rootfs_tar(tmp_path_factory.mktemp("image"))
    try:
        import_image(url, tar)
        yield url, tar
        left = _docker(url, "ps", "-a", "-q").stdout.split()
        assert not left, f"containers left behind: {left}"
    finally:
        if own is not None:
            own.stop()
        else:
            subprocess.run(["docker", "rmi", "-f", IMAGE], env=dict(os.environ, DOCKER_HOST=url), check=False,
                           capture_output=True)


@pytest.fixture
def proj(tmp_path) -> Path:
    """A copy of sample-projects/docker."""
    return copy_sample(tmp_path, "docker")


@pytest.fixture
def dk(engine, trk, proj, monkeypatch):
    """A `trk` runner against the engine, in a copy of sample-projects/docker; no container may outlive a test."""
    url, _ = engine
    monkeypatch.setenv("DOCKER_HOST", url)  # trk's subprocesses inherit it
    yield trk, proj, url
    left = _docker(url, "ps", "-a", "-q", "--filter", "label=trk.run").stdout.split()
    if left:
        _docker(url, "rm", "-f", *left)
    assert not left, f"a test left containers behind: {left}"


def _run_dir(trk, home: Path) -> Path:
    (run_id,) = os.listdir(home / "runs")
    return home / "runs" / run_id


def _wait_for(path: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path} after {timeout} s")


def _wait_started(trk, home: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until `proc` (a `trk run` of the `sleep` op) has made its run and the program says it started."""
    deadline = time.monotonic() + timeout
    while not (home / "runs").exists() or not os.listdir(home / "runs"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    _wait_for(_run_dir(trk, home) / ".trk" / "output", "started")


# -- runs in an image ----------------------------------------------------------

def test_runs_in_image_with_flags_output_and_scalars(dk, trk_home):
    trk, proj, _ = dk
    p = trk("run", "train", "lr=0.5", "epochs=2", "-y", "--docker", cwd=proj)
    # PID 1 is the engine's init: the program ran in a container, with its flags as arguments and in the env.
    assert "pid 1: docker-init; lr=0.5 (FLAG_LR=0.5)" in p.stdout
    run_dir = _run_dir(trk, trk_home)
    assert f"in {run_dir}" in p.stdout  # the run directory, mounted at its own path, is the working directory
    assert (run_dir / "model.txt").read_text() == "model for lr=0.5\n"  # written into the run, as the user
    assert (run_dir / "model.txt").stat().st_uid == os.getuid()
    saved = (run_dir / ".trk" / "output").read_text()
    assert "epoch 2\nloss: 0.8\naccuracy: 0.9\n" in saved
    info = trk("runs", "info", cwd=proj).stdout
    assert "status: completed" in info and "exit_status: 0" in info
    assert f"image: {IMAGE}" in info and "container: " in info
    assert "loss: 0.8 (step 0)" in info and "accuracy: 0.9 (step 0)" in info
    assert "command: sh train.sh 0.5 2" in info


def test_failing_command_exit_code_is_recorded(dk, trk_home):
    trk, proj, _ = dk
    p = trk("run", "fail", "code=5", "-y", "--docker", cwd=proj, check=False)
    assert p.returncode == 5
    assert "failing with 5" in p.stderr  # stderr stays stderr
    info = trk("runs", "info", cwd=proj).stdout
    assert "status: error" in info and "exit_status: 5" in info


def test_trk_docker_env_and_staged_start(dk, trk_home, monkeypatch):
    trk, proj, _ = dk
    with monkeypatch.context() as m:
        m.setenv("TRK_DOCKER", "1")
        assert "pid 1: docker-init" in trk("run", "train", "epochs=1", "-y", cwd=proj).stdout
    trk("run", "train", "epochs=1", "--stage", "-y", cwd=proj)
    p = trk("run", "--start", "1", "-y", "--docker", cwd=proj)
    assert "pid 1: docker-init" in p.stdout
    assert "status: completed" in trk("runs", "info", "1").stdout


def test_without_docker_the_image_is_metadata(dk, trk_home):
    trk, proj, _ = dk
    p = trk("run", "train", "epochs=1", "-y", cwd=proj)
    assert "pid 1: docker-init" not in p.stdout  # a local process
    info = trk("runs", "info").stdout
    assert f"image: {IMAGE}" in info and "container:" not in info
    # An operation without an image runs locally even with --docker.
    assert "local run" in trk("run", "local", "-y", "--docker", cwd=proj).stdout


def test_format_images_run_with_docker(dk, tmp_path, trk_home):
    trk, _, _ = dk
    proj = tmp_path / "vh"
    proj.mkdir()
    (proj / "valohai.yaml").write_text(
        f"- step:\n    name: train\n    image: {IMAGE}\n    command:\n      - cat /proc/1/comm\n"
        "      - echo loss=0.25 {parameters}\n    parameters:\n      - name: epochs\n        type: integer\n"
        "        default: 2\n")
    p = trk("run", "train", "epochs=4", "-y", "--docker", cwd=proj)
    assert p.stdout == "docker-init\nloss=0.25 --epochs=4\n"


# -- stopping ------------------------------------------------------------------

@pytest.mark.parametrize("how", ["ctrl-c", "trk stop"])
def test_stop_stops_the_container(dk, trk_home, how):
    trk, proj, url = dk
    proc = trk.popen("run", "sleep", "-y", "--docker", cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
    try:
        _wait_started(trk, trk_home, proc)
        assert _docker(url, "ps", "-q", "--filter", "label=trk.run").stdout.split()  # it is running there
        t0 = time.monotonic()
        if how == "ctrl-c":
            proc.send_signal(signal.SIGINT)
        else:
            assert "terminated" in trk("stop", "-y").stdout
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 8  # stopped, not waited for (it sleeps 60 s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == (130 if how == "ctrl-c" else 143), err
    assert "woke up" not in out
    info = trk("runs", "info").stdout
    assert "status: terminated" in info
    assert not _docker(url, "ps", "-a", "-q", "--filter", "label=trk.run").stdout.split()  # removed


# -- no engine, engine gone -------------------------------------------------------

def test_unreachable_engine_fails_before_the_run(trk, proj, trk_home, tmp_path, monkeypatch):
    url = f"unix://{tmp_path}/no-engine.sock"
    monkeypatch.setenv("DOCKER_HOST", url)
    p = trk("run", "train", "-y", "--docker", cwd=proj, check=False)
    assert p.returncode != 0
    assert p.stderr.splitlines()[0] == f"trk: docker engine not reachable at {url}: No such file or directory"
    assert not (trk_home / "runs").exists() or not os.listdir(trk_home / "runs")  # no run made
    assert not (trk_home / "staging").exists() or not os.listdir(trk_home / "staging")


def test_engine_stopping_mid_run_ends_the_run_error(engine, trk, proj, trk_home, monkeypatch):
    _, tar = engine
    if not (shutil.which("dockerd") and os.geteuid() == 0):  # a private engine: never stop the shared one
        msg = "needs dockerd and root to start a private engine"
        pytest.fail(msg) if os.environ.get("CI") else pytest.skip(msg)
    own = Dockerd()
    try:
        import_image(own.url, tar)
        monkeypatch.setenv("DOCKER_HOST", own.url)
        proc = trk.popen("run", "sleep", "-y", "--docker", cwd=proj, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        try:
            _wait_started(trk, trk_home, proc)
            own.terminate()  # the engine stops (and stops its containers)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        own.stop()  # its data root, with anything it held, is removed
    assert proc.returncode == 1, err
    assert f"trk: docker engine at {own.url}" in err
    info = trk("runs", "info").stdout
    assert "status: error" in info and f"error: docker engine at {own.url}" in info
