"""The Starlette app of `trk view`: the page, its assets and the JSON API.

    GET  /api/runs                 the runs table (q, status, op, tag, parent, sort, desc, offset, limit, scalars)
    GET  /api/runs/ID              one run: attrs, flags, upstream runs, steps, scalars
    GET  /api/runs/ID/files        a directory of the run (?path=)
    GET  /api/runs/ID/file         a file of the run (?path=, &download=1)
    GET  /api/runs/ID/output       the output from a byte offset (?offset=), for a live tail
    GET  /api/compare              `trk compare`'s table (?runs=ID,ID&columns=SPEC, &format=csv)
    GET  /api/scalars/ID           a run's scalar series (?tag=)
    POST /api/runs/ID/label|tags|delete   only with --write, and the session's token

Each request reads through its own RunStore (the run index syncs once per
store object, so a long-lived one would not see new runs).
"""

from __future__ import annotations

import hmac
import json
import math
import os
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import RunSpecError, TrkError
from ..fsutil import PathEscape
from ..store import RunStore
from . import data, rundata

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]
# The page loads nothing but its own assets and runs no inline script: a
# run-provided string that slipped into the DOM as HTML still could not run.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")
FILE_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


class ViewConfig:
    """What one `trk view` serves: the store, the runs it is limited to, write access."""

    def __init__(self, home: str | None = None, only: list[str] | None = None, write: bool = False,
                 token: str | None = None):
        self.home = home
        self.only = only
        self.write = write
        self.token = token if write else None


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


class Json(JSONResponse):
    """JSON without NaN (which browsers' JSON.parse refuses), other types as text."""

    def render(self, content: Any) -> bytes:
        """Encode `content`, replacing non-finite numbers with null."""
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_clean(content), ensure_ascii=False, allow_nan=False, default=str,
                              separators=(",", ":"))
        return text.encode("utf-8")


def _error(e: TrkError) -> Response:
    status = 404 if isinstance(e, RunSpecError) and "no run" in e.message else \
        403 if isinstance(e, PathEscape) else 400
    return Json({"error": e.message, "hint": e.hint}, status_code=status)


def _endpoint(fn: Callable[[Request, RunStore, ViewConfig], Response]):
    """A sync endpoint (run in Starlette's thread pool) with its own store; TrkErrors become JSON errors."""

    def handle(request: Request) -> Response:
        cfg: ViewConfig = request.app.state.config
        store = RunStore(cfg.home)
        try:
            return fn(request, store, cfg)
        except TrkError as e:
            return _error(e)
        finally:
            if store._index is not None:
                store._index.close()

    return handle


def _int(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise data.BadRequest(f"{name} must be a whole number, not '{text}'") from None


def _list(request: Request, name: str) -> list[str] | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    return [s for s in (x.strip() for x in text.split(",")) if s]


def runs(request: Request, store: RunStore, cfg: ViewConfig) -> Response:
    """GET /api/runs: a page of the runs table."""
    p = request.query_params
    filt = data.run_filter(p.get("q", ""), p.get("status", ""), p.get("op", ""), p.get("tag", ""),
                           p.get("parent", ""))
    table = data.runs_table(store, filt, p.get("sort", "started") or "started", p.get("desc", "1") != "0",
                            _int(request, "offset", 0), _int(request, "limit", 100), _list(request, "scalars"),
                            cfg.only if not p.get("parent") else None)
    return Json(table)


def run(request: Request, store: RunStore, cfg: ViewConfig) -> Response:
    """GET /api/runs/ID: the run page's data."""
    return Json(rundata.run_detail(store, rundata.find_run(store, request.path_params["id"])))


def files(request: Request, store: RunStore, cfg: ViewConfig) -> Response:
    """GET /api/runs/ID/files?path=: a directory of the run."""
    r = rundata.find_run(store, request.path_params["id"])
    return Json(rundata.list_files(store, r, request.query_params.get("path", ""),
                                   request.query_params.get("hidden") == "1"))


def file(request: Request, store: RunStore, cfg: ViewConfig) -> Response:
    """GET /api/runs/ID/file?path=: a file of the run, sandboxed (never run as a page)."""
    r = rundata.find_run(store, request.path_params["id"])
    path = request.query_params.get("path", "")
    target, kind = rundata.file_target(store, r, path)
    download = request.query_params.get("download") == "1"
    headers = {"Content-Security-Policy": FILE_CSP, "X-Content-Type-Options": "nosniff"}
    return FileResponse(target, media_type="application/octet-stream" if download else kind, headers=headers,
                        filename=os.path.basename(path) if download else None,
                        content_disposition_type="attachment" if download else "inline")


def output(request: Request, store: RunStore, cfg: ViewConfig) -> Response:
    """GET /api/runs/ID/output?offset=N: output from byte N, for a live tail."""
    r = rundata.find_run(store, request.path_params["id"])
    return Json(rundata.read_output(r, _int(request, "offset", 0)))


def compare(request: Request, store: RunStore, cfg: ViewConfig) -> Response:
    """GET /api/compare?runs=&columns=: `trk compare`'s table (JSON, or CSV with format=csv)."""
    ids = _list(request, "runs")
    if ids:
        ids = [rundata.find_run(store, i).id for i in ids]
    elif cfg.only is not None:
        ids = cfg.only
    table = data.compare_table(store, ids, request.query_params.get("columns", ""), _int(request, "limit", 1000))
    if request.query_params.get("format") == "csv":
        return Response(data.compare_csv(table), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="compare.csv"'})
    return Json(table)


def scalars(request: Request, store: RunStore, cfg: ViewConfig) -> Response:
    """GET /api/scalars/ID?tag=: a run's scalar series (step, wall time, value)."""
    r = rundata.find_run(store, request.path_params["id"])
    return Json(rundata.run_series(r, request.query_params.get("tag") or None,
                                   _int(request, "max_points", 2000)))


def config(request: Request, store: RunStore, cfg: ViewConfig) -> Response:
    """GET /api/config: whether write actions are on, and the runs the view is limited to."""
    from .. import __version__

    return Json({"write": cfg.write, "only": cfg.only, "version": __version__})


# -- write actions (--write only) ---------------------------------------------

def _writing(fn):
    """A write endpoint: 403 unless `--write` and the session's token is sent (X-Trk-Token)."""

    def handle(request: Request, store: RunStore, cfg: ViewConfig) -> Response:
        sent = request.headers.get("x-trk-token", "")
        if not cfg.write or not cfg.token or not hmac.compare_digest(sent.encode(), cfg.token.encode()):
            why = "write actions are off (start 'trk view --write')" if not cfg.write else "missing or wrong token"
            return Json({"error": why}, status_code=403)
        return fn(request, store, rundata.find_run(store, request.path_params["id"]))

    return handle


def _body(request: Request) -> dict:
    import anyio.from_thread

    try:
        body = anyio.from_thread.run(request.json)
    except ValueError:
        raise data.BadRequest("the request body must be JSON") from None
    if not isinstance(body, dict):
        raise data.BadRequest("the request body must be a JSON object")
    return body


@_writing
def set_label(request: Request, store: RunStore, r) -> Response:
    """POST /api/runs/ID/label {"label": TEXT}."""
    label = _body(request).get("label", "")
    if not isinstance(label, str):
        raise data.BadRequest("label must be text")
    r.set_label(label)
    return Json({"id": r.id, "label": r.label})


@_writing
def set_tags(request: Request, store: RunStore, r) -> Response:
    """POST /api/runs/ID/tags {"add": [...], "remove": [...]}."""
    body = _body(request)
    add, remove = body.get("add") or [], body.get("remove") or []
    if not all(isinstance(t, str) and t for t in [*add, *remove]):
        raise data.BadRequest("tags must be non-empty text")
    return Json({"id": r.id, "tags": r.set_tags(add=add, remove=remove)})


@_writing
def delete(request: Request, store: RunStore, r) -> Response:
    """POST /api/runs/ID/delete: move the run to the trash (restorable)."""
    from ..api import delete as delete_runs

    delete_runs([r], store=store)
    return Json({"id": r.id, "deleted": True})


def index(request: Request) -> Response:
    """The page."""
    return FileResponse(os.path.join(ASSETS, "index.html"), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store"})


class _Headers:
    """ASGI middleware: the page's security headers on every response that has none of its own."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def sending(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = {b"content-security-policy": PAGE_CSP.encode(), b"x-content-type-options": b"nosniff",
                         b"referrer-policy": b"no-referrer", b"x-frame-options": b"DENY"}
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def create_app(cfg: ViewConfig, loopback: bool = True) -> Starlette:
    """The app; bound to loopback, it answers only requests addressed to
    loopback names (a page elsewhere cannot reach it by DNS rebinding)."""
    routes = [
        Route("/", index),
        Route("/api/config", _endpoint(config)),
        Route("/api/runs", _endpoint(runs)),
        Route("/api/runs/{id}", _endpoint(run)),
        Route("/api/runs/{id}/files", _endpoint(files)),
        Route("/api/runs/{id}/file", _endpoint(file)),
        Route("/api/runs/{id}/output", _endpoint(output)),
        Route("/api/runs/{id}/label", _endpoint(set_label), methods=["POST"]),
        Route("/api/runs/{id}/tags", _endpoint(set_tags), methods=["POST"]),
        Route("/api/runs/{id}/delete", _endpoint(delete), methods=["POST"]),
        Route("/api/compare", _endpoint(compare)),
        Route("/api/scalars/{id}", _endpoint(scalars)),
        Mount("/assets", StaticFiles(directory=ASSETS), name="assets"),
    ]
    middleware = [Middleware(_Headers)]
    if loopback:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.config = cfg
    return app
