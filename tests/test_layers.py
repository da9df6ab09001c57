"""The layers ARCHITECTURE.md draws: imports only point down (cli/ and web/
on top, then api, then views and execution, then project, store and
metrics, then the shared modules), checked on every module's imports, those
inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tracker"
SHARED = {"display", "errors", "fsutil", "lines", "records"}
# What each layer may import of trk besides itself (shared: the shared modules).
ALLOWED = {
    "api": {"views", "execution", "project", "store", "metrics", "shared"},
    "views": {"project", "store", "metrics", "shared"},
    "execution": {"project", "store", "metrics", "shared"},
    "project": {"shared"},
    "store": {"shared"},
    "metrics": {"shared"},
    "shared": {"shared"},
}
# The exceptions ARCHITECTURE.md names: the store opens its scalar index;
# a flag value in a table looks as project.flagvalues writes it.
EXCEPTIONS = {("tracker.store.runstore", "tracker.metrics.index"), ("tracker.display", "tracker.project.flagvalues")}


def _layer(module: str) -> str:
    """`tracker.store.run` -> `store`; a shared module -> `shared`."""
    name = module.split(".")[1] if "." in module else ""
    return "shared" if name in SHARED else name


def _imported(path: Path, module: str) -> set[str]:
    """The tracker modules `path` (module `module`) imports, anywhere in it."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # `from .. import cli` names a module
    return {t for t in found if t.startswith("tracker.") and (PACKAGE.parent / (t.replace(".", "/") + ".py")).exists()
            or (PACKAGE.parent / t.replace(".", "/")).is_dir() and t.startswith("tracker.")}


MODULES = sorted((".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"), p)
                 for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_point_down(module, path):
    layer = _layer(module)
    if layer not in ALLOWED:
        return  # cli/, web/, __main__, the package: the top, may import anything
    above = sorted(t for t in _imported(path, module)
                   if _layer(t) != layer and _layer(t) not in ALLOWED[layer]
                   and not any(module == m and t.startswith(u) for m, u in EXCEPTIONS))
    assert not above, f"{module} ({layer}) imports {above}: a layer above it"


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ..cli import quickrun\n    from tracker.execution import launch\n")
    assert {"tracker.cli.quickrun", "tracker.execution.launch"} <= _imported(bad, "tracker.store.bad")
