"""The `trk` command: a click group whose subcommands load on demand.

Only click is imported at start-up; each command module imports what it
needs when it runs, so `trk --help` and `trk --version` stay instant.
"""

from __future__ import annotations

import importlib
import sys

import click

from tracker import __version__

COMMANDS = {
    "run": ("tracker.cli.run", "run", "Run an operation."),
    "runs": ("tracker.cli.runs", "runs", "List, delete, restore and inspect runs."),
    "ls": ("tracker.cli.files", "ls", "List the files of a run."),
    "cat": ("tracker.cli.files", "cat", "Show a run file or the run's output."),
    "completion": ("tracker.cli.completion", "completion", "Print the shell completion script (bash, zsh, fish)."),
    "watch": ("tracker.cli.files", "watch", "Follow a running run's output until it ends (as cat -f)."),
    "select": ("tracker.cli.files", "select", "Print the id or path of a run."),
    "models": ("tracker.cli.project", "models", "List the models of the project."),
    "operations": ("tracker.cli.project", "operations", "List the operations of the project."),
    "compare": ("tracker.cli.compare", "compare", "Compare runs by flags and scalars."),
    "tensorboard": ("tracker.cli.tensorboard", "tensorboard", "View runs in TensorBoard."),
    "diff": ("tracker.cli.diff", "diff", "Show what differs between two runs."),
    "check": ("tracker.cli.check", "check", "Check the run store; --reindex rebuilds its index."),
    "label": ("tracker.cli.runs", "label", "Set or change run labels."),
    "tag": ("tracker.cli.runs", "tag", "Add or remove run tags."),
    "stop": ("tracker.cli.stop", "stop", "Stop running runs."),
    "yaml": ("tracker.cli.valohai", "yaml", "Write valohai.yaml steps from prepare() calls in scripts."),
    "repro": ("tracker.cli.dvc", "repro", "Run the changed stages of dvc.yaml and update dvc.lock."),
    "dag": ("tracker.cli.dvc", "dag", "Show the stage graph of dvc.yaml."),
    "queue": ("tracker.cli.queue", "queue", "Start staged runs N at a time."),
    "view": ("tracker.cli.view", "view", "Show runs, comparisons and scalar plots in a local web page."),
}

# Guild's names for trk's commands.
ALIASES = {"ops": "operations"}

# Guild commands trk does not have, and what to use instead.
_NO_STORE_SYNC = "trk keeps runs as directories under $TRK_HOME/runs ('trk select --path RUN')"
GUILD_ONLY = {
    "open": "use 'trk select --path RUN' for a run's directory",
    "comment": "run comments are not supported: use 'trk label' or 'trk tag'",
    "mark": "marking runs is not supported: use 'trk tag'",
    "export": _NO_STORE_SYNC, "import": _NO_STORE_SYNC, "push": _NO_STORE_SYNC, "pull": _NO_STORE_SYNC,
    "sync": _NO_STORE_SYNC, "remote": _NO_STORE_SYNC, "remotes": _NO_STORE_SYNC, "publish": _NO_STORE_SYNC,
    "merge": "use 'trk select --path RUN' and copy the files you need",
}


def unknown_command(ctx, name: str, commands, guild_only=None) -> click.UsageError:
    """`No such command`, with a Guild command trk lacks explained (those of
    `guild_only`, default the top-level ones), or the nearest names suggested."""
    import difflib

    guild_only = GUILD_ONLY if guild_only is None else guild_only
    if name in guild_only:
        return click.UsageError(f"No such command '{name}': '{name}' is a Guild command that trk does not have; "
                                f"{guild_only[name]}.", ctx)
    close = difflib.get_close_matches(name, sorted(commands), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return click.UsageError(f"No such command '{name}'.{hint}", ctx)


class LazyGroup(click.Group):
    """A click group whose commands are imported only when used."""
    def list_commands(self, ctx):
        """Command names, from the table (nothing imported)."""
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        """Import and return one command (Guild's name for it works too)."""
        spec = COMMANDS.get(ALIASES.get(name, name))
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        return getattr(module, spec[1])

    def resolve_command(self, ctx, args):
        """The command `args[0]` names; a usage error suggesting names when none."""
        name = args[0]
        if name not in COMMANDS and name not in ALIASES and not name.startswith("-"):
            raise unknown_command(ctx, name, list(COMMANDS) + list(ALIASES))
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx, formatter):
        # Short help comes from the table, so `trk --help` imports nothing.
        """List commands with their short help from the table."""
        names = {name: ", ".join([name] + [a for a, n in ALIASES.items() if n == name]) for name in COMMANDS}
        rows = [(names[name], COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        """Run the command; a TrkError becomes `trk: ...`, a hint and its exit code."""
        from tracker.errors import TrkError

        try:
            return super().invoke(ctx)
        except TrkError as e:
            _print_error(e)
            sys.exit(e.exit_code)


def _print_error(e) -> None:
    click.echo(f"trk: {e.message}", err=True)
    if e.hint:
        click.echo(e.hint, err=True)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="trk", message="%(prog)s %(version)s")
def cli():
    """trk: a local-first experiment tracker.

    Every operation you run becomes a run under $TRK_HOME (default ~/.trk).
    """


def main() -> None:
    """The `trk` console script."""
    try:
        cli(prog_name="trk")
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
