"""Flags imported from an operation's Python main module or config file,
as Guild imports them (`flags-import`, `flags-import-skip`, `flags-dest`).

The main module's argparse options are read by running it in a subprocess
up to its first `parse_args` (`argparse_probe`): a parser built in loops,
helper functions or imported modules is read as Python builds it, which no
static reading of the source could match, and nothing after `parse_args`
(the training) runs. The subprocess starts in a scratch directory that
links to the project's entries, so a script that reads project files at
import still can, while files it creates land in the scratch directory,
not in the project. Module globals (`globals`, `dict:NAME`) are read from
the source's syntax tree, without running it. Results are cached under the
project cache, keyed by the script's size, mtime and inode.
"""

from __future__ import annotations

import ast
import logging
import os
import shlex
from typing import Any

from ..records import fields
from .flags import FlagConfigError, FlagDef, flagdef_from_config, join_split
from .loader import OpDef, Project

log = logging.getLogger("trk")

_CACHE_VERSION = 1
_ALL = object()


def prepare(project: Project, op: OpDef) -> OpDef:
    """Complete `op`'s flags once: imported flags merged in, `path` flags
    resolved against the project, and `flags-dest` settled (in `op.config`)."""
    if getattr(op, "_flags_prepared", None) == project.dir:
        return op
    op._flags_prepared = project.dir  # type: ignore[attr-defined]  # resolve() may hand out the same op again
    for fdef in op.flags.values():
        fdef.base_dir = project.dir
    if op.is_stepped:
        return op
    dest = op.config.get("flags-dest")
    wanted = _to_import(op)
    if isinstance(dest, str) and dest.startswith("config:"):
        if wanted is not None:
            _merge(op, _select(config_flags(project.dir, dest[7:], op), wanted, op), project.dir)
        _add_config_dep(op, dest[7:])
        return op
    main = _main_module(op)
    if main is None:
        return op
    if wanted is None:  # flags-import: no: Guild settles no dest either
        op.config.setdefault("flags-dest", "args")
        return op
    script = find_main_script(project.dir, main)
    if script is None:
        if wanted is _ALL or wanted:
            log.warning("cannot import flags from %s: no module named %s in %s", main, main, project.dir)
        op.config.setdefault("flags-dest", "args")
        return op
    info = script_info(script, _cache_dir(project))
    if not isinstance(dest, str):
        dest = "args" if {"argparse", "click"} & set(info["imports"]) else "globals"
        op.config["flags-dest"] = dest
    if wanted is not _ALL and not wanted:
        return op
    if dest == "args" and "argparse" in info["imports"]:
        data = argparse_flags(project, script, shlex.split(op.main)[1:])
    elif dest == "globals":
        data = _param_flags(info["params"])
    elif dest.startswith(("global:", "dict:")):
        data = _dict_flags(info["params"], dest.partition(":")[2], script)
    else:
        data = {}
    _merge(op, _select(_abs_paths(data, os.path.dirname(script)), wanted, op), project.dir)
    return op


def _add_config_dep(op: OpDef, src: str) -> None:
    """`flags-dest: config:FILE` implies `requires: [config: FILE]`, as in Guild:
    the run gets FILE rewritten with its flag values, in place of the copy."""
    requires = op.config.get("requires")
    entries = requires if isinstance(requires, list) else [] if requires is None else [requires]
    for e in entries:
        if isinstance(e, dict) and (e.get("config") == src or any(
                isinstance(s, dict) and s.get("config") == src for s in e.get("sources") or [])):
            return
    op.config["requires"] = entries + [{"config": src}]


def _to_import(op: OpDef) -> Any:
    """`_ALL`, a set of names, or None when import is off (`flags-import: no`).
    Without `flags-import`, the defined flags take what the script says of them."""
    value = op.config.get("flags-import")
    if value is None:
        return set(op.flags)
    if value is True or value in ("all", "yes"):
        return _ALL
    if value is False or value == [] or value == "no":
        return None
    return {str(v) for v in value} if isinstance(value, list) else {str(value)}


def _select(data: dict, wanted: Any, op: OpDef) -> dict:
    skip = op.config.get("flags-import-skip") or []
    skip = {str(s) for s in (skip if isinstance(skip, list) else [skip])}
    return {n: a for n, a in data.items() if (wanted is _ALL or n in wanted) and n not in skip}


def _merge(op: OpDef, data: dict, base_dir: str) -> None:
    """Merge imported flags into `op.flags`: what the project file says of a
    flag wins; an attribute it leaves unset comes from the script (Guild's merge)."""
    baseline = FlagDef("")
    merged = dict(op.flags)
    for name, attrs in data.items():
        try:
            imported = flagdef_from_config(name, attrs, f"flags imported for {op.fullname}")
        except FlagConfigError as e:
            log.warning("cannot import flag %s for %s: %s", name, op.fullname, e)
            continue
        imported.base_dir = base_dir
        own = merged.get(name) or next((f for f in merged.values() if f.arg_name == name), None)
        if own is None:
            merged[name] = imported
            continue
        for name in fields(FlagDef):
            if name not in ("name", "base_dir") and getattr(own, name) == getattr(baseline, name):
                setattr(own, name, getattr(imported, name))
    op.flags.clear()
    op.flags.update(sorted(merged.items()))


def _main_module(op: OpDef) -> str | None:
    if not op.main or op.exec is not None:
        return None
    try:
        words = shlex.split(op.main)
    except ValueError:
        return None
    module = words[0] if words else ""
    if not module or module.startswith(("guild.", "tracker.")) or "${" in module:
        return None
    return module


def find_main_script(project_dir: str, module: str) -> str | None:
    """The source file of a `main:` module spec (`train`, `pkg.train`,
    `src/train`) in the project, or None."""
    from ..fsutil import is_inside

    head, _, name = module.rpartition("/")
    rel = os.path.join(head, name.replace(".", "/")) if head else name.replace(".", "/")
    for candidate in (rel + ".py", os.path.join(rel, "__main__.py")):
        path = os.path.join(project_dir, candidate)
        if os.path.isfile(path) and is_inside(project_dir, candidate):
            return path
    return None


def script_info(path: str, cache_dir: str | None) -> dict:
    """What a script's syntax tree says: the modules it imports and its
    top-level literal assignments (`lr = 0.1`), as Guild reads them."""
    return _cached(path, "info", [], cache_dir, lambda: _read_info(path))


def _read_info(path: str) -> dict:
    imports: list[str] = []
    params: dict[str, Any] = {}
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError) as e:
        log.warning("cannot import flags from %s: %s", os.path.basename(path), e)
        return {"imports": [], "params": {}}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports += ([node.module] if node.module else []) + [a.name for a in node.names]
    for node in tree.body:
        if isinstance(node, ast.Assign):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id not in params:
                    params[target.id] = value  # later assigns redefine it: the first is the flag's default
    return {"imports": imports, "params": {k: v for k, v in params.items() if _jsonable(v)}}


def _jsonable(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int, float)):
        return True
    if isinstance(value, list):
        return all(_jsonable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v) for k, v in value.items())
    return False


def _flag_data(value: Any) -> dict:
    """Flag attributes for an imported value, as Guild makes them: a list is
    an `arg-split` flag whose default is its items as words."""
    t = ("string" if isinstance(value, str) else "boolean" if isinstance(value, bool)
         else "number" if isinstance(value, (int, float)) else None)
    data: dict = {"default": join_split(value) if isinstance(value, list) else value}
    if t:
        data["type"] = t
    if isinstance(value, list):
        data["arg-split"] = True
    return data


def _param_flags(params: dict) -> dict:
    return {n: _flag_data(v) for n, v in params.items() if not n.startswith("_") and not isinstance(v, dict)}


def _dict_flags(params: dict, name: str, script: str) -> dict:
    value = params.get(name)
    if not isinstance(value, dict):
        log.warning("cannot import flags for param '%s' in %s: it must be a dict (got %s)",
                    name, os.path.basename(script), type(value).__name__)
        return {}
    return {n: _flag_data(v) for n, v in flatten(value).items() if not n.startswith("_")}


def flatten(value: dict, prefix: str = "") -> dict:
    """A nested mapping as dotted names: {"model": {"layers": 2}} -> {"model.layers": 2}."""
    out: dict = {}
    for k, v in value.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _abs_paths(data: dict, script_dir: str) -> dict:
    """A default that names an existing file beside the script (`data/train.csv`)
    becomes its absolute path, as Guild makes it, so the run finds it."""
    for attrs in data.values():
        default = attrs.get("default") if isinstance(attrs, dict) else None
        if isinstance(default, str) and os.sep in default and os.path.exists(os.path.join(script_dir, default)):
            attrs["default"] = os.path.join(script_dir, default)
    return data


def config_flags(project_dir: str, src: str, op: OpDef) -> dict:
    """Flags from a config file in the project (`flags-dest: config:FILE`):
    YAML, JSON or INI (values typed as Guild types them), nested keys as dotted names."""
    path = os.path.join(project_dir, src)
    ext = os.path.splitext(src.removesuffix(".in"))[1].lower()
    try:
        with open(path, encoding="utf-8") as f:
            if ext in (".yml", ".yaml"):
                import yaml

                values = yaml.safe_load(f)
            elif ext == ".json":
                import json

                values = json.load(f)
            elif ext in (".ini", ".cfg"):
                values = _ini_values(f.read())
            else:
                raise ValueError(f"config type for {src} not supported")
    except Exception as e:  # noqa: BLE001  (OSError, and yaml's, json's and configparser's own errors)
        log.warning("cannot import flags for %s from %s: %s", op.fullname, src, e)
        return {}
    if not isinstance(values, dict):
        return {}
    return {n: _flag_data(v) for n, v in flatten(values).items()
            if v is None or isinstance(v, (str, int, float, bool, list))}


def _ini_values(text: str) -> dict:
    """An INI file's options, typed (int, float, boolean, else text); a
    section's options (with the DEFAULT ones it inherits) as `section.name`."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read_string(text)

    def typed(section: str, name: str) -> Any:
        for get in (cfg.getint, cfg.getfloat, cfg.getboolean):
            try:
                return get(section, name)
            except ValueError:
                pass
        return cfg.get(section, name)

    values = {name: typed("DEFAULT", name) for name in cfg.defaults()}
    for section in cfg.sections():
        for name in cfg.options(section):
            values[f"{section}.{name}"] = typed(section, name)
    return values


def argparse_flags(project: Project, script: str, base_args: list[str]) -> dict:
    """The script's argparse options as flag attributes (see `argparse_probe`)."""
    return _cached(script, "argparse", base_args, _cache_dir(project),
                   lambda: _probe(project.dir, script, base_args), keep=lambda d: d is not None) or {}


def _probe(project_dir: str, script: str, base_args: list[str]) -> dict | None:
    import json
    import shutil
    import subprocess
    import sys
    import tempfile

    scratch = tempfile.mkdtemp(prefix="trk-flags-")
    try:
        for entry in os.listdir(project_dir):
            os.symlink(os.path.join(project_dir, entry), os.path.join(scratch, entry))
        out = os.path.join(scratch, ".trk-flags.json")
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(script), project_dir] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        try:
            p = subprocess.run([sys.executable, "-m", "tracker.project.argparse_probe", script, out] + base_args,
                               check=False, cwd=scratch, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=120)
        except subprocess.TimeoutExpired:
            log.warning("cannot import flags from %s: it did not reach parse_args in 120 s",
                        os.path.relpath(script, project_dir))
            return None
        if not os.path.exists(out):
            if p.returncode != 0:
                lines = p.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit {p.returncode}"]
                log.warning("cannot import flags from %s: %s", os.path.relpath(script, project_dir), lines[-1])
                return None
            return {}
        with open(out, encoding="utf-8") as f:
            found = json.load(f)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for w in found.get("warnings") or []:
        log.warning("importing flags from %s: %s", os.path.relpath(script, project_dir), w)
    return found.get("flags") or {}


def _cache_dir(project: Project) -> str | None:
    return getattr(project, "cache_dir", None)


def _cached(path: str, kind: str, args: list[str], cache_dir: str | None, compute, keep=lambda d: True):
    """`compute()`, cached as JSON in `cache_dir/flags/`, keyed by the file's
    signature; a file changed in the last 2 s is not cached (same mtime tick)."""
    import hashlib
    import json
    import time

    try:
        st = os.stat(path)
    except OSError:
        return compute()
    sig = [_CACHE_VERSION, st.st_size, st.st_mtime_ns, st.st_ino]
    entry_path = None
    if cache_dir:
        key = hashlib.sha256("\0".join([os.path.abspath(path), kind] + args).encode()).hexdigest()[:32]
        entry_path = os.path.join(cache_dir, "flags", key + ".json")
        try:
            with open(entry_path, encoding="utf-8") as f:
                entry = json.load(f)
            if entry.get("signature") == sig:
                return entry["data"]
        except (OSError, ValueError, KeyError):
            pass
    data = compute()
    if entry_path and keep(data) and time.time_ns() - st.st_mtime_ns > 2_000_000_000:
        from ..fsutil import atomic_write

        try:
            os.makedirs(os.path.dirname(entry_path), exist_ok=True)
            atomic_write(entry_path, json.dumps({"signature": sig, "data": data}))
        except (OSError, TypeError, ValueError):
            pass
    return data
