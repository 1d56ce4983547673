"""``loopline serve`` (the inference server) and ``loopline predict`` (batch scoring)."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import Annotated

import typer

from loopline.cli._context import settings_for

__all__ = ["Auth", "log_options", "predict", "serve"]

Trusted = Annotated[
    bool, typer.Option("--trusted", help="Allow pickled models (only from trusted sources).")
]
Auth = Annotated[
    bool | None,
    typer.Option(
        "--auth/--no-auth",
        help="Inference needs a bearer token (`loopline tokens create`); health, readiness "
        "and /metrics stay open. Default: on unless the server binds to loopback.",
    ),
]
_PORT = typer.Option("--port", "-p", min=0, max=65535, help="Port (0 picks a free one).")


def log_options(
    no_log: bool, sample_rate: float, exclude: list[str], hashed: list[str], retention_days: int
) -> object:
    """The prediction-log settings the options describe."""
    from loopline.serving.predlog import LogSettings

    if not 0.0 <= sample_rate <= 1.0:
        raise typer.BadParameter("must be between 0 and 1", param_hint="--sample-rate")
    return LogSettings(
        enabled=not no_log,
        sample_rate=sample_rate,
        exclude=tuple(exclude),
        hash_columns=tuple(hashed),
        retention_days=retention_days or None,
    )


def serve(
    ctx: typer.Context,
    model_uri: Annotated[
        str,
        typer.Argument(
            help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN/PATH or a folder."
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="The name it answers under (default: its own).")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", metavar="[NAME=]URI", help="Another model to serve (repeatable)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, _PORT] = 8080,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")] = 1,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", min=1, help="Rows per batched predict (1: off).")
    ] = 64,
    max_latency_ms: Annotated[
        float,
        typer.Option("--max-latency-ms", min=0.0, help="Longest wait for a batch to fill."),
    ] = 2.0,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Request body limit in MiB.")
    ] = 16.0,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log predictions.")] = False,
    sample_rate: Annotated[
        float, typer.Option("--sample-rate", help="Share of requests logged (0 to 1).")
    ] = 1.0,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Input column not logged (repeatable).")
    ] = None,
    hashed: Annotated[
        list[str] | None, typer.Option("--hash", help="Input column logged hashed (repeatable).")
    ] = None,
    retention_days: Annotated[
        int, typer.Option("--retention-days", min=0, help="Days of logs kept (0: forever).")
    ] = 30,
    trusted: Trusted = False,
    auth: Auth = None,
) -> None:
    """Serve models over the Open Inference Protocol (V2) and MLflow's /invocations."""
    from loopline.config import reset_settings
    from loopline.serving.auth import decide_auth
    from loopline.serving.server import ServeOptions, build_model_app, run

    settings = settings_for(ctx)
    reset_settings(settings)  # models:/ URIs resolve against the store --tracking-uri names
    options = ServeOptions(
        host=host,
        port=port,
        workers=workers,
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        log_predictions=not no_log,
        log_settings=log_options(no_log, sample_rate, exclude or [], hashed or [], retention_days),  # type: ignore[arg-type]
        trusted=trusted,
        auth=decide_auth(host, auth, settings.auth),
    )
    specs: list[tuple[str, str | None]] = [(model_uri, name)]
    for extra in model or []:
        extra_name, sep, uri = extra.partition("=")
        specs.append(
            (uri, extra_name)
            if sep and not extra.startswith(("models:", "runs:"))
            else (extra, None)
        )
    run(lambda: build_model_app(specs, settings, options), options, f"{len(specs)} model(s)")


def predict(
    ctx: typer.Context,
    model_uri: Annotated[
        str, typer.Argument(help="The model: a models:/ or runs:/ URI, or a folder.")
    ],
    input: Annotated[
        str, typer.Option("--input", "-i", help="FILE.parquet, FILE.csv or DATASET@REF.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The Parquet file to write.")],
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Rows scored at a time.")
    ] = 50_000,
    trusted: Trusted = False,
) -> None:
    """Score a file or a dataset version with a model, in chunks."""
    from loopline.cli._output import stderr
    from loopline.config import reset_settings
    from loopline.serving.batch import score_file

    reset_settings(settings_for(ctx))
    done = score_file(
        model_uri, input, output, chunk_size=chunk_size, trusted=trusted, progress=True
    )
    stderr().print(f"wrote {done.rows:,} predictions to {done.output} in {done.seconds:.1f} s")
