"""Run attributes: reading and type-checking them, and their signatures.

Every read of a run's `.trk/attrs` goes through `read_attrs_dir`, which
checks the type of each attr trk knows: a wrong-typed or corrupt file makes
the run an error run instead of breaking every command over the store.

The run index (`runindex`) keeps each run's attrs with a signature of its
`.trk/attrs` directory (inode and ctime: an attr written by trk is a rename
into it, and so is any added or removed file) and of each attr file (inode,
size, mtime and ctime: the ctime catches a file edited in place, even with
its size and mtime put back). A run a command shows has its files checked
on first use (`FileCheck`), so a command stats only the files it reads.
"""

from __future__ import annotations

import json
import os
import struct

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable

from ..fsutil import load_attr, read_fd

# Run times are microseconds since the epoch; a time past year 9999 cannot be shown.
_MAX_TIME_US = 253402300800 * 1_000_000


def _is_time(v: Any) -> bool:
    return type(v) is int and 0 <= v < _MAX_TIME_US


def _is_str_list(v: Any) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


# The type of each attr trk writes and reads back; other attrs may hold any JSON value.
_ATTR_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    **{n: (lambda v: type(v) is str, "a string")
       for n in ("id", "op", "label", "parent", "step", "host", "sourcecode_digest", "error")},
    **{n: (_is_time, "a time") for n in ("initialized", "started", "stopped", "staged", "restarted")},
    **{n: (lambda v: type(v) is int, "an integer") for n in ("exit_status", "pid", "program_pid")},
    **{n: (_is_str_list, "a list of strings") for n in ("tags", "cmd", "sourcecode_files")},
    "terminated": (lambda v: type(v) is bool, "true or false"),
    "flags": (lambda v: type(v) is dict, "a mapping"),
    "env": (lambda v: type(v) is dict and all(type(x) is str for x in v.values()), "a mapping of strings"),
    "deps": (lambda v: type(v) is list and all(type(x) is dict for x in v), "a list of mappings"),
}


class BadAttrs(ValueError):
    """A run's attrs hold corrupt files or wrong types; `attrs` keeps the good ones."""

    def __init__(self, problems: list[str], attrs: dict[str, Any], path: str):
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)
        self.problems = problems
        self.attrs = attrs
        self.path = path  # the first bad file, for the message


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def _is_json(v: Any) -> bool:
    """True for what JSON can hold (YAML may also give dates, sets, binary)."""
    if v is None or type(v) in (str, int, float, bool):
        return True
    if type(v) is list:
        return all(_is_json(x) for x in v)
    return type(v) is dict and all(type(k) is str and _is_json(x) for k, x in v.items())


def read_attrs_dir(attrs_dir: str) -> dict[str, Any]:
    """Read and type-check every attr file in a run's `.trk/attrs`.

    Raises OSError when the directory cannot be read, and BadAttrs naming
    each corrupt or wrong-typed attr (with the good ones), so every Run
    property can trust the attrs it gets.
    """
    # Read through a directory fd: a run moved meanwhile is still read whole.
    dir_fd = os.open(attrs_dir, os.O_RDONLY | os.O_DIRECTORY)
    attrs: dict[str, Any] = {}
    problems: list[str] = []
    bad_path = attrs_dir
    try:
        for name in sorted(os.listdir(dir_fd)):
            if name.startswith("."):
                continue  # atomic_write's temp files
            try:
                fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
            except FileNotFoundError:
                continue  # removed meanwhile (del_attr)
            try:
                try:
                    raw = read_fd(fd)
                finally:
                    os.close(fd)
                value, problem = _parse_attr(name, raw)
            except OSError as e:
                value, problem = None, f"attr file '{name}' cannot be read ({e.strerror})"
            if problem:
                if not problems:
                    bad_path = os.path.join(attrs_dir, name)
                problems.append(problem)
            else:
                attrs[name] = value
    finally:
        os.close(dir_fd)
    if "id" not in attrs and not any(p.startswith("attr 'id' ") for p in problems):
        problems.append("attr 'id' is missing")
    if problems:
        raise BadAttrs(problems, attrs, bad_path)
    return attrs


def _parse_attr(name: str, raw: bytes) -> tuple[Any, str | None]:
    """An attr file's value, or the one-line problem with it."""
    try:
        text = raw.decode("utf-8")
        try:
            value = json.loads(text)  # what trk writes: always JSON data
        except ValueError:
            value = load_attr(text)  # hand-edited YAML
            if not _is_json(value):
                return None, f"attr '{name}' is not JSON data ({_short(value)})"
    except Exception as e:
        return None, f"attr file '{name}' is corrupt ({(str(e).splitlines() or [type(e).__name__])[0]})"
    check = _ATTR_TYPES.get(name)
    if check is not None and not check[0](value):
        return None, f"attr '{name}' is not {check[1]} ({_short(value)})"
    return value, None


def metadata_error(e: OSError) -> str:
    """Why a run's `.trk/attrs` could not be read, in a few words."""
    if isinstance(e, FileNotFoundError):
        return "missing metadata"
    return f"metadata cannot be read ({e.strerror or e})"



# Attrs changed this recently are not trusted to the index: file-system
# timestamps come from a coarse clock, and a write within the same tick
# would go unnoticed.
SETTLE_NS = 2_000_000_000
INO_MASK = (1 << 63) - 1  # SQLite and struct "q" hold signed 64-bit integers
_FILE_SIG = struct.Struct("4q")


def file_sig(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when an attr file changes: inode, size, mtime and ctime."""
    return (st.st_ino & INO_MASK, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FileCheck:
    """An indexed run's attr file signatures, each file checked on first use."""

    __slots__ = ("index", "run_id", "attrs_dir", "attrs_json", "_names", "sigs", "checked")

    def __init__(self, index: Any, run_id: str, attrs_dir: str, attrs_json: str, sigs: bytes):
        self.index = index
        self.run_id = run_id
        self.attrs_dir = attrs_dir
        self.attrs_json = attrs_json  # the indexed attrs: one per file, in the order of `sigs`
        self._names: list[str] | None = None
        self.sigs = sigs
        self.checked: set[str] = set()

    @property
    def names(self) -> list[str]:
        """The indexed attr file names (parsed on first use: most runs shown are never asked)."""
        if self._names is None:
            try:
                self._names = list(json.loads(self.attrs_json))
            except (TypeError, ValueError):
                self._names = []
        return self._names

    def changed(self, names: Iterable[str] | None = None) -> bool:
        """True when any of the attr files `names` (None: all) differs from
        the indexed one; then the index row is dropped, to be read anew."""
        checked = self.checked
        known = self.names
        for name in known if names is None else names:
            if name in checked or name not in known:
                continue  # checked already, or no such file: adding one changes the dir
            checked.add(name)
            try:
                now = file_sig(os.stat(f"{self.attrs_dir}/{name}", follow_symlinks=False))
                was = _FILE_SIG.unpack_from(self.sigs, self.names.index(name) * _FILE_SIG.size)
            except (OSError, struct.error, TypeError):  # gone, or a bad row
                now, was = None, ()
            if now != was:
                self.index.forget(self.run_id)
                return True
        return False


def signatures(attrs_dir: str) -> tuple[os.stat_result, list[str], bytes | None, int]:
    """The stat of a run's attrs dir, its attr file names (sorted, as
    read_attrs_dir reads them), their signatures (None when they do not fit
    the cache) and the newest change time of them all (ns)."""
    fd = os.open(attrs_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        dir_st = os.fstat(fd)
        newest = dir_st.st_ctime_ns
        names = sorted(n for n in os.listdir(fd) if not n.startswith("."))
        sigs: list[tuple[int, int, int, int]] = []
        for name in names:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            sigs.append(file_sig(st))
            newest = max(newest, st.st_ctime_ns)
    finally:
        os.close(fd)
    try:
        packed: bytes | None = b"".join(_FILE_SIG.pack(*s) for s in sigs)
    except struct.error:  # a time past the year 2262
        packed = None
    return dir_st, names, packed, newest
