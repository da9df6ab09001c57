"""`trk yaml step SCRIPT`: write a step defined in code into valohai.yaml, as `vh yaml step` does."""

from __future__ import annotations

import click


@click.group()
def yaml():
    """Write valohai.yaml from the steps scripts define (Valohai's `vh yaml`)."""


@yaml.command()
@click.argument("script", type=click.Path(dir_okay=False))
def step(script):
    """Add or update the step SCRIPT defines with `prepare()` in valohai.yaml.

    The script is parsed, never run: every argument of its
    `valohai.prepare(...)` / `tracker.prepare(...)` call must be a literal (or
    a name bound to one at module level). The step's command is
    `python ./SCRIPT {parameters}`; on an update, the step's own command and
    other keys stay, and its parameters, inputs and image are replaced.
    """
    from tracker.project.formats.valohai_scan import write_step

    path, name, new = write_step(".", script)
    click.echo(f"{'Added' if new else 'Updated'} step '{name}' in {path}")
