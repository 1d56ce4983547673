"""Throw-away PostgreSQL servers and schemas for tests.

Every metadata-store test runs against SQLite and a real PostgreSQL server. When no
server is given (``LOOPLINE_TEST_POSTGRES_URL`` in loopline's own test suite),
:class:`TemporaryPostgres` creates a cluster in a temporary directory and runs it on a
free port of 127.0.0.1, tuned for speed (no fsync). :func:`isolated_schema_url` then
gives each test an empty schema of its own in milliseconds, instead of a new database.

``initdb`` and ``postgres`` refuse to run as root: as root (CI runs as root) both run
as the ``postgres`` system user, which owns the temporary directory.

psycopg is only imported when a connection is made, so this module imports without it.

>>> pg_url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
>>> schema_url(pg_url, "t_1f2e")
'postgresql+psycopg://postgres@127.0.0.1:5432/test?application_name=loopline-t_1f2e&options=-csearch_path%3Dt_1f2e'
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from loopline.errors import LooplineError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

__all__ = [
    "PostgresUnavailableError",
    "TemporaryPostgres",
    "ensure_postgres_installed",
    "find_pg_bin",
    "isolated_schema_url",
    "ping_postgres",
    "schema_url",
]

PG_LIB_ROOT = Path("/usr/lib/postgresql")
_TOOLS = ("initdb", "postgres")
_SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    # Durability buys nothing in a throw-away cluster and costs most of the time.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_DIR_PREFIX = "loopline-pg-"
_STALE_AFTER = 3600.0
_PID_FILE_SETTLED = 60.0
"""Seconds after which a pid file naming no live process is a dead server's."""


class PostgresUnavailableError(LooplineError):
    """No PostgreSQL server could be found, installed, started or reached."""

    default_code = "FEATURE_DISABLED"


# -- finding and installing the binaries ---------------------------------------------------
def _has_tools(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / tool, os.X_OK) for tool in _TOOLS)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (-1,)


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, newest version first.

    Debian's ``/usr/lib/postgresql/<version>/bin`` comes first (its ``/usr/bin`` only
    has wrappers), then whatever ``initdb`` is on ``PATH``; None when there is none.
    """
    if PG_LIB_ROOT.is_dir():
        for version in sorted(PG_LIB_ROOT.iterdir(), key=_version_key, reverse=True):
            if _has_tools(version / "bin"):
                return version / "bin"
    on_path = shutil.which("initdb")
    if on_path is not None:
        bin_dir = Path(on_path).resolve().parent
        if _has_tools(bin_dir):
            return bin_dir
    return None


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", "-q", "-y", *args], env=env, capture_output=True, text=True, check=False
    )


def _apt_install_postgres() -> None:
    # Refresh the package lists only when apt does not know the package yet.
    known = subprocess.run(
        ["apt-cache", "show", "postgresql"], capture_output=True, text=True, check=False
    )
    if known.returncode != 0 or not known.stdout.strip():
        _apt_get("update")
    done = _apt_get("install", "--no-install-recommends", "postgresql")
    if done.returncode != 0:
        raise PostgresUnavailableError(
            f"apt-get install postgresql failed:\n{done.stderr.strip()[-2000:]}",
            hint="install PostgreSQL by hand (apt-get install postgresql) "
            "or set LOOPLINE_TEST_POSTGRES_URL to a running server",
        )


def ensure_postgres_installed() -> Path:
    """:func:`find_pg_bin`, installing Debian's ``postgresql`` package first when
    it is missing and this process is root on Debian; raises otherwise."""
    bin_dir = find_pg_bin()
    if bin_dir is not None:
        return bin_dir
    if os.geteuid() == 0 and Path("/etc/debian_version").exists() and shutil.which("apt-get"):
        _apt_install_postgres()
        bin_dir = find_pg_bin()
        if bin_dir is not None:
            return bin_dir
    raise PostgresUnavailableError(
        "PostgreSQL's server programs (initdb, postgres) were not found "
        f"in {PG_LIB_ROOT}/*/bin or on PATH",
        hint="install them (Debian/Ubuntu: apt-get install postgresql; macOS: "
        "brew install postgresql) or set LOOPLINE_TEST_POSTGRES_URL to a running server",
    )


# -- a throw-away cluster ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(directory: Path) -> bool:
    """A directory left by a process that was killed before it could clean up: its
    server is gone, or it never started and the directory is an hour old.

    Another test process may be starting its own cluster meanwhile: initdb's
    bootstrap backends and the starting server write ``postmaster.pid`` (empty for a
    moment) and remove it when they exit, so a fresh pid file naming no live process
    does not make a directory stale; only an old one does.
    """
    pid_file = directory / "data" / "postmaster.pid"
    try:
        pid_line = pid_file.read_text().split("\n", 1)[0].strip()
        age = time.time() - pid_file.stat().st_mtime
    except OSError:
        try:
            return time.time() - directory.stat().st_mtime > _STALE_AFTER
        except OSError:
            return False
    if pid_line.isdigit() and _pid_alive(int(pid_line)):
        return False
    return age > _PID_FILE_SETTLED


def _remove_stale_directories() -> None:
    for directory in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*"):
        if directory.is_dir() and _is_stale(directory):
            shutil.rmtree(directory, ignore_errors=True)


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send SIGQUIT (PostgreSQL's immediate shutdown)
    to the server when the thread that started it dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:  # runs in the child, after it switched user
        prctl(pr_set_pdeathsig, int(signal.SIGQUIT), 0, 0, 0)

    return preexec


class TemporaryPostgres:
    """A PostgreSQL cluster in a temporary directory, for the life of a ``with`` block.

    The server listens on a free port of 127.0.0.1 (and a unix socket in the same
    directory) with trust authentication; :attr:`url` reaches its ``postgres``
    database as the ``postgres`` superuser. Leaving the block stops the server
    (immediate shutdown) and deletes the directory, also after errors; the server is
    also stopped at interpreter exit and when this process dies.
    """

    def __init__(
        self,
        *,
        bin_dir: Path | None = None,
        startup_timeout: float = 60.0,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.bin_dir = bin_dir
        self.startup_timeout = startup_timeout
        self.settings = {**_SERVER_SETTINGS, **(settings or {})}
        self.directory: Path | None = None
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._owner: pwd.struct_passwd | None = None

    # -- public surface --------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``."""
        if self.port is None or self._process is None:
            raise PostgresUnavailableError(
                "the temporary PostgreSQL server is not running",
                hint="use TemporaryPostgres as a context manager or call start()",
            )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        return self._require_dir() / "data"

    @property
    def log_path(self) -> Path:
        return self._require_dir() / "server.log"

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
        """Create the cluster and start the server; cleans up if anything fails."""
        if self._process is not None:
            return
        bin_dir = self.bin_dir or ensure_postgres_installed()
        _live.add(self)
        try:
            self._make_directory()
            self._initdb(bin_dir)
            self._start_server(bin_dir)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and delete its directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        self.port = None
        _live.discard(self)

    # -- steps -----------------------------------------------------------------------------
    def _require_dir(self) -> Path:
        if self.directory is None:
            raise PostgresUnavailableError("the temporary PostgreSQL server is not running")
        return self.directory

    def _make_directory(self) -> None:
        _remove_stale_directories()
        self.directory = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
        if os.geteuid() == 0:
            self._owner = _unprivileged_user()
            os.chown(self.directory, self._owner.pw_uid, self._owner.pw_gid)
        self.directory.chmod(0o700)

    def _spawn(self, cmd: list[str], *, die_with_parent: bool = False) -> subprocess.Popen[bytes]:
        """Run ``cmd`` in the directory, as the unprivileged owner when we are root, with
        its output appended to :attr:`log_path`."""
        owner = self._owner
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if owner is not None:
            env.update(HOME=str(self._require_dir()), USER=owner.pw_name, LOGNAME=owner.pw_name)
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                cmd,
                cwd=self._require_dir(),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=None if owner is None else owner.pw_uid,
                group=None if owner is None else owner.pw_gid,
                extra_groups=None if owner is None else [],
                preexec_fn=_die_with_parent() if die_with_parent else None,
            )

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def _initdb(self, bin_dir: Path) -> None:
        cmd = [str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres"]
        cmd += ["-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        initdb = self._spawn(cmd)
        try:
            code = initdb.wait()
        except BaseException:  # e.g. Ctrl-C: do not leave initdb writing into a deleted dir
            initdb.kill()
            initdb.wait()
            raise
        if code != 0:
            raise PostgresUnavailableError(
                f"initdb failed (exit {code}):\n{self._log_tail()}",
                hint="check that the postgres user can write to the temporary directory",
            )

    def _start_server(self, bin_dir: Path) -> None:
        # A free port can be taken by someone else before the server binds it: retry.
        for attempt in range(5):
            self.port = _free_port()
            cmd = [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
            cmd += ["-k", str(self._require_dir())]
            for name, value in self.settings.items():
                cmd += ["-c", f"{name}={value}"]
            self._process = self._spawn(cmd, die_with_parent=True)
            if self._wait_ready():
                return
            self._process = None
            log_text = self._log_tail()
            if "could not bind" not in log_text or attempt == 4:
                raise PostgresUnavailableError(
                    f"the temporary PostgreSQL server did not start:\n{log_text}",
                    hint=f"see the log above; the data directory was {self.data_dir}",
                )

    def _wait_ready(self) -> bool:
        """Wait until the postmaster says "ready" in postmaster.pid and accepts TCP
        connections (what ``pg_ctl -w`` checks); False if it exited instead."""
        assert self._process is not None
        assert self.port is not None
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[7].strip() == "ready":
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return True
            time.sleep(0.02)
        self.stop()
        raise PostgresUnavailableError(
            f"the temporary PostgreSQL server was not ready after {self.startup_timeout:.0f} s"
        )


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailableError(
        "initdb and postgres refuse to run as root and there is no postgres user",
        hint="create one (useradd --system postgres) or run the tests as another user",
    )


_live: set[TemporaryPostgres] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        server.stop()


# -- schemas -------------------------------------------------------------------------------
def schema_url(base_url: str, schema: str) -> str:
    """``base_url`` with connections that work in ``schema`` (their ``search_path``).

    Alembic's ``loopline_alembic_version`` and every table then land in that schema. The
    connections also carry ``application_name=loopline-<schema>``.
    """
    import sqlalchemy as sa

    if not _SCHEMA_NAME.match(schema):
        raise PostgresUnavailableError(f"not a plain schema name: {schema!r}")
    url = sa.make_url(base_url)
    options = url.query.get("options")
    if isinstance(options, tuple):
        options = " ".join(options)
    search_path = f"-csearch_path={schema}"
    url = url.update_query_dict(
        {
            "options": f"{options} {search_path}" if options else search_path,
            "application_name": f"loopline-{schema}",
        }
    )
    return url.render_as_string(hide_password=False)


def _wait_for_backends_to_exit(engine: Any, app: str, timeout: float = 2.0) -> None:
    # A connection the client just closed stays listed while its backend exits:
    # give those a moment, so only connections really left open count as leaks.
    import sqlalchemy as sa

    deadline = time.monotonic() + timeout
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app "
        "AND pid <> pg_backend_pid()"
    )
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if not conn.execute(query, {"app": app}).scalar_one():
                return
        time.sleep(0.02)


@contextlib.contextmanager
def isolated_schema_url(base_url: str) -> Iterator[str]:
    """A URL into a new, empty schema ``t_<hex>`` of ``base_url``'s database, which is
    dropped (CASCADE) on exit.

    Close every engine on the URL before leaving: connections still open at that point
    are terminated (so the drop cannot hang) and reported with a ResourceWarning.
    """
    import sqlalchemy as sa

    schema = f"t_{secrets.token_hex(6)}"
    engine = sa.create_engine(base_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        try:
            yield schema_url(base_url, schema)
        finally:
            _wait_for_backends_to_exit(engine, f"loopline-{schema}")
            with engine.begin() as conn:
                leaked = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :app AND pid <> pg_backend_pid()"
                    ),
                    {"app": f"loopline-{schema}"},
                ).scalar_one()
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            if leaked:
                warnings.warn(
                    f"{leaked} connection(s) to schema {schema} were still open and have "
                    "been terminated: close every Database/engine before the schema goes",
                    ResourceWarning,
                    stacklevel=3,
                )
    finally:
        engine.dispose()


def ping_postgres(url: str, *, timeout: float = 5.0) -> str:
    """Connect to ``url`` and return the server's version, or raise
    :class:`PostgresUnavailableError` saying why it could not be reached."""
    import sqlalchemy as sa

    engine = sa.create_engine(
        url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": max(1, int(timeout))}
    )
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SHOW server_version").scalar())
    except sa.exc.DBAPIError as exc:
        safe = sa.make_url(url).render_as_string(hide_password=True)
        raise PostgresUnavailableError(
            f"cannot connect to PostgreSQL at {safe}: {exc.orig}",
            hint="start the server or fix the URL",
        ) from exc
    finally:
        engine.dispose()
