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
