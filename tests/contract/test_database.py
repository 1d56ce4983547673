"""The metadata database's contract, on SQLite and on PostgreSQL.

Migrations build exactly ``schema.metadata``, seed the defaults, are idempotent, safe
under concurrent opens and keep data across upgrades; writes never hit "database is
locked".
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from loopline.store.metadata import HEAD_REVISION, Database
from loopline.store.metadata.database import VERSION_TABLE
from loopline.store.metadata.schema import metadata
from loopline.testing.postgres import TemporaryPostgres, isolated_schema_url, ping_postgres

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

RUNS_AT_0001 = sa.table(
    "runs",
    sa.column("id", sa.String),
    sa.column("experiment_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("start_time", sa.BigInteger),
)


def _count(db: Database, table: str) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_migrations_create_every_table(db: Database) -> None:
    with db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert set(metadata.tables) | {"loopline_alembic_version"} == tables


def test_default_project_and_experiment_exist(db: Database) -> None:
    with db.read() as conn:
        project = conn.execute(sa.text("SELECT id, name FROM projects")).one()
        experiment = conn.execute(
            sa.text("SELECT id, name, project_id, lifecycle_stage FROM experiments")
        ).one()
    assert project.name == "default"
    assert tuple(experiment) == (0, "Default", project.id, "active")


def test_opening_a_migrated_store_again_is_a_noop(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an up-to-date store must not run migrations")

    monkeypatch.setattr(Database, "upgrade", fail)
    again = Database(db.url)
    try:
        assert again.current_revision() == HEAD_REVISION
    finally:
        again.close()
    assert _count(db, "projects") == 1
    assert _count(db, "experiments") == 1


def test_head_revision_matches_the_migration_scripts(db: Database) -> None:
    scripts = ScriptDirectory.from_config(db.alembic_config())
    assert scripts.get_current_head() == HEAD_REVISION
    assert db.current_revision() == HEAD_REVISION


def test_migrations_build_exactly_the_declared_schema(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        diff = compare_metadata(context, metadata)
    assert diff == []


def _open_store(url: str, barrier: Barrier) -> None:
    barrier.wait(timeout=60)
    Database(url).close()


def test_two_processes_open_a_fresh_store_at_once(metadata_url: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    workers = [spawn.Process(target=_open_store, args=(metadata_url, barrier)) for _ in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    for worker in workers:
        worker.close()
    db = Database(metadata_url, migrate=False)
    try:
        assert db.current_revision() == HEAD_REVISION
        assert _count(db, "experiments") == 1
    finally:
        db.close()


def test_upgrade_from_the_first_revision_keeps_data(metadata_url: str) -> None:
    db = Database(metadata_url, migrate=False)
    try:
        assert db.current_revision() is None
        db.upgrade("0001")
        assert db.current_revision() == "0001"
        with db.write() as conn:
            conn.execute(
                RUNS_AT_0001.insert().values(
                    id="a" * 32, experiment_id=0, status="FINISHED", start_time=1
                )
            )
        db.upgrade("head")
        assert db.current_revision() == HEAD_REVISION
        with db.read() as conn:
            rows = conn.execute(sa.text("SELECT id, experiment_id, status FROM runs")).all()
        assert [tuple(r) for r in rows] == [("a" * 32, 0, "FINISHED")]
    finally:
        db.close()


def test_concurrent_small_writes_never_fail(db: Database) -> None:
    # Each transaction reads then writes: the pattern that fails at once on SQLite with
    # "database is locked" unless write transactions begin IMMEDIATE.
    errors: list[BaseException] = []
    per_thread = 150

    def work() -> None:
        try:
            for _ in range(per_thread):
                with db.write() as conn:
                    conn.execute(sa.text("SELECT count(*) FROM write_batches")).scalar_one()
                    conn.execute(
                        sa.text("INSERT INTO write_batches (id, created_at) VALUES (:id, 0)"),
                        {"id": uuid.uuid4().hex},
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(db, "write_batches") == 2 * per_thread


@pytest.mark.postgres
def test_isolated_schema_holds_every_table_and_is_dropped(postgres_base_url: str) -> None:
    engine = sa.create_engine(postgres_base_url, poolclass=sa.pool.NullPool)
    # Only this schema's tables: other test processes make and drop schemas meanwhile.
    query = sa.text(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
        "AND table_name IN ('loopline_alembic_version', 'runs')"
    )
    try:
        with isolated_schema_url(postgres_base_url) as url:
            db = Database(url)
            try:
                with db.read() as conn:
                    schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
            finally:
                db.close()
            with engine.connect() as conn:
                tables = set(conn.execute(query, {"s": schema}).scalars())
            assert schema.startswith("t_")
            assert tables == {"loopline_alembic_version", "runs"}
        with engine.connect() as conn:
            assert set(conn.execute(query, {"s": schema}).scalars()) == set()
            gone = sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :s")
            assert conn.execute(gone, {"s": schema}).scalar_one() == 0
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_temporary_postgres_leaves_nothing_behind() -> None:
    with TemporaryPostgres() as server:
        assert ping_postgres(server.url)
        directory, process = server.directory, server._process
        assert directory is not None
        assert process is not None
    assert process.poll() is not None
    assert not directory.exists()
