"""`trk view`: the real server on a free port over a temporary TRK_HOME with
real runs, its JSON API hit with urllib, and the page driven in headless
Chromium (Debian's chromium + chromium-driver, through selenium)."""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT, SAMPLES, Trk

XSS = "<script>alert(1)</script>"


class Server:
    """A `trk view` process; `url` is what it printed."""

    def __init__(self, home: Path, *args: str):
        env = Trk(home).env()
        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "tracker", "view", "--no-open", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "http" not in line:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if not line and self.proc.poll() is not None:
                    break
        if "http" not in line:
            self.stop()
            raise AssertionError(f"trk view did not start: {line}{self.proc.stderr.read()}")
        self.url = line.split(" at ", 1)[1].split()[0]
        self.base = self.url.split("?")[0].rstrip("/")
        self.get("/api/config")
        self.startup = time.monotonic() - started

    def get(self, path: str, raw: bool = False, headers: dict | None = None):
        req = urllib.request.Request(self.base + path, headers=headers or {})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            return (body, r.headers) if raw else json.loads(body)

    def post(self, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["X-Trk-Token"] = token
        req = urllib.request.Request(self.base + path, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def status_of(self, path: str, headers: dict | None = None) -> int:
        try:
            self.get(path, raw=True, headers=headers)
            return 200
        except urllib.error.HTTPError as e:
            return e.code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def store_home(tmp_path_factory):
    """A store with real runs: two trainings (one labelled hostile), a
    prep -> train -> evaluate chain, and a two-step pipeline."""
    home = tmp_path_factory.mktemp("view") / "trk-home"
    trk = Trk(home)
    work = tmp_path_factory.mktemp("projects")
    for name in ("basics", "lineage", "steps"):
        shutil.copytree(SAMPLES / name, work / name)
    trk("run", "train", "lr=0.1", "-y", cwd=work / "basics")
    trk("run", "train", "lr=0.05", "epochs=5", "-y", cwd=work / "basics")
    trk("label", "1", "--set", XSS, "-y")
    trk("tag", "1", "--add", "best", "-y")
    for op in ("prep", "train", "evaluate"):
        trk("run", op, "-y", cwd=work / "lineage")
    trk("run", "m1:steps-basic", "-y", cwd=work / "steps")
    return home


@pytest.fixture(scope="module")
def server(store_home):
    s = Server(store_home)
    yield s
    s.stop()


def ids_by(server, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    return server.get("/api/runs?" + q)


# -- the command ----------------------------------------------------------------

def test_help_and_lean_startup(trk):
    p = trk("view", "--help")
    assert "--port" in p.stdout and "--no-open" in p.stdout and "--write" in p.stdout
    # `trk runs` and `trk --help` never import the web stack.
    code = ("import sys; from tracker.cli.main import cli\n"
            "for args in (['--help'], ['runs']):\n"
            "    try: cli(args, prog_name='trk')\n"
            "    except SystemExit: pass\n"
            "print('WEB', [m for m in ('starlette', 'uvicorn', 'tracker.web') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], env=trk.env(), capture_output=True, text=True).stdout
    assert "WEB []" in out


def test_server_starts_fast_on_loopback(server):
    print(f"trk view: URL printed and first API answer after {server.startup:.2f} s")
    assert server.url.startswith("http://127.0.0.1:")
    assert server.startup < 3.0  # ~0.4 s here; a loaded CI machine gets slack
    # Requests addressed to another name (DNS rebinding) are refused.
    assert server.status_of("/api/runs", {"Host": "evil.example:80"}) == 400


def test_other_host_warns(store_home):
    s = Server(store_home, "--host", "0.0.0.0")
    try:
        assert s.url.startswith("http://0.0.0.0:")
    finally:
        s.stop()
    assert "anyone who can reach this address can read these runs" in s.proc.stderr.read()


# -- the JSON API ---------------------------------------------------------------

def test_runs_table_api(server):
    page = server.get("/api/runs")
    assert page["total"] == 6  # top-level runs: the pipeline's two steps are its children
    ops = [r["operation"] for r in page["rows"]]
    assert ops == ["m1:steps-basic", "evaluate", "train", "prep", "train", "train"]
    hostile = page["rows"][4]
    assert hostile["label"] == XSS and hostile["tags"] == ["best"] and hostile["flags"]["lr"] == "0.05"
    assert "loss" in page["scalar_tags"] and abs(hostile["scalars"]["loss"] - 0.7738) < 1e-4
    pipeline = page["rows"][0]
    assert pipeline["children"] == 2
    kids = ids_by(server, parent=pipeline["id"])["rows"]
    assert sorted(k["step"] for k in kids) == ["step-1", "step-2"]
    # Filters and sorting.
    assert ids_by(server, op="prep")["total"] == 1
    assert ids_by(server, tag="best")["rows"][0]["id"] == hostile["id"]
    assert ids_by(server, q="script")["total"] == 1
    assert ids_by(server, status="error")["total"] == 0
    by_loss = ids_by(server, sort="scalar:loss", desc=0)["rows"]
    losses = [r["scalars"]["loss"] for r in by_loss if r["scalars"]["loss"] is not None]
    assert losses == sorted(losses) and len(losses) == 3
    oldest = ids_by(server, sort="started", desc=0, limit=2)["rows"]
    assert [r["id"] for r in oldest] == [r["id"] for r in reversed(page["rows"][-2:])]
    assert server.status_of("/api/runs?sort=nonsense") == 400


def test_run_page_api(server, store_home):
    rows = server.get("/api/runs")["rows"]
    evaluate = next(r for r in rows if r["operation"] == "evaluate")
    d = server.get(f"/api/runs/{evaluate['short_id']}")
    assert d["id"] == evaluate["id"] and d["attrs"]["exit_status"] == 0
    up = {u["operation"]: u for u in d["upstream"]}
    assert set(up) == {"train", "prep"} and up["train"]["name"] == "model" and up["prep"]["depth"] == 1
    assert server.get(f"/api/runs/{up['train']['id']}")["operation"] == "train"  # links lead to real runs
    pipeline = next(r for r in rows if r["operation"] == "m1:steps-basic")
    assert [s["step"] for s in server.get(f"/api/runs/{pipeline['id']}")["steps"]] == ["step-1", "step-2"]
    out = server.get(f"/api/runs/{evaluate['id']}/output")
    assert "acc: 0.75" in out["text"] and out["more"] is False
    assert server.get(f"/api/runs/{evaluate['id']}/output?offset={out['next']}")["text"] == ""
    assert server.status_of("/api/runs/ffffffffff") == 404
    assert server.status_of("/api/runs/not-an-id") == 400


def test_files_stay_inside_the_run(server, store_home):
    train = server.get("/api/runs?op=train&limit=1")["rows"][0]
    names = [e["name"] for e in server.get(f"/api/runs/{train['id']}/files")["entries"]]
    assert "train.py" in names
    body, headers = server.get(f"/api/runs/{train['id']}/file?path=train.py", raw=True)
    assert b"loss" in body and headers["Content-Type"].startswith("text/plain")
    assert "sandbox" in headers["Content-Security-Policy"]
    run_dir = store_home / "runs" / train["id"]
    (run_dir / "page.html").write_text(XSS)
    _, headers = server.get(f"/api/runs/{train['id']}/file?path=page.html", raw=True)
    assert headers["Content-Type"].startswith("text/plain")  # never served as a page
    _, headers = server.get(f"/api/runs/{train['id']}/file?path=train.py&download=1", raw=True)
    assert "attachment" in headers["Content-Disposition"]
    os.symlink("/etc", run_dir / "out")
    for path in ("../../../../etc/passwd", "/etc/passwd", "out/passwd", "out"):
        assert server.status_of(f"/api/runs/{train['id']}/file?path={path}") == 403, path
    assert server.status_of(f"/api/runs/{train['id']}/files?path=out") == 403


def test_compare_api_is_trk_compare(server, store_home):
    cols = ".operation,.label,=lr,loss,min loss as best"
    t = server.get("/api/compare?columns=" + urllib.request.quote(cols))
    assert t["headers"] == ["run", "operation", "label", "lr", "loss", "best"]
    csv_body, headers = server.get("/api/compare?format=csv&columns=" + urllib.request.quote(cols), raw=True)
    assert headers["Content-Type"].startswith("text/csv")
    cli = Trk(store_home)("compare", "-cc", cols, "--csv", "-").stdout
    assert csv_body.decode().splitlines() == cli.splitlines()
    two = [r["id"] for r in server.get("/api/runs?op=train")["rows"][:2]]
    t2 = server.get(f"/api/compare?runs={two[0]},{two[1][:8]}")
    assert t2["ids"] == two and "loss" in t2["headers"] and "lr" in t2["headers"]


def test_scalars_api(server):
    hostile = server.get("/api/runs?tag=best")["rows"][0]
    s = server.get(f"/api/scalars/{hostile['id']}")
    loss = s["series"]["loss"]
    assert loss["step"] == [1, 2, 3, 4, 5] and len(loss["time"]) == 5 and loss["value"][-1] == 0.7738
    only = server.get(f"/api/scalars/{hostile['id']}?tag=acc")["series"]
    assert list(only) == ["acc"]
    pipeline = server.get("/api/runs?op=steps-basic")["rows"][0]
    assert server.get(f"/api/scalars/{pipeline['id']}")["series"] == {}  # its steps print no scalars


def test_write_actions_need_write_and_token(server, store_home):
    run = server.get("/api/runs?op=prep")["rows"][0]
    code, body = server.post(f"/api/runs/{run['id']}/label", {"label": "x"})
    assert code == 403 and "--write" in body["error"]
    s = Server(store_home, "--write")
    try:
        token = s.url.split("token=")[1]
        assert s.post(f"/api/runs/{run['id']}/label", {"label": "x"})[0] == 403
        assert s.post(f"/api/runs/{run['id']}/label", {"label": "x"}, "wrong")[0] == 403
        assert s.post(f"/api/runs/{run['id']}/label", {"label": "relabelled"}, token) == (
            200, {"id": run["id"], "label": "relabelled"})
        assert s.post(f"/api/runs/{run['id']}/tags", {"add": ["web"]}, token)[1]["tags"] == ["web"]
        assert "relabelled" in Trk(store_home)("runs", "-o", "prep").stdout
        assert s.post(f"/api/runs/{run['id']}/tags", {"remove": ["web"]}, token)[1]["tags"] == []
    finally:
        s.stop()


def test_live_new_runs_and_output_tail(tmp_path):
    home = tmp_path / "live-home"
    trk = Trk(home)
    work = tmp_path / "basics"
    shutil.copytree(SAMPLES / "basics", work)
    trk("run", "echo", "-y", cwd=work)
    s = Server(home)
    proc = trk.popen("run", "sleep", "seconds=3", "-y", cwd=work, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        running = None
        while time.monotonic() < deadline and running is None:
            rows = s.get("/api/runs")["rows"]
            running = next((r for r in rows if r["status"] == "running"), None)
            time.sleep(0.1)
        assert running is not None, "the new running run did not appear"
        text = ""
        while time.monotonic() < deadline and "sleeping" not in text:
            out = s.get(f"/api/runs/{running['id']}/output")
            text = out["text"]
            time.sleep(0.1)
        assert "sleeping" in text and out["more"] is True
        proc.wait(30)
        assert s.get(f"/api/runs/{running['id']}")["status"] == "completed"
    finally:
        if proc.poll() is None:
            proc.kill()
        s.stop()


def test_vendored_chart_library_matches_its_note():
    vendor = ROOT / "tracker" / "web" / "assets" / "vendor"
    note = (vendor / "VENDOR.md").read_text()
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"):
        digest = hashlib.sha256((vendor / name).read_bytes()).hexdigest()
        assert f"`{name}` `{digest}`" in note
    assert "1.6.32" in note


# -- in a real browser ----------------------------------------------------------

def _browser():
    """A headless Chromium driven by selenium, or a skip naming what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("no chromium/chromedriver here (Debian: apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def _wait(driver, predicate, timeout=15.0, what="the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _shot(driver, name: str) -> None:
    """Save a screenshot when TRK_VIEW_SCREENSHOTS names a directory (docs/ is made so)."""
    out = os.environ.get("TRK_VIEW_SCREENSHOTS")
    if out:
        time.sleep(0.3)
        driver.save_screenshot(os.path.join(out, f"view-{name}.png"))


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


def test_browser_pages(server, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    d = browser
    d.get(server.url)
    rows = _wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr[data-id]"), what="the runs table")
    assert len(rows) == 6
    # The hostile label is text: shown as typed, no script element made from it, no alert.
    labels = [td.text for td in d.find_elements(By.CSS_SELECTOR, "#runs-table td.label")]
    assert XSS in labels
    assert not d.find_elements(By.XPATH, "//td//script")
    with pytest.raises(NoAlertPresentException):
        d.switch_to.alert.text
    # A pipeline expands into its steps.
    d.find_element(By.CSS_SELECTOR, "[data-expand]").click()
    _wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "tr.child")) == 2, what="the pipeline's steps")
    _shot(d, "runs")
    # Sort by a column header.
    d.find_element(By.CSS_SELECTOR, "th[data-sort='label']").click()
    _wait(d, lambda: "sorted" in d.find_element(By.CSS_SELECTOR, "th[data-sort='label']").get_attribute("class"))
    d.find_element(By.CSS_SELECTOR, "th[data-sort='started']").click()

    # Open a run: its dependencies link to the upstream runs.
    evaluate = server.get("/api/runs?op=evaluate")["rows"][0]
    d.get(server.base + "/#/run/" + evaluate["id"])
    links = _wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#dependencies a"), what="the dependencies")
    assert {a.text for a in links} == {u["short_id"] for u in server.get(f"/api/runs/{evaluate['id']}")["upstream"]}
    _wait(d, lambda: "acc: 0.75" in d.find_element(By.ID, "output").text, what="the output")
    _shot(d, "run")
    _wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "[data-file='evaluate.py']"), what="the run's files")[0].click()
    _wait(d, lambda: "acc" in d.find_element(By.ID, "file-text").text, what="a file's text")

    # Select the two trainings, plot them: one chart per tag, two lines each.
    d.get(server.base + "/#/")
    trains = [r["id"] for r in server.get("/api/runs?op=train&q=")["rows"] if r["flags"].get("epochs")]
    assert len(trains) == 2
    for run_id in trains:
        box = _wait(d, lambda: d.find_element(By.CSS_SELECTOR, f"input[data-run='{run_id}']"))
        box.click()
    d.find_element(By.ID, "plot-selected").click()
    chart = _wait(d, lambda: d.find_element(By.CSS_SELECTOR, ".chart[data-tag='loss']"), what="the loss chart")
    assert chart.get_attribute("data-lines") == "2"
    assert chart.find_elements(By.TAG_NAME, "canvas")
    legend = [e.text for e in chart.find_elements(By.CSS_SELECTOR, ".u-legend .u-series")]
    assert len(legend) == 3 and any("script" in t for t in legend)  # x, then one per run; the label as text
    _shot(d, "plots")
    d.find_element(By.ID, "x-axis").send_keys("x: time")
    _wait(d, lambda: d.find_element(By.CSS_SELECTOR, ".chart[data-tag='loss'] canvas"))

    # Compare the same two runs.
    d.get(server.base + "/#/compare?runs=" + ",".join(trains))
    rows = _wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#compare-table tr")[1:], what="the compare table")
    assert len(rows) == 2
    headers = [th.text for th in d.find_elements(By.CSS_SELECTOR, "#compare-table th")]
    assert headers[:2] == ["run", "operation"] and "loss" in headers
    assert "format=csv" in d.find_element(By.ID, "compare-csv").get_attribute("href")
    _shot(d, "compare")
    with pytest.raises(NoAlertPresentException):
        d.switch_to.alert.text


def test_browser_runs_table_of_10000_runs(tmp_path, browser):
    from selenium.webdriver.common.by import By

    from .test_runindex import make_runs

    home = tmp_path / "big-home"
    make_runs(home, 10_000, settle=False)
    s = Server(home)
    try:
        s.get("/api/runs")  # the run index is built once, as the first `trk runs` builds it
        browser.get("about:blank")
        started = time.monotonic()
        browser.get(s.url)
        _wait(browser, lambda: "of 10000" in browser.find_element(By.ID, "runs-count").text, what="10,000 runs")
        elapsed = time.monotonic() - started
        assert len(browser.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr[data-id]")) == 100
        print(f"runs table of 10,000 runs shown in the browser in {elapsed:.2f} s")
        assert elapsed < 1.0 * (3 if os.environ.get("CI") else 1)
    finally:
        s.stop()


def test_long_series_are_thinned_keeping_the_ends():
    from tracker.metrics.series import thin

    assert thin(list(range(10)), 4) == [0, 3, 6, 9]
    assert thin(list(range(11)), 4) == [0, 3, 6, 10]
    assert thin(list(range(3)), 4) == [0, 1, 2]
