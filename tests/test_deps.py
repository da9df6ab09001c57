"""Dependencies: upstream runs, project files, URLs (a real local HTTP server)."""

import hashlib
import http.server
import json
import os
import shutil
import threading

import pytest

from tests.conftest import SAMPLES


@pytest.fixture
def pipeline(tmp_path):
    dest = tmp_path / "pipeline"
    shutil.copytree(SAMPLES / "pipeline", dest)
    return dest


def info(trk, spec="1"):
    return json.loads(trk("runs", "info", spec, "--json").stdout)


def run_json(trk, index=0):
    return json.loads(trk("runs", "--json").stdout)[index]


def test_operation_dependency_links_selected_files(trk, pipeline):
    trk("run", "prepare", "-y", cwd=pipeline)
    prep = run_json(trk)
    p = trk("run", "train", "-y", cwd=pipeline)
    assert p.stdout.startswith(f"Resolving operation:prepare\nUsing run {prep['id']} for operation:prepare\n")
    train = run_json(trk)
    link = os.path.join(train["dir"], "inputs", "train.csv")
    assert os.path.islink(link) and os.path.realpath(link) == os.path.join(prep["dir"], "train.csv")
    assert train["label"] == f"lr=0.1 operation:prepare={prep['id'][:8]}"
    (dep,) = train["deps"]
    assert dep["name"] == "operation:prepare" and dep["run"] == prep["id"] and len(dep["sha256"]) == 64
    assert "operation:prepare" in info(trk)["dependencies"]


def test_named_upstream_run_on_command_line(trk, pipeline):
    trk("run", "prepare", "rows=1", "-y", cwd=pipeline)
    first = run_json(trk)["id"]
    trk("run", "prepare", "rows=2", "-y", cwd=pipeline)
    p = trk("run", "train", f"prepare={first[:8]}", "-y", cwd=pipeline)
    assert f"Using run {first} for operation:prepare" in p.stdout


def test_named_run_must_be_a_run_of_the_operation(trk, pipeline):
    trk("run", "prepare", "rows=1", "-y", cwd=pipeline)
    older = run_json(trk)["id"]
    trk("run", "prepare", "rows=2", "-y", cwd=pipeline)
    trk("run", "train", "-y", cwd=pipeline)
    train = run_json(trk)["id"]
    p = trk("run", "train", "prepare=2", "-y", cwd=pipeline)  # an index among prepare runs
    assert f"Using run {older} for operation:prepare" in p.stdout
    p = trk("run", "evaluate", f"train={older[:8]}", "-y", cwd=pipeline, check=False)
    assert p.returncode == 1
    assert f"run {older[:8]} is a run of prepare, not train" in p.stderr
    trk("run", "evaluate", f"train={train[:8]}", "-y", cwd=pipeline)


def test_whole_run_dependency_links_outputs_not_upstream_source(trk, tmp_path):
    proj = tmp_path / "whole"
    proj.mkdir()
    (proj / "trk.yml").write_text(
        "make:\n  exec: python -c \"open('out.txt', 'w').write('made')\"\n"
        "use:\n  exec: cat out.txt\n  requires: make\n"
        "named:\n  exec: cat in/out.txt\n  requires:\n    - name: made\n      target-path: in\n"
        "      sources:\n        - operation: make\n          select: out.txt\n"
        "twice:\n  exec: cat out.txt\n  requires: [make, 'operation:ma.e']\n")
    trk("run", "make", "-y", cwd=proj)
    make = run_json(trk)
    (proj / "trk.yml").write_text((proj / "trk.yml").read_text() + "# edited after make ran\n")
    assert trk("run", "use", "-y", cwd=proj).stdout.endswith("made")
    use = run_json(trk)
    assert os.path.realpath(os.path.join(use["dir"], "out.txt")) == os.path.join(make["dir"], "out.txt")
    own = os.path.join(use["dir"], "trk.yml")
    assert not os.path.islink(own) and open(own).read().endswith("# edited after make ran\n")
    assert use["deps"][0]["files"] == ["out.txt"]
    p = trk("run", "named", "made=1", "-y", cwd=proj)  # Guild's inline resource with sources
    assert p.stdout.endswith("made") and run_json(trk)["deps"][0]["files"] == ["in/out.txt"]
    p = trk("run", "twice", "-y", cwd=proj)  # a regex over op names; an earlier link is kept
    assert f"WARNING: out.txt already exists, not linking it from run {make['id'][:8]}" in p.stdout
    assert [d["files"] for d in run_json(trk)["deps"]] == [["out.txt"], []]


def test_unresolved_dependency_fails_run_without_starting_program(trk, pipeline):
    p = trk("run", "train", "-y", cwd=pipeline, check=False)
    assert p.returncode == 1
    assert p.stderr == ("trk: run failed because a dependency was not met: could not resolve "
                        "'operation:prepare' in prepare (no suitable run)\n")
    run = run_json(trk)
    assert run["status"] == "error" and "could not resolve" in run["error"]
    assert "program_pid" not in run and "started" not in run


def test_file_dependency_is_copied_and_hashed(trk, pipeline):
    trk("run", "prepare", "-y", cwd=pipeline)
    run = run_json(trk)
    (dep,) = run["deps"]
    copied = os.path.join(run["dir"], "raw.csv")
    assert not os.path.islink(copied)
    assert dep["sha256"] == hashlib.sha256(open(copied, "rb").read()).hexdigest()


def test_file_outside_project_is_refused(trk, pipeline):
    (pipeline.parent / "secret").write_text("s3cret")
    p = trk("run", "escape", "-y", cwd=pipeline, check=False)
    assert p.returncode == 1
    assert "is outside the project directory" in p.stderr
    assert "s3cret" not in p.stdout


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b"a,b\n1,2\n"
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Handler.hits = 0
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_url_dependency_downloaded_once_and_verified(trk, tmp_path, server):
    digest = hashlib.sha256(_Handler.payload).hexdigest()
    proj = tmp_path / "u"
    proj.mkdir()
    (proj / "trk.yml").write_text(
        f"fetch:\n  exec: cat table.csv\n  requires:\n    - url: {server}/table.csv\n      sha256: {digest}\n"
        f"bad:\n  exec: cat table.csv\n  requires:\n    - url: {server}/table.csv?x\n      sha256: {'f' * 64}\n")
    assert trk("run", "fetch", "-y", cwd=proj).stdout.endswith("a,b\n1,2\n")
    assert trk("run", "fetch", "-y", cwd=proj).stdout.endswith("a,b\n1,2\n")
    assert _Handler.hits == 1, "cached after the first download"
    cached = trk.home / "cache" / "urls" / digest / "table.csv"
    assert cached.read_bytes() == _Handler.payload
    p = trk("run", "bad", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "checksum mismatch" in p.stderr
    assert not [f for f in (trk.home / "cache" / "urls").iterdir() if f.name.startswith(".download")]
    assert not (trk.home / "cache" / "urls" / ("f" * 64)).exists()
    (proj / "trk.yml").write_text(f"odd:\n  exec: cat x\n  requires:\n    - url: {server}/x\n      sha256: 0\n")
    p = trk("run", "odd", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "invalid sha256" in p.stderr


def test_cached_url_is_read_only_and_checked_against_a_new_sha256(trk, tmp_path, server):
    proj = tmp_path / "u"
    proj.mkdir()
    yml = "fetch:\n  exec: cat table.csv\n  requires:\n    - url: {}/table.csv\n{}"
    (proj / "trk.yml").write_text(yml.format(server, ""))
    trk("run", "fetch", "-y", cwd=proj)
    digest = hashlib.sha256(_Handler.payload).hexdigest()
    cached = trk.home / "cache" / "urls" / digest / "table.csv"
    assert cached.stat().st_mode & 0o222 == 0, "runs link it: it must not be writable"
    # The cache holds this URL's old content; a new sha256 is not met by it.
    (proj / "trk.yml").write_text(yml.format(server, f"      sha256: {'a' * 64}\n"))
    p = trk("run", "fetch", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "checksum mismatch" in p.stderr and _Handler.hits == 2


class _Truncating(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"only the start")
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_half_download_never_enters_the_cache(trk, tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Truncating)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        proj = tmp_path / "u"
        proj.mkdir()
        (proj / "trk.yml").write_text(
            f"fetch:\n  exec: cat big.bin\n  requires:\n    - url: http://127.0.0.1:{srv.server_address[1]}/big.bin\n")
        p = trk("run", "fetch", "-y", cwd=proj, check=False)
    finally:
        srv.shutdown()
    assert p.returncode == 1 and "download incomplete: got 14 of 100000 bytes" in p.stderr
    cache = trk.home / "cache" / "urls"
    assert [f.name for f in cache.iterdir()] == ["index"] and not list((cache / "index").iterdir())
