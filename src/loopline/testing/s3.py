"""A throw-away S3-compatible endpoint for tests: moto's server in a subprocess.

:class:`MotoServer` runs ``python -m loopline.testing.s3`` (moto's threaded server,
from the ``moto[server]`` package) on 127.0.0.1. The child binds port 0, so the
operating system picks a free port and no other process can take it in between, and
reports that port on its stdout. The parent then waits until the endpoint answers
HTTP before it hands out :attr:`MotoServer.endpoint_url`.

No orphans: the child watches its stdin, a pipe only the parent holds. When the parent
closes it (:meth:`MotoServer.stop`, interpreter exit) or dies, even by SIGKILL, the
kernel closes it too, and the child exits. The child runs in its own session, so a
Ctrl-C in the terminal reaches the parent only, which then stops it in order.

Neither moto nor boto3 is imported here until a server starts or a bucket is made.

>>> env = moto_env("http://127.0.0.1:5000")
>>> env["LOOPLINE_S3_ENDPOINT_URL"], env["AWS_DEFAULT_REGION"]
('http://127.0.0.1:5000', 'us-east-1')
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib.util import find_spec
from typing import IO, TYPE_CHECKING, Any, Self

from loopline.errors import LooplineError

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["MotoServer", "MotoUnavailableError", "moto_env"]

_PORT_LINE = "LOOPLINE-MOTO-PORT "
_DUMMY_KEY = "testing"
_REGION = "us-east-1"


class MotoUnavailableError(LooplineError):
    """moto's server is not installed, did not start, or stopped answering."""

    default_code = "FEATURE_DISABLED"


def moto_env(endpoint_url: str) -> dict[str, str]:
    """Environment variables pointing loopline and boto3 at a test endpoint.

    Dummy credentials and a region, and no AWS configuration files: a developer's own
    ``~/.aws`` must never reach a test (nor a real bucket).
    """
    return {
        "LOOPLINE_S3_ENDPOINT_URL": endpoint_url,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": _DUMMY_KEY,
        "AWS_SECRET_ACCESS_KEY": _DUMMY_KEY,
        "AWS_DEFAULT_REGION": _REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


class MotoServer:
    """moto's S3-compatible server on a free port of 127.0.0.1, for a ``with`` block.

    ``with MotoServer() as s3: url = s3.endpoint_url; bucket = s3.create_bucket()``.
    Leaving the block (or :meth:`stop`) stops the child and removes its log.
    """

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._client: Any = None

    # -- public surface --------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self.port is None or self._process is None:
            raise MotoUnavailableError(
                "the moto server is not running",
                hint="use MotoServer as a context manager or call start()",
            )
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """:func:`moto_env` for this server (for ``monkeypatch.setenv`` or a subprocess)."""
        return moto_env(self.endpoint_url)

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint (shared: boto3 clients are thread-safe)."""
        if self._client is None:
            import boto3  # type: ignore[import-untyped,unused-ignore]

            self._client = boto3.session.Session(
                aws_access_key_id=_DUMMY_KEY,
                aws_secret_access_key=_DUMMY_KEY,
                region_name=_REGION,
            ).client("s3", endpoint_url=self.endpoint_url)
        return self._client

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        bucket = name or f"loopline-test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the child and wait until it answers; cleans up if anything fails."""
        if self._process is not None:
            return
        # Fail here, with a hint, rather than in the child (without importing moto here).
        absent = [name for name in ("moto", "flask", "werkzeug") if find_spec(name) is None]
        if absent:
            raise MotoUnavailableError(
                f"moto's server mode is not installed (missing: {', '.join(absent)})",
                hint="pip install 'moto[server]' (part of loopline's test extras)",
            )
        _live.add(self)
        try:
            self._spawn()
            self.port = self._read_port()
            self._wait_answering()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the child (close its stdin, then SIGTERM, then SIGKILL) and drop its log."""
        process, self._process = self._process, None
        self._client = None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            for step in (None, process.terminate, process.kill):
                if step is not None:
                    step()
                try:
                    process.wait(timeout=5)
                    break
                except subprocess.TimeoutExpired:
                    continue
            if process.stdout is not None:
                process.stdout.close()
        log, self._log = self._log, None
        if log is not None:
            log.close()
        self.port = None
        _live.discard(self)

    # -- steps -----------------------------------------------------------------------------
    def _spawn(self) -> None:
        # An anonymous file: nothing is left on disk, even when this process is killed.
        self._log = tempfile.TemporaryFile(prefix="loopline-moto-")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "loopline.testing.s3"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def _log_tail(self, limit: int = 3000) -> str:
        """The end of the child's stderr (read without moving the offset it writes at)."""
        if self._log is None:
            return ""
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        return os.pread(fd, limit, max(0, size - limit)).decode(errors="replace")

    def _fail(self, what: str) -> MotoUnavailableError:
        return MotoUnavailableError(
            f"the moto server {what}:\n{self._log_tail()}",
            hint="see its log above; is moto[server] installed in this interpreter?",
        )

    def _read_port(self) -> int:
        """The port the child reports on its first stdout line."""
        assert self._process is not None
        assert self._process.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._fail(f"did not report its port within {self.startup_timeout} s")
                if not selector.select(timeout=left):
                    continue
                byte = self._process.stdout.read(1)
                if not byte:
                    raise self._fail(f"exited with code {self._process.wait()} before starting")
                line += byte
        text = line.decode(errors="replace").strip()
        if not text.startswith(_PORT_LINE.strip()):
            raise self._fail(f"said {text!r} instead of its port")
        return int(text.split()[-1])

    def _wait_answering(self) -> None:
        """Poll moto's own API until it answers over HTTP."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://127.0.0.1:{self.port}/moto-api/data.json"
        while True:
            if self._process.poll() is not None:
                raise self._fail(f"exited with code {self._process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise self._fail(f"did not answer within {self.startup_timeout} s")
            time.sleep(0.02)


_live: set[MotoServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        server.stop()


def _serve() -> None:  # pragma: no cover - runs in the child process
    """The child: serve on a port the OS picks, report it, and exit when stdin closes."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    sys.stdout.write(f"{_PORT_LINE}{port}\n")
    sys.stdout.flush()
    # Nothing reads stdout any more: point it at the log, so a chatty library can never
    # block on a full pipe.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe, or died
    os._exit(0)  # serving threads need no orderly goodbye


if __name__ == "__main__":  # pragma: no cover
    _serve()
