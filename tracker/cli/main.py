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
}


class LazyGroup(click.Group):
    """A click group whose commands are imported only when used."""
    def list_commands(self, ctx):
        """Command names, from the table (nothing imported)."""
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        """Import and return one command."""
        spec = COMMANDS.get(name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        return getattr(module, spec[1])

    def format_commands(self, ctx, formatter):
        # Short help comes from the table, so `trk --help` imports nothing.
        """List commands with their short help from the table."""
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
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
