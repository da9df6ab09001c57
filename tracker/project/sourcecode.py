"""An operation's `sourcecode:` rules, and the source snapshot of a run.

Guild 0.9's semantics: default rules select text files up to 1 MB, at most
100 of them (a warning names the limit); `- include:`/`- exclude:` rules add
to the defaults, a list of bare patterns replaces them. Beyond Guild (which
reads `.gitignore` only inside a git repository), `.gitignore` files always
apply, as in a repository. The digest is computed from the very bytes copied.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..records import field, record
from ..errors import OpError
from ..fsutil import hash_stream, is_inside, small_sha256
from .sourceselect import Decision, GitIgnoreRule, Rule, Selector, format_size

MAX_SIZE = 1024 * 1024  # Guild's defaults; its environment variables override them
MAX_COUNT = 100
_TYPES = ("dir", "text", "binary")


@record
class SourceSpec:
    """What `sourcecode:` of an operation (and of its model) says."""

    enabled: bool = True
    rules: list[Rule] = field(default_factory=list)  # after the default rules; untyped dir names not yet globbed
    root: str = "."  # below the project directory
    dest: str = "."  # below the run directory
    warnings: list[str] = field(default_factory=list)


@record
class _Parsed:
    disabled: bool = False
    rules: list[Rule] = field(default_factory=list)
    root: str | None = None
    dest: str | None = None


def parse_spec(value: Any, model_value: Any = None, where: str = "sourcecode") -> SourceSpec:
    """The SourceSpec of an operation's `sourcecode` value and its model's; OpError when malformed."""
    warnings: list[str] = []
    op, model = _parse(value, where, warnings), _parse(model_value, where, warnings)
    root = op.root or model.root or "."
    dest = _check_dest(op.dest or model.dest or ".", where)
    # Guild: the operation's rules disable or extend the model's.
    if op.disabled or (model.disabled and not op.rules):
        return SourceSpec(False, [], root, dest, warnings)
    return SourceSpec(True, model.rules + op.rules, root, dest, warnings)


def _parse(value: Any, where: str, warnings: list[str]) -> _Parsed:
    if value is None or value is True:
        return _Parsed()
    if value is False or value == []:
        return _Parsed(disabled=True)
    if isinstance(value, str):
        return _Parsed(rules=[Rule(False, ("*",)), _rule(value, True, where)])
    if isinstance(value, dict):
        extra = sorted(str(k) for k in value if k not in ("select", "root", "dest", "digest"))
        if extra:
            warnings.append(f"{where}: unexpected sourcecode attribute(s) {', '.join(extra)} ignored")
        parsed = _parse(value.get("select"), where, warnings)
        for key in ("root", "dest"):
            if value.get(key) is not None and not isinstance(value[key], str):
                raise OpError(f"{where}: sourcecode '{key}' must be a path, got {value[key]!r}")
        parsed.root, parsed.dest = value.get("root"), value.get("dest")
        return parsed
    if not isinstance(value, list):
        raise OpError(f"{where}: invalid sourcecode {value!r}: expected a list of rules, a pattern, or no",
                      "Write rules as '- include: PATTERN' / '- exclude: PATTERN', or bare patterns.")
    rules = []
    for item in value:
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            rules.append(_rule(str(item), True, where))
        elif isinstance(item, dict):
            rules.append(_rule_of_mapping(item, where))
        else:
            raise OpError(f"{where}: invalid sourcecode rule {item!r}: expected a pattern or a mapping")
    if all(not isinstance(item, dict) for item in value):
        rules.insert(0, Rule(False, ("*",)))  # bare patterns select only what they name
    return _Parsed(rules=rules)


def _rule_of_mapping(item: dict, where: str) -> Rule:
    kinds = [k for k in ("include", "exclude") if k in item]
    if len(kinds) != 1:
        problem = "has both include and exclude" if kinds else "needs an include or exclude key"
        raise OpError(f"{where}: sourcecode rule {item!r} {problem}",
                      "Use one '- include: PATTERN' or '- exclude: PATTERN' per list item, in the order they apply.")
    value, type = item[kinds[0]], None
    if isinstance(value, dict):
        type = next((t for t in _TYPES if t in value), None)
        if type is None:
            raise OpError(f"{where}: sourcecode rule {item!r}: expected patterns, or one of dir, text, binary")
        value = value[type]
    return _rule(value, kinds[0] == "include", where, type)


def _rule(value: Any, include: bool, where: str, type: str | None = None) -> Rule:
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        import yaml

        value = yaml.safe_load(value)  # Guild reads '[a, b]' as a list
    if isinstance(value, str):
        value = [value]
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(p, (str, int, float)) for p in value):
        raise OpError(f"{where}: invalid sourcecode pattern {value!r}: expected a string or a list of strings")
    return Rule(include, tuple(str(p) for p in value), type)


def _check_dest(dest: str, where: str) -> str:
    norm = os.path.normpath(dest)
    if os.path.isabs(norm) or norm == ".." or norm.startswith("../"):
        raise OpError(f"{where}: sourcecode dest '{dest}' is outside the run directory",
                      "dest is relative to the run directory: drop any leading '/' and '..'.")
    if norm.split("/")[0] == ".trk":
        raise OpError(f"{where}: sourcecode dest '{dest}' is inside the run's .trk metadata directory")
    return norm


def is_python_op(config: dict) -> bool:
    """True for a Python operation, which Guild also keeps caches, virtualenvs
    and build directories out of: `main:`, or `exec:` running Python."""
    if config.get("main"):
        return True
    first = str(config.get("exec") or "").split(maxsplit=1)[:1]
    word = os.path.basename(first[0]) if first else ""
    return word in ("${python_exe}", "${guild_python_exe}") or word.startswith("python")


def default_rules(python: bool) -> list[Rule]:
    """Guild's default rules (`MAX_DEFAULT_SOURCECODE_*` in the environment change the limits)."""
    size = _env_int("MAX_DEFAULT_SOURCECODE_FILE_SIZE", MAX_SIZE)
    count = _env_int("MAX_DEFAULT_SOURCECODE_COUNT", MAX_COUNT)
    rules = [
        Rule(False, (".*",), "dir"),
        Rule(False, ("*",), "dir", sentinel=".guild-nocopy"),
        Rule(True, ("*",), "text", max_size=size, max_matches=count),
    ]
    if python:
        rules += [
            Rule(False, ("__pycache__",), "dir"),
            Rule(False, ("*",), "dir", sentinel="bin/activate"),
            Rule(False, ("*",), "dir", sentinel="Scripts/activate"),
            Rule(False, ("build",), "dir"),
            Rule(False, ("dist",), "dir"),
            Rule(False, ("*.egg-info",), "dir"),
        ]
    return rules


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name) or default) or default
    except ValueError:
        return default


def selector(project_dir: str, spec: SourceSpec, python: bool = True, skip_dir: str | None = None) -> Selector:
    """The rules of `spec` over the project tree they apply to."""
    project_dir = os.path.realpath(project_dir)
    if not is_inside(project_dir, spec.root):
        raise OpError(f"sourcecode root '{spec.root}' is outside the project directory {project_dir}")
    src_root = os.path.realpath(os.path.join(project_dir, spec.root))
    prefix = os.path.relpath(src_root, project_dir)
    prefix = "" if prefix == "." else prefix
    gitignore = GitIgnoreRule(prefix)
    parts = prefix.split("/") if prefix else []
    for depth in range(len(parts)):  # the .gitignore files above the root apply too
        rel = "/".join(parts[:depth])
        gitignore.ignored.load(os.path.join(project_dir, rel), rel)
    config_rules = [_glob_dir(rule, src_root) for rule in spec.rules]
    # `.gitignore` applies as in Guild inside a git repository, which also
    # leaves git's own files (`.gitignore`, `.gitattributes`) out.
    git_rules = [gitignore, Rule(False, (".git*",))]
    rules = (default_rules(python) + git_rules + config_rules) if spec.enabled else [Rule(False, ("*",))]
    skip = {os.path.realpath(skip_dir)} if skip_dir else set()
    return Selector(src_root, rules, skip)


def _glob_dir(rule: Rule, root: str) -> Rule:
    """An untyped pattern naming a directory means the files under it (Guild)."""
    if rule.type is not None:
        return rule
    patterns = tuple(p.rstrip("/") + "/*" if os.path.isdir(os.path.join(root, p.lstrip("/"))) and p.strip("/")
                     else p for p in rule.patterns)
    return Rule(rule.include, patterns, rule.type, rule.sentinel, rule.max_size, rule.max_matches)


def op_spec(project, op) -> SourceSpec:
    """The SourceSpec of operation `op` of a loaded project (its model's rules first)."""
    model = project.models.get(op.model)
    # The file's line is looked up only for a message: finding it reads the YAML.
    at = lambda: project.where(op.keypath + ("sourcecode",))
    try:
        spec = parse_spec(op.config.get("sourcecode"), getattr(model, "sourcecode", None), f"operation {op.fullname}")
    except OpError as e:
        raise OpError(f"{at()}: {e.message}", e.hint) from None
    if spec.warnings:
        spec.warnings = [f"{at()}: {w}" for w in spec.warnings]
    return spec


@record
class Snapshot:
    """A run's source snapshot: its files (relative to the run directory),
    their digest, and where in the run they are (`dest:`)."""

    files: list[str]
    digest: str
    dest: str = "."


def copy_op_source(project, op, run_dir: str | None, warn: Callable[[str], None] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> Snapshot:
    """Copy the source of `op` into `run_dir` (None: copy nothing, only digest).

    `warn` gets a line for each default limit that left a file out;
    `progress(files copied, files to copy)` hears how the copy goes."""
    spec = op_spec(project, op)
    warn = warn or (lambda line: None)
    for line in spec.warnings:
        warn(f"WARNING: {line}")
    copied, digest, skipped = copy_source(project.dir, run_dir, spec, is_python_op(op.config), progress)
    for line in limit_warnings(skipped, op.fullname, project.filename):
        warn(line)
    return Snapshot(copied, digest, spec.dest)


def copy_source(project_dir: str, run_dir: str | None, spec: SourceSpec, python: bool = True,
                progress: Callable[[int, int], None] | None = None) -> tuple[list[str], str, list[Decision]]:
    """Copy the files `spec` selects into `run_dir`/dest; return (paths relative
    to the run directory, digest, the decisions on skipped paths).

    With `run_dir` None nothing is written: the digest a run would get now.
    `progress(done, total)` is called now and then (first with 0, last with
    done == total); to know the total, the tree is walked before copying.
    """
    copied: list[str] = []
    skipped: list[Decision] = []
    digest = small_sha256()
    if not spec.enabled:
        return copied, digest.hexdigest(), skipped
    dest = os.path.join(run_dir, spec.dest) if run_dir else None
    walk = selector(project_dir, spec, python, run_dir).walk()
    total = done = 0
    if progress is not None:  # without a listener the walk stays lazy
        walk = list(walk)
        total = sum(d.selected for d in walk)
        progress(0, total)
    for d in walk:
        if not d.selected:
            skipped.append(d)
            continue
        if progress is not None:
            done += 1
            if done % 50 == 0:
                progress(done, total)
        src = os.path.join(project_dir, spec.root, d.relpath)
        file_digest = _copy_one(src, os.path.join(dest, d.relpath) if dest else None)
        if file_digest is None:
            skipped.append(Decision(d.relpath, False, "could not be read"))
            continue
        digest.update(d.relpath.encode() + b"\0" + bytes.fromhex(file_digest))
        copied.append(os.path.normpath(os.path.join(spec.dest, d.relpath)))
    if progress is not None:
        progress(total, total)
    return copied, digest.hexdigest(), skipped


def limit_warnings(skipped: list[Decision], opname: str, filename: str) -> list[str]:
    """A warning for each file too big, and one when the file limit was reached."""
    fix = f"define 'sourcecode' for {opname} in {filename} ('trk run {opname} --test-sourcecode' shows the files)"
    lines = [f"WARNING: source file {d.relpath} ({format_size(d.size)}) not copied: {d.reason}; to copy it, "
             f"add '- include: {d.relpath}' to sourcecode of {opname} in {filename}"
             for d in skipped if d.cause == "size"]
    over = [d for d in skipped if d.cause == "limit"]
    if over:
        n = over[0].limit
        lines.append(f"WARNING: more than {n} source files: only the first {n} were copied ({len(over)} left out, "
                     f"the default limit is {n} files); to choose the files, {fix}")
    return lines


def describe_source(project, op) -> str:
    """What `trk run OP --test-sourcecode` prints: the rules, the files they
    select and those they skip (with why); nothing is copied."""
    spec = op_spec(project, op)
    root = os.path.realpath(os.path.join(project.dir, spec.root))
    here = os.path.realpath(".")
    where = "the current directory" if root == here else f"'{os.path.relpath(root)}'"
    lines = [f"Copying from {where}" + (f" to '{spec.dest}' in the run directory" if spec.dest != "." else "")]
    lines += [f"WARNING: {w}" for w in spec.warnings]
    if op.is_stepped:  # a pipeline's steps have their own source
        return "\n".join(lines + ["Rules:", "Source code copy disabled"])
    sel = selector(project.dir, spec, is_python_op(op.config))
    decisions = list(sel.walk())
    shown = [r for r in sel.rules if not isinstance(r, GitIgnoreRule) or r.ignored.specs]
    lines += ["Rules:"] + [f"  {rule}" for rule in shown]
    if sel.disabled:
        return "\n".join(lines + ["Source code copy disabled"])

    def path(d: Decision) -> str:  # as Guild shows them: relative to the current directory
        return os.path.relpath(os.path.join(root, d.relpath), here) + ("/" if d.is_dir else "")

    lines.append("Selected for copy:")
    lines += [f"  {path(d)}" for d in decisions if d.selected]
    lines.append("Skipped:")
    skipped = [(path(d), d.reason) for d in decisions if not d.selected]
    width = max((len(p) for p, _ in skipped), default=0)
    lines += [f"  {p.ljust(width)}  ({why})" for p, why in skipped]
    return "\n".join(lines)


def _copy_one(full: str, target: str | None) -> str | None:
    """Copy one source file (if `target`) and return its SHA-256; None when
    it cannot be read as a regular file."""
    # O_NOFOLLOW: a file swapped for a link after the walk is not followed out
    # of the project. O_NONBLOCK: a FIFO is skipped below, not waited on.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        with os.fdopen(os.open(full, flags), "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            if target is None:
                return hash_stream(f, small=True)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                with open(target, "wb") as out:
                    file_digest = hash_stream(f, out, small=True)
            except OSError:
                os.unlink(target)  # no half file in the snapshot
                raise
            os.chmod(target, st.st_mode & 0o777)
            return file_digest
    except OSError:
        return None
