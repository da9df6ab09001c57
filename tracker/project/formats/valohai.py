"""Valohai's `valohai.yaml`, read as the `valohai` model (issue 12, item 3).

Each `- step:` is an operation: its parameters are flags typed as Valohai
types them (integer, float, string, flag), its inputs are `requires:`
sources (a URL or a project file) placed in the run's `inputs/NAME/`, as
Valohai places them in `/valohai/inputs/NAME/`, and overridable as flags of
the same name. `image:` is recorded. A `- pipeline:` is a stepped operation
(see `valohai_pipeline`). Steps defined in code by `prepare()` calls in the
project's top-level scripts are operations too (see `valohai_scan`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ...errors import ProjectError
from ..flags import FlagDef
from ..loader import Model
from .valohai_command import URL, Param, ValohaiOp, check_placeholders

FILES = ("valohai.yaml", "valohai.yml")
MODEL = "valohai"

# Keys trk uses, and Valohai's keys it accepts without using them (recorded in
# the operation's config, for `--help-op` and the run's attrs).
STEP_KEYS = {"name", "image", "command", "parameters", "inputs", "description", "environment-variables",
             "source-path"}
STEP_IGNORED = {"environment", "time-limit", "no-output-timeout", "icon", "category", "resources", "upload-store",
                "mounts", "outputs", "stop-condition"}
PARAM_KEYS = {"name", "type", "default", "optional", "pass-as", "pass-true-as", "pass-false-as", "description",
              "min", "max", "choices", "multiple", "multiple-separator", "widget", "category"}
INPUT_KEYS = {"name", "default", "optional", "description", "filename", "keep-directories"}
ITEM_KINDS = ("step", "pipeline", "endpoint", "task")
TYPES = {"integer": "int", "float": "float", "string": "string", "flag": "bool"}


class Reader:
    """One Valohai file being read: its name, lines and warnings for messages."""

    def __init__(self, project_dir: str, path: str):
        from ..loader import _LineFinder

        self.project_dir = project_dir
        self.path = path
        self.name = os.path.relpath(path, project_dir)
        self.lines = _LineFinder(path)
        self.warnings: list[str] = []

    def where(self, keypath: tuple) -> str:
        """`FILE, line N` of a key path."""
        return f"{self.name}, line {self.lines.line(keypath)}"

    def error(self, keypath: tuple, message: str) -> ProjectError:
        """Bad input: one line naming file, line and key; exit 2."""
        return ProjectError(f"{self.where(keypath)}: {message}", exit_code=2)

    def warn(self, keypath: tuple, message: str) -> None:
        """A warning naming file and line (once)."""
        line = f"{self.where(keypath)}: {message}"
        if line not in self.warnings:
            self.warnings.append(line)

    def mapping(self, data: Any, keypath: tuple, what: str, known: set[str], required: tuple[str, ...],
                ignored: set[str] = frozenset()) -> dict:
        """`data` checked as a mapping: required keys present, unknown keys warned about."""
        if not isinstance(data, dict):
            raise self.error(keypath, f"{what} must be a mapping, not {_kind(data)}")
        for key in required:
            if key not in data:
                raise self.error(keypath, f"{what} has no '{key}' (it is required)")
        for key in data:
            if key not in known and key not in ignored:
                self.warn(keypath + (key,), f"unknown key '{key}' in {what} ignored")
        return data


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "a boolean", int: "a number",
            float: "a number", type(None): "empty"}.get(type(value), type(value).__name__)


def find_file(project_dir: str) -> str | None:
    """The project's valohai.yaml (or .yml), or None."""
    from .modelcache import note_file

    for f in FILES:
        note_file(os.path.join(project_dir, f))
    return next((os.path.join(project_dir, f) for f in FILES if os.path.isfile(os.path.join(project_dir, f))), None)


def load(project_dir: str) -> Model:
    """The `valohai` model: valohai.yaml's steps and pipelines, then the steps
    that top-level scripts define with `prepare()` and the file does not."""
    from .valohai_scan import scan_steps

    model = Model(MODEL, description="Valohai steps and pipelines")
    model.warnings = []  # read by the project loader
    path = find_file(project_dir)
    pipelines = []
    if path is not None:
        reader = Reader(project_dir, path)
        for i, kind, data in _items(reader):
            if kind == "step":
                op = step_op(reader, data, (i, "step"))
                if op.name in model.operations:
                    raise reader.error((i, "step", "name"), f"step '{op.name}' is defined twice")
                model.operations[op.name] = op
            elif kind == "pipeline":
                pipelines.append((i, data))
            else:
                reader.warn((i, kind), f"a Valohai {kind} is not run by trk; ignored")
        model.warnings += reader.warnings
    steps, warnings = scan_steps(project_dir)
    model.warnings += warnings
    for step, script in steps:
        if step["name"] not in model.operations:  # valohai.yaml, the file Valohai runs, wins
            model.operations[step["name"]] = step_op(script, step, ())
    if pipelines:
        from .valohai_pipeline import pipeline_ops

        reader.warnings = []
        for op in pipeline_ops(reader, model, pipelines):
            model.operations[op.name] = op
        model.warnings += reader.warnings
    return model


def _items(reader: Reader) -> list[tuple[int, str, Any]]:
    """valohai.yaml's top-level items as (index, kind, data)."""
    from ..loader import _parse

    try:
        data, warnings = _parse(reader.path, reader.name)
    except ProjectError as e:
        e.exit_code = 2  # not valid YAML: bad input, like any other malformed file
        raise
    reader.warnings += warnings
    if data is None:
        return []
    if not isinstance(data, list):
        raise reader.error((), f"{reader.name} must be a list of '- step:' and '- pipeline:' items, "
                               f"not {_kind(data)}")
    items = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or len(item) != 1:
            raise reader.error((i,), "each item must be one of " + ", ".join(f"'{k}:'" for k in ITEM_KINDS))
        kind, value = next(iter(item.items()))
        if kind not in ITEM_KINDS:
            reader.warn((i, kind), f"unknown item '{kind}' ignored")
            continue
        items.append((i, kind, value))
    return items


def step_op(reader: Reader, data: Any, at: tuple) -> ValohaiOp:
    """A Valohai step as an operation (see the module docstring)."""
    step = reader.mapping(data, at, "a step", STEP_KEYS, ("name", "image", "command"), STEP_IGNORED)
    name = _text(reader, step, "name", at)
    where = f"step '{name}'"
    image = _text(reader, step, "image", at)
    command = step["command"]
    lines = [command] if isinstance(command, str) else command
    if not isinstance(lines, list) or not lines or not all(isinstance(c, str) and c.strip() for c in lines):
        raise reader.error(at + ("command",), f"'command' of {where} must be a command or a list of commands")
    params: dict[str, Param] = {}
    flags: dict[str, FlagDef] = {}
    for j, pdata in enumerate(_list(reader, step, "parameters", at)):
        param, fdef = _parameter(reader, pdata, at + ("parameters", j), where)
        if param.name in params:
            raise reader.error(at + ("parameters", j, "name"), f"parameter '{param.name}' of {where} is defined twice")
        params[param.name] = param
        flags[param.name] = fdef
    unknown = check_placeholders([c.strip() for c in lines], params)
    if unknown:
        raise reader.error(at + ("command",), f"{unknown[0]} in the command of {where} names no parameter "
                                               f"(parameters: {', '.join(params) or 'none'})")
    requires, url_inputs = [], {}
    for j, idata in enumerate(_list(reader, step, "inputs", at)):
        source, fdef, is_url = _input(reader, idata, at + ("inputs", j), where)
        if fdef.name in flags:
            raise reader.error(at + ("inputs", j, "name"),
                               f"input '{fdef.name}' of {where} has the name of a parameter or input: rename one")
        flags[fdef.name] = fdef
        requires.append(source)
        if is_url is not None:
            url_inputs[fdef.name] = is_url
    config: dict[str, Any] = {"exec": " && ".join(c.strip() for c in lines), "run-attrs": {"image": image},
                              "description": str(step.get("description") or f"Valohai step (image {image})").strip()}
    if requires:
        config["requires"] = requires
    config["env"] = {"VH_INPUTS_DIR": "inputs", "VH_OUTPUTS_DIR": "outputs"}  # the run's own, as Valohai's /valohai/...
    env = step.get("environment-variables")
    for j, item in enumerate(env if isinstance(env, list) else []):
        item = reader.mapping(item, at + ("environment-variables", j), "an environment variable",
                              {"name", "default", "optional", "description"}, ("name",))
        config["env"][str(item["name"])] = "" if item.get("default") is None else str(item["default"])
    for key in STEP_IGNORED & set(step):
        config[key] = step[key]
    op = ValohaiOp(MODEL, name, config, flags, at)
    op.lines, op.params, op.url_inputs = [c.strip() for c in lines], params, url_inputs
    return op


def _text(reader: Reader, data: dict, key: str, at: tuple) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise reader.error(at + (key,), f"'{key}' must be text, not {_kind(value)}")
    return value.strip()


def _list(reader: Reader, data: dict, key: str, at: tuple) -> list:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise reader.error(at + (key,), f"'{key}' must be a list, not {_kind(value)}")
    return value


def _parameter(reader: Reader, data: Any, at: tuple, where: str) -> tuple[Param, FlagDef]:
    """A parameter: how it is passed, and its flag (Valohai's type, default, range, choices)."""
    data = reader.mapping(data, at, f"a parameter of {where}", PARAM_KEYS, ("name",))
    name = _text(reader, data, "name", at)
    vtype = data.get("type", "string")
    if vtype not in TYPES:
        raise reader.error(at + ("type",), f"parameter '{name}' of {where} has unknown type {vtype!r} "
                                            f"(expected one of {', '.join(TYPES)})")
    for key in ("pass-as", "pass-true-as", "pass-false-as"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise reader.error(at + (key,), f"'{key}' of parameter '{name}' must be text, not {_kind(data[key])}")
    if data.get("multiple") not in (None, "none"):
        reader.warn(at + ("multiple",), f"'multiple' of parameter '{name}' is not supported by trk: "
                                        "the value is passed as one")
    fdef = FlagDef(name, type=TYPES[vtype], description=str(data.get("description") or ""),
                   min=data.get("min"), max=data.get("max"))
    default = data.get("default")
    if default is not None:
        fdef.default = _typed(reader, fdef, default, at + ("default",), f"the default of parameter '{name}'")
    elif vtype == "flag":
        fdef.default = False
    fdef.required = vtype != "flag" and not data.get("optional") and default is None
    choices = data.get("choices")
    if choices is not None:
        if not isinstance(choices, list):
            raise reader.error(at + ("choices",), f"'choices' of parameter '{name}' must be a list")
        fdef.choices = [_typed(reader, fdef, c, at + ("choices",), f"a choice of parameter '{name}'") for c in choices]
        fdef.__post_init__()
    param = Param(name, vtype, data.get("pass-as"), data.get("pass-true-as"), data.get("pass-false-as"))
    return param, fdef


def _typed(reader: Reader, fdef: FlagDef, value: Any, at: tuple, what: str) -> Any:
    """`value` of the parameter's type; bad input naming file and line otherwise."""
    ok: dict[str, Callable[[Any], bool]] = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool),
    }
    if not ok[fdef.type](value):
        vtype = next(k for k, v in TYPES.items() if v == fdef.type)
        raise reader.error(at, f"{what} must be of type {vtype}, not {_kind(value)} {value!r}")
    return float(value) if fdef.type == "float" else str(value) if fdef.type == "string" else value


def _input(reader: Reader, data: Any, at: tuple, where: str) -> tuple[dict, FlagDef, bool | None]:
    """An input: its `requires:` source, its flag, and whether it is a URL."""
    data = reader.mapping(data, at, f"an input of {where}", INPUT_KEYS, ("name",))
    name = _text(reader, data, "name", at)
    default = data.get("default")
    optional = bool(data.get("optional"))
    if isinstance(default, list):  # several files: one source each, not overridable as one flag
        if not all(isinstance(d, str) for d in default):
            raise reader.error(at + ("default",), f"the default of input '{name}' must be text or a list of text")
        sources = [_source(d, name) for d in default]
        return ({"name": name, "sources": sources, "target-path": f"inputs/{name}"},
                FlagDef(name, default=None, description="several defaults: not overridable"), None)
    if default is not None and not isinstance(default, str):
        raise reader.error(at + ("default",), f"the default of input '{name}' must be text, not {_kind(default)}")
    is_url = bool(default and URL.match(default))
    source = _source("${" + name + "}", name, is_url)
    source.update({"target-path": f"inputs/{name}", "name": name})
    if optional:
        source["optional"] = True
    if data.get("filename"):
        source["rename"] = f".+ {data['filename']}"
    fdef = FlagDef(name, default=default, type="string", required=not optional and default is None,
                   description=str(data.get("description") or f"input ({'URL' if is_url else 'project file'})"))
    return source, fdef, is_url


def _source(spec: str, name: str, is_url: bool | None = None) -> dict:
    if is_url is None:
        is_url = bool(URL.match(spec))
    return {"url" if is_url else "file": spec}
