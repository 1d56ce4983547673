"""Fixtures shared by every test.

- ``postgres_base_url`` (session): a reachable PostgreSQL server's URL;
  ``LOOPLINE_TEST_POSTGRES_URL`` when set (CI), else a throw-away server.
- ``metadata_url``: a fresh, empty metadata store URL, once per backend
  (ids ``sqlite`` and ``postgresql``; the latter is marked ``postgres``).
- ``db``: a migrated :class:`~loopline.store.metadata.Database` on ``metadata_url``.
- every test gets its own ``LOOPLINE_HOME`` and fresh settings (autouse).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest

from loopline.config import reset_settings
from loopline.store.metadata import Database
from loopline.testing.postgres import (
    PostgresUnavailableError,
    TemporaryPostgres,
    isolated_schema_url,
    ping_postgres,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

POSTGRES_URL_VAR = "LOOPLINE_TEST_POSTGRES_URL"
# Cleared for every test and restored after it: `loopline server` run in-process sets
# LOOPLINE_AUTH for its workers, which must not leak into the next test's servers.
_CLEARED_VARS = (
    "LOOPLINE_TRACKING_URI",
    "LOOPLINE_ARTIFACTS_URI",
    "LOOPLINE_TRACKING_TOKEN",
    "LOOPLINE_AUTH",
    "LOOPLINE_AUTH_RATE_LIMIT",
    "LOOPLINE_PROJECT",
    "LOOPLINE_PREDICTIONS_DIR",
    # The mlflow client records what a test pointed it at in these.
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_ID",
)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No test reads or writes ~/.loopline or a configured remote store."""
    home = tmp_path / "loopline-home"
    monkeypatch.setenv("LOOPLINE_HOME", str(home))
    for name in _CLEARED_VARS:
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    _forget_fluent_state()
    yield home
    # monkeypatch restores only what it removed; a variable the test's code set
    # (absent before) is removed here.
    for name in _CLEARED_VARS:
        os.environ.pop(name, None)
    _forget_fluent_state()
    reset_settings()


def _forget_fluent_state() -> None:
    # The fluent API (and the data SDK) keep process-wide clients and a run stack: a
    # test must not log into the previous test's store.
    fluent = sys.modules.get("loopline.tracking.fluent")
    if fluent is None:
        return
    fluent._main_stack.clear()
    fluent._local.__dict__.clear()
    fluent._last = None
    fluent._experiment_id = None
    client, fluent._client = fluent._client, None
    if client is not None:
        if client._writer is not None:
            client._writer.error = None
        client.close()
    data_api = sys.modules.get("loopline.data.api")
    if data_api is not None:
        data_api.close()


@pytest.fixture(scope="session")
def postgres_base_url() -> Iterator[str]:
    """The URL of a PostgreSQL database tests may create schemas in.

    A server named by ``LOOPLINE_TEST_POSTGRES_URL`` must answer: when it does not,
    every PostgreSQL test fails (a skip would hide a broken CI service).
    """
    url = os.environ.get(POSTGRES_URL_VAR)
    if url:
        try:
            ping_postgres(url)
        except PostgresUnavailableError as exc:
            pytest.fail(f"{POSTGRES_URL_VAR} is set but unusable: {exc}", pytrace=False)
        yield url
        return
    with TemporaryPostgres() as server:
        yield server.url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty metadata store: a new SQLite file, or a new PostgreSQL schema that is
    dropped afterwards. PostgreSQL is only started when a test asks for it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata' / 'loopline.db'}"
        return
    base_url: str = request.getfixturevalue("postgres_base_url")
    with isolated_schema_url(base_url) as url:
        yield url


@pytest.fixture
def db(metadata_url: str) -> Iterator[Database]:
    """A migrated metadata database on ``metadata_url``, closed afterwards."""
    database = Database(metadata_url)
    try:
        yield database
    finally:
        database.close()
