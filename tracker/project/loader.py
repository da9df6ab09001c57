"""Project files: `trk.yml`, or Guild's `guild.yml` with the same schema.

A project file is a list of models (`- model: NAME` with `operations:`) or a
mapping of operations for one anonymous model. Errors name file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProjectError
from .flags import FlagConfigError, FlagDef, flagdefs_from_config

PROJECT_FILES = ("trk.yml", "guild.yml")

# Fields an operation may carry. Guild's other fields are accepted silently so
# Guild projects load unchanged; anything else draws a warning.
OP_FIELDS = {
    "main", "exec", "steps", "flags", "description", "output-scalars", "sourcecode",
    "requires", "label", "tags", "env", "compare", "default", "needs", "checks",
}
GUILD_OP_FIELDS = {
    "plugins", "python-path", "python-requires", "pip-freeze", "flags-dest",
    "flags-import", "flags-import-skip", "objective", "optimizers", "optimizer",
    "handle-keyboard-interrupt", "stoppable", "set-trace", "delete-on-success",
    "publish", "run-attrs", "env-secrets", "can-stage-trials", "default-max-trials",
    "remotes", "output-attrs", "tags", "steps-parallel",
}


@dataclass
class OpDef:
    """One operation of a model, as written in the project file."""

    model: str
    name: str
    config: dict[str, Any]
    flags: dict[str, FlagDef]
    keypath: tuple = ()  # where its mapping is in the project file, for `Project.where`

    @property
    def fullname(self) -> str:
        """`model:op`, or `op` for the anonymous model."""
        return f"{self.model}:{self.name}" if self.model else self.name

    @property
    def main(self) -> str | None:
        """The `main:` Python module spec, if any."""
        return self.config.get("main")

    @property
    def exec(self) -> str | None:
        """The `exec:` command template, if any."""
        return self.config.get("exec")

    @property
    def steps(self) -> Any:
        """The raw `steps:` data of a stepped operation."""
        return self.config.get("steps")

    @property
    def is_stepped(self) -> bool:
        """True for a pipeline (an operation with `steps:`)."""
        return "steps" in self.config

    @property
    def description(self) -> str:
        """The operation's description, stripped."""
        return str(self.config.get("description") or "").strip()


@dataclass
class Model:
    """A model of the project file: a name and its operations."""
    name: str
    operations: dict[str, OpDef] = field(default_factory=dict)
    description: str = ""

    def __getitem__(self, opname: str) -> OpDef:
        return self.operations[opname]


@dataclass
class Project:
    """A loaded project: its directory, file and models."""

    dir: str
    path: str
    models: dict[str, Model]
    warnings: list[str] = field(default_factory=list)
    lines: "_LineFinder | None" = field(default=None, repr=False, compare=False)

    @property
    def filename(self) -> str:
        """The project file's name (`trk.yml` or `guild.yml`)."""
        return os.path.basename(self.path)

    def where(self, keypath: tuple) -> str:
        """`FILE, line N` of a key path in the project file, to start a message."""
        line = self.lines.line(keypath) if self.lines is not None else 1
        return f"{self.filename}, line {line}"


def find_project_file(dir: str) -> str | None:
    """The project file in `dir` (trk.yml first, then guild.yml), or None."""
    for name in PROJECT_FILES:
        path = os.path.join(dir, name)
        if os.path.isfile(path):
            return path
    return None


def load(dir: str = ".", cache_dir: str | None = None) -> Project:
    """Load the project in `dir`; raise ProjectError naming file and line.

    With `cache_dir`, the parsed file is cached as JSON keyed by its path,
    size and mtime, so a repeated `trk run` does not even import YAML.
    """
    dir = os.path.abspath(dir)
    path = find_project_file(dir)
    if path is None:
        raise ProjectError(
            f"no project file in {dir}",
            "Create trk.yml (or guild.yml) there, or cd to a project directory.",
        )
    return load_file(path, cache_dir)


def load_file(path: str, cache_dir: str | None = None) -> Project:
    """Load one project file (see `load`)."""
    name = os.path.basename(path)
    path = os.path.abspath(path)
    cached = _cached(path, cache_dir)
    if cached is _MISS:
        data, warnings = _parse(path, name)
        _store(path, cache_dir, data, warnings)
    else:
        data, warnings = cached
    lines = _LineFinder(path)
    project = Project(os.path.dirname(path), path, {}, list(warnings), lines)
    try:
        _build(project, data, lines)
    except _Invalid as e:
        raise ProjectError(f"{name}, line {lines.line(e.path)}: {e.message}", exit_code=e.exit_code) from None
    return project


_MISS = object()
_CACHE_VERSION = 2  # entries carry the parse warnings (duplicate keys) since version 2


def _cache_file(path: str, cache_dir: str) -> str:
    import hashlib

    return os.path.join(cache_dir, "projects", hashlib.sha256(path.encode()).hexdigest()[:32] + ".json")


def _signature(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _cached(path: str, cache_dir: str | None):
    if not cache_dir:
        return _MISS
    import json

    try:
        with open(_cache_file(path, cache_dir), encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return _MISS
    if entry.get("version") != _CACHE_VERSION or entry.get("signature") != _signature(path):
        return _MISS
    return entry.get("data"), entry.get("warnings") or []


def _store(path: str, cache_dir: str | None, data, warnings: list[str]) -> None:
    if not cache_dir:
        return
    import json

    from ..fsutil import atomic_write

    import time

    signature = _signature(path)
    if signature is None or time.time_ns() - signature[1] < 2_000_000_000:
        return  # modified just now: a same-size edit in the same mtime tick would go unseen
    try:
        text = json.dumps({"version": _CACHE_VERSION, "signature": signature, "data": data, "warnings": warnings})
        if json.loads(text)["data"] != data:
            return  # not JSON-exact (non-string keys, dates): always parse YAML
        os.makedirs(os.path.join(cache_dir, "projects"), exist_ok=True)
        atomic_write(_cache_file(path, cache_dir), text)
    except (TypeError, ValueError, OSError):
        pass


def _parse(path: str, name: str) -> tuple[Any, list[str]]:
    """The file's data and its warnings (duplicate keys); ProjectError naming
    the line when it is not valid YAML."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ProjectError(f"cannot read {name}: {e}") from None
    loader = _loader_class()(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        problem = e.problem or str(e)
        if e.context:
            problem = f"{problem} ({e.context})"
        raise ProjectError(f"{name}, line {line}: {problem}") from None
    except yaml.YAMLError as e:
        raise ProjectError(f"{name}: {e}") from None
    finally:
        loader.dispose()
    warnings = [
        f"{name}, line {line}: duplicate key '{key}' (first at line {first}); the last one wins"
        for key, first, line in loader.duplicates
    ]
    return data, warnings


_LOADER = None


def _loader_class():
    """A safe YAML loader (libyaml's C one when present) that records
    duplicate mapping keys, which plain YAML loading silently drops."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        def __init__(self, stream):
            super().__init__(stream)
            self.duplicates: list[tuple[Any, int, int]] = []  # (key, first line, line)

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                self._note_duplicates(node)
            return super().construct_mapping(node, deep=deep)

        def _note_duplicates(self, node) -> None:
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                # `<<` merge keys are meant to be overridden: not duplicates.
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                try:
                    seen = first.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:
                    continue
                if seen != key_node.start_mark.line + 1:
                    self.duplicates.append((key, seen, key_node.start_mark.line + 1))

    # A date (`default: 2020-01-02`) stays the text it was written as: flag
    # values must be JSON (run attrs, `flags-dest: globals`), and a program
    # gets that text anyway.
    Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_str)
    _LOADER = Loader
    return Loader


class _Invalid(Exception):
    def __init__(self, path: tuple, message: str, exit_code: int | None = None):
        self.path = path
        self.message = message
        self.exit_code = exit_code


class _LineFinder:
    """Finds the line of a key path in the project file; reads and composes
    the YAML only when a line is asked for (on an error or warning)."""

    def __init__(self, path: str):
        self.path = path
        self._root = None

    def line(self, path: tuple) -> int:
        import yaml

        if self._root is None:
            try:
                with open(self.path, encoding="utf-8") as f:
                    self._root = yaml.compose(f.read(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                return 1  # changed or gone since it was loaded: the message still names the file
        node = self._root
        if node is None:
            return 1
        for key in path:
            child = None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if k.value == str(key):
                        child = v  # no break: with duplicate keys the last one wins
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
                if 0 <= key < len(node.value):
                    child = node.value[key]
            if child is None:
                break
            node = child
        return node.start_mark.line + 1


def _build(project: Project, data: Any, lines: _LineFinder) -> None:
    if data is None:
        return
    if isinstance(data, dict):
        project.models[""] = _model("", data, (), project, lines)
        return
    if not isinstance(data, list):
        raise _Invalid((), "expected a list of models or a mapping of operations")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise _Invalid((i,), f"expected a model mapping ('- model: NAME'), got {item!r}")
        if "model" not in item:
            if "config" in item or "package" in item:
                continue  # Guild config/package sections carry no operations
            raise _Invalid((i,), "model entry must define 'model: NAME'")
        name = item.get("model")
        name = "" if name is None else str(name)
        if name in project.models:
            raise _Invalid((i, "model"), f"duplicate model '{name}'")
        ops = item.get("operations") or {}
        if not isinstance(ops, dict):
            raise _Invalid((i, "operations"), f"'operations' of model '{name}' must be a mapping")
        model = _model(name, ops, (i, "operations"), project, lines)
        model.description = str(item.get("description") or "")
        project.models[name] = model


def _model(name: str, ops: dict, path: tuple, project: Project, lines: _LineFinder) -> Model:
    model = Model(name)
    for opname, cfg in ops.items():
        opname = str(opname)
        oppath = path + (opname,)
        if cfg is None:
            cfg = {}
        elif isinstance(cfg, str):
            cfg = {"main": cfg}
        if not isinstance(cfg, dict):
            raise _Invalid(oppath, f"operation '{opname}' must be a mapping, got {cfg!r}")
        kinds = [k for k in ("main", "exec", "steps") if k in cfg]
        if len(kinds) > 1:
            raise _Invalid(oppath, f"operation '{opname}' defines both {kinds[0]!r} and {kinds[1]!r}: use one")
        for k in ("main", "exec"):
            if k in cfg and not isinstance(cfg[k], str):
                raise _Invalid(oppath + (k,), f"'{k}' of operation '{opname}' must be a string")
        if "requires" in cfg and cfg["requires"] is not None and not isinstance(cfg["requires"], (list, dict, str)):
            raise _Invalid(oppath + ("requires",), f"'requires' of operation '{opname}' must be a list")
        try:
            flags = flagdefs_from_config(cfg.get("flags"), f"operation '{opname}'")
        except FlagConfigError as e:
            raise _Invalid(oppath + ("flags",) + e.keypath, str(e), e.exit_code) from None
        for key in cfg:
            if key not in OP_FIELDS and key not in GUILD_OP_FIELDS:
                project.warnings.append(
                    f"{project.filename}, line {lines.line(oppath + (key,))}: "
                    f"unknown field '{key}' in operation '{opname}' ignored"
                )
        model.operations[opname] = OpDef(name, opname, cfg, flags, oppath)
    return model
