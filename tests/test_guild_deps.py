"""Guild's dependency features (issue #11, item 10), on sample-projects/guild/deps
and small projects written here: real `trk run`s, real files, no mocks."""

import functools
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
import zipfile

import pytest

from tests.conftest import copy_sample


@pytest.fixture
def deps(tmp_path, trk):
    """A copy of the deps sample project with one `prepare` run."""
    dest = copy_sample(tmp_path, "guild/deps")
    trk("run", "prepare", "-y", cwd=dest)
    return dest


def newest(trk):
    return json.loads(trk("runs", "--json").stdout)[0]


def files_of(run_dir):
    """The run's files (not .trk, not its source code), as guild-compare lists them."""
    run = json.load(open(os.path.join(run_dir, ".trk", "attrs", "sourcecode_files")))
    out = set()
    for root, dirs, names in os.walk(run_dir):
        dirs[:] = [d for d in dirs if d != ".trk"]
        for n in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            rel = os.path.relpath(os.path.join(root, n), run_dir)
            if rel not in run:
                out.add(rel)
    return sorted(out)


def run_op(trk, proj, op, *args, check=True):
    p = trk("run", op, *args, "-y", cwd=proj, check=check)
    return p, newest(trk)


def test_select_lands_under_basename_and_dirs_whole(trk, deps):
    _, run = run_op(trk, deps, "select")
    assert files_of(run["dir"]) == ["train.csv"]
    _, run = run_op(trk, deps, "select-dir")
    assert files_of(run["dir"]) == ["data/test.csv", "data/train.csv"]
    _, run = run_op(trk, deps, "select-min")
    assert files_of(run["dir"]) == ["checkpoint-0.12.bin"]
    _, run = run_op(trk, deps, "target-path")
    assert files_of(run["dir"]) == ["inputs/test.csv", "inputs/train.csv"]
    assert run["deps"][0]["files"] == ["inputs/test.csv", "inputs/train.csv"]


def test_default_selects_what_the_upstream_run_generated(trk, deps, tmp_path):
    _, run = run_op(trk, deps, "all")
    assert files_of(run["dir"]) == ["data/test.csv", "data/train.csv", "model/checkpoint-0.12.bin",
                                    "model/checkpoint-0.25.bin", "model/checkpoint-0.31.bin", "summary.txt"]
    # A run's own dependencies are not what it generated (Guild 0.8.2+).
    proj = _project(tmp_path, "up:\n  exec: python -c \"open('made.txt', 'w').write('m')\"\n"
                              "  requires:\n    - file: in/raw.txt\n      target-path: got\n"
                              "down:\n  exec: ls\n  requires: up\n", {"in/raw.txt": "raw\n"})
    trk("run", "up", "-y", cwd=proj)
    _, down = run_op(trk, proj, "down")
    assert files_of(down["dir"]) == ["made.txt"]


def test_rename_string_and_mapping(trk, deps):
    p, run = run_op(trk, deps, "rename")
    assert {"test-data.csv", "train-data.csv", "classes.txt"} <= set(files_of(run["dir"]))
    assert open(os.path.join(run["dir"], "classes.txt")).read() == "cat\ndog\nbird\n"


def test_link_is_a_link_and_copy_is_not(trk, deps):
    _, run = run_op(trk, deps, "link")
    assert os.path.islink(os.path.join(run["dir"], "summary.txt"))
    _, run = run_op(trk, deps, "select")
    assert not os.path.islink(os.path.join(run["dir"], "train.csv"))


def test_nothing_selected_warns_or_fails_as_guild_does(trk, deps):
    p, run = run_op(trk, deps, "select-none")
    assert "WARNING: nothing resolved for operation:prepare" in p.stdout.splitlines()
    assert run["status"] == "completed"
    p, run = run_op(trk, deps, "quiet-empty")
    assert "WARNING" not in p.stdout and run["status"] == "completed"
    p, run = run_op(trk, deps, "fail-if-empty", check=False)
    assert p.returncode == 1 and run["status"] == "error"
    assert "(nothing resolved for operation:prepare)" in p.stderr and "Traceback" not in p.stderr


def test_optional_dependency_is_skipped(trk, deps):
    p, run = run_op(trk, deps, "optional")
    assert p.stdout.startswith("Resolving operation:train\n"
                               "Could not resolve operation:train - skipping because dependency is optional\n"
                               "Resolving file:files/labels.txt\n")
    assert [d["name"] for d in run["deps"]] == ["file:files/labels.txt"]


def test_flag_name_picks_the_upstream_run(trk, deps):
    first = newest(trk)["id"]
    trk("run", "prepare", "-y", cwd=deps)
    p, run = run_op(trk, deps, "flag-name", f"upstream={first[:8]}")
    assert p.stdout.startswith(f"Resolving upstream\nUsing run {first} for upstream\n")
    assert run["label"] == f"upstream={first[:8]}" and "upstream" not in run["flags"]
    p = trk("run", "flag-name", f"prepare={first[:8]}", "-y", cwd=deps, check=False)
    assert p.returncode != 0 and "unsupported flag 'prepare'" in p.stderr


def test_resources_by_name_and_model_name(trk, deps, tmp_path):
    for op in ("resource", "model-resource"):
        p, run = run_op(trk, deps, op)
        assert p.stdout.startswith("Resolving dataset\nUsing run ")
        assert {"dataset/train.csv", "dataset/labels.txt"} <= set(files_of(run["dir"]))
    proj = _project(tmp_path, "- model: m\n  operations:\n    op:\n      exec: ls\n"
                              "      requires:\n        - resource: nope\n")
    p = trk("run", "op", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "resource 'nope' required by operation 'm:op' is not defined" in p.stderr


def test_config_source_gets_the_run_flags(trk, deps):
    _, run = run_op(trk, deps, "config", "lr=0.5")
    text = open(os.path.join(run["dir"], "config.yml")).read()
    assert text == "epochs: 3\nlr: 0.5\nmodel:\n  layers: 4\n  units: 32\noptimizer: sgd"
    assert open(os.path.join(deps, "config.yml")).read().startswith("lr: 0.1\n"), "the project file is unchanged"
    _, run = run_op(trk, deps, "config-json")
    text = open(os.path.join(run["dir"], "settings", "train.json")).read()
    assert "lr: 0.02" in text and "optimizer: adam" in text  # still YAML: the source's format, as in Guild


def test_config_json_and_ini_with_arg_name(trk, tmp_path):
    proj = _project(tmp_path, "op:\n  exec: cat c.json c.ini\n  flags:\n    rate:\n      default: 2\n"
                              "      arg-name: train.rate\n    name: x\n"
                              "  requires:\n    - config: c.json\n    - config: c.ini\n",
                    {"c.json": '{"train": {"rate": 1, "epochs": 5}}', "c.ini": "[train]\nrate = 1\n"})
    p, run = run_op(trk, proj, "op")
    assert json.load(open(os.path.join(run["dir"], "c.json"))) == {"name": "x", "train": {"epochs": 5, "rate": 2}}
    assert "[train]\nrate = 2\n" in open(os.path.join(run["dir"], "c.ini")).read()


def test_module_sources(trk, deps):
    p, run = run_op(trk, deps, "module")
    assert run["status"] == "completed" and run["deps"][0]["kind"] == "module"
    p, run = run_op(trk, deps, "module-missing", check=False)
    assert p.returncode == 1 and "No module named 'no_such_module_for_trk'" in p.stderr


def test_archives_unpacked_unless_unpack_no(trk, deps):
    p, run = run_op(trk, deps, "archive")
    assert files_of(run["dir"]) == ["README", "images/cat.txt", "images/dog.txt", "texts/a.txt", "texts/b.txt"]
    assert not [n for n in os.listdir(os.path.join(run["dir"], ".trk")) if n.startswith("deps-")], "staging removed"
    _, run = run_op(trk, deps, "no-unpack")
    assert files_of(run["dir"]) == ["texts.zip"]


def test_post_process_runs_on_the_unpacked_archive(trk, deps):
    p, run = run_op(trk, deps, "post-process")
    assert open(os.path.join(run["dir"], "texts", "all.txt")).read() == "alpha\nbeta\n"
    assert not os.path.exists(os.path.join(deps, "texts")), "nothing is written in the project"


def test_post_process_without_shell_and_project_src(trk, tmp_path):
    tool = "import sys; open('in.txt', 'a').write(' '.join(sys.argv[1:]))"
    proj = _project(tmp_path, "op:\n  exec: cat in.txt\n  flags:\n    x: '$(touch pwned)'\n"
                              "  requires:\n    - file: in.txt\n"
                              "      post-process: python $(project-src tool.py) '${x}' \"a b\"\n"
                              "bad:\n  exec: ls\n  requires:\n    - file: in.txt\n      post-process: 'false'\n",
                    {"in.txt": "in\n", "tool.py": tool})
    p, run = run_op(trk, proj, "op")
    # An argv (no shell once `$(project-src ...)` is replaced); ${x} is never filled in.
    assert p.stdout.endswith("in\n${x} a b")
    assert not os.path.exists(os.path.join(run["dir"], "pwned")) and not (proj / "pwned").exists()
    assert open(proj / "in.txt").read() == "in\n", "the project file is unchanged"
    p = trk("run", "bad", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "error post processing file:in.txt resource: 'false' exited with status 1" in p.stderr


def test_flag_interpolation_in_source_path(trk, deps):
    _, run = run_op(trk, deps, "interpolate", "split=test")
    assert files_of(run["dir"]) == ["test.txt"]
    p, _ = run_op(trk, deps, "interpolate", "split=nope", check=False)
    assert p.returncode == 1 and "files/nope.txt does not exist" in p.stderr


def test_a_source_resolved_twice_is_skipped_as_in_guild(trk, deps, tmp_path):
    (deps / "guild.yml").write_text((deps / "guild.yml").read_text() + (
        "    twice:\n      exec: ls\n      requires:\n        - operation: prepare\n          select: data\n"
        "        - operation: prepare\n          select: summary\\.txt\n"))
    p, run = run_op(trk, deps, "twice")
    assert "Skipping resolution of operation:prepare because it's already resolved" in p.stdout
    assert files_of(run["dir"]) == ["data/test.csv", "data/train.csv"]


def test_file_select_preserve_path_and_replace_existing(trk, tmp_path):
    proj = _project(tmp_path, "op:\n  exec: ls\n  requires:\n"
                              "    - file: d\n      select: .*\\.csv\n      target-path: csv\n"
                              "    - file: d/sub/x.bin\n      preserve-path: yes\n"
                              "    - file: d/sub/x.bin\n      target-path: csv\n      rename: x.bin a.csv\n"
                              "      name: again\n"
                              "    - file: d/sub/x.bin\n      target-path: csv\n      rename: x.bin b.csv\n"
                              "      name: replace\n      replace-existing: yes\n",
                    {"d/a.csv": "a\n", "d/sub/b.csv": "b\n", "d/sub/x.bin": "x\n"})
    p, run = run_op(trk, proj, "op")
    assert [f for f in files_of(run["dir"]) if f.startswith("csv/")] == ["csv/a.csv", "csv/b.csv"]
    assert run["deps"][1]["files"] == ["d/sub/x.bin"]  # preserve-path: where it is in the project
    assert "WARNING: csv/a.csv already exists, not copying it from the project" in p.stdout
    assert open(os.path.join(run["dir"], "csv", "b.csv")).read() == "x\n"  # replaced


# -- archives cannot write outside their target directory

def _tar(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
                info.linkname = data or ""
                tf.addfile(info)


@pytest.mark.parametrize("members, why", [
    ([("../evil.txt", "file", b"x")], "member '../evil.txt' would be written outside"),
    ([("/tmp/trk-evil-abs.txt", "file", b"x")], "member '/tmp/trk-evil-abs.txt' would be written outside"),
    ([("ok.txt", "file", b"x"), ("up", "sym", "../..")], "link 'up' -> '../..' leads outside"),
    ([("abs", "sym", "/etc")], "link 'abs' -> '/etc' leads outside"),
    ([("h", "hard", "../../outside")], "link 'h' -> '../../outside' leads outside"),
    ([("pipe", "fifo", None)], "member 'pipe' is a device or FIFO"),
])
def test_archive_members_cannot_escape(trk, tmp_path, members, why):
    proj = _project(tmp_path, "op:\n  exec: ls\n  requires:\n    - file: evil.tar.gz\n")
    _tar(proj / "evil.tar.gz", members)
    p, run = run_op(trk, proj, "op", check=False)
    assert p.returncode == 1 and why in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "evil.txt").exists() and not os.path.exists("/tmp/trk-evil-abs.txt")
    assert run["status"] == "error"


def test_zip_traversal_and_links_through_links(trk, tmp_path):
    proj = _project(tmp_path, "op:\n  exec: ls\n  requires:\n    - file: evil.zip\n"
                              "inside:\n  exec: cat d/l\n  requires:\n    - file: ok.tar.gz\n")
    with zipfile.ZipFile(proj / "evil.zip", "w") as zf:
        zf.writestr("a/../../evil.txt", "x")
    p = trk("run", "op", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "would be written outside" in p.stderr
    assert not (tmp_path / "evil.txt").exists()
    # A link inside the archive that stays inside is kept.
    _tar(proj / "ok.tar.gz", [("d/f.txt", "file", b"ok\n"), ("d/l", "sym", "f.txt")])
    p = trk("run", "inside", "-y", cwd=proj)
    assert p.stdout.endswith("ok\n")


def test_url_archive_is_unpacked(trk, tmp_path):
    serve = tmp_path / "serve"
    serve.mkdir()
    _tar(serve / "data.tgz", [("data/a.txt", "file", b"a\n"), ("data/b.txt", "file", b"b\n")])
    digest = hashlib.sha256((serve / "data.tgz").read_bytes()).hexdigest()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(serve)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/data.tgz"
        proj = _project(tmp_path, f"op:\n  exec: cat data/b.txt\n  requires:\n    - url: {url}\n"
                                  f"      sha256: {digest}\n      select: data/b\\.txt\n      target-path: data\n")
        p, run = run_op(trk, proj, "op")
    finally:
        srv.shutdown()
    assert p.stdout.endswith("b\n") and files_of(run["dir"]) == ["data/b.txt"]
    assert run["deps"][0]["sha256"] == digest


def _project(tmp_path, yml, files=None, name="proj"):
    proj = tmp_path / name
    proj.mkdir()
    (proj / "guild.yml").write_text(yml)
    for rel, text in (files or {}).items():
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text(text)
    return proj
