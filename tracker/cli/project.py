"""`trk models` and `trk operations`: what the project file defines."""

from __future__ import annotations

import click


def _project():
    from tracker.project.loader import load

    project = load(".")
    for w in project.warnings:
        click.echo(f"trk: warning: {w}", err=True)
    return project


@click.command()
def models():
    """List the models of the project file in this directory."""
    for name in sorted(_project().models):
        click.echo(name or "(anonymous)")


@click.command()
@click.argument("model", required=False)
def operations(model):
    """List operations (of MODEL, when given) with their descriptions."""
    from tracker.errors import OpError

    project = _project()
    if model is not None and model not in project.models:
        raise OpError(f"there is no model '{model}' in {project.filename}",
                      "Try 'trk models' for a list of available models.")
    ops = [op for m in project.models.values() if model is None or m.name == model for op in m.operations.values()]
    ops.sort(key=lambda op: op.fullname)
    width = max((len(op.fullname) for op in ops), default=0)
    for op in ops:
        desc = op.description.splitlines()[0] if op.description else ""
        click.echo(f"{op.fullname.ljust(width)}  {desc}".rstrip())
