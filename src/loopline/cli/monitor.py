"""``loopline monitor``: Monitoring: drift, data quality and model quality; monitors, alerts and reports."""

from pathlib import Path
from typing import Annotated, Any

import typer

from loopline.cli._context import settings_for
from loopline.cli._errors import LooplineGroup
from loopline.cli._options import JsonOption

__all__ = ["app"]

app = typer.Typer(
    cls=LooplineGroup,
    help="Monitoring: drift, data quality and model quality; monitors, alerts and reports.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

NameArg = Annotated[str, typer.Argument(help="The monitor's name.", metavar="NAME")]


def _service(ctx: typer.Context) -> Any:
    from loopline.monitoring.api import open_service

    return open_service(settings_for(ctx))


def _print_json(data: Any) -> None:
    from loopline.cli._output import jsonable, print_json

    print_json(jsonable(data))


def _time(ms: int | None) -> str:
    from loopline.cli._output import format_time

    return format_time(ms)


def _duration(text: str | None, option: str) -> int | None:
    """Milliseconds of a duration such as 30m, 2h or 7d."""
    if text is None:
        return None
    from loopline.errors import LooplineError
    from loopline.monitoring.window import parse_window

    try:
        kind, amount = parse_window(text)
    except LooplineError:
        kind, amount = "rows", 0
    if kind != "ms" or amount <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration (30m, 2h, 7d)", param_hint=option)
    return amount


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    deployment: Annotated[
        str,
        typer.Option("--deployment", help="Deployment (or model) whose prediction log to watch."),
    ],
    reference: Annotated[
        str, typer.Option("--reference", help="Reference dataset version, NAME@REF.")
    ],
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="Label column (enables model quality once feedback arrives)."
        ),
    ] = None,
    prediction: Annotated[
        str | None,
        typer.Option("--prediction", help="Name of the prediction column in the reference."),
    ] = None,
    window: Annotated[
        str,
        typer.Option(
            "--window", help="Window: a duration (30m, 1h, 7d) or a row count (5000rows)."
        ),
    ] = "1h",
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help="Cron schedule, e.g. '*/15 * * * *' (runs from the pipelines scheduler).",
        ),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="URL that receives alerts as JSON.")
    ] = None,
    drift_share: Annotated[
        float,
        typer.Option("--drift-share", help="Share of drifted features that makes dataset drift."),
    ] = 0.5,
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            help="COLUMN=TEST override (ks, wasserstein, psi, jensenshannon, chisquare...); '*' for all.",
        ),
    ] = None,
    retrain_dataset: Annotated[
        str | None,
        typer.Option(
            "--retrain-dataset",
            help="NAME@REF named in alerts for retraining (default: the reference's latest).",
        ),
    ] = None,
    max_traffic_age: Annotated[
        str | None,
        typer.Option(
            "--max-traffic-age",
            help="Alert when the deployment received nothing for this long (30m, 2h, 1d); "
            "default: the window's length.",
        ),
    ] = None,
    max_dataset_age: Annotated[
        str | None,
        typer.Option(
            "--max-dataset-age",
            help="Alert when the reference dataset's newest version is older (7d, 4w).",
        ),
    ] = None,
    row_ratio: Annotated[
        float,
        typer.Option(
            "--row-ratio",
            help="Row-count anomaly when a window holds under RATIO x, or over 1/RATIO x, "
            "the median of earlier windows.",
        ),
    ] = 0.5,
    performance_drop: Annotated[
        float,
        typer.Option(
            "--performance-drop",
            help="Alert when labelled quality falls this share below the reference's.",
        ),
    ] = 0.1,
    estimate_drop: Annotated[
        float,
        typer.Option(
            "--estimate-drop",
            help="Alert when quality estimated before labels (CBPE) falls this share below the reference's.",
        ),
    ] = 0.05,
    as_json: JsonOption = False,
) -> None:
    """Create a monitor of a deployment's predictions against a reference dataset."""
    methods = {}
    for item in method or []:
        column, sep, test = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not COLUMN=TEST", param_hint="--method")
        methods[column] = test
    config = {
        "drift_share": drift_share, "methods": methods, "retrain_dataset": retrain_dataset,
        "max_traffic_age": _duration(max_traffic_age, "--max-traffic-age"),
        "max_dataset_age": _duration(max_dataset_age, "--max-dataset-age"),
        "row_ratio": row_ratio, "performance_drop": performance_drop,
        "estimate_drop": estimate_drop,
    }  # fmt: skip
    with _service(ctx) as svc:
        found = svc.create(
            name, deployment=deployment, reference=reference, target=target,
            prediction=prediction, window=window, schedule=schedule, webhook=webhook,
            config=config,
        )  # fmt: skip
    if as_json:
        _print_json(found)
        return
    typer.echo(f"created monitor {name}: {deployment} against {reference}, window {window}")


@app.command("run")
def run(ctx: typer.Context, name: NameArg, as_json: JsonOption = False) -> None:
    """Run a monitor now; exit code 3 when it raised an alert."""
    from loopline.errors import CheckFailedError

    with _service(ctx) as svc:
        result = svc.run(name)
    if as_json:
        _print_json(result)
    else:
        _print_run(result)
    if result["alerts"]:
        worst = (
            "critical" if any(a["severity"] == "critical" for a in result["alerts"]) else "warning"
        )
        raise CheckFailedError(
            f"monitor {name} raised {len(result['alerts'])} alert(s), worst {worst}"
        )


def _print_run(result: dict[str, Any]) -> None:
    from loopline.cli._output import esc, stdout, table

    d = result["drift"]
    console = stdout()
    verdict = "[bold red]dataset drift[/]" if d["dataset_drift"] else "[green]no dataset drift[/]"
    console.print(f"{result['rows']} rows in the window: {verdict} "
                  f"({d['drift_share']:.0%} of features drifted)")  # fmt: skip
    t = table("column", "test", "statistic", "p-value", "threshold", "drift")
    for c in d["columns"]:
        p = "-" if c["p_value"] is None else f"{c['p_value']:.4g}"
        stat = c["statistic"] if isinstance(c["statistic"], str) else f"{c['statistic']:.4g}"
        t.add_row(esc(c["column"]), c["method"], stat, p, f"{c['threshold']:g}",
                  "[red]yes[/]" if c["drifted"] else "no")  # fmt: skip
    console.print(t)
    failed = [q for q in result["quality"] if q["failed"]]
    for q in failed:
        console.print(f"[yellow]quality[/] {esc(q['message'])}")
    perf = result.get("performance")
    if perf and perf.get("current"):
        shown = ", ".join(f"{k} {v:.4g}" for k, v in perf["current"].items())
        console.print(f"model quality on {perf['rows']} labelled rows: {shown}")
    est = result.get("estimate")
    if est and est.get("estimated"):
        shown = ", ".join(f"{k} {v:.4g}" for k, v in est["estimated"].items())
        ref = ", ".join(f"{k} {v:.4g}" for k, v in est["reference"].items())
        console.print(f"estimated before labels (CBPE, {est['rows']} rows): {shown} "
                      f"[dim](reference {ref or '-'})[/]")  # fmt: skip
        if est.get("realised"):
            real = ", ".join(f"{k} {v:.4g}" for k, v in est["realised"].items())
            console.print(f"  realised on {est['labelled_rows']} labelled rows: {real}")
    for a in result["alerts"]:
        console.print(f"[bold red]alert[/] {a['severity']} {a['kind']}: {esc(a['message'])}")


@app.command("list")
def list_monitors(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List monitors."""
    from loopline.cli._output import esc, stdout, table

    with _service(ctx) as svc:
        found = svc.list_all()
    if as_json:
        _print_json({"monitors": found})
        return
    t = table("name", "deployment", "reference", "window", "schedule", "last run")
    for m in found:
        t.add_row(esc(m["name"]), esc(m["deployment"]), esc(m["reference"]), m["window"],
                  esc(m["schedule"] or "-"), _time(m["last_run_at"]))  # fmt: skip
    stdout().print(t)


@app.command("show")
def show(ctx: typer.Context, name: NameArg, as_json: JsonOption = False) -> None:
    """Show a monitor, its latest run and its recent alerts."""
    from loopline.cli._output import esc, stdout

    with _service(ctx) as svc:
        monitor = svc.get(name)
        runs = svc.runs(name, limit=1)
        alerts = svc.alerts(name, limit=5)
    if as_json:
        _print_json({"monitor": monitor, "latest_run": runs[0] if runs else None, "alerts": alerts})
        return
    console = stdout()
    for key in ("name", "deployment", "reference", "target", "prediction", "window",
                "schedule", "webhook"):  # fmt: skip
        console.print(f"{key:<11} {esc(str(monitor[key] or '-'))}")
    console.print(f"{'last run':<11} {_time(monitor['last_run_at'])}")
    if runs:
        _print_run({**runs[0]["summary"], "alerts": []})
    for a in alerts:
        console.print(f"alert #{a['id']} {_time(a['created_at'])} {a['severity']} {a['kind']}: "
                      f"{esc(a['message'])} [dim](webhook: {a['delivery']})[/]")  # fmt: skip


@app.command("history")
def history(
    ctx: typer.Context,
    name: NameArg,
    column: Annotated[
        str | None, typer.Option("--column", help="Only this column ('*' for table-wide results).")
    ] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="drift, quality or performance.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Results over time per column: drift scores, quality checks, model quality."""
    from loopline.cli._output import esc, sparkline, stdout, table

    with _service(ctx) as svc:
        rows = svc.history(name, column=column, category=category)
    if as_json:
        _print_json({"history": rows})
        return
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        series.setdefault((r["column_name"], r["category"], r["metric"]), []).append(r)
    t = table("column", "category", "metric", "runs", "latest", "flagged", "trend")
    for (col, cat, metric), points in sorted(series.items()):
        values = [p["p_value"] if p["p_value"] is not None else p["value"] for p in points]
        finite = [v for v in values if v is not None]
        latest = "-" if values[-1] is None else f"{values[-1]:.4g}"
        t.add_row(esc(col), cat, metric, str(len(points)), latest,
                  str(sum(p["flagged"] for p in points)), sparkline(finite))  # fmt: skip
    stdout().print(t)


@app.command("alerts")
def alerts(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this monitor's alerts.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Recorded alerts, newest first."""
    from loopline.cli._output import esc, stdout, table

    with _service(ctx) as svc:
        found = svc.alerts(name)
    if as_json:
        _print_json({"alerts": found})
        return
    t = table("id", "monitor", "time", "severity", "kind", "message", "webhook")
    for a in found:
        t.add_row(str(a["id"]), esc(a["monitor"]), _time(a["created_at"]), a["severity"],
                  a["kind"], esc(a["message"]), a["delivery"])  # fmt: skip
    stdout().print(t)


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete a monitor with its runs, results and alerts."""
    with _service(ctx) as svc:
        svc.delete(name)
    typer.echo(f"deleted monitor {name}")


@app.command("report")
def report(
    ctx: typer.Context,
    reference: Annotated[str, typer.Option("--reference", help="NAME@REF or a CSV/Parquet file.")],
    current: Annotated[str, typer.Option("--current", help="NAME@REF or a CSV/Parquet file.")],
    target: Annotated[str | None, typer.Option("--target", help="Label column.")] = None,
    prediction: Annotated[
        str | None, typer.Option("--prediction", help="Prediction column.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="html or json.")] = "html",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write (default: drift-report.html/.json)."),
    ] = None,
) -> None:
    """Compare two tables: per-column drift, dataset drift, data and model quality."""
    from loopline.monitoring.reports import load_table
    from loopline.monitoring.reports import report as build

    if fmt not in ("html", "json"):
        raise typer.BadParameter("use html or json", param_hint="--format")
    settings = settings_for(ctx)
    ref_df, cur_df = load_table(reference, settings), load_table(current, settings)
    result = build(ref_df, cur_df, target=target, prediction=prediction)
    result.title = f"Drift report: {current} against {reference}"
    path = result.save(out or Path(f"drift-report.{fmt}"), fmt)
    d = result.drift
    verdict = "dataset drift" if d.dataset_drift else "no dataset drift"
    typer.echo(f"{verdict}: {len(d.drifted_columns)} of "
               f"{sum(c.role == 'feature' for c in d.columns)} features drifted; wrote {path}")  # fmt: skip
