"""Parsing an operation's `requires:` into `Dependency` values (nothing resolved).

Guild's forms are accepted: a list, one mapping or a string. A string names
a model's `resources:` entry (`data`, or `model:data` for another model's);
any other string is trk's shorthand (`prepare`, `operation:prepare`,
`file:x`, a URL). A mapping is one source, an inline resource (`sources:`)
or a reference (`resource: NAME`). Each source becomes one Dependency; the
resource it belongs to gives its `resource` name and its defaults.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import DependencyError
from ..project.loader import OpDef

KINDS = ("operation", "file", "url", "config", "module")
TARGET_TYPES = ("copy", "link")

# How a dependency arrives when `target-type:` is not given. Upstream runs and
# project files are copied, so a program writing to its input changes only
# its own run; cached downloads are linked (read-only, and re-verified each
# time they are reused).
DEFAULT_TARGET_TYPE = {"operation": "copy", "file": "copy", "url": "link", "config": "copy", "module": "copy"}

# Attributes Guild knows on a source; anything else draws a warning, as in Guild.
SOURCE_KEYS = {
    *KINDS, "name", "sha256", "unpack", "type", "select", "select-min", "select-max", "warn-if-empty",
    "optional", "fail-if-empty", "rename", "help", "post-process", "target-path", "path", "target-type",
    "replace-existing", "always-resolve", "preserve-path", "params", "flag-name", "description", "link",
}
RESOURCE_KEYS = {"name", "description", "sources", "target-path", "path", "target-type", "default-unpack",
                 "private", "references", "preserve-path"}


class Select(NamedTuple):
    """One `select` (or `select-min`/`select-max`) pattern."""

    pattern: str
    reduce: str | None = None  # None, "min" or "max": keep the match whose first group is least/greatest


class Rename(NamedTuple):
    """One `rename` rule: a regex and its replacement, applied to a base name."""

    pattern: str
    repl: str


@dataclass
class Dependency:
    """One source of an operation's `requires:`."""

    kind: str  # operation, file, url, config or module
    spec: str  # operation name (or regex), project path, URL or module name
    select: list[Select] = field(default_factory=list)
    target_path: str = ""
    target_type: str = "copy"  # copy or link: how the files arrive in the run
    sha256: str | None = None
    alias: str | None = None  # the source's `name:`
    flag_name: str | None = None
    rename: list[Rename] = field(default_factory=list)
    optional: bool = False
    warn_if_empty: bool = True
    fail_if_empty: bool = False
    unpack: bool = True
    archive_type: str | None = None  # `type:` (zip, tar, gzip), else guessed from the name
    post_process: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    preserve_path: bool = False
    replace_existing: bool = False
    help: str | None = None
    resource: str = ""  # the requires entry (resource) it belongs to, as `Resolving` names it
    entry: int = 0  # the index of that entry in `requires:`
    extra_names: list[str] = field(default_factory=list)  # more names `NAME=RUN` may use
    notes: list[str] = field(default_factory=list)  # warnings to show when it is resolved

    @property
    def link(self) -> bool:
        """True when the run gets a symlink rather than a copy."""
        return self.target_type == "link"

    @property
    def name(self) -> str:
        """`KIND:SPEC`, how the dependency is named in attrs and `--needed`."""
        return f"{self.kind}:{self.spec}"

    @property
    def resolving_name(self) -> str:
        """Guild's name for the source in messages and labels: `name`, `flag-name` or `KIND:SPEC`."""
        return self.alias or self.flag_name or self.name

    @property
    def short(self) -> str:
        """The dependency's `name:`, or the operation or file name alone."""
        if self.alias:
            return self.alias
        if self.kind == "operation":
            return self.spec.rpartition(":")[2]
        return os.path.basename(self.spec.rstrip("/")) or self.spec

    def run_names(self) -> list[str]:
        """Names `NAME=RUN` may give an operation dependency: Guild's (its
        `flag-name`, else its `name`, else `operation:OP` and `OP`), then trk's."""
        if self.flag_name:
            names = [self.flag_name]
        elif self.alias:
            names = [self.alias]
        else:
            names = [self.name, self.spec, self.short]
        return names + self.extra_names


def parse_requires(op: OpDef, flags: dict[str, Any] | None = None) -> list[Dependency]:
    """An operation's `requires:` (a list, one mapping or a string) as Dependencies.

    `flags` fill `${flag}` references in resource names; other references
    are filled when the dependency is resolved.
    """
    data = op.config.get("requires")
    if data is None:
        return []
    deps = []
    for i, item in enumerate(data if isinstance(data, list) else [data]):
        for dep in _entry(item, op, flags or {}):
            dep.entry = i
            deps.append(dep)
    return deps


def _entry(item: Any, op: OpDef, flags: dict[str, Any]) -> list[Dependency]:
    if isinstance(item, str):
        from ..project.resolve import interpolate

        found = _named_resource(interpolate(item, flags), op)
        if found is not None:
            return _resource(found[0], found[1], op)
        return _resource(None, {"sources": [_shorthand(item, "operation")]}, op)
    if isinstance(item, dict):
        if "resource" in item:
            name = str(item["resource"])
            found = _named_resource(name, op)
            if found is None:
                raise DependencyError(f"resource '{name}' required by operation '{op.fullname}' is not defined",
                                      "Define it under the model's resources:, or name a model:resource.")
            return _resource(found[0], found[1], op)
        if "sources" in item:
            return _resource(item.get("name"), item, op)
        return _resource(None, {"sources": [item]}, op)
    raise DependencyError(f"invalid dependency {item!r} in {op.fullname}: expected a string or a mapping")


def _named_resource(spec: str, op: OpDef) -> tuple[str, Any] | None:
    """(name, definition) of the resource `spec` names: `NAME` in the
    operation's model, or `MODEL:NAME`; None when there is none."""
    resources = getattr(op, "resources", None) or {}
    if spec in resources:
        return spec.rpartition(":")[2], resources[spec]
    return None


def _resource(name: Any, data: Any, op: OpDef) -> list[Dependency]:
    where = f"resource '{name}' of {op.fullname}" if name else f"dependency of {op.fullname}"
    if isinstance(data, list):
        data = {"sources": data}
    if not isinstance(data, dict):
        raise DependencyError(f"invalid {where}: {data!r} (expected a mapping or a list of sources)")
    sources = data.get("sources")
    if not isinstance(sources, list) or not sources:
        raise DependencyError(f"invalid {where}: 'sources' must be a non-empty list, not {sources!r}")
    deps = [_source(s, data, op) for s in sources]
    label = str(name) if name else ",".join(d.resolving_name for d in deps)
    for d in deps:
        d.resource = label
    if name and len(deps) == 1:
        deps[0].extra_names.append(str(name))  # trk: `NAME=RUN` also by the resource's name
    return deps


def _shorthand(item: str, default_kind: str) -> dict:
    """`KIND:SPEC`, a URL, else `default_kind` (operation in `requires:`, file
    in a resource's `sources:`, as in Guild)."""
    kind, sep, spec = item.partition(":")
    if sep and kind in KINDS and kind != "url":
        return {kind: spec}
    if kind == "url" and sep:
        return {"url": spec}
    if item.startswith(("http://", "https://", "ftp://")):
        return {"url": item}
    return {default_kind: item}


def _source(item: Any, res: dict, op: OpDef) -> Dependency:
    if isinstance(item, str):
        item = _shorthand(item, "file")
    if not isinstance(item, dict):
        raise DependencyError(f"invalid dependency {item!r} in {op.fullname}: expected a mapping")
    kinds = [k for k in KINDS if item.get(k) not in (None, "")]
    if len(kinds) != 1:
        raise DependencyError(f"invalid dependency {item!r} in {op.fullname}: give exactly one of "
                              "operation, file, url, config or module")
    kind = kinds[0]
    spec = str(item[kind])
    where = f"{kind} dependency '{spec}' in {op.fullname}"
    dep = Dependency(kind=kind, spec=spec, select=_select(item, where),
                     target_path=str(item.get("target-path") or item.get("path")
                                     or res.get("target-path") or res.get("path") or ""),
                     target_type=_target_type(item, res, kind, where), sha256=_sha256(item, where),
                     alias=_opt_str(item.get("name")), flag_name=_opt_str(item.get("flag-name")),
                     rename=_rename(item.get("rename"), where), optional=bool(item.get("optional")),
                     warn_if_empty=bool(item.get("warn-if-empty", True)),
                     fail_if_empty=bool(item.get("fail-if-empty")),
                     unpack=bool(item.get("unpack", res.get("default-unpack", True))),
                     archive_type=_opt_str(item.get("type")), post_process=_opt_str(item.get("post-process")),
                     params=_params(item.get("params"), where), preserve_path=bool(item.get("preserve-path")),
                     replace_existing=bool(item.get("replace-existing")), help=_opt_str(item.get("help")))
    dep.notes += [f"WARNING: unexpected source attribute '{k}' in {where}" for k in item if k not in SOURCE_KEYS]
    if dep.preserve_path and (item.get("target-path") or item.get("path")):
        dep.notes.append(f"WARNING: target-path '{dep.target_path}' specified with preserve-path - ignoring")
    return dep


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _select(item: dict, where: str) -> list[Select]:
    """`select`, `select-min` and `select-max`, each a pattern or a list."""
    out = []
    for key, reduce in (("select", None), ("select-min", "min"), ("select-max", "max")):
        value = item.get(key)
        if value is None:
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, dict):  # trk's older `- file: PATTERN` form
                v = v.get("file", "")
            if not isinstance(v, (str, int, float)):
                raise DependencyError(f"invalid {key} {v!r} for {where}: expected a pattern or a list of them")
            out.append(Select(str(v), reduce))
    return out


def _rename(value: Any, where: str) -> list[Rename]:
    """Guild's `rename`: `'PATTERN REPL'` (shell-quoted words; one word
    renames the whole name), a `pattern`/`repl` mapping (`from`/`to` too), or a list."""
    if value is None:
        return []
    rules = []
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, str):
            try:
                parts = shlex.split(v)
            except ValueError as e:
                raise DependencyError(f"invalid rename {v!r} for {where}: {e}") from None
            if len(parts) == 1:
                parts = [".*", parts[0]]
            if len(parts) != 2:
                raise DependencyError(f"invalid rename {v!r} for {where}: expected 'PATTERN REPL' or 'NAME'",
                                      "Quote a pattern or replacement that holds spaces.")
            rules.append(Rename(*parts))
        elif isinstance(v, dict):
            rules.append(Rename(str(v.get("pattern", v.get("from", ""))), str(v.get("repl", v.get("to", "")))))
        else:
            raise DependencyError(f"invalid rename {v!r} for {where}: expected a string or a mapping")
    for rule in rules:
        try:
            re.compile(rule.pattern)
        except re.error as e:
            raise DependencyError(f"invalid rename pattern {rule.pattern!r} for {where}: {e}") from None
    return rules


def _params(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DependencyError(f"invalid params {value!r} for {where}: expected a mapping")
    return {str(k): v for k, v in value.items()}


def _sha256(item: dict, where: str) -> str | None:
    sha = item.get("sha256")
    if sha is None:
        return None
    sha = str(sha).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise DependencyError(f"invalid sha256 for {where}: {item.get('sha256')!r}",
                              "Give the 64 hex digits of the file's SHA-256, in quotes.")
    return sha


def _target_type(item: dict, res: dict, kind: str, where: str) -> str:
    """Guild's `target-type: link|copy` (the source's, else its resource's);
    `link: yes` is trk's older spelling of `link`."""
    given = item.get("target-type", item.get("target_type", res.get("target-type")))
    if given is not None and str(given).lower() not in TARGET_TYPES:
        raise DependencyError(f"invalid target-type {str(given)!r} for {where}: use link or copy")
    if "link" in item:
        linked = "link" if item["link"] else "copy"
        if given is not None and str(given).lower() != linked:
            raise DependencyError(f"conflicting link: {item['link']!r} and target-type: {given} for {where}",
                                  "Give only target-type: link or target-type: copy.")
        return linked
    return str(given).lower() if given is not None else DEFAULT_TARGET_TYPE[kind]


def dependency_names(op: OpDef) -> set[str]:
    """Names a user may assign a run to on the command line (`prepare=RUN`)."""
    names: set[str] = set()
    for dep in parse_requires(op):
        if dep.kind == "operation":
            names.update(dep.run_names())
    return names


def take_dep_specs(op: OpDef, assigned: dict[str, Any], texts: dict[str, str] | None = None) -> dict[str, str]:
    """Move `NAME=RUN` assignments that name a dependency (not a flag) out of
    `assigned`; they pick the upstream run for dependency NAME. `texts` holds
    the values as typed (`parse_assigns`), used over their parsed form."""
    if not op.config.get("requires"):
        return {}
    names = dependency_names(op)
    texts = texts or {}
    specs = {}
    for name in list(assigned):
        if name in names and name not in op.flags:
            value = assigned.pop(name)
            specs[name] = texts.get(name, str(value))
    return specs


def project_local_paths(op: OpDef) -> list[str]:
    """Project paths the operation's `file:` and `config:` sources name, as
    written (Guild leaves these out of a run's source code snapshot)."""
    try:
        deps = parse_requires(op)
    except DependencyError:
        return []
    return [os.path.normpath(d.spec) for d in deps if d.kind in ("file", "config") and "${" not in d.spec]
