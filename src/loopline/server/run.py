"""Run the server: one process, or a pre-forked group of workers sharing one socket.

We bind the listening socket ourselves, always, and hand it to ``uvicorn.Server``:

* it is created with ``proto=IPPROTO_TCP``. asyncio only sets ``TCP_NODELAY`` on
  accepted connections when the listening socket says it is TCP; uvicorn's own
  multi-worker mode binds with ``socket.socket(family)`` (proto 0), which leaves
  Nagle's algorithm on and adds ~40 ms to every keep-alive request. We also set
  ``TCP_NODELAY`` on the listener, which Linux copies to accepted sockets.
* with ``workers > 1`` the parent forks the workers after binding (each builds
  its own database engine after the fork) and supervises them: a crashed worker
  is replaced, SIGTERM/SIGINT stop them all, and each worker asks the kernel for
  SIGTERM should the parent die (``PR_SET_PDEATHSIG``), so none is orphaned.
* ``port=0`` picks a free port; the line printed at start-up names the real one.
* ``scheduler=True`` runs the pipelines scheduler in a background thread of one
  worker (the first); its lease in the store keeps it the only active one even
  when several servers share a database.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from loopline.config import Settings, get_settings
from loopline.errors import InvalidArgumentError

if TYPE_CHECKING:
    from types import FrameType

    from fastapi import FastAPI

__all__ = ["bind_socket", "build_app", "serve", "server_settings"]

_PR_SET_PDEATHSIG = 1
_CRASH_LOOP_SECONDS = 2.0


def server_settings(backend_uri: str | None = None, artifacts_uri: str | None = None) -> Settings:
    """The settings the server stores with: the environment's, with these overrides."""
    settings = get_settings()
    if backend_uri:
        if backend_uri.startswith(("http://", "https://")):
            raise InvalidArgumentError(
                f"the server's backend must be a database, not another server: {backend_uri}",
                hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
            )
        settings = settings.with_(tracking_uri=backend_uri)
    elif settings.remote:
        settings = settings.with_(tracking_uri=None)  # a client setting; serve the home store
    if artifacts_uri:
        settings = settings.with_(artifacts_uri=artifacts_uri)
    return settings


def build_app(
    settings: Settings, *, max_body_bytes: int | None = None, migrate: bool = True
) -> FastAPI:
    """The app over the store ``settings`` names."""
    from loopline.client.factory import open_service
    from loopline.server.app import create_app

    service = open_service(settings, migrate=migrate)
    if max_body_bytes is None:
        app = create_app(service)
    else:
        app = create_app(service, max_body_bytes=max_body_bytes)
    if settings.auth is not None:
        app.state.auth.enabled = settings.auth
    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose accepted connections have ``TCP_NODELAY``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        from loopline.errors import TransportError

        raise TransportError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="is another server using the port? choose another with --port",
        ) from exc
    sock.set_inheritable(True)
    return sock


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    backend_uri: str | None = None,
    artifacts_uri: str | None = None,
    workers: int = 1,
    log_level: str = "info",
    max_body_bytes: int | None = None,
    access_log: bool = True,
    loop: Literal["auto", "asyncio", "uvloop"] = "auto",
    scheduler: bool = False,
) -> None:
    """Serve the API until SIGTERM or SIGINT (Ctrl+C).

    ``loop="auto"`` runs on uvloop (and parses with httptools) when installed.
    """
    if workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, got {workers}")
    settings = server_settings(backend_uri, artifacts_uri)
    if settings.auth is None:
        from loopline.auth.bind import is_loopback

        # Others can reach anything but loopback: enforce unless LOOPLINE_AUTH says no.
        settings = settings.with_(auth=not is_loopback(host))
    from loopline.client.factory import open_service

    # Migrate once, before any worker exists; workers then open without migrating.
    probe = open_service(settings, migrate=True)
    where = probe.describe()
    probe.close()
    sock = bind_socket(host, port)
    try:
        _announce(sock, where, workers)
        options = _Options(log_level=log_level, access_log=access_log, loop=loop)
        if workers == 1:
            app = build_app(settings, max_body_bytes=max_body_bytes, migrate=False)
            if scheduler:
                _start_scheduler(settings)
            _run_uvicorn(app, sock, options)
        else:
            _Supervisor(sock, settings, workers, max_body_bytes, options, scheduler).run()
    finally:
        sock.close()


def _announce(sock: socket.socket, where: dict[str, str], workers: int) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    plural = "s" if workers != 1 else ""
    print(
        f"loopline server at http://{shown}:{port} (API docs at /docs; {workers} worker{plural})\n"
        f"  metadata:  {where.get('metadata', '?')}\n"
        f"  artifacts: {where.get('blobs', '?')}",
        flush=True,
    )
    if host in ("0.0.0.0", "::"):
        print("  warning: listening on every interface; put authentication in front", flush=True)


def _start_scheduler(settings: Settings) -> None:
    from loopline.pipelines.triggers import start_in_background

    start_in_background(settings)
    print("  scheduler: firing pipeline triggers (one scheduler holds the lease)", flush=True)


@dataclass(frozen=True, slots=True)
class _Options:
    """How each uvicorn server runs."""

    log_level: str
    access_log: bool
    loop: str


def _run_uvicorn(app: FastAPI, sock: socket.socket, options: _Options) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        loop=options.loop,
        http="auto",  # httptools when installed
        timeout_keep_alive=30,
        log_level=options.log_level,
        access_log=options.access_log,
    )
    uvicorn.Server(config).run(sockets=[sock])


class _Supervisor:
    """Forks the workers, replaces crashed ones, stops them all on SIGTERM/SIGINT."""

    def __init__(
        self,
        sock: socket.socket,
        settings: Settings,
        workers: int,
        max_body_bytes: int | None,
        options: _Options,
        scheduler: bool = False,
    ) -> None:
        self.sock = sock
        self.scheduler = scheduler
        self.settings = settings
        self.workers = workers
        self.max_body_bytes = max_body_bytes
        self.options = options
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (index, started at)
        self.stopping = False

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.workers):
                self._spawn(index)
            self._supervise()
        finally:
            self._stop()
            self._reap()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self, index: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                _become_worker(parent)
                app = build_app(self.settings, max_body_bytes=self.max_body_bytes, migrate=False)
                if self.scheduler and index == 0:  # threads must start after the fork
                    _start_scheduler(self.settings)
                _run_uvicorn(app, self.sock, self.options)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        self.children[pid] = (index, time.monotonic())

    def _supervise(self) -> None:
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                return
            index, started = self.children.pop(pid, (-1, 0.0))
            if index < 0 or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if time.monotonic() - started < _CRASH_LOOP_SECONDS:
                print(f"loopline server: worker {index} failed at start (exit {code})", flush=True)
                self._stop()
                continue
            print(f"loopline server: worker {index} exited ({code}); restarting", flush=True)
            self._spawn(index)

    def _stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _reap(self, timeout: float = 10.0) -> None:
        """Wait for the workers; kill those still there after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.children and time.monotonic() < deadline:
            for pid in [p for p in self.children if _exited(p)]:
                del self.children[pid]
            time.sleep(0.05)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()


def _exited(pid: int) -> bool:
    """Reap ``pid`` if it has exited (True also when it is not our child any more)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done != 0


def _become_worker(parent: int) -> None:
    """Reset the parent's signal handlers and die with the parent."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)
