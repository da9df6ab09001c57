"""Paths stay inside their roots: `trk ls`/`trk cat`, step links, symlink
loops, the source snapshot, and the one helper (`fsutil.is_inside`)."""

import json
import os

import pytest

from tracker.execution.deps_url import url_basename
from tracker.fsutil import PathEscape, is_inside, resolve_inside


def runs(trk):
    return json.loads(trk("runs", "-a", "--json").stdout)


def make_project(tmp_path, yml, **files):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "trk.yml").write_text(yml)
    for name, text in files.items():
        (proj / name).write_text(text)
    return proj


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("s3cret\n")
    return path


@pytest.fixture
def linky(trk, tmp_path, secret):
    """A run whose program made links: a loop, a self-loop, and two links out."""
    outside = tmp_path / "outside-dir"
    outside.mkdir()
    (outside / "private.txt").write_text("private\n")
    script = (
        "import os\n"
        "os.makedirs('a')\n"
        "open('a/data.txt', 'w').write('data')\n"
        "os.symlink('..', 'a/loop')\n"
        "os.symlink('self', 'self')\n"
        f"os.symlink({str(secret)!r}, 'leak')\n"
        f"os.symlink({str(outside)!r}, 'outdir')\n"
    )
    proj = make_project(tmp_path, "make:\n  exec: python make.py\n", **{"make.py": script})
    trk("run", "make", "-y", cwd=proj)
    return runs(trk)[0]


def test_ls_path_outside_the_run_is_refused(trk, linky):
    short = linky["id"][:8]
    p = trk("ls", short, "-p", "../x", check=False)
    assert p.returncode == 2
    assert p.stderr.splitlines()[0] == f"trk: path '../x' is outside run {short}"
    assert "Traceback" not in p.stderr
    p = trk("ls", short, "-p", "outdir", check=False)  # a link the program made to elsewhere
    assert p.returncode == 2 and f"trk: path 'outdir' is outside run {short}" in p.stderr
    assert "private.txt" not in p.stdout


def test_cat_path_outside_the_run_is_refused(trk, linky):
    short = linky["id"][:8]
    p = trk("cat", "-p", "../../etc/passwd", short, check=False)
    assert p.returncode == 2
    assert p.stderr.splitlines()[0] == f"trk: path '../../etc/passwd' is outside run {short}"
    assert "root:" not in p.stdout
    p = trk("cat", short, "-p", "leak", check=False)  # a link out of the run is not followed
    assert p.returncode == 2 and f"trk: path 'leak' is outside run {short}" in p.stderr
    assert "s3cret" not in p.stdout
    assert trk("cat", short, "-p", "a/data.txt").stdout == "data"
    assert trk("cat", short, "-p", "a/loop/a/data.txt").stdout == "data"  # back into the run: fine


def test_ls_follow_links_reports_loops_and_links_out(trk, linky):
    p = trk("ls", linky["id"][:8], "-L", "-n", check=False)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stdout.splitlines()
    assert "a/loop/ -> (symlink loop)" in lines
    assert "self -> (symlink loop)" in lines
    assert "outdir/ -> (outside the run)" in lines
    assert "a/data.txt" in lines and "leak" in lines
    assert not [line for line in lines if "loop/a" in line or "private" in line]
    # Without -L the self-loop is listed too, not a traceback.
    p = trk("ls", linky["id"][:8], "-n", check=False)
    assert p.returncode == 0 and "self -> (symlink loop)" in p.stdout.splitlines()


def test_cat_and_ls_through_a_step_link_to_a_child_run(trk, tmp_path):
    proj = make_project(
        tmp_path,
        "fit:\n  exec: python -c \"open('model.txt', 'w').write('weights')\"\n"
        "pipe:\n  steps:\n    - fit\n")
    trk("run", "pipe", "-y", cwd=proj)
    parent = next(r for r in runs(trk) if r["op"] == "pipe")
    short = parent["id"][:8]
    assert os.path.islink(os.path.join(parent["dir"], "fit"))
    assert trk("cat", short, "-p", "fit/model.txt").stdout == "weights"
    assert trk("ls", short, "-p", "fit", "-n").stdout.splitlines() == ["model.txt", "trk.yml"]
    assert "fit/model.txt" in trk("ls", short, "-L", "-n").stdout.splitlines()


def test_link_to_a_run_that_is_not_a_child_is_refused(trk, tmp_path):
    proj = make_project(tmp_path, "make:\n  exec: python -c \"open('model.txt', 'w').write('weights')\"\n")
    trk("run", "make", "-y", cwd=proj)
    other = runs(trk)[0]
    (proj / "trk.yml").write_text(
        f"peek:\n  exec: python -c \"import os; os.symlink({other['dir']!r}, 'fit')\"\n")
    trk("run", "peek", "-y", cwd=proj)
    short = runs(trk)[0]["id"][:8]
    p = trk("cat", short, "-p", "fit/model.txt", check=False)
    assert p.returncode == 2 and f"trk: path 'fit/model.txt' is outside run {short}" in p.stderr
    assert "weights" not in p.stdout


def test_source_snapshot_never_follows_a_link_out_of_the_project(trk, tmp_path, secret):
    outside = tmp_path / "outside-lib"
    outside.mkdir()
    (outside / "private.py").write_text("PRIVATE = 1\n")
    proj = make_project(tmp_path, "op:\n  exec: python -c pass\n  sourcecode: ['*.py', '*.txt', 'lib']\n",
                        **{"main.py": "print('hi')\n"})
    os.symlink(secret, proj / "notes.txt")
    os.symlink(outside, proj / "lib")
    os.symlink(outside, proj / "lib2")
    trk("run", "op", "-y", cwd=proj)
    run = runs(trk)[0]
    assert run["sourcecode_files"] == ["main.py"]
    for dirpath, _, filenames in os.walk(run["dir"]):
        for name in filenames:
            assert b"s3cret" not in open(os.path.join(dirpath, name), "rb").read()
            assert name != "private.py"
    # A sourcecode root leading out of the project through a link is refused.
    (proj / "trk.yml").write_text("op:\n  exec: python -c pass\n  sourcecode:\n    root: lib\n")
    p = trk("run", "op", "-y", cwd=proj, check=False)
    assert p.returncode != 0 and "sourcecode root 'lib' is outside the project directory" in p.stderr


def test_is_inside_is_the_one_containment_check(tmp_path):
    root = tmp_path / "run"
    (root / "sub").mkdir(parents=True)
    child = tmp_path / "child"
    child.mkdir()
    (child / "model.txt").write_text("w")
    os.symlink(child, root / "fit")
    os.symlink(tmp_path, root / "up")
    assert is_inside(str(root), "sub/x") and is_inside(str(root), ".") and is_inside(str(root), "sub/../x")
    assert not is_inside(str(root), "../x") and not is_inside(str(root), "/etc/passwd")
    assert not is_inside(str(root), "fit/model.txt")
    assert is_inside(str(root), "fit/model.txt", allowed=[str(child)])
    assert not is_inside(str(root), "up/secret", allowed=[str(child)])
    assert not is_inside(str(root), "fit/../secret", allowed=[str(child)])
    # A sibling whose name extends the root's is not inside it.
    (tmp_path / "run-evil").mkdir()
    assert not is_inside(str(root), "../run-evil/x")
    assert resolve_inside(str(root), "fit/model.txt", allowed=[str(child)]) == str(child / "model.txt")
    with pytest.raises(PathEscape) as e:
        resolve_inside(str(root), "../x", where="run 1a2b3c4d")
    assert str(e.value) == "path '../x' is outside run 1a2b3c4d" and e.value.exit_code == 2


def test_a_url_names_no_path_outside_its_cache_dir():
    assert url_basename("http://example.com/data/..") == "download"
    assert url_basename("http://example.com/.") == "download"
    assert url_basename("http://example.com/") == "download"
    assert url_basename("http://example.com/a/../b%2F..%2Fc.csv?x=1") == "b_2F.._2Fc.csv"
