"""Project files: `trk.yml`, or Guild's `guild.yml` with the same schema.

A project file is a list of models (`- model: NAME` with `operations:`) or a
mapping of operations for one anonymous model; `guildfile` reads Guild's
forms (configs, `extends`, includes) into models. Errors name file and line.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..records import field, record
from ..errors import ProjectError
from . import cache
from .flags import FlagConfigError, FlagDef, flagdefs_from_config
from .guildfile import InFile, Invalid, ModelSpec, build_models, expand_includes

PROJECT_FILES = ("trk.yml", "guild.yml")

# Fields an operation may carry. Guild's other fields are accepted silently so
# Guild projects load unchanged; anything else draws a warning.
OP_FIELDS = {
    "main", "exec", "steps", "flags", "description", "output-scalars", "sourcecode",
    "requires", "label", "tags", "env", "compare", "default", "needs", "checks",
    "resources", "image",
}
GUILD_OP_FIELDS = {
    "plugins", "python-path", "python-requires", "pip-freeze", "flags-dest",
    "flags-import", "flags-import-skip", "objective", "optimizers", "optimizer",
    "handle-keyboard-interrupt", "stoppable", "set-trace", "delete-on-success",
    "publish", "run-attrs", "env-secrets", "can-stage-trials", "default-max-trials",
    "remotes", "output-attrs", "tags", "steps-parallel",
}


@record
class OpDef:
    """One operation of a model, as written in the project file."""

    model: str
    name: str
    config: dict[str, Any]
    flags: dict[str, FlagDef]
    keypath: tuple = ()  # where its mapping is in the project file, for `Project.where`
    # The `resources:` its `requires:` may name: its model's as NAME, any model's as MODEL:NAME.
    resources: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

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

    @property
    def label(self) -> str | None:
        """The `label:` template of the operation's runs, if any."""
        label = self.config.get("label")
        return None if label is None else str(label)

    @property
    def default(self) -> bool:
        """True for the model's `default: yes` operation."""
        return bool(self.config.get("default"))


@record
class Model:
    """A model of the project file: a name, its operations and what Guild keeps of it."""
    name: str
    operations: dict[str, OpDef] = field(default_factory=dict)
    description: str = ""
    default: bool = False
    references: list = field(default_factory=list)
    resources: dict = field(default_factory=dict)  # named dependency sets, `$include`s resolved
    sourcecode: Any = None  # the model's `sourcecode:` (see project.sourcecode)

    def __getitem__(self, opname: str) -> OpDef:
        return self.operations[opname]

    @property
    def default_operation(self) -> OpDef | None:
        """The `default: yes` operation, else the only one not named `_...`, as in Guild."""
        public = []
        for op in self.operations.values():
            if op.default:
                return op
            if not op.name.startswith("_"):
                public.append(op)
        return public[0] if len(public) == 1 else None


@record
class Project:
    """A loaded project: its directory, file and models."""

    dir: str
    path: str
    models: dict[str, Model]
    warnings: list[str] = field(default_factory=list)
    lines: "_LineFinder | None" = field(default=None, repr=False, compare=False)
    _included: dict = field(default_factory=dict, repr=False, compare=False)
    cache_dir: str | None = field(default=None, repr=False, compare=False)  # also caches flags imported from scripts

    @property
    def filename(self) -> str:
        """The project file's name (`trk.yml` or `guild.yml`)."""
        return os.path.basename(self.path)

    @property
    def default_model(self) -> Model | None:
        """The only model, else the `default: yes` one, as in Guild."""
        if len(self.models) == 1:
            return next(iter(self.models.values()))
        return next((m for m in self.models.values() if m.default), None)

    def where(self, keypath: tuple) -> str:
        """`FILE, line N` of a key path in the project file (or in a file it
        includes, when the path starts with `InFile`), to start a message."""
        if keypath and isinstance(keypath[0], InFile):
            path = keypath[0].path
            finder = self._included.setdefault(path, _LineFinder(path))
            return f"{os.path.relpath(path, self.dir)}, line {finder.line(keypath[1:])}"
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
    from .formats import load_formats

    dir = os.path.abspath(dir)
    path = find_project_file(dir)
    if path is None:
        models = load_formats(dir, cache_dir)
        if not models:
            raise ProjectError(
                f"no project file in {dir}",
                "Create trk.yml (or guild.yml) there, or cd to a project directory.",
            )
        project = Project(dir, os.path.join(dir, "trk.yml"), {}, cache_dir=cache_dir)
    else:
        project = load_file(path, cache_dir)
        models = load_formats(dir, cache_dir)
    for model in models:  # dvc.yaml, dstack, Valohai, Gradient pipelines (cached as the project file is)
        project.models.setdefault(model.name, model)  # the project file's own model of that name wins
        project.warnings += getattr(model, "warnings", [])  # a format's unknown keys, with file and line
    return project


def load_file(path: str, cache_dir: str | None = None) -> Project:
    """Load one project file (see `load`)."""
    path = os.path.abspath(path)
    project = Project(os.path.dirname(path), path, {}, [], _LineFinder(path), cache_dir=cache_dir)
    try:
        found = cache.cached(path, cache_dir)
        if found is cache.MISS:
            data, warnings, files = _read(project)
            cache.store(path, files, cache_dir, data, warnings)
        else:
            data, warnings = found
        project.warnings += warnings
        for spec in build_models(data["items"], data["sources"], path):
            project.models[spec.name] = _model(spec, project)
        _share_resources(project)
    except Invalid as e:
        raise ProjectError(f"{project.where(e.path)}: {e.message}", exit_code=e.exit_code) from None
    return project


def _read(project: Project) -> tuple[dict, list[str], list[str]]:
    """The project file's entries, with those of the files it `include:`s;
    the parse warnings; and every file read."""
    files = [project.path]
    data, warnings = _parse(project.path, project.filename)

    def read(path: str) -> Any:
        included, more = _parse(path, os.path.relpath(path, project.dir))
        warnings.extend(more)
        files.append(path)
        return included

    items, sources = expand_includes(data, project.path, read, project.path)
    return {"items": items, "sources": sources}, warnings, files


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
    # Guild reads `1e-3` and `123e2` (no dot, or no exponent sign) as floats,
    # which plain YAML 1.1 reads as text.
    import re

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*[eE][0-9]+|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+[eE][-+][0-9]+)$"),
        list("-+0123456789."))
    _LOADER = Loader
    return Loader


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
        return node_line(self._root, path)


def node_line(root, path: tuple) -> int:
    """The line of the deepest node of a YAML node tree that `path` (keys
    and list indexes) reaches; 1 for an empty document."""
    import yaml

    node = root
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


def _share_resources(project: Project) -> None:
    """Give each operation the resources its `requires:` may name (Guild's NAME and MODEL:NAME)."""
    models = [m for m in project.models.values() if isinstance(m.resources, dict)]
    every = {f"{m.name}:{k}": v for m in models for k, v in m.resources.items()}
    for m in models:
        own = {str(k): v for k, v in m.resources.items()}
        for op in m.operations.values():
            op.resources = {**every, **own}


def _model(spec: ModelSpec, project: Project) -> Model:
    """A model's operations checked and built from what `guildfile` resolved."""
    model = Model(spec.name, description=spec.description, default=spec.default,
                  references=spec.references, resources=spec.resources, sourcecode=spec.sourcecode)
    for opname, (cfg, oppath) in spec.operations.items():
        kinds = [k for k in ("main", "exec", "steps") if k in cfg]
        if len(kinds) > 1:
            raise Invalid(oppath, f"operation '{opname}' defines both {kinds[0]!r} and {kinds[1]!r}: use one")
        if not kinds:
            # Guild's default: the module named as the operation (`prepare-data.py` -> prepare_data).
            main = opname[:-3] if opname.lower().endswith(".py") else opname
            cfg["main"] = main.replace("-", "_")
        for k in ("main", "exec", "image"):
            if k in cfg and not isinstance(cfg[k], str):
                raise Invalid(oppath + (k,), f"'{k}' of operation '{opname}' must be a string")
        if "requires" in cfg and cfg["requires"] is not None and not isinstance(cfg["requires"], (list, dict, str)):
            raise Invalid(oppath + ("requires",), f"'requires' of operation '{opname}' must be a list")
        try:
            flags = flagdefs_from_config(cfg.get("flags"), f"operation '{opname}'")
        except FlagConfigError as e:
            raise Invalid(oppath + ("flags",) + e.keypath, str(e), e.exit_code) from None
        for key in cfg:
            if key not in OP_FIELDS and key not in GUILD_OP_FIELDS:
                warning = f"{project.where(oppath + (key,))}: unknown field '{key}' in operation '{opname}' ignored"
                if warning not in project.warnings:  # once, though several models extend its config
                    project.warnings.append(warning)
        model.operations[opname] = OpDef(spec.name, opname, cfg, flags, oppath)
    return model
