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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from loopline.errors import InvalidArgumentError, StoreError

__all__ = ["HEAD_REVISION", "Database"]

# The newest migration; tests check it matches the Alembic script directory.
HEAD_REVISION = "0003"
MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x100F11E


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
        if migrate:
            self.ensure_schema()

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
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("loopline_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

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
        with self._guard(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
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
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def ensure_schema(self) -> None:
        """Bring the schema to the head revision unless it is there already."""
        if self.current_revision() == HEAD_REVISION:
            return
        self.upgrade()

    def upgrade(self, revision: str = "head") -> None:
        """Run Alembic migrations up to ``revision`` under a cross-process lock."""
        with self._migration_lock() as conn:
            from alembic import command

            config = self.alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, revision)

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
