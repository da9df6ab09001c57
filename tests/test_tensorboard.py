"""`trk tensorboard` starts the real TensorBoard on the selected runs."""

import json
import os
import re
import signal
import subprocess
import time
import urllib.request


def test_tensorboard_serves_selected_runs(trk, tmp_path):
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("train:\n  exec: python -c \"print('loss=0.5')\"\n")
    trk("run", "train", "-y", cwd=proj)
    trk("run", "train", "-y", cwd=proj)
    trk("run", "train", "-y", cwd=proj)
    ids = [trk("select", str(i), "--short-id").stdout.strip() for i in (1, 2, 3)]
    proc = trk.popen("tensorboard", "1", "2", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                     start_new_session=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"(http://\S+?)/? ", line)
        assert m, line + proc.stderr.read()
        url = m.group(1)
        assert "127.0.0.1" in url or "localhost" in url
        names = []
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                names = json.load(urllib.request.urlopen(url + "/data/runs", timeout=5))
            except OSError:
                names = []
            if len({n.split(" ")[0] for n in names}) >= 2:
                break
            time.sleep(0.5)
        shown = {n.split(" ")[0] for n in names}
        assert shown == {ids[0], ids[1]}, names
        assert all("train" in n for n in names)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode in (0, 130), proc.stderr.read()


def test_tensorboard_view_stays_current_and_sigterm_removes_its_logdir(trk, tmp_path, monkeypatch):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "trk.yml").write_text("train:\n  exec: python -c \"print('loss=0.5')\"\n")
    trk("run", "train", "-y", "-l", "first", cwd=proj)
    first = trk("select", "--short-id").stdout.strip()
    proc = trk.popen("tensorboard", "--refresh", "1", "--no-open", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, start_new_session=True)

    def shown(url, want, timeout=60):
        deadline = time.time() + timeout
        names = []
        while time.time() < deadline:
            try:
                names = json.load(urllib.request.urlopen(url + "/data/runs", timeout=5))
            except OSError:
                names = []
            ids = {n.split(" ")[0] for n in names}
            if ids == want:
                return names
            time.sleep(0.5)
        raise AssertionError(f"TensorBoard shows {names}, not runs {want}")

    try:
        line = proc.stdout.readline()
        m = re.search(r"(http://\S+?)/? ", line)
        assert m, line + proc.stderr.read()
        url = m.group(1)
        assert shown(url, {first}) == [f"{first} train first"]  # `<short id> <operation> <label>`, nothing more
        trk("run", "train", "-y", "-l", "second", cwd=proj)  # started after TensorBoard: it appears
        second = trk("select", "--short-id").stdout.strip()
        shown(url, {first, second})
        trk("runs", "rm", "-y", first)  # deleted: it goes
        shown(url, {second})
        assert len(os.listdir(tmpdir)) == 1  # the temporary logdir
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode in (0, 130), proc.stderr.read()
    assert os.listdir(tmpdir) == [] or all(not n.startswith("trk-tensorboard-") for n in os.listdir(tmpdir))
