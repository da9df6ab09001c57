"""`trk repro` and `trk dag`: DVC's pipeline commands over `dvc.yaml`."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("targets", nargs=-1, metavar="[STAGE]...")
@click.option("-f", "--force", is_flag=True, help="Run every stage, changed or not (frozen ones excepted).")
@click.option("--dry", is_flag=True, help="Say what would run and why; run nothing.")
@click.option("--max-parallel", type=int, help="Stages run at once when independent (default: 1, as DVC).")
@click.option("-l", "--label", help="Label for the pipeline run.")
@click.option("-t", "--tag", "tags", multiple=True, help="Tag the pipeline run (may repeat).")
@click.option("-q", "--quiet", is_flag=True, help="Do not show the stages' output (it is still recorded).")
def repro(targets, force, dry, max_parallel, label, tags, quiet):
    """Run the stages of dvc.yaml that changed, as one pipeline run.

    A stage runs when its command, dependencies, parameters or outputs
    differ from dvc.lock (or it is not there, or is always_changed), or when
    a stage it depends on runs; each line says why a stage runs or is
    skipped. With STAGE names (or foreach groups), only those and the
    stages they depend on are considered. dvc.lock is written as DVC writes
    it; with a .dvc/ directory, outputs go into DVC's cache too.
    """
    from tracker.execution.dvc_repro import plan, repro as run_repro
    from tracker.execution.lifecycle import RunOptions
    from tracker.execution.process import Sinks

    pipeline, decisions = plan(".", list(targets) or None, force=force)
    for w in pipeline.warnings:
        click.echo(f"trk: warning: {w}", err=True)
    for d in decisions:
        click.echo(d.describe(dry))
    if not any(d.runs for d in decisions):
        click.echo("Data and pipelines are up to date.")
        return
    if dry:
        return
    from tracker.cli.quickrun import setup_logging
    from tracker.cli.run import _exit
    from tracker.project.loader import load
    from tracker.store.runstore import RunStore

    setup_logging(quiet)
    opts = RunOptions(label=label, tags=list(tags), max_parallel=max_parallel)
    result = run_repro(RunStore(), load("."), pipeline, decisions, opts, Sinks() if quiet else Sinks.console())
    if result is not None and result.exit_code == 0:
        click.echo(f"Pipeline run {result.run.id} completed")
    _exit(result)


@click.command()
@click.option("--dot", is_flag=True, help="Print the graph in Graphviz dot format.")
def dag(dot):
    """Show the stage graph of dvc.yaml.

    Each stage is listed after the stages it depends on, with `<-` naming
    them (a stage depends on those whose outputs are its dependencies).
    """
    from tracker.project.formats.dvc import read_pipeline
    from tracker.execution.dvc_repro import dag_lines

    pipeline = read_pipeline(".")
    for line in dag_lines(pipeline, dot):
        click.echo(line)
    sys.stdout.flush()
