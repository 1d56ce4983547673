"""The metadata database: engine set-up, transactions and migrations on open.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every write
transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and
then writes can fail at once with "database is locked" when another process
committed in between, while an immediate one waits its turn. PostgreSQL is reached
through ``postgresql+psycopg://`` URLs.

Migrations run on open, under a lock (a file lock for SQLite, an advisory lock for
PostgreSQL) so two processes opening a fresh store at once do not race. When the
schema is already at the head revision, open costs one query and Alembic is never
imported.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from loopline.errors import AlreadyExistsError, InvalidArgumentError, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection, Engine

__all__ = ["HEAD_REVISION", "Database"]

# The newest migration; tests check it matches the Alembic script directory.
HEAD_REVISION = "0008"
MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x100F11E
# Not Alembic's default name, so a database shared with another tool (MLflow) is safe.
VERSION_TABLE = "loopline_alembic_version"


def _ensure_wal(cur: Any) -> None:
    """Switch a database to WAL once; the mode is persistent, so later opens only read it.

    Switching needs an exclusive lock and does not honour the busy timeout, so two
    processes opening a fresh store at once retry instead of failing.
    """
    import sqlite3
    import time

    for attempt in range(200):
        try:
            mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() in ("wal", "memory"):
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.01 + 0.001 * attempt)


def _sqlite_path(url: sa.URL) -> Path | None:
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


class Database:
    """An engine plus the transaction and migration rules loopline relies on."""

    def __init__(self, url: str, *, migrate: bool = True, echo: bool = False) -> None:
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise InvalidArgumentError(
                f"not a database URL: {url!r}",
                hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB",
            ) from exc
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(parsed, echo)
        elif self.dialect == "postgresql":
            self.engine = self._postgres_engine(parsed, echo)
        else:
            raise InvalidArgumentError(
                f"unsupported database {self.dialect!r}",
                hint="loopline stores metadata in SQLite or PostgreSQL",
            )
        self._local = threading.local()
        self._written, self._next_refresh = 0, 20_000
        if migrate:
            self.ensure_schema()
            if self.dialect == "sqlite":
                self._refresh_statistics()

    # -- engines -------------------------------------------------------------------
    @staticmethod
    def _sqlite_engine(url: sa.URL, echo: bool) -> Engine:
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            echo=echo,
            connect_args={"timeout": 60, "check_same_thread": False},
            poolclass=sa.pool.QueuePool if path is not None else sa.pool.StaticPool,
            pool_size=4,
            max_overflow=16,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let us issue BEGIN ourselves (pysqlite's own transaction handling is off).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=60000")
            _ensure_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("loopline_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def note_writes(self, rows: int) -> None:
        """Count rows written; refresh SQLite's statistics after every large growth.

        A store opened empty and then filled has none, and its planner then walks
        whole tables for selective searches.
        """
        if self.dialect != "sqlite":
            return
        self._written += rows
        if self._written >= self._next_refresh:
            self._next_refresh = max(self._next_refresh, self._written) * 4
            self._refresh_statistics(full=True)

    def _refresh_statistics(self, *, full: bool = False) -> None:
        # The planner needs table statistics to start a selective search from the
        # (key, value) indexes; SQLite keeps none unless asked. analysis_limit makes
        # ANALYZE sample a few hundred rows per index, so it costs milliseconds.
        with self._guard(), self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit=400")
            has_stats = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).first()
            # optimize only refreshes statistics that exist; the first ones need ANALYZE.
            conn.exec_driver_sql("ANALYZE" if full or not has_stats else "PRAGMA optimize=0x10002")
            conn.commit()

    @staticmethod
    def _postgres_engine(url: sa.URL, echo: bool) -> Engine:
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        try:
            return sa.create_engine(
                url, echo=echo, pool_size=8, max_overflow=16, pool_pre_ping=True
            )
        except ModuleNotFoundError as exc:
            from loopline.errors import MissingDependencyError

            raise MissingDependencyError("psycopg", "postgres") from exc

    # -- transactions ----------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a write transaction, committed on success."""
        with self._guard(), self.engine.connect() as conn:
            conn = conn.execution_options(loopline_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a read transaction (one consistent snapshot)."""
        with self._guard(), self.engine.connect() as conn:
            if self.dialect == "postgresql":
                # READ COMMITTED would let a commit show up between two statements.
                conn = conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.IntegrityError as exc:
            # Two writers raced for the same unique key (check-then-insert on PostgreSQL,
            # whose writers do not queue like SQLite's BEGIN IMMEDIATE ones).
            raise AlreadyExistsError(
                f"a concurrent write stored the same record first: {exc.orig}",
                hint="retry the operation",
            ) from exc
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"the metadata database failed: {exc.orig}",
                hint=f"check that {self.safe_url} is reachable and not full",
            ) from exc

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- migrations ------------------------------------------------------------------
    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(VERSION_TABLE):
                return None
            return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()

    def ensure_schema(self) -> None:
        """Bring the schema to the head revision unless it is there already."""
        if self.current_revision() == HEAD_REVISION:
            return
        self.upgrade()

    def upgrade(self, revision: str = "head") -> None:
        """Run Alembic migrations up to ``revision`` under a cross-process lock."""
        with self._migration_lock() as conn:
            from alembic import command
            from alembic.util import CommandError

            config = self.alembic_config()
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, revision)
            except CommandError as exc:
                raise StoreError(
                    f"cannot migrate {self.safe_url}: {exc}",
                    hint="a newer loopline created this store: upgrade loopline",
                ) from exc

    def alembic_config(self) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return config

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
                try:
                    yield conn
                    conn.commit()
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                    conn.commit()
            return
        path = _sqlite_path(sa.make_url(self.url))
        lock_file = None
        if path is not None:
            lock_file = open(path.with_name(path.name + ".migrate.lock"), "w")  # noqa: SIM115
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with self.engine.connect() as conn:
                yield conn
                conn.commit()
        finally:
            if lock_file is not None:
                fcntl.flock(lock_file, fcntl.LOCK_UN)
                lock_file.close()
