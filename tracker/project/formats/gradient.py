"""Gradient workflows (`.gradient/workflows/*.yaml`) as the `gradient` model.

Each file is a workflow, a stepped operation named after the file; each job
is an operation `WORKFLOW/JOB` run as a step (`needs:` makes the DAG). A job
runs `tracker.execution.gradient_job`, which places its dataset and string
inputs in `inputs/NAME`, makes `outputs/NAME`, runs the action (`script@v1`,
`container@v1`, `git-checkout@v1`) and saves dataset outputs as a new
version under `$TRK_HOME/datasets/NAME`. An input that is another job's output
(`JOB.outputs.NAME`) is a `requires: operation` dependency on that job.
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Any

from ..flags import FlagConfigError, flagdefs_from_config
from ..guildfile import InFile
from ..loader import Model, OpDef
from .cycles import find_cycle
from .modelcache import note_listing
from .yamldoc import YamlDoc

FILE_KEYS = {"defaults", "inputs", "jobs", "on", "context"}
JOB_KEYS = {"uses", "with", "needs", "inputs", "outputs", "env", "resources"}
ACTIONS = {  # action -> (required `with` keys, known `with` keys)
    "script@v1": (("script",), {"script", "image"}),
    "container@v1": (("args",), {"args", "image", "command"}),
    "git-checkout@v1": (("url",), {"url", "ref", "username", "password"}),
}
IO_TYPES = {"inputs": ("dataset", "string", "volume"), "outputs": ("dataset", "string", "volume")}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_REF = re.compile(r"^(?:workflow\.inputs\.([^.\s]+)|([^.\s]+)\.outputs\.([^.\s]+))$")


def load(project_dir: str) -> Model:
    """The `gradient` model: one stepped operation per workflow file."""
    model = Model("gradient", description="Gradient workflows (.gradient/workflows/*.yaml)")
    warnings: list[str] = []
    note_listing(os.path.join(project_dir, ".gradient", "workflows"), (".yaml", ".yml"))
    paths = sorted(set(glob.glob(os.path.join(project_dir, ".gradient", "workflows", "*.yaml"))
                       + glob.glob(os.path.join(project_dir, ".gradient", "workflows", "*.yml"))))
    for path in paths:
        doc = YamlDoc(path, project_dir)
        name = os.path.splitext(os.path.basename(path))[0]
        if not _NAME.fullmatch(name) or name in model.operations:
            raise doc.error((), f"workflow file name '{name}' must be unique and use letters, digits, '_.-'")
        for op in _Workflow(doc, name).operations():
            model.operations[op.name] = op
        warnings += doc.warnings
    model.warnings = warnings  # type: ignore[attr-defined]
    return model


class _Workflow:
    """One workflow file read and checked."""

    def __init__(self, doc: YamlDoc, name: str):
        self.doc = doc
        self.name = name
        data = doc.data
        if not isinstance(data, dict):
            raise doc.error((), "expected a mapping with 'jobs'")
        if True in data:  # YAML 1.1 reads the key `on` as true
            data["on"] = data.pop(True)
        doc.check_keys(data, (), FILE_KEYS, ("jobs",), "the workflow")
        self.data = data
        self.defaults = self._mapping(("defaults",), {"env", "resources"})
        self.inputs = {k: self._io(("inputs", k), v, "inputs") for k, v in self._mapping(("inputs",)).items()}
        jobs = data["jobs"]
        if not isinstance(jobs, dict) or not jobs:
            raise doc.error(("jobs",), "must be a mapping of job names to jobs")
        self.jobs: dict[str, dict] = {}
        for job, spec in jobs.items():
            keys = ("jobs", job)
            if not isinstance(job, str) or not _NAME.fullmatch(job):
                raise doc.error(keys, f"invalid job name {job!r} (letters, digits, '_.-')")
            if not isinstance(spec, dict):
                raise doc.error(keys, f"a job must be a mapping, not {type(spec).__name__}")
            doc.check_keys(spec, keys, JOB_KEYS, ("uses",), "job")
            self.jobs[job] = spec
        self.needs = {job: self._needs(job, spec) for job, spec in self.jobs.items()}
        self._check_cycles()

    # -- checking -----------------------------------------------------------

    def _mapping(self, keys: tuple, known: set[str] | None = None, data: Any = None) -> dict:
        """The mapping at `keys[-1]` of `data` (default: the file), checked; {} when absent."""
        value = (self.data if data is None else data).get(keys[-1])
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.doc.error(keys, f"must be a mapping, not {type(value).__name__}")
        if known is not None:
            self.doc.check_keys(value, keys, known, (), keys[-1])
        return value

    def _io(self, keys: tuple, spec: Any, kind: str) -> dict:
        """An inline input or output: `{type, with: {ref|id|value}}`, checked."""
        if not isinstance(spec, dict):
            raise self.doc.error(keys, f"must be a mapping with 'type', not {type(spec).__name__}")
        self.doc.check_keys(spec, keys, {"type", "with"}, ("type",), kind[:-1])
        if spec["type"] not in IO_TYPES[kind]:
            raise self.doc.error(keys + ("type",), f"unknown type {spec['type']!r} "
                                 f"(expected {', '.join(IO_TYPES[kind])})")
        with_ = self._mapping(keys + ("with",), {"ref", "id", "value"}, spec)
        if spec["type"] == "dataset" and not (with_.get("ref") or with_.get("id")):
            raise self.doc.error(keys, f"a dataset {kind[:-1]} is missing required key 'with.ref'")
        ref = with_.get("ref") or with_.get("id")
        if ref is not None:
            name, _, version = str(ref).partition(":")
            if not _NAME.fullmatch(name) or version and not re.fullmatch(r"[A-Za-z0-9_-]+", version):
                raise self.doc.error(keys + ("with", "ref" if "ref" in with_ else "id"),
                                     f"invalid dataset name {ref!r} (letters, digits, '_.-', then ':VERSION')")
        if "value" in with_ and not isinstance(with_["value"], (str, int, float, bool)):
            raise self.doc.error(keys + ("with", "value"), "must be a string or a number")
        return {"type": spec["type"], "ref": None if ref is None else str(ref), "value": with_.get("value")}

    def _needs(self, job: str, spec: dict) -> list[str]:
        needs = spec.get("needs") or []
        if isinstance(needs, str):
            needs = [needs]
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            raise self.doc.error(("jobs", job, "needs"), "must be a list of job names")
        for i, n in enumerate(needs):
            if n not in self.jobs:
                raise self.doc.error(("jobs", job, "needs", i), f"unknown job '{n}' (jobs: {', '.join(self.jobs)})")
        return list(dict.fromkeys(needs))

    def _check_cycles(self) -> None:
        found = find_cycle(self.needs)
        if found:
            job, cycle = found
            raise self.doc.error(("jobs", job, "needs"), "jobs need each other in a cycle: " + " -> ".join(cycle))

    # -- operations ---------------------------------------------------------

    def operations(self) -> list[OpDef]:
        """The workflow's pipeline operation and one operation per job."""
        ops = [self._job_op(job, spec) for job, spec in self.jobs.items()]
        order: list[str] = []

        def visit(job: str) -> None:
            for n in self.needs[job]:
                visit(n)
            if job not in order:
                order.append(job)

        for job in self.jobs:
            visit(job)
        steps = []
        for job in order:
            step: dict[str, Any] = {"name": job, "run": f"{self.name}/{job}"}
            used = self._string_flags(self.jobs[job])
            if used:
                step["flags"] = {f: f"${{{f}}}" for f in used}
            if self.needs[job]:
                step["needs"] = self.needs[job]
            steps.append(step)
        flags = {k: {"default": v["value"]} for k, v in self.inputs.items() if v["type"] == "string"}
        config: dict[str, Any] = {"steps": steps, "flags": flags,
                                  "description": f"Gradient workflow {self.doc.name} (jobs: {', '.join(order)})"}
        if "on" in self.data:  # triggers are Gradient's: recorded, not acted on
            config["run-attrs"] = {"on": self.data["on"]}
        ops.append(OpDef("gradient", self.name, config, self._flagdefs(flags, ()), (InFile(self.doc.path),)))
        return ops

    def _flagdefs(self, flags: dict, keys: tuple) -> dict:
        try:
            return flagdefs_from_config(flags, f"workflow {self.name}")
        except FlagConfigError as e:
            raise self.doc.error(keys, e.message) from None

    def _string_flags(self, spec: dict) -> list[str]:
        """The workflow string inputs a job uses (its flags)."""
        used = []
        for ref in (spec.get("inputs") or {}).values():
            m = _REF.match(ref) if isinstance(ref, str) else None
            if m and m.group(1) and self.inputs.get(m.group(1), {}).get("type") == "string":
                used.append(m.group(1))
        return used

    def _job_op(self, job: str, spec: dict) -> OpDef:
        keys = ("jobs", job)
        uses = spec["uses"]
        if not isinstance(uses, str):
            raise self.doc.error(keys + ("uses",), "must be an action name such as script@v1")
        with_ = self._mapping(keys + ("with",), None, spec)
        job_spec: dict[str, Any] = {"action": uses, "inputs": {}, "outputs": {}}
        if uses in ACTIONS:
            required, known = ACTIONS[uses]
            self.doc.check_keys(with_, keys + ("with",), known, required, f"{uses} 'with'")
            job_spec.update(self._action(keys, uses, with_))
        else:
            self.doc.warn(keys + ("uses",), f"action '{uses}' is not supported locally: the job's run will fail")
        requires = []
        flags: dict[str, Any] = {}
        for name, ref in self._mapping(keys + ("inputs",), None, spec).items():
            ikeys = keys + ("inputs", name)
            self._check_io_name(ikeys, name)
            if isinstance(ref, dict):
                job_spec["inputs"][name] = self._io(ikeys, ref, "inputs")
                continue
            m = _REF.match(ref) if isinstance(ref, str) else None
            if m is None:
                raise self.doc.error(ikeys, f"{ref!r} is no input: use workflow.inputs.NAME, JOB.outputs.NAME "
                                     "or a mapping with 'type'")
            if m.group(1):
                given = self.inputs.get(m.group(1))
                if given is None:
                    raise self.doc.error(ikeys, f"the workflow has no input '{m.group(1)}'")
                entry = dict(given)
                if given["type"] == "string":
                    flags[m.group(1)] = {"default": given["value"]}
                    entry["flag"] = "FLAG_" + re.sub(r"[^A-Z0-9_]", "_", m.group(1).upper())
                job_spec["inputs"][name] = entry
                continue
            up, out = m.group(2), m.group(3)
            if up not in self.jobs:
                raise self.doc.error(ikeys, f"unknown job '{up}' (jobs: {', '.join(self.jobs)})")
            if up not in self.needs[job]:
                raise self.doc.error(ikeys, f"job '{up}' must be in this job's needs to use its outputs")
            if out not in (self.jobs[up].get("outputs") or {}):
                raise self.doc.error(ikeys, f"job '{up}' has no output '{out}'")
            dep: dict[str, Any] = {"operation": f"{self.name}/{up}", "select": re.escape(f"outputs/{out}"),
                                   "target-path": "inputs", "name": up, "fail-if-empty": True}
            if out != name:
                dep["rename"] = {"pattern": f"^{re.escape(out)}$", "repl": name}
            requires.append(dep)
            job_spec["inputs"][name] = {"type": "upstream"}
        for name, out in self._mapping(keys + ("outputs",), None, spec).items():
            self._check_io_name(keys + ("outputs", name), name)
            job_spec["outputs"][name] = self._io(keys + ("outputs", name), out, "outputs")
        if uses == "git-checkout@v1":
            volumes = [n for n, o in job_spec["outputs"].items() if o["type"] == "volume"]
            job_spec["checkout"] = "repo" if "repo" in volumes or not volumes else volumes[0]
            job_spec["outputs"].setdefault(job_spec["checkout"], {"type": "volume", "ref": None, "value": None})
        # `$` escaped: the spec is one argv item trk must not fill `${flag}`s into.
        text = json.dumps(job_spec, sort_keys=True).replace("$", "\\u0024")
        config: dict[str, Any] = {
            "exec": "python -m tracker.execution.gradient_job " + _quote(text),
            "runtime": "tracker.execution.gradient_job",  # run by trk itself, without a second Python
            "env": self._env(keys, spec),
            "flags": flags,
            "description": f"job {job} of Gradient workflow {self.doc.name} ({uses})",
            "run-attrs": self._attrs(keys, spec, uses, with_),
        }
        if requires:
            config["requires"] = requires
        if not (uses == "git-checkout@v1" and str(with_.get("url")).startswith("context.")):
            config["sourcecode"] = False  # as on Gradient, a job sees its inputs, not the project
        return OpDef("gradient", f"{self.name}/{job}", config, self._flagdefs(flags, keys), (InFile(self.doc.path),)
                     + keys)

    def _check_io_name(self, keys: tuple, name: Any) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self.doc.error(keys, f"invalid name {name!r} (letters, digits, '_.-')")

    def _action(self, keys: tuple, uses: str, with_: dict) -> dict:
        wkeys = keys + ("with",)
        if uses == "script@v1":
            if not isinstance(with_["script"], str):
                raise self.doc.error(wkeys + ("script",), "must be a string (the script's text)")
            return {"script": with_["script"]}
        if uses == "container@v1":
            args = with_["args"]
            if not isinstance(args, list) or not args or not all(isinstance(a, (str, int, float)) for a in args):
                raise self.doc.error(wkeys + ("args",), "must be a non-empty list of strings")
            return {"args": [str(a) for a in args]}
        for k in ("url", "ref"):
            if k in with_ and not isinstance(with_[k], str):
                raise self.doc.error(wkeys + (k,), "must be a string")
        if "username" in with_ or "password" in with_:
            self.doc.warn(wkeys, "credentials are not used locally: git uses your own")
        return {"url": with_["url"], "ref": with_.get("ref")}

    def _env(self, keys: tuple, spec: dict) -> dict:
        """`defaults.env` then the job's `env`; a `secret:NAME` value is
        Gradient's, so the job gets that variable from the user's environment."""
        env: dict[str, str] = {}
        for ekeys, values in ((("defaults", "env"), self._mapping(("defaults", "env"), None, self.defaults)),
                              (keys + ("env",), self._mapping(keys + ("env",), None, spec))):
            for k, v in values.items():
                if not isinstance(v, (str, int, float, bool)):
                    raise self.doc.error(ekeys + (k,), "must be a string or a number")
                if isinstance(v, str) and v.startswith(("secret:", "ephemeral:")):
                    env.pop(str(k), None)
                    continue
                env[str(k)] = str(v)
        return env

    def _attrs(self, keys: tuple, spec: dict, uses: str, with_: dict) -> dict:
        """What trk records of a job but does not act on: image, instance type, action."""
        attrs: dict[str, Any] = {"action": uses}
        if isinstance(with_.get("image"), str):
            attrs["image"] = with_["image"]
        res = self._mapping(keys + ("resources",), {"instance-type"}, spec) or \
            self._mapping(("defaults", "resources"), {"instance-type"}, self.defaults)
        if res.get("instance-type") is not None:
            attrs["instance-type"] = str(res["instance-type"])
        return attrs


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
