"""trk: a local-first experiment tracker.

Everything the `trk` CLI does is a library call here; names are imported
lazily so `import tracker` stays cheap.
"""

__version__ = "0.1.0"

_LAZY = {
    "RunStore": ("tracker.store", "RunStore"),
    "Run": ("tracker.store", "Run"),
    "TrkError": ("tracker.errors", "TrkError"),
    "load_project": ("tracker.project", "load"),
    "RunFilter": ("tracker.select", "RunFilter"),
    "select": ("tracker.select", "select"),
    "RunOptions": ("tracker.launch", "RunOptions"),
    "launch": ("tracker.launch", "launch"),
    "run": ("tracker.api", "run"),
    "runs": ("tracker.api", "runs"),
    "scalars": ("tracker.api", "scalars"),
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
