"""Fixtures that run real loopline servers on 127.0.0.1.

- ``server_url`` (module): the base URL of a ``loopline server`` subprocess
  (started through :func:`loopline.server.run.serve`) over its own, fresh
  ``LOOPLINE_HOME``; every test module gets one, shared by its tests.
- ``start_server`` (function): a factory for servers with other options
  (``workers=2``, a small body limit...), each stopped after the test.
- ``thread_server`` (function): a context-manager factory running the app with
  ``uvicorn.Server`` in a thread of the test process, for tests that wrap the app,
  set a body limit or pick the moment the socket starts listening
  (``free_socket()`` gives a bound socket that refuses connections until then).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopline.config import Settings
from loopline.server.run import build_app

_SERVE = "import json, sys; from loopline.server.run import serve; serve(**json.loads(sys.argv[1]))"
_CLIENT_VARS = ("LOOPLINE_TRACKING_URI", "LOOPLINE_ARTIFACTS_URI", "LOOPLINE_TRACKING_TOKEN")
_URL = re.compile(r"http://[\w.\-\[\]:]+:\d+")


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}/health did not answer 200 within {timeout} s")
        time.sleep(0.05)


class ServerProcess:
    """``serve(**options)`` in a subprocess; ``url`` comes from its start-up line."""

    def __init__(self, home: Path, **options: Any) -> None:
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _CLIENT_VARS}
        env["LOOPLINE_HOME"] = str(home)
        options = {"port": 0, "log_level": "warning", "access_log": False, **options}
        self.log = home / "server.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _SERVE, json.dumps(options)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.url = self._wait_url()
            wait_healthy(self.url)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def _wait_url(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            found = _URL.search(line)
            if found:
                return found.group(0)
        self.stop()
        pytest.fail(f"the server did not start:\n{self.log.read_text()}")

    def children(self) -> list[int]:
        """The worker processes (Linux: from /proc)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server over a fresh store, shared by the tests of one module."""
    server = ServerProcess(tmp_path_factory.mktemp("server-home"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with given ``serve()`` options; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(**options: Any) -> ServerProcess:
        server = ServerProcess(tmp_path / f"server-{len(started)}", **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def free_socket() -> socket.socket:
    """A bound (not yet listening) TCP socket on 127.0.0.1: connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def _serve_in_thread(
    home: Path,
    *,
    sock: socket.socket | None = None,
    wrap: Callable[[Any], Any] | None = None,
    max_body_bytes: int | None = None,
) -> Iterator[str]:
    """Serve a fresh store from a thread; ``wrap`` may wrap the ASGI app."""
    import uvicorn

    app = build_app(Settings(home=home), max_body_bytes=max_body_bytes)
    sock = sock or free_socket()
    sock.listen(128)
    config = uvicorn.Config(wrap(app) if wrap else app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "the server thread died"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        app.state.service.close()


ThreadServer = Callable[..., contextlib.AbstractContextManager[str]]


@pytest.fixture
def thread_server(tmp_path: Path) -> ThreadServer:
    """``with thread_server(sock=..., wrap=..., max_body_bytes=...) as url:``."""
    count = 0

    def start(**options: Any) -> contextlib.AbstractContextManager[str]:
        nonlocal count
        count += 1
        return _serve_in_thread(tmp_path / f"thread-server-{count}", **options)

    return start


@pytest.fixture(name="free_socket")
def free_socket_fixture() -> Callable[[], socket.socket]:
    return free_socket
