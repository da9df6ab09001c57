"""Small file-system helpers: atomic writes, JSON-compatible YAML attrs,
the one answer to "is this path inside that root", and the one SHA-256 of
files and trees.

Every metadata write in trk goes through `atomic_write` so a killed process
leaves either the old or the new file, never half of one. Every check that a
path from a user, a project file or a run stays within its root goes through
`is_inside` / `resolve_inside`. Every content digest (source snapshots,
dependencies, cached downloads) goes through `hash_stream` and the helpers
built on it, so one file always has one digest.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys

TYPE_CHECKING = False  # typing costs every `trk run` 3 ms to import: its names serve annotations only
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable, Iterable

from .errors import TrkError


def atomic_write(path: str, data: bytes | str) -> None:
    """Write `data` to `path` via a temp file in the same dir + os.replace."""
    dirname = os.path.dirname(path) or "."
    # O_EXCL on a random name does what tempfile.mkstemp does, without
    # importing tempfile (and random, shutil...) on every command's path.
    while True:
        tmp = os.path.join(dirname, f".tmp-{os.urandom(6).hex()}")
        try:
            create_new(tmp, data)
            break
        except FileExistsError:
            continue
        except BaseException:
            _unlink_quietly(tmp)  # written in part (or never made)
            raise
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_fd(fd: int, data: bytes) -> None:
    """Write all of `data` to file descriptor `fd`.

    The run store writes and reads small files by thousands (a run's attrs,
    a file each): straight through the descriptor, they skip the buffered
    file object Python's `open` makes, and its fstat, ioctl and lseek.
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_fd(fd: int) -> bytes:
    """All that is left to read from file descriptor `fd` (see `write_fd`)."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def create_new(path: str, data: bytes | str) -> None:
    """Write `data` to `path`, which must not exist yet (FileExistsError)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        write_fd(fd, data.encode("utf-8") if isinstance(data, str) else data)
    finally:
        os.close(fd)


def dump_attr(value: Any) -> str:
    """Encode an attribute value as YAML in JSON-compatible flow style.

    JSON is a subset of YAML 1.2, so these files read as YAML to any tool,
    while trk reads them back with the much faster json module.
    """
    return json.dumps(value, ensure_ascii=False, sort_keys=False) + "\n"


def load_attr(text: str) -> Any:
    """Decode an attribute file written by `dump_attr` or edited by hand."""
    try:
        return json.loads(text)
    except ValueError:
        import yaml

        return yaml.safe_load(text)


class PathEscape(TrkError, ValueError):
    """A path leads outside the root it must stay in (a usage error: exit 2)."""

    exit_code = 2


def is_inside(root: str, path: str, allowed: Iterable[str] = ()) -> bool:
    """True when `path` (absolute, or relative to `root`) is `root` or lies
    under it once symlinks, `..` and absolute components are resolved.

    `allowed` names other directories the path may lead into: those a link
    in `root` may rightly point at (a pipeline's child runs, the upstream
    runs and cached downloads a run links to). Anything else is outside.
    """
    real = os.path.realpath(os.path.join(root, path))
    return any(_under(real, os.path.realpath(r)) for r in (root, *allowed))


def _under(real: str, real_root: str) -> bool:
    # Compare whole components: /runs/abc-evil is not under /runs/abc.
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def resolve_inside(root: str, path: str, what: str = "path", where: str | None = None,
                   allowed: Iterable[str] = ()) -> str:
    """The real path of `path` under `root` (or an `allowed` dir); raise
    PathEscape naming `what` and `where` (default: `root`) when it leads out."""
    if not is_inside(root, path, allowed):
        raise PathEscape(f"{what} '{path}' is outside {where or root}")
    return os.path.realpath(os.path.join(root, path))


# -- hashing: the one SHA-256 of files and trees for the project -------------

CHUNK = 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

# Linux's FICLONE ioctl: a copy-on-write clone (btrfs, XFS, bcachefs...).
_FICLONE = 0x40049409


_SMALL_SHA256 = None


def small_sha256(data: bytes = b""):
    """A SHA-256 hasher for small inputs (a source snapshot): CPython's own,
    which imports in under 1 ms, where hashlib loads OpenSSL (3 ms on every
    `trk run`); the digests are the same. Large files go through hashlib.

    The constructor is found once: a module that is not there is searched
    for again on every import (40 us, and a snapshot hashes each file)."""
    global _SMALL_SHA256
    if _SMALL_SHA256 is None:
        try:
            from _sha2 import sha256  # CPython 3.12+
        except ImportError:
            try:
                from _sha256 import sha256  # CPython 3.10, 3.11
            except ImportError:
                from hashlib import sha256
        _SMALL_SHA256 = sha256
    return _SMALL_SHA256(data)


def hash_stream(f: BinaryIO, out: BinaryIO | None = None, first: bytes = b"", small: bool = False) -> str:
    """SHA-256 hex of `first` plus the rest of `f`, read in chunks; the same
    bytes are written to `out` when given (so a copy's digest is its own).
    `small`: the file is known to be small (see `small_sha256`)."""
    if small:
        h = small_sha256(first)
    else:
        import hashlib  # here, like shutil: most commands never hash

        h = hashlib.sha256(first)
    if out is not None and first:
        out.write(first)
    for chunk in iter(lambda: f.read(CHUNK), b""):
        h.update(chunk)
        if out is not None:
            out.write(chunk)
    return h.hexdigest()


def hash_file(path: str) -> str:
    """SHA-256 hex of one file's bytes (streamed: any size, little memory)."""
    with open(path, "rb") as f:
        return hash_stream(f)


# skipped(relpath, why): why is "outside" (a link leading out), "loop" (a
# symlink loop), "broken" (a dangling link), "special" (not a regular file or
# directory) or "unreadable".
Skipped = "Callable[[str, str], None]"  # (a type alias, for annotations)


def hash_path(path: str, root: str | None = None, allowed: Iterable[str] = (),
              skipped: Skipped | None = None) -> str:
    """SHA-256 of a file, or of a directory's relative paths and file digests.

    In a directory, a link is followed only while it stays inside `root`
    (default: the directory itself) or an `allowed` dir; other links and
    loops are left out and reported to `skipped(relpath, why)`.
    """
    return _digest(path, None, root, tuple(allowed), skipped)


def copy_hashed(src: str, dest: str, root: str | None = None, allowed: Iterable[str] = (),
                skipped: Skipped | None = None) -> str:
    """Copy a file or directory to `dest` and return the digest of what was
    written (as `hash_path` computes it); links follow the same rules.

    Each file is cloned where the file system can (copy-on-write, instant),
    else streamed. The caller checks that `dest` itself is where it belongs;
    below it, directories are made afresh, so no link there is written through.
    """
    return _digest(src, dest, root, tuple(allowed), skipped)


def _digest(src: str, dest: str | None, root: str | None, allowed: tuple, skipped: Skipped | None) -> str:
    import hashlib

    if not os.path.isdir(src):
        return _file_digest(src, dest)
    h = hashlib.sha256()
    if dest is not None:
        _fresh_dir(dest)
    _tree(src, dest, "", root or src, allowed, skipped, {os.path.realpath(src)}, h)
    return h.hexdigest()


def _tree(top: str, dest: str | None, rel_dir: str, root: str, allowed: tuple, skipped: Skipped | None,
          ancestors: set, h) -> None:
    # The order (a dir's files, then its subdirs, each sorted) is os.walk's,
    # so digests recorded by earlier versions still compare equal.
    try:
        entries = sorted(os.scandir(os.path.join(top, rel_dir)), key=lambda e: e.name)
    except OSError:
        if skipped:
            skipped(rel_dir, "unreadable")
        return
    files, dirs = [], []
    for e in entries:
        rel = os.path.join(rel_dir, e.name)
        try:
            # DirEntry answers from the directory listing: no stat for plain entries.
            plain = not e.is_symlink() and (e.is_dir() or e.is_file())
        except OSError:
            plain = False
        why = None if plain else skip_reason(e.path, root, allowed, ancestors)
        if why:
            if skipped:
                skipped(rel, why)
            continue
        (dirs if e.is_dir() else files).append((rel, e.path))
    for rel, full in files:
        sub = _file_digest(full, os.path.join(dest, rel) if dest is not None else None)
        h.update(rel.encode() + b"\0" + sub.encode())
    for rel, full in dirs:
        if dest is not None:
            _fresh_dir(os.path.join(dest, rel))
        _tree(top, dest, rel, root, allowed, skipped, ancestors | {os.path.realpath(full)}, h)


def skip_reason(path: str, root: str, allowed: Iterable[str] = (), ancestors: Iterable[str] = ()) -> str | None:
    """Why a copy or digest leaves `path` out ("outside", "loop", "broken",
    "special"), or None to include it. `ancestors` are the real dirs above
    it in the copy: a link back to one of them is a loop."""
    try:
        st = os.stat(path)
    except OSError as err:
        return "loop" if err.errno == errno.ELOOP else "broken"
    if os.path.islink(path):
        if not is_inside(root, path, allowed):
            return "outside"
        if stat.S_ISDIR(st.st_mode) and os.path.realpath(path) in set(ancestors):
            return "loop"
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return "special"  # a FIFO or device: a copy would block or never end
    return None


def _fresh_dir(path: str) -> None:
    """Make `path` a real directory: a link or file there is replaced (never written through)."""
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)
    os.makedirs(path, exist_ok=True)


def _file_digest(src: str, dest: str | None) -> str:
    import shutil  # here: fsutil is on every command's import path, copies are rare

    if dest is None:
        return hash_file(src)
    parent = os.path.dirname(dest)
    if parent:
        os.makedirs(parent, exist_ok=True)
    if os.path.isdir(dest) and not os.path.islink(dest):
        shutil.rmtree(dest)
    elif os.path.lexists(dest):
        os.unlink(dest)
    with open(src, "rb") as f:
        # O_EXCL|O_NOFOLLOW: a link raced into place is an error, not a write elsewhere.
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            cloned = _clone(f, out)
            digest = None if cloned else hash_stream(f, out)
    shutil.copymode(src, dest)
    # A clone shares the source's blocks: hash what the copy now holds.
    return digest or hash_file(dest)


def _clone(f: BinaryIO, out: BinaryIO) -> bool:
    """Clone `f` into `out` copy-on-write where the file system supports it."""
    if not sys.platform.startswith("linux"):  # the ioctl number is Linux's
        return False
    try:
        import fcntl

        fcntl.ioctl(out.fileno(), _FICLONE, f.fileno())
        return True
    except (ImportError, OSError):
        return False


def remove_sqlite(path: str) -> None:
    """Delete an SQLite database and its journal files (a cache to rebuild)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        _unlink_quietly(path + suffix)
