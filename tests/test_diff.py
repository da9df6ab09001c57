"""`trk diff` shows flags, source, dependencies and scalars that differ."""

import shutil

from tests.conftest import SAMPLES


def test_diff(trk, tmp_path):
    proj = tmp_path / "p"
    shutil.copytree(SAMPLES / "pipeline", proj)
    trk("run", "prepare", "-y", cwd=proj)
    trk("run", "train", "-y", cwd=proj)
    (proj / "train.py").write_text((proj / "train.py").read_text().replace("range(1, 4)", "range(1, 3)"))
    trk("run", "train", "lr=0.05", "-y", cwd=proj)
    out = trk("diff").stdout.splitlines()
    assert "  lr: 0.1 -> 0.05" in out
    assert "  -for step in range(1, 4):" in out and "  +for step in range(1, 3):" in out
    assert out[out.index("dependencies:") + 1] == "  (same)"
    assert any(l.startswith("  loss: ") for l in out[out.index("scalars:"):])
