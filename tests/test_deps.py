"""Dependencies: upstream runs, project files, URLs (a real local HTTP server)."""

import hashlib
import http.server
import json
import os
import threading

import pytest

from tests.conftest import copy_sample


@pytest.fixture
def pipeline(tmp_path):
    return copy_sample(tmp_path, "pipeline")


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
    copied = os.path.join(train["dir"], "inputs", "train.csv")
    upstream = os.path.join(prep["dir"], "train.csv")
    assert not os.path.islink(copied) and open(copied, "rb").read() == open(upstream, "rb").read()
    assert train["label"] == f"lr=0.1 operation:prepare={prep['id'][:8]}"
    (dep,) = train["deps"]
    assert dep["name"] == "operation:prepare" and dep["run"] == prep["id"] and len(dep["sha256"]) == 64
    assert dep["target_type"] == "copy"
    assert "operation:prepare" in info(trk)["dependencies"]


def test_a_named_upstream_run_keeps_the_text_typed(pipeline):
    # An id prefix of digits (about 1 run in 40) is the run's, not a number:
    # `prepare=01590858` once lost its leading zero and named no run.
    from tracker.execution.deps_spec import take_dep_specs
    from tracker.project.loader import load
    from tracker.project.resolve import parse_assigns, resolve

    op = resolve(load(str(pipeline)), "train")
    texts = {}
    assigned = parse_assigns(["prepare=01590858"], op, batch=True, texts=texts)
    assert take_dep_specs(op, assigned, texts) == {"prepare": "01590858"} and assigned == {}


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
    assert open(os.path.join(use["dir"], "out.txt")).read() == "made"
    own = os.path.join(use["dir"], "trk.yml")
    assert not os.path.islink(own) and open(own).read().endswith("# edited after make ran\n")
    assert use["deps"][0]["files"] == ["out.txt"]
    p = trk("run", "named", "made=1", "-y", cwd=proj)  # Guild's inline resource with sources
    assert p.stdout.endswith("made") and run_json(trk)["deps"][0]["files"] == ["in/out.txt"]
    p = trk("run", "twice", "-y", cwd=proj)  # a regex over op names; an earlier link is kept
    assert f"WARNING: out.txt already exists, not copying it from run {make['id'][:8]}" in p.stdout
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


# -- data safety: paths stay inside their roots, upstream runs are read-only,
# -- cached URLs are verified on reuse.


def _project(tmp_path, yml, name="proj"):
    proj = tmp_path / name
    proj.mkdir()
    (proj / "trk.yml").write_text(yml)
    return proj


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_directory_dependency_does_not_copy_links_out_of_the_project(trk, tmp_path):
    (tmp_path / "secret.txt").write_text("s3cret\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "private.csv").write_text("private\n")
    proj = _project(tmp_path, "use:\n  exec: ls -R data\n  requires:\n    - file: data\n")
    (proj / "data" / "sub").mkdir(parents=True)
    (proj / "data" / "ok.csv").write_text("a,b\n")
    (proj / "data" / "sub" / "more.csv").write_text("c,d\n")
    (proj / "notes.txt").write_text("notes\n")
    os.symlink(tmp_path / "secret.txt", proj / "data" / "leak.txt")
    os.symlink(tmp_path / "outside", proj / "data" / "leakdir")
    os.symlink("../notes.txt", proj / "data" / "notes.txt")  # inside the project: followed
    os.symlink("..", proj / "data" / "sub" / "loop")
    p = trk("run", "use", "-y", cwd=proj)
    run = run_json(trk)
    data = os.path.join(run["dir"], "data")
    assert sorted(os.listdir(data)) == ["notes.txt", "ok.csv", "sub"]
    assert open(os.path.join(data, "notes.txt")).read() == "notes\n"
    assert os.listdir(os.path.join(data, "sub")) == ["more.csv"]
    for line in ("WARNING: data/leak.txt is a link to outside the project; not copied",
                 "WARNING: data/leakdir is a link to outside the project; not copied",
                 "WARNING: data/sub/loop is a symlink loop; not copied"):
        assert line in p.stdout.splitlines()
        assert line in trk("cat", "--output").stdout
    assert "s3cret" not in p.stdout and "private" not in p.stdout


def test_target_path_cannot_leave_the_run_directory(trk, tmp_path):
    proj = _project(tmp_path, "")
    (proj / "in.csv").write_text("x\n")
    for target in (".trk", ".trk/attrs", "../escape", "/tmp/trk-escape-test"):
        (proj / "trk.yml").write_text(
            f"op:\n  exec: cat in.csv\n  requires:\n    - file: in.csv\n      target-path: {target}\n")
        p = trk("run", "op", "-y", cwd=proj, check=False)
        assert p.returncode == 1, (target, p.stdout, p.stderr)
        assert p.stderr.startswith(f"trk: target-path '{target}' of file:in.csv ")
        assert "Traceback" not in p.stderr
        run = run_json(trk)
        assert run["status"] == "error" and "started" not in run
    assert not (trk.home / "runs" / "escape").exists() and not os.path.exists("/tmp/trk-escape-test")
    assert json.loads((trk.home / "runs" / run["id"] / ".trk" / "attrs" / "op").read_text()) == "op"


def test_file_url_must_name_a_file_inside_the_project(trk, tmp_path):
    (tmp_path / "secret.txt").write_text("s3cret\n")
    proj = _project(tmp_path, f"op:\n  exec: cat secret.txt\n  requires:\n    - url: file://{tmp_path}/secret.txt\n")
    p = trk("run", "op", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "s3cret" not in p.stdout
    assert p.stderr.startswith(f"trk: dependency 'url:file://{tmp_path}/secret.txt' of trk.yml is outside "
                               f"the project directory")
    assert not (trk.home / "cache" / "urls" / hashlib.sha256(b"s3cret\n").hexdigest()).exists()
    (proj / "table.csv").write_text("a,b\n")
    (proj / "trk.yml").write_text(f"op:\n  exec: cat table.csv\n  requires:\n    - url: file://{proj}/table.csv\n")
    assert trk("run", "op", "-y", cwd=proj).stdout.endswith("a,b\n")


UPSTREAM = (
    "make:\n  exec: python -c \"open('out.txt', 'w').write('upstream\\n')\"\n"
    "append:\n  exec: python -c \"open('out.txt', 'a').write('downstream\\n')\"\n"
    "  requires: make\n"
    "append-link:\n  exec: python -c \"open('out.txt', 'a').write('downstream\\n')\"\n"
    "  requires:\n    - operation: make\n      target-type: link\n"
    "bad:\n  exec: cat out.txt\n  requires:\n    - operation: make\n      target-type: hardlink\n"
)


def test_downstream_run_cannot_change_the_upstream_run_file(trk, tmp_path):
    proj = _project(tmp_path, UPSTREAM)
    trk("run", "make", "-y", cwd=proj)
    make = run_json(trk)
    upstream_file = os.path.join(make["dir"], "out.txt")
    before = _sha(upstream_file)
    trk("run", "append", "-y", cwd=proj)  # appends to the file it got from make
    append = run_json(trk)
    assert _sha(upstream_file) == before
    own = os.path.join(append["dir"], "out.txt")
    assert not os.path.islink(own) and open(own).read() == "upstream\ndownstream\n"
    (dep,) = append["deps"]
    assert dep["files"] == ["out.txt"] and dep["target_type"] == "copy" and dep["run"] == make["id"]
    assert dep["sha256"] == _deps_digest(make["id"], {"out.txt": before})
    p = trk("run", "bad", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "invalid target-type 'hardlink'" in p.stderr and "link or copy" in p.stderr


def test_target_type_link_is_recorded(trk, tmp_path):
    proj = _project(tmp_path, UPSTREAM.replace("open('out.txt', 'a').write('downstream\\n')", "print(1)"))
    trk("run", "make", "-y", cwd=proj)
    make = run_json(trk)
    trk("run", "append-link", "-y", cwd=proj)
    run = run_json(trk)
    link = os.path.join(run["dir"], "out.txt")
    assert os.path.islink(link) and os.path.realpath(link) == os.path.join(make["dir"], "out.txt")
    assert run["deps"][0]["target_type"] == "link"
    # trk cat follows a dependency link trk made itself.
    assert trk("cat", run["id"][:8], "-p", "out.txt").stdout == "upstream\n"


def _deps_digest(run_id, files):
    h = hashlib.sha256(run_id.encode())
    for rel, digest in files.items():
        h.update(b"\0" + rel.encode() + b"\0" + digest.encode())
    return h.hexdigest()


def _tamper(path, data=b"tampered\n"):
    os.chmod(path, 0o644)
    with open(path, "ab") as f:
        f.write(data)


def test_tampered_cached_url_with_sha256_is_downloaded_again(trk, tmp_path, server):
    digest = hashlib.sha256(_Handler.payload).hexdigest()
    proj = _project(tmp_path, f"fetch:\n  exec: cat table.csv\n  requires:\n"
                              f"    - url: {server}/table.csv\n      sha256: {digest}\n")
    trk("run", "fetch", "-y", cwd=proj)
    cached = trk.home / "cache" / "urls" / digest / "table.csv"
    _tamper(cached)
    p = trk("run", "fetch", "-y", cwd=proj)
    assert p.stdout.endswith("a,b\n1,2\n") and _Handler.hits == 2
    assert cached.read_bytes() == _Handler.payload, "the verified download replaced the tampered copy"
    assert f"WARNING: the cached download of {server}/table.csv changed since it was downloaded" in p.stdout
    trk("run", "fetch", "-y", cwd=proj)
    assert _Handler.hits == 2, "an intact cache entry is reused"


def test_tampered_cached_url_fails_naming_both_hashes_when_it_cannot_be_fetched(trk, tmp_path, server):
    digest = hashlib.sha256(_Handler.payload).hexdigest()
    proj = _project(tmp_path, f"fetch:\n  exec: cat table.csv\n  requires:\n"
                              f"    - url: {server}/table.csv\n      sha256: {digest}\n")
    trk("run", "fetch", "-y", cwd=proj)
    cached = trk.home / "cache" / "urls" / digest / "table.csv"
    _tamper(cached)
    tampered = hashlib.sha256(cached.read_bytes()).hexdigest()
    _Handler.payload, saved = b"something else\n", _Handler.payload
    try:
        p = trk("run", "fetch", "-y", cwd=proj, check=False)
    finally:
        _Handler.payload = saved
    assert p.returncode == 1
    assert digest in p.stderr and tampered in p.stderr and "Traceback" not in p.stderr


def test_tampered_cached_url_without_sha256_is_downloaded_again(trk, tmp_path, server):
    proj = _project(tmp_path, f"fetch:\n  exec: cat table.csv\n  requires:\n    - url: {server}/table.csv\n")
    trk("run", "fetch", "-y", cwd=proj)
    digest = hashlib.sha256(_Handler.payload).hexdigest()
    cached = trk.home / "cache" / "urls" / digest / "table.csv"
    trk("run", "fetch", "-y", cwd=proj)
    assert _Handler.hits == 1
    _tamper(cached)  # size and mtime change
    p = trk("run", "fetch", "-y", cwd=proj)
    assert p.stdout.endswith("a,b\n1,2\n") and _Handler.hits == 2
    assert cached.read_bytes() == _Handler.payload
    assert run_json(trk)["deps"][0]["sha256"] == digest


def test_plain_http_without_sha256_warns(trk, tmp_path, server):
    proj = _project(tmp_path, f"fetch:\n  exec: cat table.csv\n  requires:\n    - url: {server}/table.csv\n")
    p = trk("run", "fetch", "-y", cwd=proj)
    digest = hashlib.sha256(_Handler.payload).hexdigest()
    warning = (f"WARNING: {server}/table.csv is fetched over plain http without a sha256, so its content "
               f"is not verified; add 'sha256: {digest}' to the dependency to pin it")
    assert warning in p.stdout.splitlines()
    assert warning in trk("cat", "--output").stdout.splitlines()
    (proj / "trk.yml").write_text((proj / "trk.yml").read_text() + f"      sha256: {digest}\n")
    assert "WARNING" not in trk("run", "fetch", "-y", cwd=proj).stdout


def test_upstream_links_out_of_the_run_and_loops_are_not_used(trk, tmp_path):
    (tmp_path / "secret.txt").write_text("s3cret\n")
    proj = _project(tmp_path, (
        "make:\n  exec: python make.py\n"
        "use:\n  exec: ls -R\n  requires: make\n"))
    (proj / "make.py").write_text(
        "import os\nopen('out.txt', 'w').write('made')\nos.makedirs('a')\n"
        f"os.symlink({str(tmp_path / 'secret.txt')!r}, 'leak.txt')\n"
        "os.symlink('self', 'self')\nos.symlink('..', 'a/loop')\n")
    trk("run", "make", "-y", cwd=proj)
    make = run_json(trk)["id"][:8]
    p = trk("run", "use", "-y", cwd=proj, check=False)
    assert p.returncode == 0 and "Traceback" not in p.stderr
    for line in (f"WARNING: leak.txt of run {make} is a link to outside the run; not used",
                 f"WARNING: self of run {make} is a symlink loop; not used",
                 f"WARNING: a/loop of run {make} is a symlink loop; not used"):
        assert line in p.stdout.splitlines()
    use = run_json(trk)
    assert use["deps"][0]["files"] == ["out.txt"]
    assert not os.path.lexists(os.path.join(use["dir"], "leak.txt")) and "s3cret" not in p.stdout


def test_a_dependency_that_cannot_be_placed_fails_without_a_traceback(trk, tmp_path):
    proj = _project(tmp_path, "op:\n  exec: cat in.csv\n  requires:\n    - file: in.csv\n      target-path: in.csv\n")
    (proj / "in.csv").write_text("x\n")  # copied as source: target-path names a file
    p = trk("run", "op", "-y", cwd=proj, check=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith("trk: could not place file:in.csv in run ")


def test_named_upstream_run_through_the_api(trk, pipeline, trk_home):
    import tracker
    from tracker.store import RunStore

    store = RunStore(str(trk_home))
    first = tracker.run("prepare", {"rows": 1}, project_dir=str(pipeline), store=store).run
    tracker.run("prepare", {"rows": 2}, project_dir=str(pipeline), store=store)
    train = tracker.run("train", {"prepare": first.short_id}, project_dir=str(pipeline), store=store).run
    assert [d["run"] for d in train.get("deps")] == [first.id]
    assert "prepare" not in train.flags
