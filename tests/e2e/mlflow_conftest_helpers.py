"""A real ``loopline server`` (uvicorn in a thread) for driving with the official mlflow client."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import uvicorn

from loopline.client.factory import open_service
from loopline.config import Settings
from loopline.server.app import create_app

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from loopline.tracking.service import TrackingService

__all__ = ["LiveServer", "live_server"]


@dataclass(frozen=True)
class LiveServer:
    url: str
    settings: Settings
    service: TrackingService


@contextlib.contextmanager
def live_server(home: Path, *, max_body_bytes: int | None = None) -> Iterator[LiveServer]:
    """Serve a fresh store in ``home`` on a free local port until the block exits."""
    settings = Settings(home=home)
    service = open_service(settings)
    app = (
        create_app(service)
        if max_body_bytes is None
        else create_app(service, max_body_bytes=max_body_bytes)
    )
    # A socket bound here and handed to uvicorn: no window for another process to take the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="loopline-test-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings, service)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        service.close()
