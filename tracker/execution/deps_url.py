"""`url:` dependencies: a content-addressed download cache, verified on reuse.

A download lands in `$TRK_HOME/cache/urls/<sha256>/NAME` (read-only, and
only once complete and checked against the dependency's `sha256`), and
`index/<sha256 of the URL>` records its digest, size and mtime. Runs link
the cached file, so a cached file that changed would change every run's
input: each reuse verifies it first, by its SHA-256 when the dependency
gives one, else by the size and mtime recorded at download (re-hashing when
those differ). A changed entry is downloaded again; when that fails, the
error names both digests. `file:` URLs may only name project files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from typing import BinaryIO, Callable

# Makes a `progress(done, total)` callback for the work a label names
# ("Downloading NAME"); total None when the size is not known.
ProgressFactory = Callable[[str], Callable[[int, "int | None"], None]]

from ..errors import DependencyError
from ..fsutil import atomic_write, hash_file, hash_stream, is_inside
from ..project.loader import Project
from ..store import RunStore
from .deps_resolve import Resolved, unmet
from .deps_spec import Dependency

REMOTE_SCHEMES = ("http", "https", "ftp")
UNVERIFIED_SCHEMES = ("http", "ftp")  # no TLS: anyone on the way may change the bytes


class _FetchFailed(Exception):
    """A download failed; the message says why (no traceback for the user)."""


class _Mismatch(Exception):
    """A download's SHA-256 is not the one the dependency gives."""

    def __init__(self, got: str):
        super().__init__(got)
        self.got = got


def url_basename(url: str) -> str:
    """A safe file name for a URL's download (never empty, `.` or `..`)."""
    from urllib.parse import urlparse

    name = re.sub(r"[^A-Za-z0-9._-]", "_", os.path.basename(urlparse(url).path))
    return name if name.strip(".") else "download"


def scheme(url: str) -> str:
    """A URL's scheme, lower case (`file` for `file:` URLs)."""
    from urllib.parse import urlparse

    return urlparse(url).scheme.lower()


def resolve_url(dep: Dependency, store: RunStore, project: Project,
                progress: ProgressFactory | None = None) -> Resolved:
    """Download once into the cache; verify the cached file on every reuse.
    `progress` makes the callback that hears how a download goes."""
    local = _project_file(dep, project) if scheme(dep.spec) == "file" else None
    if local is None and scheme(dep.spec) not in REMOTE_SCHEMES:
        raise DependencyError(f"unsupported URL scheme in dependency '{dep.name}' of {project.filename}",
                              "Use an http, https or ftp URL, a file: URL inside the project, or file: for "
                              "project files.")
    try:
        return _cached(dep, store.url_cache_dir, local, progress)
    except OSError as e:  # an unwritable TRK_HOME, an unreadable cache entry
        raise unmet(dep, f"URL cache {store.url_cache_dir}: {e.strerror or e}") from None


def _cached(dep: Dependency, cache: str, local: str | None, progress: ProgressFactory | None = None) -> Resolved:
    """The verified cache entry for `dep`, downloaded (again) when needed."""
    os.makedirs(os.path.join(cache, "index"), exist_ok=True)
    key = os.path.join(cache, "index", hashlib.sha256(dep.spec.encode()).hexdigest())
    name = url_basename(dep.spec)
    entry = _read_index(key)
    # With a sha256 only that content will do; without, what was downloaded before.
    digest = dep.sha256 or entry.get("sha256")
    changed = None  # the digest of a cached file that is not what was downloaded
    notes = []
    if digest and os.path.isfile(os.path.join(cache, digest, name)):
        cached = os.path.join(cache, digest, name)
        changed = _verify(cached, digest, None if dep.sha256 else entry, key)
        if changed is None:
            return Resolved(dep, digest, source=cached)
        notes.append(f"WARNING: the cached download of {dep.spec} changed since it was downloaded "
                     f"(sha256 {changed}, expected {digest}); downloading it again")
    try:
        got, dest = _download(dep, cache, name, local, progress(f"Downloading {name}") if progress else None)
    except (_FetchFailed, _Mismatch) as e:
        reason = (f"checksum mismatch for {dep.spec}: expected sha256 {dep.sha256}, got {e.got}"
                  if isinstance(e, _Mismatch) else str(e))
        if changed is not None:
            raise DependencyError(
                f"run failed because a dependency was not met: the cached download of {dep.spec} changed "
                f"(expected sha256 {digest}, found {changed}) and fetching it again failed: {reason}",
                "Check the URL and your connection; the changed file was left in the cache.") from None
        if isinstance(e, _Mismatch):
            raise DependencyError(
                f"run failed because a dependency was not met: {reason}",
                "Check the URL, or update sha256 in the project file if the file changed on purpose.") from None
        raise unmet(dep, reason) from None
    st = os.stat(dest)
    atomic_write(key, json.dumps({"url": dep.spec, "sha256": got, "size": st.st_size,
                                  "mtime_ns": st.st_mtime_ns}) + "\n")
    return Resolved(dep, got, source=dest, notes=notes)


def _read_index(key: str) -> dict:
    """A URL's index entry; older trk wrote only the digest."""
    try:
        text = open(key, encoding="utf-8").read().strip()
    except OSError:
        return {}
    if re.fullmatch(r"[0-9a-f]{64}", text):
        return {"sha256": text}
    try:
        entry = json.loads(text)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def _verify(cached: str, digest: str, entry: dict | None, key: str) -> str | None:
    """None when the cached file is what was downloaded, else its SHA-256.

    `entry` None: hash it (the dependency gives a sha256). Otherwise the
    size and mtime recorded at download vouch for it; when they differ (or
    were never recorded) it is hashed, and the record renewed if it matches.
    """
    st = os.stat(cached)
    if entry is not None and (entry.get("size"), entry.get("mtime_ns")) == (st.st_size, st.st_mtime_ns):
        return None
    actual = hash_file(cached)
    if actual != digest:
        return actual
    if entry is not None:
        atomic_write(key, json.dumps({**entry, "sha256": digest, "size": st.st_size,
                                      "mtime_ns": st.st_mtime_ns}) + "\n")
    return None


def _project_file(dep: Dependency, project: Project) -> str:
    """The project file a `file:` URL names; any other file is refused."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(dep.spec)
    path = url2pathname(parsed.path)
    if parsed.netloc not in ("", "localhost") or not is_inside(project.dir, path):
        raise DependencyError(
            f"dependency '{dep.name}' of {project.filename} is outside the project directory "
            f"{os.path.realpath(project.dir)}",
            "A file: URL may only name a file inside the project; copy the file into the project.")
    return os.path.realpath(os.path.join(project.dir, path))


def _download(dep: Dependency, cache: str, name: str, local: str | None,
              progress: Callable[[int, int | None], None] | None = None) -> tuple[str, str]:
    """Fetch into a temp file, check, then move into the cache; (digest, path)."""
    import http.client

    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(dep.spec, local, out, progress)
        if dep.sha256 and digest != dep.sha256:
            raise _Mismatch(digest)
        dest_dir = os.path.join(cache, digest)
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, name)
        # Read-only: runs link this file, and a program writing to its input
        # must not change the cache under every other run.
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)  # only a complete, verified download enters the cache
        tmp = None
        return digest, dest
    except (OSError, http.client.HTTPException) as e:
        raise _FetchFailed(f"download failed: {str(e) or type(e).__name__}") from None
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _fetch(url: str, local: str | None, out: BinaryIO,
           progress: Callable[[int, int | None], None] | None = None) -> str:
    """Write the URL's bytes to `out`; return their SHA-256."""
    import urllib.request

    with (open(local, "rb") if local else urllib.request.urlopen(url, timeout=60)) as resp:
        length = None if local else resp.headers.get("Content-Length")
        if progress is None:
            digest = hash_stream(resp, out)
        else:
            size = os.fstat(resp.fileno()).st_size if local else (
                int(length) if length is not None and length.isdigit() else None)
            digest = hash_stream(_Counted(resp, progress, size), out)
            progress(out.tell(), out.tell())  # the last call: done
    # http.client returns a short body when the connection drops early.
    received = out.tell()
    if length is not None and length.isdigit() and received != int(length):
        raise _FetchFailed(f"download incomplete: got {received} of {length} bytes")
    return digest


class _Counted:
    """A stream that tells `progress` how many bytes were read of `size`."""

    def __init__(self, f: BinaryIO, progress: Callable[[int, int | None], None], size: int | None):
        self.f, self.progress, self.size, self.done = f, progress, size, 0
        progress(0, size)

    def read(self, n: int = -1) -> bytes:
        """Read as the stream does, and report."""
        data = self.f.read(n)
        self.done += len(data)
        if data and (self.size is None or self.done < self.size):  # the caller makes the last call
            self.progress(self.done, self.size)
        return data
