"""The stages of a `dvc` model as `trk run dvc:STAGE` needs them: no YAML, no templating.

`Stage`, `Out` and `Pipeline` are what `dvc.py` reads from `dvc.yaml`;
`stage_data` / `pipeline_from` carry them through the cached model, so
`execution.dvc_stage` runs a stage without reading `dvc.yaml` again, and
`param_values` / `stage_flags` read the parameters a stage tracks.
"""

from __future__ import annotations

import os
import posixpath

from ...errors import ProjectError
from ...records import field, record
from .dvc_params import DEFAULT_PARAMS, flatten, get_key, is_missing, read_params_file
from .modelcache import note_file

TYPE_CHECKING = False  # annotations only: `trk run dvc:STAGE` imports this module to run the stage
if TYPE_CHECKING:
    from typing import Any

FILE = "dvc.yaml"


@record  # records, not dataclasses (7 ms): this module is on `trk run dvc:STAGE`'s path
class Out:
    """An out, metrics or plots file of a stage."""

    path: str  # as written (relative to the stage's wdir)
    file: str  # relative to the project directory
    kind: str = "outs"
    cache: bool = True
    persist: bool = False


@record
class Stage:
    """One stage of `dvc.yaml`, templating resolved."""

    name: str
    cmd: Any  # a string, or a list of strings run in order
    wdir: str = "."  # relative to the project directory
    deps: list[tuple[str, str]] = field(default_factory=list)  # (as written, project-relative)
    outs: list[Out] = field(default_factory=list)
    params: dict[str, list[str] | None] = field(default_factory=dict)  # file as written -> keys (None: all)
    frozen: bool = False
    always_changed: bool = False
    desc: str = ""
    keypath: tuple = ()

    @property
    def commands(self) -> list[str]:
        """The shell commands to run, in order."""
        return list(self.cmd) if isinstance(self.cmd, list) else [self.cmd]

    def params_path(self, file: str) -> str:
        """A params file name as written, relative to the project directory."""
        return posixpath.normpath(posixpath.join(self.wdir, file))


@record
class Pipeline:
    """The stages of `dvc.yaml`, the graph between them, and load warnings."""

    dir: str
    stages: dict[str, Stage]
    upstream: dict[str, list[str]]
    warnings: list[str] = field(default_factory=list)
    lines: Any = None

    def where(self, keypath: tuple) -> str:
        """`dvc.yaml, line N` of a key path."""
        return f"{FILE}, line {self.lines.line(keypath) if self.lines else 1}"

    def order(self, targets: list[str] | None = None) -> list[str]:
        """Stage names in an order that runs every stage after its upstream
        stages; with `targets`, only those and what they depend on."""
        seen: dict[str, None] = {}

        def visit(name: str) -> None:
            if name in seen:
                return
            for up in self.upstream[name]:
                visit(up)
            seen[name] = None

        for name in targets if targets is not None else self.stages:
            visit(name)
        return list(seen)


def stage_data(stage: Stage) -> dict[str, Any]:
    """A stage as JSON data (see `pipeline_from`)."""
    return {"cmd": stage.cmd, "wdir": stage.wdir, "deps": [list(d) for d in stage.deps],
            "outs": [[o.path, o.file, o.kind, o.cache, o.persist] for o in stage.outs], "params": stage.params,
            "frozen": stage.frozen, "always_changed": stage.always_changed, "desc": stage.desc,
            "keypath": list(stage.keypath)}


def pipeline_from(project_dir: str, stages: dict[str, dict[str, Any]]) -> Pipeline:
    """The pipeline of a `dvc` model's stages as `_stage_data` wrote them (its
    graph left out: running one stage needs none)."""
    from ..loader import _LineFinder

    pipeline = Pipeline(project_dir, {}, {}, lines=_LineFinder(os.path.join(project_dir, FILE)))
    for name, d in stages.items():
        pipeline.stages[name] = Stage(name, d["cmd"], d["wdir"], [tuple(x) for x in d["deps"]],
                                      [Out(*o) for o in d["outs"]], d["params"], d["frozen"], d["always_changed"],
                                      d["desc"], tuple(d["keypath"]))
    return pipeline


def flag_name(stage: Stage, file: str, key: str) -> str:
    """A tracked parameter's flag name: the key for `params.yaml`, else `FILE:key`."""
    return key if file == DEFAULT_PARAMS else f"{file}:{key}"


def param_values(pipeline: Pipeline, stage: Stage, strict: bool = True) -> dict[str, dict[str, Any]]:
    """The tracked parameters' current values: file as written -> {key: value}
    (a whole-file entry: its whole contents, as DVC locks them)."""
    out: dict[str, dict[str, Any]] = {}
    for file, keys in stage.params.items():
        path = os.path.join(pipeline.dir, stage.params_path(file))
        at = stage.keypath + ("params",)
        note_file(path)
        if not os.path.isfile(path):
            if not strict:
                continue
            raise ProjectError(f"{pipeline.where(at)}: stages.{stage.name}.params: parameters file '{file}' "
                               "does not exist", exit_code=2)
        data = read_params_file(path, stage.params_path(file))
        if keys is None:
            out[file] = data
            continue
        values = {}
        for key in keys:
            value = get_key(data, key)
            if is_missing(value):
                if strict:
                    raise ProjectError(f"{pipeline.where(at)}: stages.{stage.name}.params: '{key}' is not "
                                       f"defined in '{file}'", exit_code=2)
                continue
            values[key] = value
        out[file] = values
    return out


def stage_flags(pipeline: Pipeline, stage: Stage) -> dict[str, Any]:
    """The stage's tracked parameters as flag definitions (defaults: their values now)."""
    import json

    flags = {}
    for file, values in param_values(pipeline, stage, strict=False).items():
        leaves = flatten(values) if stage.params[file] is None else values
        for key, value in leaves.items():
            if isinstance(value, (list, dict)):
                value = json.dumps(value)  # a list is a batch to trk: kept as its text
            flags[flag_name(stage, file, key)] = {"default": value}
    return flags
