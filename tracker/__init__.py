"""trk: a local-first experiment tracker.

Everything the `trk` CLI does is a library call here. The public API is the
names in `__all__`; they are imported lazily so `import tracker` stays cheap.
"""

__version__ = "0.1.0"

_LAZY = {
    # Running
    "run": ("tracker.api", "run"),
    "restart": ("tracker.api", "restart"),
    "launch": ("tracker.execution.launch", "launch"),
    "relaunch": ("tracker.execution.launch", "relaunch"),
    "RunOptions": ("tracker.execution.launch", "RunOptions"),
    "LaunchResult": ("tracker.execution.launch", "LaunchResult"),
    "load_project": ("tracker.project.loader", "load"),
    "prepare": ("tracker.project.formats.valohai_prepare", "prepare"),  # Valohai's valohai.prepare()
    # Runs
    "runs": ("tracker.api", "runs"),
    "select": ("tracker.store.select", "select"),
    "RunFilter": ("tracker.store.select", "RunFilter"),
    "Run": ("tracker.store.run", "Run"),
    "RunStore": ("tracker.store.runstore", "RunStore"),
    "delete": ("tracker.api", "delete"),
    "restore": ("tracker.api", "restore"),
    "stop": ("tracker.api", "stop"),
    "purge": ("tracker.api", "purge"),
    # Looking at runs
    "RunView": ("tracker.views.runview", "RunView"),
    "scalars": ("tracker.api", "scalars"),
    "history": ("tracker.api", "history"),
    "compare_frame": ("tracker.api", "compare_frame"),
    "history_frame": ("tracker.api", "history_frame"),
    "run_info": ("tracker.api", "run_info"),
    "compare": ("tracker.api", "compare"),
    "diff": ("tracker.api", "diff"),
    # Errors
    "TrkError": ("tracker.errors", "TrkError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'tracker' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
