"""Build and run inference servers: ``loopline serve`` and ``loopline deploy serve``.

Models load once, in the parent process, before any worker is forked (workers share
their memory pages). The listening socket comes from
:func:`loopline.server.run.bind_socket` (``TCP_NODELAY`` on accepted connections,
which multi-worker keep-alive latency depends on). Threads (the prediction log's
writer, the follower) start in each worker, after the fork.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    import socket

    from loopline.config import Settings
    from loopline.serving.app import InferenceApp
    from loopline.serving.follow import Follower
    from loopline.serving.predlog import LogSettings

__all__ = ["ServeOptions", "build_deployment_app", "build_model_app", "run"]


@dataclass(slots=True)
class ServeOptions:
    """How the inference server runs."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_batch_size: int = 64
    max_latency_ms: float = 2.0
    max_body_bytes: int = 16 * 1024 * 1024
    log_predictions: bool = True
    log_settings: LogSettings | None = None
    trusted: bool = False
    auth: bool = False
    """Inference and feedback need a bearer token (health, readiness and metrics do not)."""
    poll_interval: float = 0.5
    log_level: str = "warning"
    access_log: bool = False
    extra_startup: list[Any] = field(default_factory=list)


def build_model_app(
    models: list[tuple[str, str | None]], settings: Settings, options: ServeOptions
) -> tuple[InferenceApp, Follower]:
    """An app serving ``(uri, name)`` pairs; aliases (``models:/NAME@ALIAS``) are followed."""
    from loopline.refs import parse_model_uri
    from loopline.serving.endpoint import Endpoint
    from loopline.serving.follow import Follower
    from loopline.serving.model import load_served

    follower = Follower(settings, poll_interval=options.poll_interval, trusted=options.trusted)
    followed = [parse_model_uri(uri).ref for uri, _ in models]
    if any(ref is not None and ref.kind == "alias" for ref in followed):
        follower.prime()
    endpoints: dict[str, Endpoint] = {}
    for uri, name in models:
        served = load_served(uri, name=name, trusted=options.trusted)
        if served.name in endpoints:
            raise InvalidArgumentError(
                f"two models would answer as {served.name!r}", hint="give one of them --name"
            )
        endpoint = Endpoint(
            served.name,
            served,
            logger=_logger(served.name, settings, options),
            max_batch_size=options.max_batch_size,
            max_latency=options.max_latency_ms / 1000.0,
        )
        endpoints[served.name] = endpoint
        parsed = parse_model_uri(uri)
        if parsed.ref is not None and parsed.ref.kind == "alias":
            follower.follow_alias(endpoint, parsed.name, parsed.ref.value)
    return _app(endpoints, follower, settings, options), follower


def build_deployment_app(
    name: str, settings: Settings, options: ServeOptions
) -> tuple[InferenceApp, Follower]:
    """An app serving deployment ``name`` (answering as it and as its model's name)."""
    from loopline.serving.deployments import open_deployments
    from loopline.serving.endpoint import Endpoint, Limits
    from loopline.serving.follow import Follower
    from loopline.serving.predlog import LogSettings

    service = open_deployments(settings)
    deployment = service.get(name)
    if not options.log_settings and deployment.logging:
        options.log_settings = LogSettings.from_dict(deployment.logging)
    follower = Follower(settings, poll_interval=options.poll_interval, trusted=options.trusted)
    follower.prime()
    endpoint = Endpoint(
        name,
        None,
        logger=_logger(name, settings, options),
        max_batch_size=options.max_batch_size,
        max_latency=options.max_latency_ms / 1000.0,
        deployment=name,
        limits=Limits.from_dict(deployment.limits),
    )
    follower.follow_deployment(endpoint, name, service)
    follower.reconcile(follower.deployments[0])
    endpoints = {name: endpoint}
    if deployment.model != name:
        endpoints[deployment.model] = endpoint
    return _app(endpoints, follower, settings, options), follower


def _logger(source: str, settings: Settings, options: ServeOptions) -> Any:
    if not options.log_predictions:
        return None
    from loopline.serving.predlog import PredictionLogger

    return PredictionLogger(settings.predictions_root, source, options.log_settings)


def _app(
    endpoints: dict[str, Any], follower: Follower, settings: Settings, options: ServeOptions
) -> InferenceApp:
    from loopline.serving.app import InferenceApp
    from loopline.serving.auth import TokenAuthorizer

    loggers = {id(e.logger): e.logger for e in endpoints.values() if e.logger is not None}

    def startup() -> None:
        for logger in loggers.values():
            logger.start()
        follower.start()

    def shutdown() -> None:
        follower.stop()
        for logger in loggers.values():
            logger.close()

    return InferenceApp(
        endpoints,
        max_body_bytes=options.max_body_bytes,
        authorize=TokenAuthorizer(settings) if options.auth else None,
        on_startup=[startup, *options.extra_startup],
        on_shutdown=[shutdown],
    )


# -- running ----------------------------------------------------------------------------------
def run(build: Any, options: ServeOptions, describe: str) -> None:
    """Serve the app ``build()`` returns until SIGTERM or SIGINT."""
    from loopline.server.run import bind_socket

    if options.workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, got {options.workers}")
    metrics_dir = None
    if options.workers > 1:
        # prometheus-client picks its multiprocess mode when first imported.
        metrics_dir = tempfile.mkdtemp(prefix="loopline-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        app, follower = build()
        _release_connections()
        # Everything loaded so far lives as long as the server: keep the collector from
        # walking it again and again (full collections over a loaded scikit-learn
        # stack pause every request for tens of ms), and workers share those pages.
        gc.collect()
        gc.freeze()
        sock = bind_socket(options.host, options.port)
        try:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            plural = "s" if options.workers != 1 else ""
            tokens = "tokens required" if options.auth else "no tokens required"
            print(
                f"loopline inference server at http://{shown}:{port} "
                f"({describe}; {options.workers} worker{plural}; {tokens})",
                flush=True,
            )
            if not options.auth and host not in ("127.0.0.1", "::1", "localhost"):
                print(
                    f"warning: --no-auth on {host}: anyone who reaches this port can use "
                    "the models",
                    file=sys.stderr,
                    flush=True,
                )
            if options.workers == 1:
                _uvicorn(app, sock, options)
            else:
                _prefork(app, follower, sock, options)
        finally:
            sock.close()
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _release_connections() -> None:
    """Close the SDK's process-wide clients: workers must not share their connections."""
    import sys

    registry_api = sys.modules.get("loopline.registry.api")
    if registry_api is not None:
        registry_api.close()
    fluent = sys.modules.get("loopline.tracking.fluent")
    client = getattr(fluent, "_client", None) if fluent is not None else None
    if client is not None:
        client.close()
        fluent._client = None  # type: ignore[union-attr]


def _uvicorn(app: InferenceApp, sock: socket.socket, options: ServeOptions) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        loop="auto",
        http="auto",
        lifespan="on",
        timeout_keep_alive=30,
        log_level=options.log_level,
        access_log=options.access_log,
    )
    uvicorn.Server(config).run(sockets=[sock])


def _prefork(
    app: InferenceApp, follower: Follower, sock: socket.socket, options: ServeOptions
) -> None:
    from loopline.server.run import _become_worker

    parent = os.getpid()
    children: set[int] = set()
    stopping = False

    def stop(_signum: int = 0, _frame: Any = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _become_worker(parent)
                follower.after_fork()
                _uvicorn(app, sock, options)
                code = 0
            finally:
                os._exit(code)
        children.add(pid)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(options.workers):
            spawn()
        while children:
            try:
                pid, _status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            children.discard(pid)
            if not stopping:
                time.sleep(0.5)  # a crashing worker must not spin the supervisor
                spawn()
    finally:
        stop()
        for pid in list(children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
