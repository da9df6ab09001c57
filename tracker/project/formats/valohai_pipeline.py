"""Valohai pipelines as stepped operations: nodes are steps, edges are `needs:`.

An edge `A.output.PATTERN -> B.input.NAME` also feeds the files of A's run
matching PATTERN under `outputs/` into B's `inputs/NAME/`: node B then runs
a private copy of its step (`_PIPELINE.B`) whose input NAME is that upstream
run's output instead of the step's default. `A.parameter.X -> B.parameter.Y`
gives B's Y the value of A's X. Edges naming no node or making a cycle are
bad input, reported with file and line.
"""

from __future__ import annotations

import copy
import fnmatch
import shlex
from typing import Any

from ..flags import format_value
from ..loader import Model, OpDef
from .cycles import find_cycle
from .valohai_command import ValohaiOp

PIPELINE_KEYS = {"name", "nodes", "edges"}
NODE_KEYS = {"name", "type", "step"}
NODE_IGNORED = {"override", "actions", "on-error"}
ENDPOINT_KINDS = ("output", "input", "parameter", "metadata")


def pipeline_ops(reader, model: Model, pipelines: list[tuple[int, Any]]) -> list[OpDef]:
    """The operations of valohai.yaml's pipelines (and the private copies of
    steps their input edges need)."""
    out: list[OpDef] = []
    for i, data in pipelines:
        out += _pipeline(reader, model, data, (i, "pipeline"))
    return out


def _pipeline(reader, model: Model, data: Any, at: tuple) -> list[OpDef]:
    p = reader.mapping(data, at, "a pipeline", PIPELINE_KEYS, ("name", "nodes", "edges"), {"parameters"})
    name = str(p["name"]).strip()
    if name in model.operations:
        raise reader.error(at + ("name",), f"pipeline '{name}' has the name of a step: rename one")
    if "parameters" in p:
        reader.warn(at + ("parameters",), f"pipeline parameters of '{name}' are not supported by trk; ignored")
    nodes: dict[str, ValohaiOp] = {}
    for j, node in enumerate(_list(reader, p, "nodes", at)):
        node = reader.mapping(node, at + ("nodes", j), f"a node of pipeline '{name}'", NODE_KEYS,
                              ("name", "step"), NODE_IGNORED)
        for key in NODE_IGNORED & set(node):
            reader.warn(at + ("nodes", j, key), f"'{key}' of a pipeline node is not supported by trk; ignored")
        if node.get("type", "execution") != "execution":
            raise reader.error(at + ("nodes", j, "type"), f"node type {node['type']!r} is not supported by trk "
                                                          "(only 'execution' nodes run locally)")
        step = model.operations.get(str(node["step"]))
        if not isinstance(step, ValohaiOp):
            raise reader.error(at + ("nodes", j, "step"), f"node '{node['name']}' of pipeline '{name}' names "
                                                          f"no step: '{node['step']}'")
        if str(node["name"]) in nodes:
            raise reader.error(at + ("nodes", j, "name"), f"node '{node['name']}' is defined twice")
        nodes[str(node["name"])] = step
    needs: dict[str, list[str]] = {n: [] for n in nodes}
    feeds: dict[str, dict[str, list[tuple[str, str]]]] = {n: {} for n in nodes}  # node -> input -> (node, pattern)
    assigns: dict[str, dict[str, Any]] = {n: {} for n in nodes}
    for j, edge in enumerate(_list(reader, p, "edges", at)):
        where = at + ("edges", j)
        src, dst = _edge(reader, edge, where)
        (snode, skind, skey), (dnode, dkind, dkey) = (_endpoint(reader, e, nodes, where) for e in (src, dst))
        if snode == dnode:
            raise reader.error(where, f"edge {src} -> {dst} connects node '{snode}' to itself (a cycle)")
        if snode not in needs[dnode]:
            needs[dnode].append(snode)
        if (skind, dkind) == ("output", "input"):
            if not _has_input(nodes[dnode], dkey):
                raise reader.error(where, f"edge target {dst}: step '{nodes[dnode].name}' has no input '{dkey}'")
            feeds[dnode].setdefault(dkey, []).append((snode, skey))
        elif (skind, dkind) == ("parameter", "parameter"):
            for node, key, end in ((snode, skey, src), (dnode, dkey, dst)):
                if key not in nodes[node].params:
                    raise reader.error(where, f"edge {end}: step '{nodes[node].name}' has no parameter '{key}'")
            assigns[dnode][dkey] = nodes[snode].flags[skey].default
        else:
            reader.warn(where, f"edge {src} -> {dst} ({skind} to {dkind}) is not supported by trk: it only "
                               "orders the nodes")
    _check_cycle(reader, name, needs, at + ("edges",))
    fed = {node: f"_{name}.{node}" for node in nodes if feeds[node]}
    ops = {node: _fed_copy(nodes[node], op_name, feeds[node], lambda n: fed.get(n, nodes[n].name))
           for node, op_name in fed.items()}
    steps = []
    for node, step in nodes.items():
        words = [shlex.quote(ops[node].name if node in ops else step.name)]
        words += [shlex.quote(f"{k}={format_value(v)}") for k, v in assigns[node].items()]
        steps.append({"name": node, "run": " ".join(words), **({"needs": needs[node]} if needs[node] else {})})
    pipeline = OpDef(model.name, name, {"steps": steps, "description": f"Valohai pipeline ({len(nodes)} nodes)"},
                     {}, at)
    return [*ops.values(), pipeline]


def _list(reader, data: dict, key: str, at: tuple) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise reader.error(at + (key,), f"'{key}' must be a list")
    return value


def _edge(reader, edge: Any, where: tuple) -> tuple[str, str]:
    """(source, target) of a `[SOURCE, TARGET]` or `{source:, target:}` edge."""
    if isinstance(edge, list) and len(edge) == 2:
        src, dst = edge
    elif isinstance(edge, dict):
        edge = reader.mapping(edge, where, "an edge", {"source", "target", "configuration"}, ("source", "target"))
        src, dst = edge["source"], edge["target"]
    else:
        raise reader.error(where, "an edge must be [SOURCE, TARGET] or a mapping with 'source' and 'target'")
    if not isinstance(src, str) or not isinstance(dst, str):
        raise reader.error(where, "an edge's source and target must be text (NODE.output.PATTERN...)")
    return src, dst


def _endpoint(reader, text: str, nodes: dict, where: tuple) -> tuple[str, str, str]:
    node, _, rest = text.partition(".")
    kind, _, key = rest.partition(".")
    if node not in nodes:
        raise reader.error(where, f"edge {text!r} names no node of the pipeline (nodes: {', '.join(nodes)})")
    if kind not in ENDPOINT_KINDS or not key:
        raise reader.error(where, f"edge {text!r} must be NODE.KIND.NAME, KIND one of {', '.join(ENDPOINT_KINDS)}")
    return node, kind, key


def _has_input(step: ValohaiOp, name: str) -> bool:
    return any(isinstance(r, dict) and r.get("name") == name for r in step.config.get("requires") or [])


def _check_cycle(reader, name: str, needs: dict[str, list[str]], at: tuple) -> None:
    found = find_cycle(needs)
    if found:
        raise reader.error(at, f"the edges of pipeline '{name}' make a cycle: {' -> '.join(found[1])}")


def _fed_copy(step: ValohaiOp, name: str, feeds: dict[str, list[tuple[str, str]]], op_of) -> ValohaiOp:
    """A private copy of `step` whose fed inputs come from upstream runs' outputs."""
    config = copy.deepcopy(step.config)
    requires = []
    for source in config.get("requires") or []:
        input_name = source.get("name")
        if input_name not in feeds:
            requires.append(source)
            continue
        for upstream, pattern in feeds[input_name]:
            regex = "outputs/" + fnmatch.translate(pattern)
            requires.append({"operation": f"{step.model}:{op_of(upstream)}", "select": regex,
                             "target-path": f"inputs/{input_name}",
                             "name": input_name if len(feeds[input_name]) == 1 else f"{input_name}-{upstream}"})
    config["requires"] = requires
    config["description"] = f"step '{step.name}' fed by its pipeline's edges"
    flags = {k: v for k, v in step.flags.items() if k not in feeds}
    op = ValohaiOp(step.model, name, config, flags, step.keypath)
    op.lines, op.params = step.lines, step.params
    op.url_inputs = {k: v for k, v in step.url_inputs.items() if k not in feeds}
    return op
