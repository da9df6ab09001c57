"""Shell completion: `trk completion bash|zsh|fish` prints the script, and
the completers name operations, flags (`lr=`), choice values and runs.

Click does the shell side (`_TRK_COMPLETE`); a completer never raises: a
directory without a project, or a store that cannot be read, completes
nothing rather than printing a traceback into the user's prompt.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem


def operations(ctx, param, incomplete: str) -> list[CompletionItem]:
    """The project's operations (`model:op`, and `op` where it is unambiguous)."""
    try:
        from tracker.project.loader import load

        project = load(".")
    except Exception:
        return []
    names: dict[str, str] = {}
    for model in project.models.values():
        for op in model.operations.values():
            names[op.fullname] = op.description
            names.setdefault(op.name, op.description)
    return [CompletionItem(n, help=h or None) for n, h in sorted(names.items()) if n.startswith(incomplete)]


def flags(ctx, param, incomplete: str) -> list[CompletionItem]:
    """`NAME=` for the chosen operation's flags, and `NAME=CHOICE` values."""
    try:
        from tracker.project.loader import load
        from tracker.project.resolve import resolve

        op = resolve(load("."), ctx.params.get("opspec") or "")
    except Exception:
        return []
    name, eq, _ = incomplete.partition("=")
    if eq:
        fdef = op.flags.get(name)
        choices = [c.get("value") if isinstance(c, dict) else c for c in (getattr(fdef, "choices", None) or [])]
        return [CompletionItem(f"{name}={c}") for c in choices if f"{name}={c}".startswith(incomplete)]
    given = {a.partition("=")[0] for a in ctx.params.get("assigns") or ()}
    return [CompletionItem(f"{n}=", help=(getattr(f, "description", "") or None))
            for n, f in sorted(op.flags.items()) if n.startswith(incomplete) and n not in given]


def runs(ctx, param, incomplete: str) -> list[CompletionItem]:
    """Run indexes (the newest 20) and id prefixes, with their operation."""
    try:
        from tracker.store.runstore import RunStore

        listed = RunStore().query(limit=20)
    except Exception:
        return []
    items = [CompletionItem(str(i), help=f"{r.short_id} {r.opspec} {r.status}") for i, r in enumerate(listed, 1)]
    items += [CompletionItem(r.short_id, help=f"{r.opspec} {r.status}") for r in listed]
    return [item for item in items if item.value.startswith(incomplete)]


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script for SHELL.

    \b
    bash:  eval "$(trk completion bash)"    (in ~/.bashrc)
    zsh:   eval "$(trk completion zsh)"     (in ~/.zshrc)
    fish:  trk completion fish > ~/.config/fish/completions/trk.fish
    """
    from click.shell_completion import get_completion_class

    from tracker.cli.main import cli

    cls = get_completion_class(shell)
    click.echo(cls(cli, {}, "trk", "_TRK_COMPLETE").source())
