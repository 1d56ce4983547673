"""``loopline runs``: list, show, compare, delete and restore runs."""

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli._context import open_client, resolve_experiment
from loopline.cli._options import JsonOption, View, ViewOption
from loopline.cli._output import (
    common_keys,
    print_json,
    stdout,
)

if TYPE_CHECKING:
    from loopline.client.client import Client
    from loopline.tracking.entities import Run

__all__ = ["app", "run_json"]

app = typer.Typer(
    help="List, show, compare, delete and restore runs.",
    no_args_is_help=True,
)

RunIdArg = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id.")]
RunIdsArg = Annotated[list[str], typer.Argument(metavar="RUN_ID", help="One or more run ids.")]

_METRIC_REF = re.compile(r"metrics\.(`[^`]+`|\"[^\"]+\"|[\w./-]+)", re.IGNORECASE)


def run_json(run: "Run", experiment_name: str | None = None) -> dict[str, Any]:
    """A run's machine form; the keys are part of the CLI's interface."""
    info = run.info
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "experiment_name": experiment_name,
        "status": info.status,
        "lifecycle_stage": info.lifecycle_stage,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "user_id": info.user_id,
        "parent_run_id": info.parent_run_id,
        "artifact_uri": info.artifact_uri,
        "params": dict(sorted(run.data.params.items())),
        "metrics": dict(sorted(run.data.metrics.items())),
        "tags": dict(sorted(run.data.tags.items())),
    }


def _experiment_names(client: "Client", view: str) -> dict[str, str]:
    # Runs of a deleted experiment are deleted too, so only "active" narrows the list.
    return {
        e.experiment_id: e.name
        for e in client.search_experiments(view="active" if view == "active" else "all")
    }


def _metric_columns(runs: "list[Run]", filter_string: str | None, order_by: list[str]) -> list[str]:
    """Metrics the user searched or sorted by first, then the most common ones."""
    named: list[str] = []
    for text in [filter_string or "", *order_by]:
        for match in _METRIC_REF.finditer(text):
            key = match.group(1).strip('`"')
            if key not in named:
                named.append(key)
    for key in common_keys(r.data.metrics for r in runs):
        if key not in named:
            named.append(key)
    return named


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            metavar="NAME_OR_ID",
            help="Only runs of this experiment (repeat for several); default: all.",
        ),
    ] = None,
    filter_string: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            help="Search filter, e.g. \"metrics.auc > 0.9 and params.model = 'rf'\".",
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            "-o",
            help='Sort key, e.g. "metrics.auc DESC" (repeat for several).',
        ),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max-results", "-n", min=1, help="Show at most this many runs.")
    ] = 100,
    view: ViewOption = View.active,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    with open_client(ctx) as client:
        names = _experiment_names(client, view.value)
        if experiment:
            exps = [resolve_experiment(client, ref) for ref in experiment]
            names.update((e.experiment_id, e.name) for e in exps)
            ids = [e.experiment_id for e in exps]
        else:
            ids = list(names)
        found, next_token = (
            client.search_runs(
                ids, filter_string, order_by or None, view=view.value, max_results=max_results
            )
            if ids
            else ([], None)
        )
    if as_json:
        print_json([run_json(r, names.get(r.info.experiment_id)) for r in found])
        return
    from loopline.cli._render import runs_table

    console = stdout()
    metric_keys = _metric_columns(found, filter_string, order_by or [])
    console.print(runs_table(found, names, metric_keys, width=console.width))
    summary = f"{len(found)} run{'s' if len(found) != 1 else ''}"
    if next_token is not None:
        summary += f" shown; more match: raise --max-results (now {max_results})"
    console.print(summary, style="dim", markup=False)


def _artifact_files(client: "Client", run_id: str, path: str = "") -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = []
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            files.extend(_artifact_files(client, run_id, entry.path))
        else:
            files.append({"path": entry.path, "size": entry.size, "digest": entry.digest})
    return files


@app.command("show")
def show_run(ctx: typer.Context, run_id: RunIdArg, as_json: JsonOption = False) -> None:
    """Show a run: info, params, metrics, tags and artifacts."""
    with open_client(ctx) as client:
        run = client.get_run(run_id)
        experiment = client.get_experiment(run.info.experiment_id)
        artifacts = _artifact_files(client, run_id)
        histories = {} if as_json else _histories(client, run)
    if as_json:
        data = run_json(run, experiment.name)
        data["artifacts"] = artifacts
        print_json(data)
        return
    from loopline.cli._render import render_run

    render_run(stdout(), run, experiment.name, artifacts, histories)


def _histories(client: "Client", run: "Run", limit: int = 50) -> dict[str, list[float]]:
    """Metric histories for sparklines (skipped for runs with very many metrics)."""
    keys = sorted(run.data.metrics)
    if len(keys) > limit:
        return {}
    return {k: [m.value for m in client.get_metric_history(run.info.run_id, k)] for k in keys}


@app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(metavar="RUN_ID", help="Two or more run ids.")],
    diff_only: Annotated[
        bool, typer.Option("--diff-only", help="Show only the params and metrics that differ.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare runs: params and latest metrics side by side, differences highlighted."""
    unique = list(dict.fromkeys(run_ids))
    if len(unique) < 2:
        raise typer.BadParameter("give at least two different run ids", param_hint="RUN_ID")
    with open_client(ctx) as client:
        found = [client.get_run(run_id) for run_id in unique]
    from loopline.cli._render import comparison, render_comparison

    rows = comparison(found)
    if as_json:
        print_json(
            {
                "runs": [
                    {
                        "run_id": r.info.run_id,
                        "run_name": r.info.run_name,
                        "experiment_id": r.info.experiment_id,
                        "status": r.info.status,
                    }
                    for r in found
                ],
                "params": [row.to_dict() for row in rows if row.section == "params"],
                "metrics": [row.to_dict() for row in rows if row.section == "metrics"],
            }
        )
        return
    render_comparison(stdout(), found, rows, diff_only=diff_only)


@app.command("delete")
def delete_runs(ctx: typer.Context, run_ids: RunIdsArg) -> None:
    """Delete runs (restorable until `loopline gc` purges them)."""
    with open_client(ctx) as client:
        for run_id in run_ids:
            client.delete_run(run_id)
            stdout().print(f"deleted run {run_id}", markup=False)


@app.command("restore")
def restore_runs(ctx: typer.Context, run_ids: RunIdsArg) -> None:
    """Restore deleted runs."""
    with open_client(ctx) as client:
        for run_id in run_ids:
            client.restore_run(run_id)
            stdout().print(f"restored run {run_id}", markup=False)
