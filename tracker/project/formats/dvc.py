"""`dvc.yaml` read as the `dvc` model: one operation per stage, and `repro`.

Each stage (foreach stages expanded to `name@item`, `name@0`, `name@key`)
becomes an operation whose `exec:` runs `tracker.execution.dvc_stage`, which
runs the stage's `cmd` in its `wdir` through the shell, as DVC does. The
parameters a stage tracks are its flags. `repro` is a stepped operation
whose steps follow the graph (a stage needs the stages whose outs its deps
are). Errors name file, line and key and exit 2; unknown keys are warnings.
"""

from __future__ import annotations

import os
import posixpath
import shlex

from ...errors import ProjectError
from ...fsutil import is_inside
from .cycles import find_cycle
from .dvc_params import DEFAULT_PARAMS, read_params_file
from .dvc_stages import FILE, Out, Pipeline, Stage, stage_data, stage_flags
from .dvc_template import TemplateError, expand_foreach, interpolate, load_vars
from .modelcache import note_file

MODEL = "dvc"
STAGE_KEYS = {"cmd", "wdir", "deps", "outs", "params", "metrics", "plots", "frozen", "always_changed",
              "desc", "meta", "vars"}
OUT_KEYS = {"cache", "persist", "remote", "desc", "checkpoint", "push", "type", "labels", "meta"}
PLOT_KEYS = {"x", "y", "x_label", "y_label", "title", "template", "header"}
TOP_KEYS = {"stages", "vars", "plots", "metrics", "params", "artifacts", "datasets"}

TYPE_CHECKING = False  # annotations only, as everywhere on `trk run`'s path
if TYPE_CHECKING:
    from typing import Any


def load(project_dir: str):
    """The `dvc` model of the project's `dvc.yaml` (see the module docstring)."""
    from ..loader import Model, OpDef

    pipeline = read_pipeline(project_dir)
    model = Model(MODEL, description="Stages of dvc.yaml")
    excludes = [{"exclude": {"dir": ".dvc"}}, {"exclude": "dvc.lock"}]
    for stage in pipeline.stages.values():
        exec_ = f"python -m tracker.execution.dvc_stage ${{project_dir}} {shlex.quote(stage.name)}"
        config = {"exec": exec_, "description": stage.desc or _describe(stage), "flags": stage_flags(pipeline, stage),
                  "runtime": "tracker.execution.dvc_stage"}  # run by trk itself, without a second Python
        model.operations[stage.name] = OpDef(MODEL, stage.name, config, {}, ())
        excludes += [{"exclude": o.file} for o in stage.outs] + [{"exclude": {"dir": o.file}} for o in stage.outs]
    name = "_repro" if "repro" in pipeline.stages else "repro"
    steps = [{"run": f"{MODEL}:{n}", "name": n, "needs": [u for u in pipeline.upstream[n]
                                                          if not pipeline.stages[u].frozen]}
             for n in pipeline.order() if not pipeline.stages[n].frozen]
    model.operations[name] = OpDef(MODEL, name, {"steps": steps, "description": "Run every stage of dvc.yaml "
                                                 "(use 'trk repro' to skip unchanged stages)"}, {}, ())
    model.sourcecode = excludes  # outs are results, not source
    model.warnings = pipeline.warnings
    # What `execution.dvc_stage.execute` needs to run a stage without reading dvc.yaml again (cached with the model).
    model.dvc_stages = {name: stage_data(stage) for name, stage in pipeline.stages.items()}
    from ..flags import flagdefs_from_config

    for op in model.operations.values():
        op.flags = flagdefs_from_config(op.config.get("flags"), f"operation {op.fullname}")
    return model


def _describe(stage: Stage) -> str:
    first = stage.commands[0] if stage.commands else ""
    return first.splitlines()[0] if first else ""


# -- reading dvc.yaml ----------------------------------------------------------


def read_pipeline(project_dir: str) -> Pipeline:
    """Parse and check `dvc.yaml` in `project_dir`; ProjectError (exit 2) naming file, line and key."""
    from ..loader import _LineFinder, _parse

    project_dir = os.path.abspath(project_dir)
    path = os.path.join(project_dir, FILE)
    note_file(path)
    if not os.path.isfile(path):
        raise ProjectError(f"there is no {FILE} in {project_dir}", "cd to the directory of dvc.yaml.")
    data, warnings = _parse(path, FILE)
    pipeline = Pipeline(project_dir, {}, {}, list(warnings), _LineFinder(path))
    try:
        _read(pipeline, data)
    except TemplateError as e:
        key = ".".join(str(k) for k in e.keypath)
        raise ProjectError(f"{pipeline.where(e.keypath)}: {key}: {e.message}", exit_code=2) from None
    return pipeline


def _read(pipeline: Pipeline, data: Any) -> None:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TemplateError((), f"{FILE} must be a mapping with 'stages', not {type(data).__name__}")
    for key in data:
        if key not in TOP_KEYS:
            pipeline.warnings.append(f"{pipeline.where((key,))}: unknown key '{key}' in {FILE} ignored")
    stages = data.get("stages")
    if stages is None:
        stages = {}
    if not isinstance(stages, dict):
        raise TemplateError(("stages",), "'stages' must be a mapping of stage names to stages")
    context: dict = {}
    default_params = os.path.join(pipeline.dir, DEFAULT_PARAMS)
    note_file(default_params)
    if os.path.isfile(default_params):
        context.update(read_params_file(default_params, DEFAULT_PARAMS))
    load_vars(context, data.get("vars"), pipeline.dir, pipeline.dir, ("vars",))
    for name, raw in stages.items():
        at = ("stages", name)
        if not isinstance(raw, dict):
            raise TemplateError(at, f"stage '{name}' must be a mapping, not {type(raw).__name__}")
        if "matrix" in raw:
            raise TemplateError(at + ("matrix",), "'matrix' stages are not supported by trk: use 'foreach'")
        if "foreach" in raw:
            for full, body, ctx in expand_foreach(str(name), raw, context, at):
                _add(pipeline, full, body, ctx, at + ("do",))
        else:
            _add(pipeline, str(name), raw, context, at)
    _link(pipeline)


def _add(pipeline: Pipeline, name: str, raw: dict, context: dict, at: tuple) -> None:
    if name in pipeline.stages:
        raise TemplateError(at, f"stage '{name}' is defined twice")
    if "vars" in raw:
        context = {k: v for k, v in context.items()}
        wdir = raw.get("wdir", ".")
        load_vars(context, raw["vars"], os.path.join(pipeline.dir, str(wdir)), pipeline.dir, at + ("vars",))
    for key in raw:
        if key not in STAGE_KEYS:
            pipeline.warnings.append(f"{pipeline.where(at + (key,))}: unknown key '{key}' in stage '{name}' ignored")
    if "cmd" not in raw:
        raise TemplateError(at, f"stage '{name}' has no 'cmd' (it is required)")
    values = {k: interpolate(raw[k], context, at + (k,), in_cmd=(k == "cmd")) for k in raw if k != "vars"}
    cmd = values["cmd"]
    if isinstance(cmd, (int, float)) and not isinstance(cmd, bool):
        cmd = str(cmd)
    if not (isinstance(cmd, str) and cmd.strip() or isinstance(cmd, list) and cmd
            and all(isinstance(c, str) and c.strip() for c in cmd)):
        raise TemplateError(at + ("cmd",), f"'cmd' of stage '{name}' must be a command or a list of commands")
    wdir = values.get("wdir", ".")
    if not isinstance(wdir, str):
        raise TemplateError(at + ("wdir",), f"'wdir' of stage '{name}' must be a path")
    wdir = posixpath.normpath(wdir.replace(os.sep, "/"))
    _inside(pipeline, wdir, at + ("wdir",), "wdir")
    stage = Stage(name, cmd, wdir, keypath=at, desc=str(values.get("desc") or ""))
    for flag in ("frozen", "always_changed"):
        v = values.get(flag, False)
        if not isinstance(v, bool):
            raise TemplateError(at + (flag,), f"'{flag}' of stage '{name}' must be true or false")
        setattr(stage, flag, v)
    for i, dep in enumerate(_list(values, "deps", at, name)):
        if not isinstance(dep, str):
            raise TemplateError(at + ("deps", i), f"a dependency of stage '{name}' must be a path")
        stage.deps.append((dep, _rel(pipeline, stage, dep, at + ("deps", i), "dependency")))
    for kind in ("outs", "metrics", "plots"):
        for i, entry in enumerate(_list(values, kind, at, name)):
            stage.outs.append(_out(pipeline, stage, kind, entry, at + (kind, i)))
    stage.params = _params(values.get("params"), at + ("params",), name)
    pipeline.stages[name] = stage


def _list(values: dict, key: str, at: tuple, name: str) -> list:
    v = values.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise TemplateError(at + (key,), f"'{key}' of stage '{name}' must be a list, not {type(v).__name__}")
    return v


def _out(pipeline: Pipeline, stage: Stage, kind: str, entry: Any, at: tuple) -> Out:
    opts: Any = {}
    if isinstance(entry, dict) and len(entry) == 1:
        entry, opts = next(iter(entry.items()))
        opts = opts or {}
        if not isinstance(opts, dict):
            raise TemplateError(at + (entry,), f"the options of {kind} '{entry}' must be a mapping")
    if not isinstance(entry, str):
        raise TemplateError(at, f"an entry of '{kind}' of stage '{stage.name}' must be a path or "
                                "`PATH: {options}`")
    known = OUT_KEYS | (PLOT_KEYS if kind == "plots" else set())
    for key in opts:
        if key not in known:
            pipeline.warnings.append(f"{pipeline.where(at + (entry, key))}: unknown key '{key}' in {kind} "
                                     f"'{entry}' of stage '{stage.name}' ignored")
    out = Out(entry, _rel(pipeline, stage, entry, at, kind), kind)
    for key in ("cache", "persist"):
        v = opts.get(key, key == "cache")
        if not isinstance(v, bool):
            raise TemplateError(at + (entry, key), f"'{key}' of {kind} '{entry}' must be true or false")
        setattr(out, key, v)
    return out


def _params(value: Any, at: tuple, name: str) -> dict[str, list[str] | None]:
    params: dict[str, list[str] | None] = {}
    if value is None:
        return params
    if not isinstance(value, list):
        raise TemplateError(at, f"'params' of stage '{name}' must be a list")
    for i, entry in enumerate(value):
        if isinstance(entry, str):
            keys = params.setdefault(DEFAULT_PARAMS, [])
            if keys is not None and entry not in keys:
                keys.append(entry)
        elif isinstance(entry, dict):
            for file, keys in entry.items():
                if keys is None or keys == {}:
                    params[str(file)] = None  # the whole file
                elif isinstance(keys, list) and all(isinstance(k, str) for k in keys):
                    old = params.get(str(file))
                    params[str(file)] = (old or []) + [k for k in keys if k not in (old or [])]
                else:
                    raise TemplateError(at + (i, file), f"the parameters of '{file}' must be a list of keys")
        else:
            raise TemplateError(at + (i,), f"a 'params' entry of stage '{name}' must be a key or a file")
    return params


def _rel(pipeline: Pipeline, stage: Stage, path: str, at: tuple, what: str) -> str:
    if "://" in path:
        raise TemplateError(at, f"{what} '{path}' is a URL: trk reads only local paths")
    rel = posixpath.normpath(posixpath.join(stage.wdir, path.replace(os.sep, "/")))
    _inside(pipeline, rel, at, what)
    return rel


def _inside(pipeline: Pipeline, rel: str, at: tuple, what: str) -> None:
    if os.path.isabs(rel) or not is_inside(pipeline.dir, rel):
        raise TemplateError(at, f"{what} '{rel}' is outside the project directory")


def _link(pipeline: Pipeline) -> None:
    """Each stage's upstream stages (whose outs its deps are, or lie in); a
    cycle, or two stages writing one out, is an error."""
    owner: dict[str, str] = {}
    for stage in pipeline.stages.values():
        for i, out in enumerate(stage.outs):
            if out.file in owner and owner[out.file] != stage.name:
                raise TemplateError(stage.keypath + (out.kind, i), f"'{out.path}' is an output of stages "
                                                                   f"'{owner[out.file]}' and '{stage.name}'")
            owner[out.file] = stage.name
    for stage in pipeline.stages.values():
        ups: list[str] = []
        for _, dep in stage.deps:
            for out, name in owner.items():
                if (dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")) and name not in ups:
                    ups.append(name)
        pipeline.upstream[stage.name] = ups
    found = find_cycle(pipeline.upstream)
    if found:
        name, cycle = found
        raise TemplateError(pipeline.stages[name].keypath + ("deps",),
                            "stages form a cycle: " + " -> ".join(reversed(cycle)))
