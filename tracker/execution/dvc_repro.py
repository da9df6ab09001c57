"""`trk repro`: run the stages of `dvc.yaml` that changed since `dvc.lock`, as one pipeline run.

`plan` decides, before anything runs, which stages run and why (a stage
runs when it changed, or when a stage it depends on runs; frozen stages
never run). `repro` runs those stages as the steps of a `dvc:repro`
pipeline run, through `launch`, so each is a child run like any step.
With nothing to run, no run is made. `dag_lines` draws the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TrkError
from ..project.formats.dvc import MODEL, Pipeline, read_pipeline
from ..project.loader import OpDef, Project
from ..store import RunStore
from .dvc_lock import missing_deps, read_lock, why_run
from .lifecycle import LaunchResult, RunOptions
from .process import Sinks


@dataclass
class Decision:
    """Whether one stage runs, and why (or why not)."""

    stage: str
    runs: bool
    reason: str

    def describe(self, dry: bool = False) -> str:
        """DVC's line for the stage: `Running stage 'x': why` or `Stage 'x' didn't change, skipping`."""
        if self.runs:
            return f"{'Would run' if dry else 'Running'} stage '{self.stage}': {self.reason}"
        if self.reason == "frozen":
            return f"Stage '{self.stage}' is frozen, skipping"
        return f"Stage '{self.stage}' didn't change, skipping"


def plan(project_dir: str, targets: list[str] | None = None, force: bool = False,
         pipeline: Pipeline | None = None) -> tuple[Pipeline, list[Decision]]:
    """The stages `trk repro [TARGETS]` considers, in run order, each with its decision.

    A target is a stage name or a foreach group (`build` for `build@uk`,
    `build@us`); the stages it depends on are considered too. `force` runs
    every stage that is not frozen. TrkError (exit 2) for an unknown target
    or a dependency no stage writes and that does not exist.
    """
    pipeline = pipeline or read_pipeline(project_dir)
    names = None
    if targets:
        names = []
        for t in targets:
            hits = [t] if t in pipeline.stages else [n for n in pipeline.stages if n.startswith(t + "@")]
            if not hits:
                raise TrkError(f"there is no stage '{t}' in dvc.yaml",
                               "Stages: " + ", ".join(pipeline.stages), exit_code=2)
            names += hits
    order = pipeline.order(names)
    locked = read_lock(pipeline.dir)
    decisions: list[Decision] = []
    running: set[str] = set()
    produced = {o.file for n in order for o in pipeline.stages[n].outs}
    for name in order:
        stage = pipeline.stages[name]
        missing = missing_deps(pipeline, stage, produced)
        if missing:
            i, path = missing[0]
            raise TrkError(f"{pipeline.where(stage.keypath + ('deps', i))}: stages.{name}.deps: dependency "
                           f"'{path}' does not exist and no stage writes it", exit_code=2)
        if stage.frozen:
            decisions.append(Decision(name, False, "frozen"))
            continue
        ups = [u for u in pipeline.upstream[name] if u in running]
        if force:
            reason = "forced"
        elif ups:
            reason = f"upstream stage '{ups[0]}' runs"
        else:
            reason = why_run(pipeline, stage, locked.get(name))
        if reason is None:
            decisions.append(Decision(name, False, "unchanged"))
        else:
            running.add(name)
            decisions.append(Decision(name, True, reason))
    return pipeline, decisions


def pipeline_op(pipeline: Pipeline, decisions: list[Decision]) -> OpDef:
    """The `dvc:repro` operation running the stages `decisions` run, with
    `needs:` between them where one depends on another."""
    running = [d.stage for d in decisions if d.runs]
    steps = []
    for name in running:
        needs = [u for u in _running_upstream(pipeline, name, set(running))]
        steps.append({"run": f"{MODEL}:{name}", "name": name, **({"needs": needs} if needs else {})})
    desc = "Run the stages of dvc.yaml that changed"
    return OpDef(MODEL, "_repro" if "repro" in pipeline.stages else "repro", {"steps": steps, "description": desc},
                 {}, ())


def _running_upstream(pipeline: Pipeline, name: str, running: set[str]) -> list[str]:
    """The nearest stages `name` depends on that run (through ones that do not)."""
    found: list[str] = []
    seen: set[str] = set()
    todo = list(pipeline.upstream[name])
    while todo:
        up = todo.pop(0)
        if up in seen:
            continue
        seen.add(up)
        if up in running:
            found.append(up)
        else:
            todo += pipeline.upstream[up]
    return found


def repro(store: RunStore, project: Project, pipeline: Pipeline, decisions: list[Decision],
          opts: RunOptions | None = None, sinks: Sinks | None = None) -> LaunchResult | None:
    """Run the stages `decisions` run as one `dvc:repro` pipeline run; None when none runs."""
    from .launch import launch

    if not any(d.runs for d in decisions):
        return None
    op = pipeline_op(pipeline, decisions)
    opts = opts or RunOptions()
    if opts.max_parallel is None:
        opts.max_parallel = 1  # DVC runs one stage at a time
    return launch(store, project, op, {}, opts, sinks)


def dag_lines(pipeline: Pipeline, dot: bool = False) -> list[str]:
    """The stage graph: each stage after those it depends on, with `<-` its
    upstream stages; or Graphviz `dot` text."""
    order = pipeline.order()
    if dot:
        lines = ["strict digraph {"]
        lines += [f'  "{n}";' for n in order]
        lines += [f'  "{u}" -> "{n}";' for n in order for u in pipeline.upstream[n]]
        return lines + ["}"]
    lines = []
    for n in order:
        notes = " (frozen)" if pipeline.stages[n].frozen else ""
        ups = pipeline.upstream[n]
        lines.append(f"{n}{notes}" + (f" <- {', '.join(ups)}" if ups else ""))
    return lines
