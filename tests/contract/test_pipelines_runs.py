"""Pipeline runs on every backend: buffered step writes, the cache, a failed branch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from loopline.config import Settings, reset_settings
from loopline.pipelines import PipelineFailedError
from loopline.pipelines.store import PipelineStore
from loopline.pipelines.worker import import_file

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopline.store.metadata import Database

FLOWS = Path(__file__).parents[1] / "unit" / "pipelines" / "flows.py"


@pytest.fixture
def store_settings(db: Database, tmp_path: Path) -> Iterator[Settings]:
    """The process's settings on ``db``; the fluent client (steps log through it) is
    closed before the store goes."""
    from loopline.tracking import fluent

    settings = Settings(home=tmp_path / "home", tracking_uri=db.url)
    reset_settings(settings)
    yield settings
    client, fluent._client = fluent._client, None
    if client is not None:
        client.close()


@pytest.mark.usefixtures("store_settings")
def test_runs_steps_and_the_cache_are_stored(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    flows = import_file(str(FLOWS))
    first = flows.sums.run(params={"n": 4}, executor="inline")
    again = flows.sums.run(params={"n": 4}, executor="inline")
    assert set(again.steps.values()) == {"cached"}
    assert again.load("total") == first.load("total") == 12
    store = PipelineStore(db)
    record = store.get_run(again.run_id)
    assert record.status == "succeeded"
    assert [(s.name, s.status) for s in record.steps] == [
        ("numbers", "cached"),
        ("scaled", "cached"),
        ("total", "cached"),
    ]
    assert all(s.child_run_id and s.outputs for s in record.steps)

    monkeypatch.setenv("FLOWS_FAIL", "1")
    with pytest.raises(PipelineFailedError):
        flows.branches.run(executor="inline")
    failed = store.list_runs(pipeline="branches")[0]
    assert {s.name: s.status for s in failed.steps} == {
        "numbers": "succeeded",
        "total": "succeeded",
        "fragile": "failed",
    }
    assert "fragile failed on purpose" in next(
        s.traceback for s in failed.steps if s.name == "fragile"
    )
