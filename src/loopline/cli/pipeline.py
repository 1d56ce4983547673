"""``loopline pipeline``: Pipelines: run, resume, inspect and schedule DAGs of cached Python steps.

Also ``loopline scheduler``, which fires the triggers ``pipeline schedule`` records.
"""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli._errors import LooplineGroup

if TYPE_CHECKING:
    from loopline.config import Settings
    from loopline.pipelines.store import RunRecord
    from loopline.store.metadata import Database

__all__ = ["app", "scheduler"]

app = typer.Typer(
    cls=LooplineGroup,
    help="Pipelines: run, resume, inspect and schedule DAGs of cached Python steps.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

TargetArg = Annotated[
    str,
    typer.Argument(
        metavar="FILE.py[:PIPELINE]", help="The file and, if it has several, the pipeline."
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", metavar="KEY=VALUE", help="A pipeline parameter (repeatable)."),
]
ExecutorOpt = Annotated[
    str | None,
    typer.Option("--executor", "-x", help="inline, local (processes; default) or ray."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
_STATE_STYLE = {
    "succeeded": "green",
    "cached": "cyan",
    "running": "yellow",
    "pending": "dim",
    "failed": "bold red",
    "gate_failed": "bold red",
    "blocked": "magenta",
    "waiting_approval": "magenta",
    "skipped": "dim",
    "killed": "red",
}


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    from loopline.pipelines._cli import split_pairs

    return split_pairs(values, what)


def _settings(ctx: typer.Context) -> Settings:
    from loopline.cli._context import settings_for

    return settings_for(ctx)


def _database(ctx: typer.Context) -> Database:
    from loopline.errors import InvalidArgumentError
    from loopline.store.metadata import Database

    settings = _settings(ctx)
    if settings.remote:
        raise InvalidArgumentError(
            "pipeline commands work on the metadata database, not through a server",
            hint="point --tracking-uri at the database URL, or read runs over /api/v1/pipelines",
        )
    return Database(settings.metadata_url)


@app.command("run")
def run(
    ctx: typer.Context,
    target: TargetArg,
    param: ParamOpt = None,
    executor: ExecutorOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step.")] = False,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            "-t",
            metavar="METRIC=RULE",
            help='Override a gate threshold: auc=">= 0.9".',
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            exists=True,
            dir_okay=False,
            help="params/thresholds file (TOML, JSON, YAML).",
        ),
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="A Ray cluster to join.")
    ] = None,
    firing: Annotated[int | None, typer.Option("--firing", hidden=True)] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a pipeline; exit 1 when a step fails, 3 when a validation gate stops it."""
    from loopline.pipelines._cli import run_command

    run_command(
        _settings(ctx),
        target,
        param=param,
        executor=executor,
        no_cache=no_cache,
        threshold=threshold,
        config=config,
        ray_address=ray_address,
        firing=firing,
        as_json=json_out,
    )


@app.command("runs")
def runs(
    ctx: typer.Context,
    pipeline_name: Annotated[
        str | None, typer.Option("--pipeline", help="Only this pipeline.")
    ] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Pipeline runs, newest first."""
    from loopline.cli._output import format_duration, format_time, print_json, stdout, table
    from loopline.pipelines.store import PipelineStore

    db = _database(ctx)
    try:
        PipelineStore(db).fail_dead_runs()
        found = PipelineStore(db).list_runs(pipeline=pipeline_name, status=status, limit=limit)
    finally:
        db.close()
    if json_out:
        print_json([r.to_dict() for r in found])
        return
    grid = table("Run", "Pipeline", "Status", "Steps", "Started", "Duration")
    for r in found:
        counts: dict[str, int] = {}
        for s in r.steps:
            counts[s.status] = counts.get(s.status, 0) + 1
        steps = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        style = _STATE_STYLE.get(r.status, "")
        grid.add_row(
            r.id,
            r.pipeline,
            f"[{style}]{r.status}[/]",
            steps,
            format_time(r.started_at),
            format_duration(r.started_at, r.ended_at),
        )
    stdout().print(grid)


def _render(record: RunRecord, logs_of: str | None) -> None:  # noqa: C901 - one screen, in order
    from rich.tree import Tree

    from loopline.cli._output import esc, format_duration, format_time, stdout

    console = stdout()
    style = _STATE_STYLE.get(record.status, "")
    console.print(
        f"[bold]{esc(record.pipeline)}[/] run {record.id}  [{style}]{record.status}[/]  "
        f"started {format_time(record.started_at)}, took {format_duration(record.started_at, record.ended_at)}"
    )
    if record.params:
        console.print("params: " + esc(", ".join(f"{k}={v!r}" for k, v in record.params.items())))
    steps = {s.name: s for s in record.steps}
    nodes = record.dag.get("nodes", [])
    children: dict[str, list[str]] = {n["name"]: [] for n in nodes}
    for n in nodes:
        for up in n["upstream"]:
            children.setdefault(up, []).append(n["name"])
    tree = Tree("DAG")
    shown: set[str] = set()

    def label(name: str) -> str:
        s = steps.get(name)
        if s is None:
            return esc(name)
        st = _STATE_STYLE.get(s.status, "")
        took = "" if s.duration_ms is None else f" {s.duration_ms} ms"
        extra = f"  {esc(s.error.splitlines()[0][:160])}" if s.error else ""
        return f"[{st}]{s.status:>9}[/] {esc(name)} [dim]{esc(s.source)}{took}[/]{extra}"

    def add(parent: Any, name: str) -> None:
        if name in shown:
            parent.add(f"[dim]↳ {esc(name)} (above)[/]")
            return
        shown.add(name)
        branch = parent.add(label(name))
        for child in children.get(name, []):
            add(branch, child)

    for n in nodes:
        if not n["upstream"]:
            add(tree, n["name"])
    console.print(tree)
    for s in record.steps:
        if s.status == "failed" and s.traceback:
            console.print(f"[bold red]step {esc(s.name)} failed:[/]")
            console.print(esc(s.traceback.rstrip()), highlight=False)
        report = s.outputs.get("report") if s.status in ("gate_failed", "blocked") else None
        if s.status in ("gate_failed", "blocked"):
            console.print(f"[bold]gate {esc(s.name)}:[/] {esc(s.error)}")
            if report:
                from loopline.pipelines.gates import format_report

                console.print(esc(format_report(report)))
    if record.error and record.status not in ("failed", "gate_failed"):
        console.print(esc(record.error))
    if logs_of is not None:
        picked = steps.get(logs_of)
        console.print(f"[bold]logs of {esc(logs_of)}:[/]")
        console.print(esc(picked.logs if picked else "(no such step)"), highlight=False)


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN", help="A pipeline run id (or a unique prefix).")
    ],
    logs: Annotated[
        str | None, typer.Option("--logs", metavar="STEP", help="Print a step's logs.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """A run's DAG with each step's state and duration, errors and tracebacks."""
    from loopline.cli._output import print_json
    from loopline.pipelines.store import PipelineStore

    db = _database(ctx)
    try:
        PipelineStore(db).fail_dead_runs()
        record = PipelineStore(db).get_run(run_id)
    finally:
        db.close()
    if json_out:
        print_json(record.to_dict(logs=True))
        return
    _render(record, logs)


@app.command("resume")
def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The failed pipeline run.")],
    executor: ExecutorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rerun a failed run from its failed steps, reusing every step that succeeded."""
    from loopline.config import reset_settings
    from loopline.errors import InvalidArgumentError
    from loopline.pipelines.loader import load_pipeline
    from loopline.pipelines.runner import Runner
    from loopline.pipelines.store import PipelineStore

    settings = _settings(ctx)
    reset_settings(settings)
    db = _database(ctx)
    try:
        PipelineStore(db).fail_dead_runs()
        record = PipelineStore(db).get_run(run_id)
    finally:
        db.close()
    if record.status == "succeeded":
        raise InvalidArgumentError(f"run {record.id} succeeded; there is nothing to resume")
    if not record.target:
        raise InvalidArgumentError(
            f"run {record.id} was started from Python, not from a file",
            hint="rerun it from Python; cached steps are reused",
        )
    pipe = load_pipeline(record.target)
    outcome = Runner(
        pipe,
        params=record.params,
        executor=executor or record.executor,
        target=record.target,
        resume=record,
        settings=settings,
    ).run()
    if json_out:
        from loopline.cli._output import print_json

        print_json({"run_id": outcome.run_id, "status": outcome.status, "steps": outcome.steps})
        return
    typer.echo(
        f"pipeline {pipe.name}: {outcome.status} (run {outcome.run_id}, resumed {record.id})"
    )


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    target: TargetArg,
    cron: Annotated[
        str | None, typer.Option("--cron", help='A cron expression (UTC): "0 3 * * *".')
    ] = None,
    on_new_data: Annotated[
        str | None,
        typer.Option(
            "--on-new-data", metavar="DATASET", help="Run on each new version of DATASET."
        ),
    ] = None,
    on_alert: Annotated[
        str | None,
        typer.Option("--on-alert", metavar="MONITOR", help="Run on each alert of MONITOR."),
    ] = None,
    param: ParamOpt = None,
    executor: Annotated[
        str, typer.Option("--executor", "-x", help="inline, local or ray.")
    ] = "local",
    data_param: Annotated[
        str, typer.Option("--data-param", help="The parameter that gets NAME@VERSION.")
    ] = "dataset",
    json_out: JsonOpt = False,
) -> None:
    """Record a trigger; `loopline scheduler` (or `loopline server --scheduler`) fires it."""
    import os

    from loopline.errors import InvalidArgumentError
    from loopline.pipelines.loader import load_pipeline
    from loopline.pipelines.triggers import create_trigger

    chosen = [
        (k, v) for k, v in (("cron", cron), ("new_data", on_new_data), ("alert", on_alert)) if v
    ]
    if len(chosen) != 1:
        raise InvalidArgumentError("give exactly one of --cron, --on-new-data, --on-alert")
    kind, spec = chosen[0]
    pipe = load_pipeline(target)
    params = _pairs(param, "--param")
    pipe.resolve_params(
        text={
            **params,
            **(
                {data_param: "x@1"}
                if kind != "cron" and data_param in pipe.signature.parameters
                else {}
            ),
        }
    )
    if kind == "new_data" and data_param not in pipe.signature.parameters:
        raise InvalidArgumentError(
            f"pipeline {pipe.name!r} has no parameter {data_param!r} to receive the new version",
            hint="name the parameter with --data-param",
        )
    settings = _settings(ctx)
    db = _database(ctx)
    try:
        trigger_id = create_trigger(
            db,
            target=f"{os.path.abspath(target.split(':')[0])}:{pipe.name}",
            pipeline=pipe.name,
            kind=kind,
            spec=spec,
            params=params,
            executor=executor,
            data_param=data_param,
            workdir=os.getcwd(),
            project=settings.project,
            user=settings.user,
        )
    finally:
        db.close()
    if json_out:
        from loopline.cli._output import print_json

        print_json({"id": trigger_id, "kind": kind, "spec": spec})
        return
    typer.echo(f"trigger {trigger_id}: {pipe.name} on {kind.replace('_', '-')} {spec}")


@app.command("triggers")
def triggers(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Recorded triggers."""
    from loopline.cli._output import format_time, print_json, stdout, table
    from loopline.pipelines.triggers import list_triggers

    db = _database(ctx)
    try:
        found = list_triggers(db)
    finally:
        db.close()
    if json_out:
        print_json(found)
        return
    grid = table("Id", "Pipeline", "Kind", "On", "Params", "Next")
    for t in found:
        grid.add_row(
            str(t["id"]),
            t["pipeline"],
            t["kind"],
            t["spec"],
            ", ".join(f"{k}={v}" for k, v in t["params"].items()),
            format_time(t["next_fire_at"]) if t["next_fire_at"] else "",
        )
    stdout().print(grid)


@app.command("unschedule")
def unschedule(
    ctx: typer.Context, trigger_id: Annotated[int, typer.Argument(metavar="ID")]
) -> None:
    """Delete a trigger (and its firing history)."""
    from loopline.pipelines.triggers import delete_trigger

    db = _database(ctx)
    try:
        delete_trigger(db, trigger_id)
    finally:
        db.close()
    typer.echo(f"trigger {trigger_id} deleted")


@app.command("firings")
def firings(
    ctx: typer.Context,
    trigger_id: Annotated[
        int | None, typer.Option("--trigger", help="Only this trigger's.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Every trigger firing, its reason and the run it started."""
    from loopline.cli._output import format_time, print_json, stdout, table
    from loopline.pipelines.triggers import list_firings

    db = _database(ctx)
    try:
        found = list_firings(db, trigger_id, limit)
    finally:
        db.close()
    if json_out:
        print_json(found)
        return
    grid = table("Id", "Trigger", "Fired", "Reason", "Status", "Run")
    for f in found:
        grid.add_row(
            str(f["id"]),
            str(f["trigger_id"]),
            format_time(f["fired_at"]),
            f["reason"],
            f["status"],
            f["pipeline_run_id"] or "",
        )
    stdout().print(grid)


def scheduler(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between ticks.")
    ] = 5.0,
    once: Annotated[
        bool, typer.Option("--once", help="One tick; wait for the runs it starts.")
    ] = False,
    lease: Annotated[
        float, typer.Option("--lease", min=1.0, help="Seconds the lease lasts.")
    ] = 30.0,
) -> None:
    """Run the scheduler: fire cron, new-data and alert triggers (one active at a time)."""
    from loopline.pipelines.triggers import Scheduler

    sched = Scheduler(_settings(ctx), lease_seconds=lease)
    try:
        if once:
            report = sched.tick()
            sched.wait()
            if report.leader:
                sched.release()
            typer.echo(
                f"scheduler: {'leader' if report.leader else 'standby (another scheduler holds the lease)'}; "
                f"{report.fired} fired, {report.launched} started, {report.monitors} monitors ran"
            )
            return
        typer.echo(f"scheduler {sched.holder}: ticking every {interval:g} s (Ctrl-C stops)")
        try:
            sched.serve(interval)
        except KeyboardInterrupt:
            sched.wait(timeout=0)
    finally:
        sched.close()
