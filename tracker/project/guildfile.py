"""Guild's top-level forms of a project file, read into models as Guild 0.9 reads them.

A file is a mapping of operations (one anonymous model) or a list of entries:
`model:`, `config:` (a named set of attributes to extend or include),
`include:` (another file's entries) and `package:` (ignored). A model takes
its parents' attributes (`extends:`, with `params:` and `{{name}}`),
`$include`s operations, flags and resources, and `operation-defaults`.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable

TYPE_CHECKING = False  # annotations only: importing typing costs every `trk run` 3 ms
if TYPE_CHECKING:
    from typing import Any

from ..records import field, record
from .extends import INHERITABLE, apply_parent, params_of, resolve_params

TYPES = ("model", "config", "include", "package")

_KINDS = ("main", "exec", "steps")
_REF_MODEL_OP = re.compile(r"([^:#]*):([^#]+)(?:#(.+))?$")  # MODEL:OP[#ATTRS]
_REF_CONFIG = re.compile(r"([^:#]+)(?:#(.+))?$")  # CONFIG[#ATTRS]


class Invalid(Exception):
    """A project file error at a key path (see `InFile`)."""

    def __init__(self, path: tuple, message: str, exit_code: int | None = None):
        super().__init__(message)
        self.path = path
        self.message = message
        self.exit_code = exit_code


@record(frozen=True)
class InFile:
    """Leads a key path that lies in a file other than the project file (one it `include:`s)."""

    path: str


@record
class ModelSpec:
    """A model as Guild resolves it: attributes merged, operations with their key paths."""

    name: str
    default: bool
    description: str
    references: list
    resources: dict
    operations: dict[str, tuple[dict, tuple]] = field(default_factory=dict)
    keypath: tuple = ()
    sourcecode: Any = None  # the model's `sourcecode:`, which its operations' rules extend


def expand_includes(data: Any, path: str, read: Callable[[str], Any], root_file: str,
                    chain: tuple = ()) -> tuple[list, list]:
    """The file's entries, each `include:` entry replaced by the entries of the
    files it names; and each entry's source, `[file, index]` (index None: the
    file is a mapping of operations). `read(path)` parses a file."""
    root = os.path.dirname(root_file)
    if data is None:
        return [], []
    if isinstance(data, dict):
        return [{"operations": data}], [[path, None]]
    if not isinstance(data, list):
        raise Invalid(_base([path, None], root_file), "expected a list of models or a mapping of operations")
    chain = chain + (path,)
    items: list = []
    sources: list = []
    for i, item in enumerate(data):
        if not (isinstance(item, dict) and "include" in item):
            items.append(item)
            sources.append([path, i])
            continue
        at = _base([path, i], root_file) + ("include",)
        for name in _str_list(item["include"], at, "include"):
            target = os.path.abspath(os.path.join(os.path.dirname(path), name))
            if not os.path.isfile(target):
                raise Invalid(at, f"cannot find include '{name}': it must be a file next to the file that "
                                  "includes it (trk does not search Python packages for Guild files)")
            if os.path.realpath(target) in {os.path.realpath(p) for p in chain}:
                cycle = " -> ".join(os.path.relpath(p, root) for p in chain + (target,))
                raise Invalid(at, f"cycle in 'include' ({cycle})")
            from ..fsutil import is_inside

            if not is_inside(root, target):
                raise Invalid(at, f"include '{name}' is outside the project directory {root}: "
                                  "copy it into the project")
            more, more_sources = expand_includes(read(target), target, read, root_file, chain)
            items += more
            sources += more_sources
    return items, sources


def build_models(items: list, sources: list, root_file: str) -> list[ModelSpec]:
    """The models of a file's entries (see `expand_includes`), in order."""
    return _Entries(items, sources, root_file).models()


def _base(source: list, root_file: str) -> tuple:
    """The key path of an entry: led by its file when that is not the project file."""
    path, index = source
    lead = () if path == root_file else (InFile(path),)
    return lead if index is None else lead + (index,)


def _str_list(value: Any, at: tuple, what: str) -> list:
    """Guild's string-or-list values (`extends`, `include`, `$include`); `'[a, b]'` is a list."""
    if value is None:
        return []
    if isinstance(value, str):
        if value.startswith("[") and value.endswith("]"):
            import yaml

            value = yaml.safe_load(value)
        else:
            return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(at, f"'{what}' must be a name or a list of names, not {value!r}")
    return value


class _Entries:
    """A file's entries, coerced as Guild coerces them, looked up by name."""

    def __init__(self, items: list, sources: list, root_file: str):
        self.items: list[dict] = []
        self.opsonly = [s[1] is None for s in sources]
        self.bases: list[tuple] = []
        self.types: list[tuple[str, str]] = []
        for item, source in zip(items, sources):
            base = _base(source, root_file)
            opsonly = source[1] is None
            if not isinstance(item, dict):
                raise Invalid(base, f"expected a model mapping ('- model: NAME'), got {item!r}")
            self.types.append(_entry_type(item, base))
            self.bases.append(base)
            self.items.append(_coerce_entry(item, base, opsonly))

    def at(self, k: int, *keys) -> tuple:
        """The key path of `keys` inside entry `k`."""
        if self.opsonly[k]:
            return self.bases[k] + keys[1:] if keys[:1] == ("operations",) else self.bases[k]
        return self.bases[k] + keys

    def named(self, name: str) -> int | None:
        """The first model or config entry called `name`."""
        for k, (kind, n) in enumerate(self.types):
            if kind in ("model", "config") and n == name:
                return k
        return None

    def models(self) -> list[ModelSpec]:
        specs: dict[str, ModelSpec] = {}
        for k, (kind, name) in enumerate(self.types):
            if kind != "model":
                continue
            if name in specs:
                raise Invalid(self.at(k, "model"), f"duplicate model '{name}'")
            specs[name] = self._model(k, name)
        return list(specs.values())

    def _model(self, k: int, name: str) -> ModelSpec:
        data = self._extended(k, [])
        data = resolve_params(data, params_of(data))
        own_ops = self.items[k].get("operations") or {}
        ops = self._section(data, "operations", self.at(k, "operations"))
        defaults = data.get("operation-defaults")
        if defaults is not None:
            defaults = _coerce_op("operation-defaults", defaults, self.at(k, "operation-defaults"))
        spec = ModelSpec(name, bool(data.get("default")), str(data.get("description") or "").strip(),
                         _as_list(data.get("references")), data.get("resources") or {}, keypath=self.at(k))
        if isinstance(spec.resources, dict) and "$include" in spec.resources:
            spec.resources = self._section(data, "resources", self.at(k, "resources"))
        spec.sourcecode = data.get("sourcecode")
        for opname in ops:
            if opname == "$include":
                continue
            op = copy.deepcopy(ops[opname])
            if not isinstance(op, dict):
                raise Invalid(self.at(k, "operations", opname), f"operation '{opname}' must be a mapping")
            for key, value in (defaults or {}).items():
                op.setdefault(key, copy.deepcopy(value))
            where = self._op_origin(k, str(opname), set()) or self.at(k)
            _drop_inherited_kinds(op, own_ops.get(opname))
            if isinstance(op.get("flags"), dict) and "$include" in op["flags"]:
                op["flags"] = self._section(op, "flags", where + ("flags",))
            _step_includes(self, op, where)
            spec.operations[str(opname)] = (op, where)
        return spec

    def _extended(self, k: int, seen: list) -> dict:
        """Entry `k` with what it inherits from the entries it `extends:` (params not yet resolved)."""
        data = copy.deepcopy(self.items[k])
        at = self.at(k, "extends")
        for parent in _str_list(data.get("extends"), at, "extends"):
            if "/" in parent:
                raise Invalid(at, f"cannot extend '{parent}': trk does not read Guild packages' models; "
                                  "copy that model or config into this file")
            if parent in seen:
                raise Invalid(at, f"cycle in 'extends' ({' -> '.join(seen + [parent])})")
            pk = self.named(parent)
            if pk is None:
                raise Invalid(at, f"undefined model or config '{parent}' in 'extends'")
            apply_parent(self._extended(pk, seen + [parent]), data, INHERITABLE)
        return data

    def _section(self, data: dict, section: str, at: tuple) -> dict:
        """`data[section]` with its `$include`s resolved, as Guild does: included
        attributes first, then the section's own, each replacing what came before."""
        resolved: dict = {}
        self._apply_section(data.get(section) or {}, section, set(), resolved, at)
        return resolved

    def _apply_section(self, sdata: Any, section: str, seen: set, resolved: dict, at: tuple) -> None:
        if not isinstance(sdata, dict):
            return
        for name in sorted(sdata, key=lambda n: n != "$include"):  # stable: includes first
            if name != "$include":
                value = sdata[name]
                if isinstance(value, dict) and isinstance(resolved.get(name), dict):
                    resolved[name].update(value)
                else:
                    resolved[name] = dict(value) if isinstance(value, dict) else value
                continue
            for ref in _str_list(sdata[name], at, "$include"):
                if ref in seen:
                    break  # as Guild: a repeated reference ends the list
                seen.add(ref)
                included = self._include_data(ref, section, at)
                self._apply_section(included, section, seen, resolved, at)

    def _include_data(self, ref: str, section: str, at: tuple) -> dict:
        m = _REF_MODEL_OP.match(ref)
        model, op, attrs = m.groups() if m else (None, None, None)
        if not m:
            m = _REF_CONFIG.match(ref)
            if not m:
                raise Invalid(at, f"invalid include reference '{ref}': expected CONFIG[#ATTRS] or "
                                  "MODEL:OPERATION[#ATTRS]")
            model, attrs = m.groups()
        data = None
        for k, (kind, name) in enumerate(self.types):
            if kind not in ("model", "config") or name != model:
                continue
            if op:
                opdata = (self.items[k].get("operations") or {}).get(op)
                if opdata is None:
                    continue
                data = opdata.get(section) or {}
            else:
                data = self.items[k].get(section) or {}
            break
        if data is None:
            raise Invalid(at, f"invalid include reference '{ref}': cannot find target")
        if attrs:
            names = {a.strip() for a in attrs.split(",")}
            data = {n: v for n, v in data.items() if n in names}
        return data

    def _op_origin(self, k: int, opname: str, seen: set) -> tuple | None:
        """The key path of the mapping that defines `opname` for entry `k`:
        its own, an `$include`d one, or a parent's; for messages' line numbers."""
        if k in seen:
            return None
        seen.add(k)
        ops = self.items[k].get("operations") or {}
        if opname in ops:
            return self.at(k, "operations", opname)
        try:
            names = _str_list(ops.get("$include"), (), "") + _str_list(self.items[k].get("extends"), (), "")
        except Invalid:
            return None  # reported where the model is built
        for name in names:
            pk = self.named(name.split("#")[0])
            found = pk is not None and self._op_origin(pk, opname, seen)
            if found:
                return found
        return None


def _entry_type(item: dict, base: tuple) -> tuple[str, str]:
    used = [t for t in TYPES if t in item]
    if len(used) > 1:
        raise Invalid(base, f"an entry may define only one of {', '.join(used)}: split it into several entries")
    if not used:
        if "operations" in item:
            return "model", ""  # Guild's anonymous model: operations without a name
        raise Invalid(base, "entry must define 'model: NAME' (or 'config: NAME'), or 'operations:' "
                            "for the anonymous model")
    kind = used[0]
    name = item[kind]
    if name is None:
        name = ""
    if not isinstance(name, (str, int, float)) or isinstance(name, bool):
        raise Invalid(base + (kind,), f"invalid {kind} name {name!r}: expected a string")
    return kind, str(name)


def _coerce_entry(item: dict, base: tuple, opsonly: bool) -> dict:
    """An entry with Guild's coercions: operation strings are `main:`, flag values `default:`."""
    out = dict(item)
    ops = item.get("operations")
    if "operations" in item and ops is not None:
        at = base if opsonly else base + ("operations",)
        if not isinstance(ops, dict):
            raise Invalid(at, "'operations' must be a mapping of operation names")
        out["operations"] = {name: (cfg if name == "$include" else _coerce_op(str(name), cfg, at + (name,)))
                             for name, cfg in ops.items()}
    if isinstance(item.get("flags"), dict):
        out["flags"] = _coerce_flags(item["flags"])
    return out


def _coerce_op(name: str, cfg: Any, at: tuple) -> dict:
    if cfg is None:
        return {}
    if isinstance(cfg, str):
        return {"main": cfg}
    if not isinstance(cfg, dict):
        raise Invalid(at, f"operation '{name}' must be a mapping, got {cfg!r}")
    out = dict(cfg)
    if isinstance(cfg.get("flags"), dict):
        out["flags"] = _coerce_flags(cfg["flags"])
    return out


def _coerce_flags(flags: dict) -> dict:
    """Flags as mappings, so that a child's `lr: 0.2` keeps its parent's description."""
    return {name: (spec if name == "$include" or isinstance(spec, dict) else {"default": spec})
            for name, spec in flags.items()}


def _drop_inherited_kinds(op: dict, own: Any) -> None:
    """An operation that writes `exec:` over a parent's `main:` (or steps) runs
    what it wrote, as in Guild; only kinds the file itself sets twice are an error."""
    kinds = [k for k in _KINDS if k in op]
    mine = [k for k in _KINDS if isinstance(own, dict) and k in own]
    if len(kinds) > 1 and len(mine) == 1:
        for k in kinds:
            if k not in mine:
                del op[k]


def _step_includes(entries: _Entries, op: dict, where: tuple) -> None:
    """`$include` in a step's flags: the included flags' defaults, as Guild passes them."""
    steps = op.get("steps")
    if not isinstance(steps, list):
        return
    for i, step in enumerate(steps):
        if isinstance(step, dict) and isinstance(step.get("flags"), dict) and "$include" in step["flags"]:
            flags = entries._section(step, "flags", where + ("steps", i, "flags"))
            step["flags"] = {n: (v.get("default") if isinstance(v, dict) else v) for n, v in flags.items()}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
