"""Pipelines written for other systems, read as trk models (issue 12).

Each format is one module that turns its files into a `loader.Model` of
ordinary operations (`OpDef`s with `exec:`/`steps:`), so its stages, jobs
and workflows run through the same run lifecycle as `trk.yml` operations:
no format has a runner of its own. A format's model is named after it
(`dvc`, `dstack`, `valohai`, `gradient`): `trk run dvc:train`.

`FORMATS` maps a format to the files that mark a project as using it and
the module that reads them; detecting a format costs a `stat` per file, and
a format's module is imported only when its files exist. A module exposes
`load(project_dir: str) -> Model` and raises `ProjectError` naming file,
line and key for a malformed file (exit 2).

May import `project` (loader, flags), `errors`, `fsutil`.
"""

from __future__ import annotations

import os
from importlib import import_module

TYPE_CHECKING = False  # without importing typing (see tracker/fsutil.py)
if TYPE_CHECKING:
    from ..loader import Model

# format -> (files that mark it, relative to the project directory; module)
FORMATS: dict[str, tuple[tuple[str, ...], str]] = {
    "dvc": (("dvc.yaml",), "dvc"),
    "dstack": ((".dstack/workflows.yaml", ".dstack/workflows.yml"), "dstack"),
    "valohai": (("valohai.yaml", "valohai.yml"), "valohai"),
    "gradient": ((".gradient/workflows/",), "gradient"),  # a directory: any *.yaml / *.yml in it
}


def detect(project_dir: str) -> list[str]:
    """The formats whose files are in `project_dir`, in `FORMATS` order."""
    from .modelcache import note_file, note_listing

    found = []
    for name, (files, _) in FORMATS.items():
        for rel in files:
            path = os.path.join(project_dir, rel)
            if rel.endswith("/"):
                note_listing(path, (".yaml", ".yml"))
            else:
                note_file(path)
            if rel.endswith("/") and _has_yaml(path) or os.path.isfile(path):
                found.append(name)
                break
    if "valohai" in found:
        return found
    for f in ("trk.yml", "guild.yml"):
        note_file(os.path.join(project_dir, f))
    if not any(os.path.isfile(os.path.join(project_dir, f)) for f in ("trk.yml", "guild.yml")):
        from .valohai_scan import has_prepare_call

        if has_prepare_call(project_dir):  # steps defined in scripts by prepare(), no YAML at all (item 3)
            found.append("valohai")
    return found


def _has_yaml(dir: str) -> bool:
    """Whether `dir` holds a `*.yaml` / `*.yml` file (no glob: this runs on every command)."""
    try:
        return any(n.endswith((".yaml", ".yml")) for n in os.listdir(dir))
    except OSError:
        return False


def load_formats(project_dir: str, cache_dir: str | None = None) -> list["Model"]:
    """The models of the formats in `project_dir`; with `cache_dir`, from the
    JSON cache while no file their loaders read has changed (`modelcache`)."""
    from .modelcache import load_cached

    return load_cached(project_dir, cache_dir, lambda: load_models(project_dir))


def load_models(project_dir: str, formats: list[str] | None = None) -> list["Model"]:
    """The models the formats in `project_dir` contribute (only formats whose
    module exists yet are read)."""
    models = []
    for name in detect(project_dir) if formats is None else formats:
        try:
            module = import_module(f"{__name__}.{FORMATS[name][1]}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{FORMATS[name][1]}":
                continue  # a format not supported yet
            raise
        models.append(module.load(project_dir))
    return models
