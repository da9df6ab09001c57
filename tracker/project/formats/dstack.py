"""dstack workflows (`.dstack/workflows.yaml`, `.dstack/variables.yaml`) as the `dstack` model.

Each workflow's `commands` are one operation (`exec:` of one bash script,
stopping at the first failing command); a workflow that `depends-on` other
workflows is a stepped operation running them first (steps with `needs:`),
then its own commands as the operation `NAME/commands`. Variables are flags;
the shell reads them from the environment (`$name` and `$NAME`), never from
text pasted into the script. Artifacts of the workflows a workflow depends on
reach its run as `requires: operation` dependencies.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

from ..flags import FlagConfigError, flagdefs_from_config
from ..guildfile import InFile
from ..loader import Model, OpDef
from .cycles import find_cycle
from .modelcache import note_file
from .yamldoc import YamlDoc

WORKFLOW_KEYS = {"name", "image", "commands", "depends-on", "artifacts", "help"}
REQUIRED = ("name", "image", "commands")
DEPENDS_KEYS = {"repo", "variables", "workflows"}
SYSTEM_VARS = {"run_name", "job_id", "variables_as_args"}
_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")

# Set before the user's commands: dstack's system variables, from the ids trk
# gives every program (a step's pipeline run is the dstack run).
_PRELUDE = ("set -e\n"
            'job_id="$TRK_RUN_ID"; run_name="${TRK_PARENT_RUN_ID:-$TRK_RUN_ID}"\n'
            'JOB_ID="$job_id"; RUN_NAME="$run_name"; export job_id run_name JOB_ID RUN_NAME\n')


class _Workflow:
    """One workflow as read: its index in the file, data and variables."""

    def __init__(self, index: int, data: dict):
        self.index = index
        self.data = data
        self.name = str(data["name"])
        self.needs: list[str] = []
        self.variables: dict[str, Any] = {}  # name -> default (globals it sees, then its own)
        self.own: set[str] = set()

    @property
    def keys(self) -> tuple:
        return ("workflows", self.index)

    @property
    def job_op(self) -> str:
        """The operation running only this workflow's commands."""
        return f"{self.name}/commands" if self.needs else self.name


def load(project_dir: str) -> Model:
    """The `dstack` model of the workflows in `project_dir/.dstack/`."""
    base = os.path.join(project_dir, ".dstack")
    for name in ("workflows.yaml", "workflows.yml", "variables.yaml", "variables.yml"):
        note_file(os.path.join(base, name))  # which of them exist decides what is read
    path = next(p for p in (os.path.join(base, n) for n in ("workflows.yaml", "workflows.yml")) if os.path.isfile(p))
    doc = YamlDoc(path, project_dir)
    workflows = _read_workflows(doc)
    vars_doc = None
    for name in ("variables.yaml", "variables.yml"):
        if os.path.isfile(os.path.join(base, name)):
            vars_doc = YamlDoc(os.path.join(base, name), project_dir)
            break
    _read_variables(vars_doc, doc, workflows)
    _check_cycles(doc, workflows)
    model = Model("dstack", description="dstack workflows (.dstack/workflows.yaml)")
    for wf in workflows.values():
        job = _job_op(doc, wf, workflows)
        model.operations[job.name] = job
        if wf.needs:
            model.operations[wf.name] = _pipeline_op(doc, wf, workflows)
    model.warnings = doc.warnings + (vars_doc.warnings if vars_doc else [])  # type: ignore[attr-defined]
    return model


# -- reading ----------------------------------------------------------------


def _read_workflows(doc: YamlDoc) -> dict[str, _Workflow]:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "expected a mapping with a 'workflows' list")
    doc.check_keys(data, (), {"workflows"}, ("workflows",), "the file")
    items = data["workflows"]
    if not isinstance(items, list):
        raise doc.error(("workflows",), f"must be a list of workflows, not {type(items).__name__}")
    workflows: dict[str, _Workflow] = {}
    for i, item in enumerate(items):
        keys = ("workflows", i)
        if not isinstance(item, dict):
            raise doc.error(keys, f"a workflow must be a mapping, not {type(item).__name__}")
        doc.check_keys(item, keys, WORKFLOW_KEYS, REQUIRED, "workflow")
        if not isinstance(item["name"], str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", item["name"]):
            raise doc.error(keys + ("name",), f"invalid workflow name {item['name']!r} (letters, digits, '_.-')")
        if item["name"] in workflows:
            raise doc.error(keys + ("name",), f"workflow '{item['name']}' is defined twice")
        for key in ("image", "help"):
            if key in item and not isinstance(item[key], str):
                raise doc.error(keys + (key,), f"must be a string, not {type(item[key]).__name__}")
        _string_list(doc, item, keys, "commands", required=True)
        _string_list(doc, item, keys, "artifacts")
        workflows[item["name"]] = _Workflow(i, item)
    for wf in workflows.values():
        wf.needs = _depends_on(doc, wf, workflows)
    return workflows


def _string_list(doc: YamlDoc, item: dict, keys: tuple, key: str, required: bool = False) -> list[str]:
    value = item.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value) or \
            (required and not value):
        raise doc.error(keys + (key,), f"must be a{' non-empty' if required else ''} list of strings")
    return [str(v) for v in value]


def _depends_on(doc: YamlDoc, wf: _Workflow, workflows: dict[str, _Workflow]) -> list[str]:
    """The workflows `wf` depends on (checked to exist)."""
    keys = wf.keys + ("depends-on",)
    dep = wf.data.get("depends-on")
    if dep is None:
        return []
    wkeys = keys + ("workflows",)
    if isinstance(dep, list):  # dstack's older form: a list of workflow names
        dep, wkeys = {"workflows": dep}, keys
    elif not isinstance(dep, dict):
        raise doc.error(keys, f"must be a mapping (repo, variables, workflows), not {type(dep).__name__}")
    else:
        doc.check_keys(dep, keys, DEPENDS_KEYS, (), "depends-on")
    repo = dep.get("repo")
    if repo is not None:
        if not isinstance(repo, dict):
            raise doc.error(keys + ("repo",), "must be a mapping with an 'include' list")
        doc.check_keys(repo, keys + ("repo",), {"include"}, (), "depends-on.repo")
        for j, pattern in enumerate(_string_list(doc, repo, keys + ("repo",), "include")):
            if os.path.isabs(pattern) or ".." in pattern.split("/"):
                raise doc.error(keys + ("repo", "include", j), f"'{pattern}' is outside the project")
    if dep.get("variables") is not None:
        _string_list(doc, dep, keys, "variables")
    names = dep.get("workflows") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise doc.error(keys + ("workflows",), "must be a list of workflow names")
    for j, name in enumerate(names):
        if name not in workflows:
            raise doc.error(wkeys + (j,), f"unknown workflow '{name}' (workflows: {', '.join(workflows)})")
        if name == wf.name:
            raise doc.error(keys, f"workflow '{name}' depends on itself")
    return list(dict.fromkeys(names))


def _read_variables(vdoc: YamlDoc | None, doc: YamlDoc, workflows: dict[str, _Workflow]) -> None:
    """Give each workflow its variables: globals (those `depends-on.variables`
    names, if given), then its own section of variables.yaml."""
    sections: dict[str, dict] = {}
    if vdoc is not None and vdoc.data is not None:
        if not isinstance(vdoc.data, dict):
            raise vdoc.error((), "expected a mapping with a 'variables' mapping")
        vdoc.check_keys(vdoc.data, (), {"variables"}, ("variables",), "the file")
        top = vdoc.data["variables"] or {}
        if not isinstance(top, dict):
            raise vdoc.error(("variables",), f"must be a mapping of sections, not {type(top).__name__}")
        for section, values in top.items():
            keys = ("variables", section)
            if section != "global" and section not in workflows:
                vdoc.warn(keys, f"no workflow is named '{section}'; its variables are ignored")
            values = values or {}
            if not isinstance(values, dict):
                raise vdoc.error(keys, f"must be a mapping of variable names to values, not {type(values).__name__}")
            for name, value in values.items():
                if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise vdoc.error(keys + (name,), f"invalid variable name {name!r} (letters, digits, '_')")
                if name in SYSTEM_VARS:
                    raise vdoc.error(keys + (name,), f"'{name}' is a dstack system variable")
                if value is not None and not isinstance(value, (str, int, float, bool)):
                    raise vdoc.error(keys + (name,), f"must be a string or a number, not {type(value).__name__}")
            sections[str(section)] = values
    glob = sections.get("global", {})
    for wf in workflows.values():
        chosen = (wf.data.get("depends-on") or {}) if isinstance(wf.data.get("depends-on"), dict) else {}
        wanted = chosen.get("variables")
        if wanted is not None:
            for j, name in enumerate(wanted):
                if name not in glob and name not in sections.get(wf.name, {}):
                    raise doc.error(wf.keys + ("depends-on", "variables", j),
                                    f"variable '{name}' is not defined in .dstack/variables.yaml")
        wf.variables = {k: v for k, v in glob.items() if wanted is None or k in wanted}
        wf.own = set(sections.get(wf.name, {}))
        wf.variables.update(sections.get(wf.name, {}))
        _check_refs(doc, wf)


def _check_refs(doc: YamlDoc, wf: _Workflow) -> None:
    """Refuse a `$name` that names no variable: in artifacts always; in
    commands when it is lower case and the commands never set it (upper-case
    names are the environment's)."""
    known = set(wf.variables) | SYSTEM_VARS
    for j, path in enumerate(wf.data.get("artifacts") or []):
        for name in _refs(str(path)):
            if name not in known:
                raise doc.error(wf.keys + ("artifacts", j), f"${name} names no variable of workflow '{wf.name}'")
        norm = os.path.normpath(str(path))
        if os.path.isabs(norm) or norm == ".." or norm.startswith("../"):
            raise doc.error(wf.keys + ("artifacts", j), f"artifact '{path}' is outside the run directory")
    script = "\n".join(str(c) for c in wf.data["commands"])
    for j, command in enumerate(wf.data["commands"]):
        for name in _refs(str(command)):
            if name in known or name != name.lower() or _assigned(name, script):
                continue
            raise doc.error(wf.keys + ("commands", j), f"${name} names no variable of workflow '{wf.name}' "
                            "(define it in .dstack/variables.yaml)")


def _refs(text: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in _REF.finditer(text)]


def _assigned(name: str, script: str) -> bool:
    """Whether the commands set shell variable `name` themselves (`name=`, `for name`, `read name`)."""
    n = re.escape(name)
    return bool(re.search(rf"(?:^|[\s;&|(]){n}=|\bfor\s+{n}\b|\bread\b[^\n;]*\b{n}\b|\bexport\s+{n}\b", script))


def _check_cycles(doc: YamlDoc, workflows: dict[str, _Workflow]) -> None:
    found = find_cycle({name: wf.needs for name, wf in workflows.items()})
    if found:
        name, cycle = found
        raise doc.error(workflows[name].keys + ("depends-on",),
                        "workflows depend on each other in a cycle: " + " -> ".join(cycle))


# -- operations -------------------------------------------------------------


def _flags(doc: YamlDoc, wf: _Workflow, names: list[str], own_args: bool) -> tuple[dict, dict]:
    """The `flags:` config and flag definitions for variables `names` of `wf`; with
    `own_args`, only its own variables are `$variables_as_args` (the others `arg-skip`)."""
    config = {n: {"default": wf.variables[n], "arg-skip": own_args and n not in wf.own} for n in names}
    try:
        return config, flagdefs_from_config(config, f"workflow '{wf.name}'")
    except FlagConfigError as e:
        raise doc.error(wf.keys, e.message) from None


def _script(wf: _Workflow) -> str:
    """The workflow's commands as one bash script: `$variables_as_args` are
    the script's arguments (`"$@"`, each value one word); `${name}` becomes
    `${name:-}` so trk never pastes a value into the text: the shell reads it
    from the environment."""
    lines = []
    for command in wf.data["commands"]:
        text = re.sub(r"\$(?:\{variables_as_args\}|variables_as_args\b)", '"$@"', str(command))
        text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", r"${\1:-}", text)
        lines.append(text)
    return _PRELUDE + "\n".join(lines)


def _job_op(doc: YamlDoc, wf: _Workflow, workflows: dict[str, _Workflow]) -> OpDef:
    names = list(wf.variables)
    flags_config, flags = _flags(doc, wf, names, own_args=True)
    env = {}
    for n in names:
        env[n] = env[n.upper()] = f"${{{n}}}"
    config: dict[str, Any] = {
        "exec": shlex.join(["bash", "-c", _script(wf), "dstack"]) + " ${flag_args}",
        "flags": flags_config,
        "env": env,
        "description": str(wf.data.get("help") or (f"the commands of dstack workflow '{wf.name}', without the "
                                                   "workflows it depends on" if wf.needs else
                                                   f"dstack workflow '{wf.name}'")),
        "run-attrs": {"image": wf.data["image"], "artifacts": [str(a) for a in wf.data.get("artifacts") or []]},
    }
    include = ((wf.data.get("depends-on") or {}).get("repo") or {}).get("include") \
        if isinstance(wf.data.get("depends-on"), dict) else None
    if include:
        config["sourcecode"] = [str(p) for p in include]
    requires = [_artifact_dep(workflows[d], str(a)) for d in wf.needs for a in workflows[d].data.get("artifacts") or []]
    if requires:
        config["requires"] = requires
    return OpDef("dstack", wf.job_op, config, flags, (InFile(doc.path),) + wf.keys)


def _artifact_dep(up: _Workflow, artifact: str) -> dict:
    """An artifact of upstream workflow `up` as a dependency landing where
    dstack mounts it: at the same path in the downstream run. A `$variable`
    in the path matches any one path component (upstream and downstream run
    in one pipeline, with the same variables)."""
    parts = [p for p in os.path.normpath(artifact).split("/") if p not in ("", ".")]
    k = next((i for i, p in enumerate(parts) if _REF.search(p)), len(parts) - 1)

    def pattern(part: str) -> str:
        pieces = _REF.split(part)
        out = ""
        for i in range(0, len(pieces), 3):  # literal, braced name, bare name, literal...
            out += re.escape(pieces[i])
            if i + 1 < len(pieces):
                out += "[^/]+"
        return out

    return {"operation": up.job_op, "select": "/".join(pattern(p) for p in parts[:k + 1]),
            "target-path": "/".join(parts[:k]), "name": up.name, "warn-if-empty": True}


def _pipeline_op(doc: YamlDoc, wf: _Workflow, workflows: dict[str, _Workflow]) -> OpDef:
    """`wf` with the workflows it depends on (transitively) as steps, each
    after those it depends on; the last step runs `wf`'s own commands."""
    order: list[str] = []

    def visit(name: str) -> None:
        for dep in workflows[name].needs:
            if dep not in order:
                visit(dep)
        if name not in order:
            order.append(name)

    visit(wf.name)
    steps = []
    for name in order:
        sub = workflows[name]
        if name == wf.name:
            passed = list(wf.variables)
        else:  # the globals both see, unless either has its own value for one
            passed = [v for v in sub.variables if v in wf.variables and v not in sub.own and v not in wf.own]
        step: dict[str, Any] = {"name": name, "run": sub.job_op}
        if passed:
            step["flags"] = {v: f"${{{v}}}" for v in passed}
        if sub.needs:
            step["needs"] = list(sub.needs)
        steps.append(step)
    flags_config, flags = _flags(doc, wf, list(wf.variables), own_args=False)
    config = {
        "steps": steps,
        "flags": flags_config,
        "description": str(wf.data.get("help") or f"dstack workflow '{wf.name}' after "
                           + ", ".join(o for o in order if o != wf.name)),
        "run-attrs": {"image": wf.data["image"]},
    }
    return OpDef("dstack", wf.name, config, flags, (InFile(doc.path),) + wf.keys)
