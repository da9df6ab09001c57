"""Running a run's program in a Docker image, through the docker SDK.

With `--docker` (or TRK_DOCKER=1), an operation with an `image:` runs its
usual argv in that image instead of as a local process: the run directory is
mounted at the same path and is the working directory (so paths in the
run's attrs and command stay valid), the program's output is echoed, saved
and parsed for scalars as a local program's is (`process`), a stop signal
stops the container, and the container is removed afterwards. It is one
more way to execute a prepared run: `launch` calls it inside the same
lifecycle (`supervise`, `Run.finish`/`fail`/`terminate`).
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
from typing import Any

from ..errors import TrkError
from ..lines import LineBuffer
from ..store import Run
# The local supervisor's output helpers, so a container's output is saved,
# echoed and parsed exactly as a local program's.
from .process import Echo, Sinks, say_warnings, scalar_parser
from .stop import Interruption, stop_on_signals, supervising

DEFAULT_URL = "unix:///var/run/docker.sock"  # the docker SDK's default without DOCKER_HOST
CONNECT_TIMEOUT = 30  # seconds for one API call (not for the output stream nor the wait)
STOP_POLL_SECONDS = 0.2
# Keys of the program's environment that are the run's, not this machine's:
# the host's PATH, HOME, virtualenv... mean nothing in the image.
_RUN_ENV_KEYS = ("TRK_RUN_ID", "TRK_RUN_DIR", "RUN_DIR", "RUN_ID", "TRK_PARENT_RUN_ID", "PYTHONUNBUFFERED",
                 "PYTHONDONTWRITEBYTECODE")


class DockerUnreachable(TrkError):
    """No Docker engine answers at the configured URL."""


class EngineError(TrkError):
    """The Docker engine refused or failed an operation while running a run."""


def engine_url() -> str:
    """Where the docker SDK looks for the engine: DOCKER_HOST, else its default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_URL


class Engine:
    """A connection to a reachable Docker engine (the SDK's client)."""

    def __init__(self, client: Any, url: str):
        self.client = client
        self.url = url

    def ensure_image(self, image: str) -> None:
        """Check `image` is in the engine, pulling it when not (as `docker run` does)."""
        import docker.errors

        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.DockerException as e:
            raise EngineError(f"docker engine at {self.url}: {_reason(e)}") from None
        try:
            self.client.images.pull(image)
        except docker.errors.DockerException as e:
            raise EngineError(f"docker image {image} is not in the engine at {self.url} and pulling it failed: "
                              f"{_reason(e)}", "Build or load the image first (docker build / docker load).") from None


def connect(image: str | None = None) -> Engine:
    """Connect to the Docker engine and check it answers (and has `image`).

    Called before a run is made, so that `--docker` without an engine fails
    with no run left behind. The docker SDK is imported here only: it costs
    more than the rest of `trk run`'s start-up.
    """
    url = engine_url()
    try:
        import docker
    except ImportError as e:  # a declared dependency; say so rather than crash
        raise DockerUnreachable(f"docker engine not reachable at {url}: the docker package is not installed ({e})",
                                "pip install docker") from None
    try:
        client = docker.DockerClient(base_url=url, timeout=CONNECT_TIMEOUT) if "DOCKER_HOST" not in os.environ \
            else docker.from_env(timeout=CONNECT_TIMEOUT)  # from_env: DOCKER_TLS_VERIFY, DOCKER_CERT_PATH too
        client.ping()
    except Exception as e:  # the SDK raises requests', urllib3's and its own errors alike
        raise DockerUnreachable(f"docker engine not reachable at {url}: {_reason(e)}",
                                "Start the Docker engine, set DOCKER_HOST to where it listens, "
                                "or run without --docker.") from None
    engine = Engine(client, url)
    if image:
        engine.ensure_image(image)
    return engine


def container_env(env: dict[str, str], extra: dict[str, str] | None) -> dict[str, str]:
    """The part of a program's environment (`process.program_env`) that belongs
    to the run: its ids, `env:` and flag variables; not this machine's."""
    keep = set(_RUN_ENV_KEYS) | set(extra or {})
    if "PYTHONPATH" in env and env.get("PYTHONPATH") != os.environ.get("PYTHONPATH"):
        keep.add("PYTHONPATH")  # a `sourcecode: dest:` directory, inside the run
    return {k: v for k, v in env.items() if k in keep}


def container_argv(argv: list[str]) -> list[str]:
    """The argv in the image: trk writes this interpreter's path for `python`,
    which the image does not have; there, `python` on its PATH stands for it."""
    return ["python", *argv[1:]] if argv and argv[0] == sys.executable else list(argv)


def run_container(
    engine: Engine,
    run: Run,
    image: str,
    argv: list[str],
    env: dict[str, str],
    sinks: Sinks | None = None,
    output_scalars: Any = None,
) -> int:
    """Run `argv` for `run` in `image` and return its exit code (negative: stopped by that signal).

    Writes the attrs `process.run_process` writes (`started`, `stopped`,
    `exit_status`, `terminated` when stopped) and `container`. The container
    is removed whatever happens; an engine failure raises EngineError (the
    run ends `error` with the engine's message). The caller holds the lock.
    """
    import docker.errors

    sinks = sinks or Sinks()
    scalars = scalar_parser(run, output_scalars)
    # Registered as a supervised program with no pid: a stop signal then only
    # marks `stop`, and the loop below stops the container through the engine.
    with stop_on_signals() as stop, supervising():
        if stop.stopping:
            run.terminate(-stop.signum)
            return -stop.signum
        container = None
        ok = False
        try:
            container = engine.client.containers.create(
                image, container_argv(argv), environment=env, working_dir=run.dir,
                volumes={run.dir: {"bind": run.dir, "mode": "rw"}},
                user=f"{os.getuid()}:{os.getgid()}",  # files in the run directory stay the user's
                network_mode="host",  # as a local program: the host's network
                init=True,  # an init as PID 1, so the program gets SIGTERM's default action
                labels={"trk.run": run.id})
            # Attached before start (with `logs` for anything earlier), so no output is lost.
            stream = engine.client.api.attach(container.id, stdout=True, stderr=True, stream=True, logs=True,
                                              demux=True)
            run.write_attr("container", container.id)
            run.record_supervisor()  # (a restart, a staged run started elsewhere: another trk process)
            run.start()
            container.start()
            code = _capture(run, container, stream, sinks, scalars, stop)
            if stop.stopping and code > 128:  # the init reports death by signal N as 128 + N
                code = 128 - code
            ok = True
        except docker.errors.DockerException as e:
            raise EngineError(f"docker engine at {engine.url}: {_reason(e)}") from None
        except Exception as e:
            if not _is_connection_error(e):
                raise
            raise EngineError(f"docker engine at {engine.url} stopped answering: {_reason(e)}") from None
        finally:
            if scalars is not None:
                scalars.close()
            _remove(engine, container, report=ok)
        if scalars is not None and not stop.stopping:
            say_warnings(run, sinks, scalars.warnings)
        run.finish(code, stop.stopping)
    return code


def _capture(run: Run, container: Any, stream: Any, sinks: Sinks, scalars: Any, stop: Interruption) -> int:
    """Echo, save and parse the container's output until it ends; return its exit code.

    The stream is read in a thread, so that this thread (the one signals
    reach) stays free to stop the container when a stop signal comes.
    """
    chunks: queue.Queue = queue.Queue(maxsize=256)
    reader = threading.Thread(target=_read, args=(stream, chunks), daemon=True, name=f"trk-docker-{run.short_id}")
    reader.start()
    streams = (LineBuffer(), Echo(sinks.stdout, sinks.prefix)), (LineBuffer(), Echo(sinks.stderr, sinks.prefix))
    stopped_with = None
    with open(run.output_path, "ab", buffering=0) as out:
        while True:
            if stop.stopping and stopped_with != signal.SIGKILL:
                sig = signal.SIGKILL if stop.overdue() else signal.SIGTERM
                if sig != stopped_with:
                    stopped_with = sig
                    _kill(container, sig)
            try:
                item = chunks.get(timeout=STOP_POLL_SECONDS)
            except queue.Empty:
                continue
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            for data, (lines, echo) in zip(item, streams):
                if not data:
                    continue
                echo.raw(data)
                ready, whole = lines.feed(data)
                _settle(out, echo, scalars, ready, whole)
        for lines, echo in streams:
            _settle(out, echo, scalars, *lines.close())
            echo.close()
    result = container.wait()
    error = (result.get("Error") or {}).get("Message") if isinstance(result.get("Error"), dict) else None
    if error:
        raise EngineError(f"docker engine: {error}")
    return int(result.get("StatusCode", 1))


def _settle(out, echo: Echo, scalars: Any, ready: bytes, whole: bytes) -> None:
    if ready:
        out.write(ready)
        echo.settled(ready)
    if whole and scalars is not None:
        scalars.feed(whole)


def _read(stream: Any, chunks: queue.Queue) -> None:
    """Move the attach stream's (stdout, stderr) chunks to the queue; None at its end, or the error."""
    try:
        for item in stream:
            chunks.put(item)
        chunks.put(None)
    except BaseException as e:  # the engine went away mid-stream: the supervising thread says so
        chunks.put(e)


def _kill(container: Any, sig: int) -> None:
    """Signal the container's program; one already gone is fine."""
    import docker.errors

    try:
        container.kill(signal=int(sig))
    except docker.errors.APIError as e:
        if e.status_code not in (404, 409):  # 409: not running any more
            raise


def _remove(engine: Engine, container: Any, report: bool) -> None:
    """Remove the container (forcing it to stop first), so none is left behind.

    With `report`, raises EngineError when the engine cannot; without, an
    error is already on its way, which says more."""
    if container is None:
        return
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except Exception as e:
        if report and (isinstance(e, docker.errors.DockerException) or _is_connection_error(e)):
            raise EngineError(f"docker engine at {engine.url} could not remove container {container.short_id}: "
                              f"{_reason(e)}") from None


def _is_connection_error(e: BaseException) -> bool:
    """Whether `e` is the HTTP stack's way of saying the engine went away."""
    import requests

    return isinstance(e, (requests.exceptions.RequestException, ConnectionError))


def _reason(e: BaseException) -> str:
    """The engine's own message, or the innermost OS error, without the HTTP stack's wrapping."""
    explanation = getattr(e, "explanation", None)
    if explanation:
        return str(explanation).strip()
    seen: set[int] = set()
    todo: list[Any] = [e]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen or not isinstance(cur, BaseException):
            continue
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.strerror:
            return cur.strerror
        todo += [a for a in cur.args if isinstance(a, BaseException)]
        todo += [c for c in (cur.__cause__, cur.__context__, getattr(cur, "reason", None)) if c is not None]
    return str(e) or type(e).__name__


__all__ = ["DockerUnreachable", "Engine", "EngineError", "connect", "container_env", "run_container"]
