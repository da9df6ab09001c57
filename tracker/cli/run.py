"""`trk run`: resolve an operation, confirm, run it and record the run."""

from __future__ import annotations

import sys

import click

from . import completion
from .quickrun import exit_code, setup_logging, stoppable  # (click-free: the quick path's own)


class RunCommand(click.Command):
    """`trk run`, whose unknown `--NAME VALUE` is most often a flag given the
    argparse way: say so, with the `NAME=VALUE` it meant."""

    def parse_args(self, ctx, args):
        """Parse as click does; `--lr 0.1` gets `did you mean lr=0.1?`."""
        given = list(args)  # click consumes `args` as it parses
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as e:
            opt = e.option_name
            if not opt.startswith("--") or len(opt) < 4:
                raise
            name, value = opt[2:], "VALUE"
            for i, word in enumerate(given):
                if word.startswith(opt + "="):
                    value = word[len(opt) + 1:]
                    break
                if word == opt:
                    if i + 1 < len(given) and not given[i + 1].startswith("-"):
                        value = given[i + 1]
                    break
            raise click.UsageError(f"No such option '{opt}'. Flags are NAME=VALUE: did you mean {name}={value}?",
                                   ctx) from None


@click.command(cls=RunCommand, context_settings={"ignore_unknown_options": False})
@click.argument("opspec", required=False, metavar="[MODEL:]OP", shell_complete=completion.operations)
@click.argument("assigns", nargs=-1, metavar="[NAME=VALUE]...", shell_complete=completion.flags)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("-l", "--label", help="Label for the run (${flag} is replaced by flag values).")
@click.option("-t", "--tag", "tags", multiple=True, help="Tag the run (may repeat).")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Use DIR (new or empty) as the run directory.")
@click.option("--force-run-dir", is_flag=True, help="Allow --run-dir to name a directory that is not empty.")
@click.option("--stage", is_flag=True, help="Prepare the run but do not start it.")
@click.option("--start", "start_run", metavar="RUN", help="Start a staged run.")
@click.option("--force-flags", is_flag=True, help="Accept flags the operation does not define.")
@click.option("--needed", is_flag=True, help="Skip the run when a completed run with the same inputs exists.")
@click.option("--explain", is_flag=True, help="With --needed: say why a run is reused or which input differs.")
@click.option("--restart", "restart", metavar="RUN",
              help="Run RUN again in its directory, with any NAME=VALUE given; a pipeline reuses its "
                   "completed steps whose flags are unchanged.")
@click.option("-b", "--background", "--bg", "background", is_flag=True,
              help="Run in the background: print the run id and return (output goes to the run's output file).")
@click.option("--max-parallel", type=int, help="Steps run at once in a DAG pipeline (default: CPUs).")
@click.option("--fail-fast", is_flag=True, help="Terminate running steps when one step fails.")
@click.option("--preview", "--print-trials", "preview", is_flag=True,
              help="Print the expanded step tree of a pipeline, or a batch's trials; run nothing.")
@click.option("-o", "--optimizer", type=click.Choice(["grid", "random"]),
              help="Batch: run every combination (grid) or draw --max-trials trials (random).")
@click.option("-m", "--max-trials", "--trials", "max_trials", type=int, metavar="N",
              help="Batch: run at most N trials (a grid is sampled; random search defaults to 20).")
@click.option("--random-seed", type=int, metavar="N", help="Batch: seed for random search and sampling.")
@click.option("--stage-trials", is_flag=True, help="Batch: stage the trials (start them with 'trk queue run').")
@click.option("--fail-on-trial-error", is_flag=True, help="Batch: stop when a trial fails.")
@click.option("-j", "--jobs", type=int, metavar="N", help="Batch trials (or DAG steps) run at once.")
@click.option("-bl", "--batch-label", metavar="LABEL", help="Label of the batch run.")
@click.option("-bt", "--batch-tag", "batch_tags", multiple=True, metavar="TAG", help="Tag the batch run (may repeat).")
@click.option("-q", "--quiet", is_flag=True, help="Do not show the program's output (it is still recorded).")
@click.option("--dask", "dask", metavar="ADDRESS",
              help="Stage the run(s) and submit them to the Dask scheduler at ADDRESS (tcp://HOST:8786; default "
                   "$TRK_DASK_SCHEDULER); workers start them against the same TRK_HOME on a shared file system.")
@click.option("--retries", type=int, metavar="N",
              help="With --dask: stage a failed or terminated run again and submit it again, N times at most.")
@click.option("--docker", is_flag=True, envvar="TRK_DOCKER",
              help="Run operations that name an image: in that image, through the Docker engine (default "
                   "$TRK_DOCKER); without it, the image is only recorded.")
@click.option("--help-op", is_flag=True, help="Show the operation's description and flags.")
@click.option("--test-sourcecode", is_flag=True,
              help="Show the source code rules and which files they copy or skip; run nothing.")
def run(opspec, assigns, yes, label, tags, run_dir, force_run_dir, stage, start_run, force_flags, needed, explain,
        restart, background, max_parallel, fail_fast, preview, optimizer, max_trials, random_seed, stage_trials,
        fail_on_trial_error, jobs, batch_label, batch_tags, quiet, dask, retries, docker, help_op,
        test_sourcecode):
    """Run an operation.

    [MODEL:]OP names an operation of the project file (trk.yml, or guild.yml)
    in the current directory; without it, the default model's default
    operation runs. Set flags with NAME=VALUE: `1` is an int, `1.0`
    a float, `yes`/`no` a bool, anything else a string.

    \b
    Examples:
      trk run m1:hello msg='hi there' -y
      trk run train lr=0.01 --label baseline -t exp1
      trk run train lr=[0.1,0.01] epochs=range[1:3] -j 2
      trk run train @trials.csv --stage-trials
    """
    from tracker.errors import TrkError
    from tracker.execution.launch import RunOptions, launch, relaunch
    from .progress import progress_bars
    from tracker.execution.process import Sinks
    from tracker.project.loader import load
    from tracker.project.resolve import parse_assigns, resolve, resolve_flags
    from tracker.store.runstore import RunStore

    st = RunStore()
    child = background and _in_background_child()
    if child:  # the detached trk of `--background`: nothing to ask, nothing to show
        yes = quiet = True
    if background and stage:
        raise click.UsageError("--stage and --background cannot both be used")
    sinks = Sinks() if quiet else Sinks.console()
    if dask and (stage or stage_trials or restart):
        raise click.UsageError("--dask cannot be used with --stage, --stage-trials or --restart")
    if retries is not None and not _dask_address(dask):
        raise click.UsageError("--retries needs --dask (or $TRK_DASK_SCHEDULER)")
    if start_run and dask:  # submit a run staged earlier
        from tracker.store.select import select_from

        setup_logging(quiet)
        target = select_from(st, None, [start_run])[0]
        if target.status != "staged":
            raise TrkError(f"run {target.short_id} is {target.status}, not staged")
        submitter = _dask_submitter(st, dask, retries)
        _exit(stoppable(lambda: submitter.run_staged(target), lambda: target))
    if start_run or restart:
        if opspec and "=" not in opspec:  # Guild's rule: the run names the operation
            raise click.UsageError(f"OPERATION cannot be used with --{'start' if start_run else 'restart'}")
        setup_logging(quiet)
        from tracker.store.select import select_from

        target = select_from(st, None, [start_run or restart])[0]
        if background and not child:
            _start_in_background()
        opts = RunOptions(label=label, force_flags=force_flags, max_parallel=max_parallel, fail_fast=fail_fast,
                          on_created=_report if child else None, docker=docker, progress=progress_bars())
        flag_args = ([opspec] if opspec else []) + list(assigns)
        result = stoppable(lambda: relaunch(st, target, opts, sinks, staged_only=bool(start_run), assigns=flag_args),
                            lambda: target)
        _exit(result)
    if opspec and ("=" in opspec or opspec.startswith("@")):  # `trk run lr=0.1`: the default operation's flag
        opspec, assigns = None, (opspec,) + tuple(assigns)
    batch_files = [a[1:] for a in assigns if a.startswith("@")]  # Guild's batch files: `@trials.csv`
    assigns = [a for a in assigns if not a.startswith("@")]
    if jobs is not None and max_parallel is None:
        max_parallel = jobs  # `-j N` on a DAG pipeline
    project = load(".", cache_dir=st.project_cache_dir)
    for w in project.warnings:
        click.echo(f"trk: warning: {w}", err=True)
    op = resolve(project, opspec)
    if op.is_stepped:
        setup_logging(quiet)  # steps log `INFO: [trk] running ...`; a single run logs nothing
    if help_op:
        click.echo(_op_help(op))
        return
    if test_sourcecode:
        from tracker.project.sourcecode import describe_source

        click.echo(describe_source(project, op))
        return
    texts = {}
    assigned = parse_assigns(list(assigns), op, batch=True, texts=texts)
    dep_specs = {}
    if op.config.get("requires"):  # most runs need not import the dependency modules
        from tracker.execution.deps_spec import take_dep_specs

        dep_specs = take_dep_specs(op, assigned, texts)
    opts = RunOptions(label=label, tags=list(tags), run_dir=run_dir, force_run_dir=force_run_dir, stage=stage,
                      force_flags=force_flags,
                      needed=needed, explain=explain, dep_specs=dep_specs, max_parallel=max_parallel,
                      fail_fast=fail_fast, docker=docker, progress=progress_bars())
    from tracker.project.flagvalues import is_batch

    if batch_files or optimizer or any(is_batch(v) for v in assigned.values()):
        from tracker.cli.batch import run_batch_cmd
        from tracker.execution.batch import BatchOptions

        bopts = BatchOptions(optimizer=optimizer, max_trials=max_trials, random_seed=random_seed,
                             stage_trials=stage_trials or stage, fail_on_trial_error=fail_on_trial_error,
                             jobs=jobs or 1, label=batch_label, tags=list(batch_tags))
        if run_dir:
            raise click.UsageError("--run-dir cannot be used with a batch")
        opts.stage = False
        address = None if (preview or bopts.stage_trials) else _dask_address(dask)
        if address:
            from tracker.execution.dask_submit import IN_FLIGHT

            bopts.launch = _dask_submitter(st, address, retries).launch
            bopts.jobs = IN_FLIGHT  # every trial submitted: the cluster decides how many run at once
        run_batch_cmd(st, project, op, assigned, batch_files, opts, bopts, sinks, opspec=opspec, yes=yes,
                      preview=preview, background=background and not child, child=child)
        return
    flags, extra = resolve_flags(op, assigned, force_flags=force_flags, help_cmd=opspec)
    if preview:
        if not op.is_stepped:
            raise TrkError(f"{op.fullname} is not a stepped operation: --preview shows pipelines only")
        from tracker.project.stepspec import preview_steps

        click.echo(preview_steps(project, op, flags, extra, force_flags))
        return
    if not yes:
        from tracker.project.flags import format_value

        click.echo(f"You are about to {'stage' if stage else 'run'} {op.fullname}")
        for name, value in sorted(flags.items()):
            click.echo(f"  {name}: {format_value(value)}")
        if not click.confirm("Continue?", default=True):
            sys.exit(1)
    if background and not child:
        _start_in_background()
    created = []
    opts.on_created = (lambda r: (created.append(r), _report(r))) if child else created.append
    address = None if stage else _dask_address(dask)
    if address:
        from tracker.execution.dask_submit import run_on_dask

        submitter = _dask_submitter(st, address, retries)

        def call():
            return run_on_dask(st, project, op, flags, opts, sinks, extra, submitter)
    else:
        def call():
            return launch(st, project, op, flags, opts, sinks, extra)
    result = stoppable(call,
                        lambda: created[0] if created else None)
    if result.reused and child:
        _report(result.run, reused=True)
    if result.reused:
        click.echo(f"Skipping run because a completed run with the same inputs exists: {result.run.id}")
    if stage and result.run is not None:
        click.echo(f"{op.fullname} staged as {result.run.id}")
        click.echo(f"To start the operation, use 'trk run --start {result.run.short_id}'")
    _exit(result)


def _dask_address(option):
    """The Dask scheduler `--dask` or $TRK_DASK_SCHEDULER names, or None (run here)."""
    import os

    return option or os.environ.get("TRK_DASK_SCHEDULER") or None


def _dask_submitter(st, address, retries):
    """A connection to the Dask scheduler at `address`, submitting staged runs of `st`."""
    from tracker.execution.dask_submit import DaskSubmitter

    setup_logging()  # `INFO: [trk] retrying run ...`
    import gc

    # Importing distributed makes some 60,000 objects and no garbage: left to
    # the collector, they cost this trk 40 ms of collections, mostly while
    # every Dask worker waits for the first trial. They live as long as it does.
    gc.disable()
    try:
        return DaskSubmitter(st, address, retries or 0)
    finally:
        gc.freeze()
        gc.enable()


def _in_background_child() -> bool:
    from tracker.execution.background import in_background_child

    return in_background_child()


def _start_in_background() -> None:
    """Start this same `trk run` detached (see `execution.background`), say
    which run it made, and exit."""
    from tracker.execution.background import start_background

    started = start_background(sys.argv[1:])
    if started.reused:
        click.echo(f"Skipping run because a completed run with the same inputs exists: {started.run_id}")
    else:
        click.echo(f"{started.op} started in background as {started.run_id} (pid {started.pid})")
    sys.exit(0)


def _report(run, reused: bool = False) -> None:
    """In the background child: tell the waiting `trk run` which run this is."""
    from tracker.execution.background import report_run

    report_run(run.id, str(run.get("op") or ""), reused)


def _exit(result) -> None:
    """Say why a run failed when trk knows (a pipeline's step), then exit with
    the shell's convention for its exit code (128 + N for signal N)."""
    sys.exit(exit_code(result))


def _op_help(op) -> str:
    from tracker.project.flags import format_value

    lines = [f"Usage: trk run [OPTIONS] {op.fullname} [FLAG=VALUE]...", ""]
    if op.description:
        lines += [op.description, ""]
    if not op.flags:
        lines.append("This operation has no flags.")
        return "\n".join(lines)
    lines.append("Flags:")
    width = max(len(n) for n in op.flags)
    for name, fdef in sorted(op.flags.items()):
        desc = fdef.description
        extras = []
        if fdef.default is not None:
            extras.append(f"default is {format_value(fdef.default)}")
        elif fdef.null_label and not fdef.required:
            extras.append(f"default is {format_value(fdef.null_label)}")  # what a null value means
        if fdef.required:
            extras.append("required")
        if fdef.type:
            extras.append(f"type {fdef.type}")
        if fdef.choices:
            extras.append("choices: " + ", ".join(format_value(c) for c in fdef.choices))
        text = desc + (f" ({'; '.join(extras)})" if extras else "")
        lines.append(f"  {name.ljust(width)}  {text.strip()}")
        for c in fdef.choice_defs if any(c.description for c in fdef.choice_defs) else []:
            shown = format_value(c.alias if c.alias is not None else c.value)
            lines.append(f"  {''.ljust(width)}    {shown}: {c.description}".rstrip())
    return "\n".join(lines)
