"""``loopline deploy``: Deployments: canary and shadow rollouts, promotion and rollback."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopline.cli._context import settings_for
from loopline.cli._errors import LooplineGroup
from loopline.cli.serve import Auth  # noqa: TC001 - typer reads the annotations at run time

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.serving.deployments import Deployment, DeploymentApi

__all__ = ["app"]

app = typer.Typer(
    cls=LooplineGroup,
    help="Deployments: canary and shadow rollouts, promotion and rollback.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Model = Annotated[
    str, typer.Option("--model", "-m", help="models:/NAME@ALIAS or models:/NAME/VERSION.")
]
PromoteAfterRequests = Annotated[
    int | None,
    typer.Option(
        "--promote-after-requests",
        help="Promote a canary by itself once it has answered N requests within its "
        "limits (0: no such condition).",
    ),
]
PromoteAfter = Annotated[
    float | None,
    typer.Option(
        "--promote-after",
        help="Promote a canary by itself once it has been live this many seconds within "
        "its limits (0: no such condition).",
    ),
]


def _rule(requests: int | None, seconds: float | None) -> dict[str, Any]:
    """The promotion rule options given, as limits."""
    given = {"promote_after_requests": requests, "promote_after_seconds": seconds}
    return {k: v for k, v in given.items() if v is not None}


def _describe_rule(limits: dict[str, Any]) -> str:
    """The promotion rule in words.

    >>> _describe_rule({"promote_after_requests": 30, "promote_after_seconds": 60})
    'automatic, after 30 requests and 60 s within the limits'
    >>> _describe_rule({})
    'manual (`loopline deploy promote`)'
    """
    parts = []
    if limits.get("promote_after_requests"):
        parts.append(f"{limits['promote_after_requests']} requests")
    if limits.get("promote_after_seconds"):
        parts.append(f"{limits['promote_after_seconds']:g} s")
    if not parts:
        return "manual (`loopline deploy promote`)"
    return f"automatic, after {' and '.join(parts)} within the limits"


@contextlib.contextmanager
def _service(ctx: typer.Context) -> Iterator[DeploymentApi]:
    """The store's deployments, or a server's when the tracking URI is http(s)://."""
    from loopline.serving.deployments import open_deployment_api

    service = open_deployment_api(settings_for(ctx))
    try:
        yield service
    finally:
        service.close()


def _show(deployment: Deployment, as_json: bool, history: list[Any] | None = None) -> None:
    from rich.markup import escape

    from loopline.cli._output import format_time, print_json, stdout, table

    if as_json:
        doc = deployment.to_dict()
        if history is not None:
            doc["history"] = [h.to_dict() for h in history]
        print_json(doc)
        return
    console = stdout()
    canary = deployment.canary
    shadow = deployment.shadow
    console.print(f"[bold]{deployment.name}[/] (revision {deployment.revision})")
    console.print(f"  serves     {deployment.model_uri} → version {deployment.current_version}")
    console.print(
        "  canary     "
        + (
            f"{canary['model']} version {canary['version']}, {canary['percent']:g}% of traffic"
            if canary
            else "none"
        )
    )
    console.print(
        "  shadow     " + (f"{shadow['model']} version {shadow['version']}" if shadow else "none")
    )
    if deployment.limits:
        from loopline.serving.deployments import describe_limits

        # The promotion rule gets its own line.
        health = {k: v for k, v in deployment.limits.items() if not k.startswith("promote_")}
        console.print(f"  limits     {describe_limits(health)}")
    console.print(f"  promotion  {escape(_describe_rule(deployment.limits))}")
    if history:
        grid = table("Revision", "When", "Action", "By", "Reason", title="History")
        for change in history:
            grid.add_row(
                str(change.revision),
                format_time(change.created_at),
                change.action,
                change.actor,
                change.reason,
            )
        console.print(grid)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment's name.")],
    model: Model,
    max_error_rate: Annotated[
        float, typer.Option("--max-error-rate", help="Canary error share that rolls it back.")
    ] = 0.05,
    max_p99_ms: Annotated[
        float, typer.Option("--max-p99-ms", help="Canary p99 latency (ms) that rolls it back.")
    ] = 500.0,
    window: Annotated[
        float, typer.Option("--window", help="Seconds over which the limits are measured.")
    ] = 60.0,
    min_requests: Annotated[
        int, typer.Option("--min-requests", help="Requests needed before the limits apply.")
    ] = 20,
    sample_rate: Annotated[
        float, typer.Option("--sample-rate", help="Share of requests logged (0 to 1).")
    ] = 1.0,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Input column not logged (repeatable).")
    ] = None,
    hashed: Annotated[
        list[str] | None, typer.Option("--hash", help="Input column logged hashed (repeatable).")
    ] = None,
    promote_after_requests: PromoteAfterRequests = None,
    promote_after: PromoteAfter = None,
    as_json: Json = False,
) -> None:
    """Create a deployment that follows MODEL (an alias is followed as it moves)."""
    limits = {
        "max_error_rate": max_error_rate,
        "max_p99_ms": max_p99_ms,
        "window_seconds": window,
        "min_requests": min_requests,
        **_rule(promote_after_requests, promote_after),
    }
    logging = {"sample_rate": sample_rate, "exclude": exclude or [], "hash_columns": hashed or []}
    with _service(ctx) as service:
        _show(service.create(name, model, limits=limits, logging=logging), as_json)


@app.command("canary")
def canary(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    model: Model,
    percent: Annotated[
        float, typer.Option("--percent", help="Share of traffic (0 < p <= 100).")
    ] = 10.0,
    promote_after_requests: PromoteAfterRequests = None,
    promote_after: PromoteAfter = None,
    as_json: Json = False,
) -> None:
    """Send a share of the traffic to another version (promoted by itself under a rule)."""
    rule = _rule(promote_after_requests, promote_after)
    with _service(ctx) as service:
        _show(service.set_canary(name, model, percent, limits=rule or None), as_json)


@app.command("shadow")
def shadow(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="The version that mirrors traffic.")
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Stop mirroring.")] = False,
    as_json: Json = False,
) -> None:
    """Mirror every request to a version whose answers are logged, never returned."""
    if (model is None) == (not remove):
        raise typer.BadParameter("give --model URI, or --remove")
    with _service(ctx) as service:
        _show(service.set_shadow(name, None if remove else model), as_json)


@app.command("limits")
def limits(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    max_error_rate: Annotated[
        float | None, typer.Option("--max-error-rate", help="Canary error share (0 to 1).")
    ] = None,
    max_p99_ms: Annotated[
        float | None, typer.Option("--max-p99-ms", help="Canary p99 latency in ms.")
    ] = None,
    window: Annotated[
        float | None, typer.Option("--window", help="Seconds over which they are measured.")
    ] = None,
    min_requests: Annotated[
        int | None, typer.Option("--min-requests", help="Requests needed before they apply.")
    ] = None,
    promote_after_requests: PromoteAfterRequests = None,
    promote_after: PromoteAfter = None,
    as_json: Json = False,
) -> None:
    """Change the limits that roll a canary back, or the rule that promotes it (the others
    stay)."""
    given = {
        "max_error_rate": max_error_rate,
        "max_p99_ms": max_p99_ms,
        "window_seconds": window,
        "min_requests": min_requests,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    changes |= _rule(promote_after_requests, promote_after)
    if not changes:
        raise typer.BadParameter("give at least one of the limit or promotion options")
    with _service(ctx) as service:
        _show(service.set_limits(name, changes), as_json)


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    as_json: Json = False,
) -> None:
    """Move the followed alias to the canary's version (the canary becomes the primary)."""
    with _service(ctx) as service:
        _show(service.promote(name), as_json)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    as_json: Json = False,
) -> None:
    """Drop the canary; with none, move the alias back to its previous version."""
    with _service(ctx) as service:
        _show(service.rollback(name, reason=reason), as_json)


@app.command("status")
def status(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    as_json: Json = False,
) -> None:
    """A deployment's routing state and history."""
    with _service(ctx) as service:
        _show(service.get(name), as_json, service.history(name))


@app.command("list")
def list_(ctx: typer.Context, as_json: Json = False) -> None:
    """Every deployment of the project."""
    from loopline.cli._output import print_json, stdout, table

    with _service(ctx) as service:
        found = service.list()
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    grid = table("Name", "Model", "Version", "Canary", "Shadow", "Revision")
    for d in found:
        grid.add_row(
            d.name,
            d.model_uri,
            str(d.current_version),
            f"v{d.canary['version']} {d.canary['percent']:g}%" if d.canary else "",
            f"v{d.shadow['version']}" if d.shadow else "",
            str(d.revision),
        )
    stdout().print(grid)


@app.command("serve")
def serve(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment.")],
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="Port (0 picks a free one).")
    ] = 8080,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")] = 1,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", min=1, help="Rows per batched predict (1: off).")
    ] = 64,
    max_latency_ms: Annotated[
        float, typer.Option("--max-latency-ms", min=0.0, help="Longest wait for a batch to fill.")
    ] = 2.0,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.05, help="Seconds between event-log polls.")
    ] = 0.5,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log predictions.")] = False,
    auth: Auth = None,
) -> None:
    """Run the deployment's endpoint (routing, shadowing, automatic rollback and promotion)."""
    from loopline.config import reset_settings
    from loopline.serving.auth import decide_auth
    from loopline.serving.server import ServeOptions, build_deployment_app, run

    settings = settings_for(ctx)
    reset_settings(settings)
    options = ServeOptions(
        host=host,
        port=port,
        workers=workers,
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        log_predictions=not no_log,
        poll_interval=poll_interval,
        auth=decide_auth(host, auth, settings.auth),
    )
    run(lambda: build_deployment_app(name, settings, options), options, f"deployment {name}")
