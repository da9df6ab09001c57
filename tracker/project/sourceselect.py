"""Which files of a project tree a run's source snapshot holds.

Rules follow Guild's semantics: every rule is tested on a path in order and
the last one that applies decides; directory rules prune the walk. The
`.gitignore` files of the tree are applied with git's own matching rules
(the `pathspec` library, imported only when a `.gitignore` exists).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..records import field, record
TEXT_EXTS = {".csv", ".md", ".py", ".sh", ".txt"}
# Extensions Guild treats as binary without reading the file (note `.svg`).
BINARY_EXTS = {
    ".ai", ".bmp", ".gif", ".ico", ".jpeg", ".jpg", ".png", ".ps", ".psd", ".svg", ".tif", ".tiff",
    ".aif", ".mid", ".midi", ".mpa", ".mp3", ".ogg", ".wav", ".wma", ".avi", ".mov", ".mp4", ".mpeg",
    ".swf", ".wmv", ".7z", ".deb", ".gz", ".pkg", ".rar", ".rpm", ".tar", ".xz", ".z", ".zip", ".doc",
    ".docx", ".key", ".pdf", ".ppt", ".pptx", ".xlr", ".xls", ".xlsx", ".bin", ".pickle", ".pkl", ".pyc",
}
_PRINTABLE = bytes(range(32, 127)) + b"\n\r\t\f\b"
_HIGH = bytes(range(127, 256))


@record
class Rule:
    """One include or exclude rule: patterns, an optional type and limits."""

    include: bool
    patterns: tuple[str, ...]
    type: str | None = None  # None, "dir", "text" or "binary"
    sentinel: str | None = None  # a dir rule applies only to directories holding this path
    max_size: int | None = None  # larger files do not match
    max_matches: int | None = None  # the rule selects at most this many files

    def __str__(self) -> str:
        words = ["include" if self.include else "exclude"] + ([self.type] if self.type else [])
        words.append(", ".join(repr(p) if " " in p else p for p in self.patterns))
        extras = []
        if self.sentinel:
            extras.append(f"containing {self.sentinel}")
        if self.max_size is not None:
            extras.append(f"size < {self.max_size + 1}")
        if self.max_matches is not None:
            extras.append(f"max match {self.max_matches}")
        return " ".join(words) + (" " + ", ".join(extras) if extras else "")

    def matches_name(self, relpath: str) -> bool:
        """True when a pattern matches: the file name for a pattern without
        `/`, else the whole path (a leading `/` anchors it at the root)."""
        for pattern in self.patterns:
            if "/" in pattern:
                if fnmatch.fnmatchcase(relpath, pattern.lstrip("/")):
                    return True
            elif fnmatch.fnmatchcase(os.path.basename(relpath), pattern):
                return True
        return False

    def test_dir(self, relpath: str, full: str) -> tuple[bool | None, str]:
        """(keep the directory, prune it, or None: the rule does not apply; why)."""
        if self.type != "dir" or not self.matches_name(relpath):
            return None, ""
        if self.sentinel and not os.path.exists(os.path.join(full, self.sentinel)):
            return None, ""
        return self.include, "" if self.include else f"excluded by '{self}'"

    def test_file(self, relpath: str, info: FileInfo) -> tuple[bool | None, str]:
        """(select, skip, or None: the rule does not apply; why, or which test failed)."""
        if self.type == "dir" or not self.matches_name(relpath):
            return None, ""
        if self.type == "text" and not info.is_text:
            return None, "type"
        if self.type == "binary" and info.is_text:
            return None, "type"
        if self.max_size is not None and info.size > self.max_size:
            return None, "size"
        return self.include, "" if self.include else f"excluded by '{self}'"


class GitIgnored:
    """The `.gitignore` files of a tree, each applying below its directory."""

    def __init__(self):
        self.specs: dict[str, Any] = {}  # project-relative dir ("" at the top) -> GitIgnoreSpec

    def load(self, full_dir: str, rel_dir: str) -> None:
        """Read `full_dir/.gitignore` (if it is a file) as the rules of `rel_dir`."""
        path = os.path.join(full_dir, ".gitignore")
        if rel_dir in self.specs or not os.path.isfile(path) or os.path.islink(path):
            return
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return
        import pathspec  # here: only projects with a .gitignore need it

        self.specs[rel_dir] = pathspec.GitIgnoreSpec.from_lines(lines)

    def match(self, relpath: str, is_dir: bool) -> str | None:
        """`FILE: LINE` of the `.gitignore` line that ignores `relpath`, or None.

        As in git, a deeper `.gitignore` overrides a shallower one, and
        within one file the last matching line wins (`!` re-includes)."""
        if not self.specs:
            return None
        parts = relpath.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            spec = self.specs.get("/".join(parts[:depth]))
            if spec is None:
                continue
            result = spec.check_file("/".join(parts[depth:]) + ("/" if is_dir else ""))
            if result.include is False:
                return None
            if result.include:
                where = "/".join(parts[:depth] + [".gitignore"])
                return f"{where}: {getattr(spec.patterns[result.index], 'pattern', '')}"
        return None


class GitIgnoreRule(Rule):
    """Excludes the files and directories the tree's `.gitignore` files ignore."""

    def __init__(self, prefix: str = ""):
        super().__init__(False, ())
        self.ignored = GitIgnored()
        self.prefix = prefix  # the tree's path below the project directory

    def __str__(self) -> str:
        return "exclude .gitignore matches"

    def path(self, relpath: str) -> str:
        """`relpath` (below the tree) as a path below the project directory."""
        return f"{self.prefix}/{relpath}" if self.prefix and relpath else (self.prefix or relpath)

    def test_dir(self, relpath: str, full: str) -> tuple[bool | None, str]:
        """Prune a directory git ignores."""
        line = self.ignored.match(self.path(relpath), is_dir=True)
        return (False, f"ignored by {line}") if line else (None, "")

    def test_file(self, relpath: str, info: FileInfo) -> tuple[bool | None, str]:
        """Skip a file git ignores."""
        line = self.ignored.match(self.path(relpath), is_dir=False)
        return (False, f"ignored by {line}") if line else (None, "")


@record
class FileInfo:
    """A file being considered: its size and, when asked, whether it is text."""

    full: str
    size: int
    _text: bool | None = None

    @property
    def is_text(self) -> bool:
        """Guild's test: known extensions, else a look at the first 1 KiB."""
        if self._text is None:
            self._text = is_text_file(self.full)
        return self._text


def is_text_file(path: str) -> bool:
    """True when `path` looks like text (known extension, or its first bytes)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in TEXT_EXTS:
        return True
    if ext in BINARY_EXTS:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return looks_like_text(head)


def looks_like_text(head: bytes) -> bool:
    """Guild's heuristic on a file's first bytes, with UTF-8/UTF-16 decoding
    standing in for its character-set detection."""
    if not head:
        return True
    low = len(head.translate(None, _PRINTABLE)) / len(head)
    high = len(head.translate(None, _HIGH)) / len(head)
    likely_binary = (low > 0.3 and high < 0.05) or (low > 0.8 and high > 0.8)
    decodable = _decodes(head) if any(b >= 0x80 for b in head) or head[:2] in (b"\xff\xfe", b"\xfe\xff") else False
    if likely_binary:
        return decodable
    if decodable:
        return True
    return b"\x00" not in head and b"\xff" not in head


def _decodes(head: bytes) -> bool:
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3  # only a character cut at the end of the sample


@record
class Decision:
    """Whether one path is part of the snapshot and, when not, why."""

    relpath: str
    selected: bool
    reason: str = ""  # for a skipped path: why, in words
    cause: str = ""  # "size" or "limit" when a rule's limit left it out
    limit: int = 0  # that limit
    is_dir: bool = False
    size: int = 0


@record
class Selector:
    """Rules applied to one tree, walked in Guild's order (top-down, sorted)."""

    root: str
    rules: list[Rule]
    skip_dirs: set[str] = field(default_factory=set)  # real paths never walked (the run being made)
    _counts: dict[int, int] = field(default_factory=dict)  # files selected per limited rule

    @property
    def disabled(self) -> bool:
        """True when no file can be selected (an untyped `exclude *` with no
        include after it): the tree is not even walked, as in Guild."""
        disabled = False
        for rule in self.rules:
            if rule.include:
                disabled = False
            elif "*" in rule.patterns and rule.type is None:
                disabled = True
        return disabled

    def walk(self) -> Iterator[Decision]:
        """A decision on each file and each pruned directory; links are never followed."""
        if self.disabled:
            return
        gitignore = next((r for r in self.rules if isinstance(r, GitIgnoreRule)), None)
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else rel_dir
            if gitignore is not None and ".gitignore" in filenames:
                gitignore.ignored.load(dirpath, gitignore.path(rel_dir))
            keep = []
            for name in sorted(dirnames):
                rel = _join(rel_dir, name)
                why = self._prune_reason(rel, os.path.join(dirpath, name))
                if why:
                    yield Decision(rel, False, why, is_dir=True)
                else:
                    keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                yield self._decide(_join(rel_dir, name), os.path.join(dirpath, name))

    def _prune_reason(self, rel: str, full: str) -> str:
        if os.path.islink(full):
            return "a symbolic link (not followed)"
        if os.path.realpath(full) in self.skip_dirs:
            return "the run directory"
        for rule in reversed(self.rules):  # the last rule that applies decides
            result, why = rule.test_dir(rel, full)
            if result is not None:
                return why
        return ""

    def _decide(self, rel: str, full: str) -> Decision:
        try:
            st = os.lstat(full)
        except OSError as e:
            return Decision(rel, False, f"unreadable: {e.strerror}")
        if stat.S_ISLNK(st.st_mode):
            return Decision(rel, False, "a symbolic link (not followed)")
        if not stat.S_ISREG(st.st_mode):
            return Decision(rel, False, "not a regular file")
        info = FileInfo(full, st.st_size)
        missed, missed_by = "", None  # the first failed test seen, and its rule: why nothing applied
        # The last rule that applies decides: test from the end, stop there.
        for index in range(len(self.rules) - 1, -1, -1):
            rule = self.rules[index]
            result, why = rule.test_file(rel, info)
            if result and rule.max_matches is not None:
                # A limit counts the files this rule selects; past it the rule no
                # longer applies (Guild counts every file it matches, even ones
                # a later rule excludes, and can drop files silently).
                if self._counts.get(index, 0) >= rule.max_matches:
                    result, why = None, "limit"
                else:
                    self._counts[index] = self._counts.get(index, 0) + 1
            if result is None:
                if why and not missed:
                    missed, missed_by = why, rule
                continue
            return Decision(rel, result, why, size=st.st_size)
        if missed == "limit":
            return Decision(rel, False, f"over the limit of {missed_by.max_matches} files", "limit",
                            limit=missed_by.max_matches, size=st.st_size)
        if missed == "size":
            return Decision(rel, False, f"larger than {format_size(missed_by.max_size)}", "size",
                            limit=missed_by.max_size, size=st.st_size)
        return Decision(rel, False, "not a text file" if missed == "type" else "selected by no rule", size=st.st_size)


def format_size(n: int) -> str:
    """`1 MB`, `1.5 MB`, `312 KB`, `12 bytes` (binary units, as limits are)."""
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _join(a: str, b: str) -> str:
    return f"{a}/{b}" if a else b
