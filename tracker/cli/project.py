"""`trk models` and `trk operations`: what the project file defines."""

from __future__ import annotations

import click


def _project():
    from tracker.project.loader import load

    project = load(".")
    for w in project.warnings:
        click.echo(f"trk: warning: {w}", err=True)
    return project


def _matches(filters, *texts) -> bool:
    """Guild's filters: every one a case-insensitive part of one of `texts`."""
    texts = [t.lower() for t in texts]
    return all(any(f.lower() in t for t in texts) for f in filters)


def _line(name: str, width: int, description: str) -> str:
    first = description.splitlines()[0] if description else ""
    return f"{name.ljust(width)}  {first}".rstrip()


@click.command()
@click.argument("filters", nargs=-1, metavar="[FILTER]...")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show private models (named '_...') too.")
def models(filters, show_all):
    """List the models of the project file in this directory, with their descriptions.

    A FILTER shows only models whose name or description contains it. As in
    Guild, the anonymous model (operations given without a model name) is
    not listed: 'trk operations' lists its operations."""
    named = sorted((m for m in _project().models.values()
                    if m.name and (show_all or not m.name.startswith("_")) and _matches(filters, m.name, m.description)),
                   key=lambda m: m.name)
    width = max((len(m.name) for m in named), default=0)
    for m in named:
        click.echo(_line(m.name, width, m.description))


@click.command()
@click.argument("filters", nargs=-1, metavar="[FILTER]...")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show private operations (named '_...') too.")
def operations(filters, show_all):
    """List the operations of the project file with their descriptions.

    A FILTER (a model name, say) shows only operations whose name or
    description contains it."""
    ops = [op for m in _project().models.values() for op in m.operations.values()
           if (show_all or not (op.name.startswith("_") or op.model.startswith("_")))
           and _matches(filters, op.fullname, op.description)]
    ops.sort(key=lambda op: (op.model, op.name))
    width = max((len(op.fullname) for op in ops), default=0)
    for op in ops:
        click.echo(_line(op.fullname, width, op.description))
