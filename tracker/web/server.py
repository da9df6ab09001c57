"""Serving the `trk view` app with uvicorn on a socket bound before it starts.

Binding first lets port 0 pick a free port and the URL be known (printed,
opened) before the first request; uvicorn then serves on that socket until
Ctrl-C.
"""

from __future__ import annotations

import secrets
import socket
from typing import Callable

from ..errors import TrkError
from .app import ViewConfig, create_app

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    return host in LOOPBACK or host.startswith("127.")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one); TrkError naming the address when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise TrkError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                       "Choose another --port (0 picks a free one).") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def new_token() -> str:
    """A per-session token for write actions (unguessable, URL-safe)."""
    return secrets.token_urlsafe(24)


def serve(cfg: ViewConfig, host: str = "127.0.0.1", port: int = 0,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the view until interrupted; `on_ready(url)` once it listens."""
    import uvicorn

    sock = bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/"
    if cfg.write and cfg.token:
        url += f"?token={cfg.token}"
    app = create_app(cfg, loopback=is_loopback(host))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
