"""``loopline server``: the tracking server (REST API, MLflow-compatible API, docs)."""

from enum import StrEnum
from typing import Annotated

import typer

from loopline.cli._context import settings_for

__all__ = ["server"]


class LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def server(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="Port (0 picks a free one).")
    ] = 5000,
    backend_uri: Annotated[
        str | None,
        typer.Option(
            "--backend-uri",
            metavar="URI",
            help="Metadata database URL (default: LOOPLINE_HOME's SQLite file).",
        ),
    ] = None,
    artifacts_uri: Annotated[
        str | None,
        typer.Option(
            "--artifacts-uri",
            metavar="URI",
            help="Where blobs live (default: LOOPLINE_ARTIFACTS_URI, else LOOPLINE_HOME/blobs).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")] = 1,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="Log level.")] = LogLevel.info,
    auth: Annotated[
        bool | None,
        typer.Option(
            "--auth/--no-auth",
            help="Require users and tokens (default: on unless the server binds to loopback).",
        ),
    ] = None,
    scheduler: Annotated[
        bool,
        typer.Option(
            "--scheduler",
            help="Also fire pipeline triggers (as `loopline scheduler` does; one server acts).",
        ),
    ] = False,
) -> None:
    """Run the tracking server: REST API at /api/v1 (docs at /docs), MLflow's API at /api/2.0."""
    settings = settings_for(ctx)
    if backend_uri is None and settings.tracking_uri and not settings.remote:
        backend_uri = settings.tracking_uri
    _set_auth(host, auth)
    from loopline.server.run import serve

    serve(
        host=host,
        port=port,
        backend_uri=backend_uri,
        artifacts_uri=artifacts_uri,
        workers=workers,
        log_level=log_level.value,
        scheduler=scheduler,
    )


def _set_auth(host: str, auth: bool | None) -> None:
    """Decide enforcement: ``--auth`` forces it, anything but loopback implies it."""
    import os
    import sys

    from loopline.auth.bind import is_loopback

    if auth is None:
        declared = os.environ.get("LOOPLINE_AUTH", "").strip().lower() in {"1", "true", "yes"}
        auth = declared or not is_loopback(host)
    elif not auth and not is_loopback(host):
        print(
            f"warning: --no-auth on {host}: anyone who reaches this port can read and change "
            "everything",
            file=sys.stderr,
        )
    # The app reads it when it is built, in this process and in forked workers.
    os.environ["LOOPLINE_AUTH"] = "1" if auth else "0"
