"""`trk diff` shows flags, source, dependencies and scalars that differ."""


from tests.conftest import copy_sample


def test_diff(trk, tmp_path):
    proj = copy_sample(tmp_path, "pipeline", "p")
    trk("run", "prepare", "-y", cwd=proj)
    trk("run", "train", "-y", cwd=proj)
    (proj / "train.py").write_text((proj / "train.py").read_text().replace("range(1, 4)", "range(1, 3)"))
    trk("run", "train", "lr=0.05", "-y", cwd=proj)
    out = trk("diff").stdout.splitlines()
    assert "  lr: 0.1 -> 0.05" in out
    assert "  -for step in range(1, 4):" in out and "  +for step in range(1, 3):" in out
    assert out[out.index("dependencies:") + 1] == "  (same)"
    assert any(l.startswith("  loss: ") for l in out[out.index("scalars:"):])


def test_diff_binary_source_and_file_dependency(trk, tmp_path):
    proj = copy_sample(tmp_path, "pipeline", "b")
    blob = proj / "table.bin"
    blob.write_bytes(b"\0\1\2")
    (proj / "trk.yml").write_text((proj / "trk.yml").read_text().replace(
        "  main: prepare\n", "  main: prepare\n  sourcecode: ['*.py', '*.yml', 'data', 'table.bin']\n", 1))
    trk("run", "prepare", "-y", cwd=proj)
    blob.write_bytes(b"\0\1\3")
    (proj / "data" / "raw.csv").write_text("x,y\n1,2\n")
    trk("run", "prepare", "-y", cwd=proj)
    out = trk("diff").stdout.splitlines()
    a, b = out[0].split()[1], out[1].split()[1]
    assert f"  Binary files {a}/table.bin and {b}/table.bin differ" in out
    dep = out[out.index("dependencies:") + 1]
    assert dep.startswith("  file:data/raw.csv: sha256 ") and " -> sha256 " in dep
