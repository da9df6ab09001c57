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
