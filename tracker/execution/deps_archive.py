"""Unpacking archive dependencies (`.zip`, `.tar`, `.tar.gz`, `.tgz`, `.tar.bz2`, `.gz`...).

An archive is unpacked into a fresh directory of trk's making, and nothing
in it may be written outside that directory: a member with an absolute
path or `..`, a link leading out (or through which a later member would
be written out), a device or FIFO, is refused with an error naming the
archive and the member. Files are written with O_EXCL|O_NOFOLLOW, so no
link already there is written through; set-uid bits are dropped.
"""

from __future__ import annotations

import os
import stat

from ..errors import DependencyError
from ..fsutil import is_inside

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def archive_type(path: str, given: str | None = None) -> str | None:
    """`zip`, `tar` or `gzip` for an archive's name (Guild's rules: `.zip`,
    `.tar`, `.tgz`, `.tar.*`, `.gz`), or the source's `type:`; None otherwise."""
    if given:
        return given.lower()
    parts = os.path.basename(path).lower().split(".")
    if parts[-1] == "zip":
        return "zip"
    if parts[-1] in ("tar", "tgz", "tbz2", "txz") or parts[-2:-1] == ["tar"]:
        return "tar"
    if parts[-1] == "gz":
        return "gzip"
    return None


def unpack(path: str, kind: str, dest: str) -> None:
    """Unpack archive `path` (of `kind`) into the empty directory `dest`."""
    name = os.path.basename(path)
    try:
        if kind == "zip":
            _unzip(path, dest, name)
        elif kind == "tar":
            _untar(path, dest, name)
        elif kind == "gzip":
            _gunzip(path, dest, name)
        else:
            raise DependencyError(f"cannot unpack {name}: unsupported archive type '{kind}'",
                                  "Use type: zip, tar or gzip, or unpack: no.")
    except DependencyError:
        raise
    except Exception as e:  # a corrupt archive: zipfile, tarfile and gzip each raise their own
        raise DependencyError(f"cannot unpack {name}: {e}") from None


def _member_path(dest: str, member: str, archive: str) -> str:
    """The path in `dest` for archive member `member`; refuses one that leads out."""
    parts = [p for p in member.replace("\\", "/").split("/") if p not in ("", ".")]
    if member.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise DependencyError(f"cannot unpack {archive}: member '{member}' would be written outside the "
                              "target directory", "Unpack the archive yourself, or use unpack: no.")
    path = os.path.join(dest, *parts) if parts else dest
    if not is_inside(dest, os.path.dirname(path)):
        raise DependencyError(f"cannot unpack {archive}: member '{member}' would be written through a link "
                              "leading outside the target directory")
    return path


def _write(path: str, data, mode: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            return  # a later member of the same name as a directory: keep the directory
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: data.read(1024 * 1024), b""):
            out.write(chunk)
    os.chmod(path, (mode & 0o777 or 0o644) | 0o600)


def _unzip(path: str, dest: str, archive: str) -> None:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            target = _member_path(dest, info.filename, archive)
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            # A zip member marked as a symlink is written as a file holding
            # the link's text, as Python's (and Guild's) extractall does.
            with zf.open(info) as data:
                _write(target, data, (info.external_attr >> 16) & 0o777)


def _untar(path: str, dest: str, archive: str) -> None:
    import tarfile

    with tarfile.open(path) as tf:
        links = []
        for m in tf:
            target = _member_path(dest, m.name, archive)
            if m.isdir():
                os.makedirs(target, exist_ok=True)
            elif m.isfile():
                data = tf.extractfile(m)
                if data is not None:
                    _write(target, data, m.mode)
            elif m.issym() or m.islnk():
                links.append((m, target))
            else:
                raise DependencyError(f"cannot unpack {archive}: member '{m.name}' is a device or FIFO")
        # Links last: no member is ever written through one.
        for m, target in links:
            _link(m, target, dest, archive)


def _link(m, target: str, dest: str, archive: str) -> None:
    import shutil

    if m.issym():
        pointed = os.path.join(os.path.dirname(target), m.linkname)
    else:  # a hard link names another member
        pointed = os.path.join(dest, m.linkname)
    if os.path.isabs(m.linkname) or not is_inside(dest, pointed) or not is_inside(dest, os.path.dirname(target)):
        raise DependencyError(f"cannot unpack {archive}: link '{m.name}' -> '{m.linkname}' leads outside the "
                              "target directory")
    if os.path.lexists(target):
        os.unlink(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if m.issym():
        os.symlink(m.linkname, target)
    elif os.path.isfile(pointed):
        shutil.copyfile(pointed, target)  # a copy, never a shared inode
        os.chmod(target, stat.S_IMODE(os.stat(pointed).st_mode))


def _gunzip(path: str, dest: str, archive: str) -> None:
    import gzip

    name = os.path.basename(path)[:-3] if path.lower().endswith(".gz") else os.path.basename(path) + ".out"
    with gzip.open(path, "rb") as data:
        _write(os.path.join(dest, name), data, 0o644)
